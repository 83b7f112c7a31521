"""DistilBERT against Hugging Face Transformers (PyTorch): the parity harness, plus what is DistilBERT's own
(config names, sinusoidal position embeddings, the tied `vocab_projector`)."""

import mindspore as ms
import numpy as np
import pytest
import torch
import transformers
from transformers import DistilBertConfig

import mindone_ft
from model_parity import ModelFamily, ModelParityTests


def tiny_config(**overrides) -> DistilBertConfig:
    """A tiny random DistilBERT: DistilBERT's own config names, a hidden size not a power of two per head, an odd
    FFN size, a padding id that is not 0 (the word table's padding row must follow `pad_token_id`), and all
    dropouts on (the harness compares in eval mode, then saves and reloads them)."""
    values = dict(
        vocab_size=99,
        dim=32,
        n_layers=2,
        n_heads=4,
        hidden_dim=37,
        max_position_embeddings=64,
        dropout=0.1,
        attention_dropout=0.1,
        seq_classif_dropout=0.2,
        qa_dropout=0.15,
        activation="gelu",
        pad_token_id=3,
    )
    values.update(overrides)
    config = DistilBertConfig(**values)
    config._attn_implementation = "eager"
    return config


class TestDistilBertParity(ModelParityTests):
    family = ModelFamily(
        "distilbert",
        tiny_config,
        heads=("DistilBertModel", "DistilBertForMaskedLM", "DistilBertForSequenceClassification",
               "DistilBertForTokenClassification", "DistilBertForQuestionAnswering", "DistilBertForMultipleChoice"),
        input_names=("input_ids", "attention_mask"),
    )


def test_sinusoidal_position_embeddings_initialize_like_transformers():
    """`sinusoidal_pos_embds=True`: transformers fills the (still trainable) position table with sin/cos at
    init; the rest of the init is random."""
    config = tiny_config(sinusoidal_pos_embds=True)
    torch_table = transformers.DistilBertModel(config).embeddings.position_embeddings.weight
    model = mindone_ft.DistilBertForSequenceClassification(config)
    table = model.distilbert.embeddings.position_embeddings.weight
    assert torch_table.requires_grad and table.requires_grad
    np.testing.assert_allclose(table.asnumpy(), torch_table.detach().numpy(), atol=1e-7, rtol=0)
    learned = mindone_ft.DistilBertModel(tiny_config()).embeddings.position_embeddings.weight.asnumpy()
    assert abs(learned.std() - config.initializer_range) < 0.005


def test_mlm_projector_is_tied_to_word_embeddings():
    model = mindone_ft.DistilBertForMaskedLM(tiny_config())
    assert model.vocab_projector.weight is model.distilbert.embeddings.word_embeddings.weight
    assert "vocab_projector.bias" in model.state_dict_numpy()
    untied = mindone_ft.DistilBertForMaskedLM(tiny_config(tie_word_embeddings=False))
    assert untied.vocab_projector.weight is not untied.distilbert.embeddings.word_embeddings.weight
    assert "vocab_projector.weight" in untied.state_dict_numpy()


def test_padding_row_follows_pad_token_id():
    state = mindone_ft.DistilBertModel(tiny_config()).state_dict_numpy()
    word = state["embeddings.word_embeddings.weight"]
    assert np.all(word[3] == 0) and np.all(word[0] != 0)


def test_question_answering_needs_two_labels():
    with pytest.raises(ValueError, match="num_labels should be 2"):
        mindone_ft.DistilBertForQuestionAnswering(tiny_config(num_labels=3))


def test_inputs_embeds_and_position_ids_match_transformers(pynative, tmp_path):
    """The paths the harness does not take: `inputs_embeds` instead of ids, and explicit (shifted) positions."""
    config = tiny_config()
    torch.manual_seed(0)
    torch_model = transformers.DistilBertModel(config).eval()
    torch_model.save_pretrained(tmp_path)
    model = mindone_ft.DistilBertModel.from_pretrained(tmp_path)
    rng = np.random.default_rng(0)
    ids = rng.integers(4, 99, (2, 7))
    mask = np.ones((2, 7), np.int64)
    mask[1, 5:] = 0
    positions = np.tile(np.arange(3, 10), (2, 1))
    embeds = torch_model.embeddings.word_embeddings(torch.from_numpy(ids)).detach().numpy()
    with torch.no_grad():
        expected = torch_model(inputs_embeds=torch.from_numpy(embeds), attention_mask=torch.from_numpy(mask),
                               position_ids=torch.from_numpy(positions)).last_hidden_state.numpy()
    got = model(inputs_embeds=ms.Tensor(embeds), attention_mask=ms.Tensor(mask),
                position_ids=ms.Tensor(positions)).last_hidden_state.asnumpy()
    valid = mask.astype(bool)
    assert np.max(np.abs(got[valid] - expected[valid])) < 1e-5
