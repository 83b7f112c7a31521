"""ALBERT against Hugging Face Transformers (PyTorch): the parity harness, plus the layer sharing ALBERT is about."""

import mindspore as ms
import numpy as np
import transformers
from transformers import AlbertConfig

import mindone_ft
from model_parity import ModelFamily, ModelParityTests
from mindone_ft.models.albert.modeling_albert import layer_group_indices


def tiny_config(**overrides) -> AlbertConfig:
    """A tiny random ALBERT that exercises what is ALBERT's own: embeddings narrower than the hidden size, 3 layers
    in 2 shared groups (transformers' float division maps the layers to groups 0, 0, 1: an uneven split) and 2
    inner layers per group, so the hidden states and attentions are one per inner layer run (6)."""
    values = dict(
        vocab_size=99,
        embedding_size=16,
        hidden_size=32,
        num_hidden_layers=3,
        num_hidden_groups=2,
        inner_group_num=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
        type_vocab_size=2,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        classifier_dropout_prob=0.1,
    )
    values.update(overrides)
    config = AlbertConfig(**values)
    config._attn_implementation = "eager"
    return config


def pretraining_labels(config, rng, input_ids):
    """Masked LM targets (-100 = ignored, at least one target per row) and ALBERT's `sentence_order_label`."""
    labels = np.where(rng.random(input_ids.shape) < 0.4, rng.integers(0, config.vocab_size, input_ids.shape), -100)
    labels[:, 1] = rng.integers(0, config.vocab_size, input_ids.shape[0])
    return {"labels": labels, "sentence_order_label": rng.integers(0, 2, input_ids.shape[0])}


class TestAlbertParity(ModelParityTests):
    family = ModelFamily(
        "albert",
        tiny_config,
        heads=("AlbertModel", "AlbertForPreTraining", "AlbertForMaskedLM", "AlbertForSequenceClassification",
               "AlbertForTokenClassification", "AlbertForQuestionAnswering", "AlbertForMultipleChoice"),
        labels={"AlbertForPreTraining": pretraining_labels},
    )


def test_layer_groups_are_shared_like_transformers():
    """One set of cells per group (not per layer): the same parameters and count as transformers, and layers run
    the groups transformers' formula picks."""
    config = tiny_config()
    model = mindone_ft.AlbertModel(config)
    torch_model = transformers.AlbertModel(config)
    encoder = model.encoder
    assert len(encoder.albert_layer_groups) == config.num_hidden_groups
    assert all(len(group.albert_layers) == config.inner_group_num for group in encoder.albert_layer_groups)
    assert encoder.group_indices == (0, 0, 1)
    assert layer_group_indices(tiny_config(num_hidden_layers=4)) == (0, 0, 1, 1)
    assert set(model.state_dict_numpy()) == set(torch_model.state_dict())
    assert model.num_parameters() == torch_model.num_parameters()
    assert len(model.trainable_params()) == len(list(torch_model.parameters()))


def test_each_layer_reruns_its_group(pynative):
    """Layers 0 and 1 run group 0's cells and layer 2 group 1's: applying the groups in that order to the mapped
    embeddings reproduces every layer's output (each group run adds `inner_group_num` hidden states). PyNative
    only: the harness covers GRAPH_MODE, and this needs no extra graphs compiled."""
    config = tiny_config()
    model = mindone_ft.AlbertModel(config)
    model.set_train(False)
    out = model(ms.Tensor(np.random.default_rng(0).integers(1, 99, (2, 7))), output_hidden_states=True)
    assert len(out.hidden_states) == config.num_hidden_layers * config.inner_group_num + 1
    hidden = out.hidden_states[0]
    for layer, group_idx in enumerate((0, 0, 1)):
        hidden = model.encoder.albert_layer_groups[group_idx](hidden)[0]
        expected = out.hidden_states[(layer + 1) * config.inner_group_num]
        assert np.allclose(hidden.asnumpy(), expected.asnumpy(), atol=1e-6), layer
    assert np.allclose(hidden.asnumpy(), out.last_hidden_state.asnumpy(), atol=1e-6)


def test_mlm_decoder_is_tied_to_word_embeddings():
    model = mindone_ft.AlbertForMaskedLM(tiny_config())
    assert model.predictions.decoder.weight is model.albert.embeddings.word_embeddings.weight
    assert tuple(model.predictions.decoder.weight.shape) == (99, 16)  # vocab x embedding_size, not hidden_size
    assert model.num_parameters() == transformers.AlbertForMaskedLM(tiny_config()).num_parameters()


def test_model_without_pooler_from_inputs_embeds(pynative, tmp_path):
    """`add_pooling_layer=False` drops `pooler_output`, and `inputs_embeds` are `embedding_size` wide (mapped up by
    the encoder), as in transformers."""
    import torch

    config = tiny_config()
    torch_model = transformers.AlbertModel(config, add_pooling_layer=False).eval()
    torch_model.save_pretrained(tmp_path)
    model = mindone_ft.AlbertModel.from_pretrained(tmp_path, add_pooling_layer=False)
    embeds = np.random.default_rng(0).normal(size=(2, 7, config.embedding_size)).astype(np.float32)
    with torch.no_grad():
        expected = torch_model(inputs_embeds=torch.from_numpy(embeds))
    out = model(inputs_embeds=ms.Tensor(embeds))
    assert list(out.keys()) == list(expected.keys()) == ["last_hidden_state"]
    assert np.max(np.abs(out.last_hidden_state.asnumpy() - expected.last_hidden_state.numpy())) < 1e-5
