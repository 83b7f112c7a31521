"""RoBERTa against transformers: the parity harness, plus the pieces it does not isolate (fairseq position ids,
the dropout rates of the heads, what is rejected)."""

import mindspore as ms
import numpy as np
import pytest
import torch
import transformers
from transformers import RobertaConfig
from transformers.models.roberta.modeling_roberta import RobertaEmbeddings as TorchRobertaEmbeddings

import mindone_ft
from mindone_ft.modeling_layers import position_ids_from_input_ids, position_ids_from_inputs_embeds
from model_parity import ModelFamily, ModelParityTests, perturbed_torch_model, to_ms, to_torch

SEQ_LENGTH = 9
PAD = 1  # RoBERTa's <pad>: positions start at PAD + 1


# A tiny RoBERTa like the real ones (pad_token_id=1, type_vocab_size=1), with just enough positions for the longest
# row (PAD + SEQ_LENGTH + 1: an off-by-one in the position ids indexes past the table). `hidden_act` is not "gelu" so
# that the LM head's hard-coded exact GELU is checked, and `classifier_dropout` is set so that the heads' dropout
# rates can be told apart. XLM-RoBERTa's test starts from the same values.
TINY_VALUES = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    hidden_act="gelu_new",
    max_position_embeddings=PAD + SEQ_LENGTH + 1,
    type_vocab_size=1,
    pad_token_id=PAD,
    bos_token_id=0,
    eos_token_id=2,
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
    classifier_dropout=0.2,
)


def tiny_config(config_class: type = RobertaConfig, **overrides) -> transformers.PretrainedConfig:
    config = config_class(**{**TINY_VALUES, **overrides})
    config._attn_implementation = "eager"
    return config


class TestRobertaParity(ModelParityTests):
    family = ModelFamily(
        "roberta",
        tiny_config,
        heads=("RobertaModel", "RobertaForSequenceClassification", "RobertaForTokenClassification",
               "RobertaForQuestionAnswering", "RobertaForMaskedLM", "RobertaForMultipleChoice"),
        input_names=("input_ids", "attention_mask"),  # one token type: segments are not meaningful
        seq_length=SEQ_LENGTH,
    )


def test_position_ids_match_transformers_with_padding_inside_the_batch():
    """Right padding in the middle row, left padding, a pad token between real ones, no padding."""
    input_ids = np.array([
        [0, 5, 7, 9, 2, 8, 6],
        [0, 5, 7, PAD, PAD, PAD, PAD],
        [PAD, PAD, 0, 5, 2, 8, 6],
        [0, 5, PAD, 9, 2, PAD, 6],
    ], np.int64)
    expected = TorchRobertaEmbeddings.create_position_ids_from_input_ids(torch.from_numpy(input_ids), PAD)
    got = position_ids_from_input_ids(ms.Tensor(input_ids), PAD)
    np.testing.assert_array_equal(got.asnumpy(), expected.numpy())

    embeds = torch.zeros(4, 7, 3)
    expected = TorchRobertaEmbeddings.create_position_ids_from_inputs_embeds(embeds, PAD)
    got = position_ids_from_inputs_embeds(ms.Tensor(embeds.numpy()), PAD)
    np.testing.assert_array_equal(got.asnumpy(), expected.numpy())


def test_inputs_embeds_forward_matches_transformers(tmp_path):
    """From `inputs_embeds` the positions are sequential even at padding, as in transformers."""
    config = tiny_config()
    torch_model = perturbed_torch_model(TestRobertaParity.family, "RobertaModel", config)
    torch_model.save_pretrained(tmp_path)
    ms_model = mindone_ft.RobertaModel.from_pretrained(tmp_path)
    rng = np.random.default_rng(0)
    embeds = rng.normal(size=(2, SEQ_LENGTH, config.hidden_size)).astype(np.float32)
    mask = np.ones((2, SEQ_LENGTH), np.int64)
    mask[1, 4:] = 0
    inputs = {"inputs_embeds": embeds, "attention_mask": mask}
    with torch.no_grad():
        expected = torch_model(**to_torch(inputs)).last_hidden_state.numpy()
    got = ms_model(**to_ms(inputs)).last_hidden_state.asnumpy()
    assert np.max(np.abs(got - expected)[mask.astype(bool)]) < 1e-5


def test_heads_drop_out_at_transformers_rates():
    """RoBERTa's multiple choice head ignores `classifier_dropout`; its other heads use it."""
    config = tiny_config()
    assert mindone_ft.RobertaForMultipleChoice(config).dropout.p == config.hidden_dropout_prob
    assert mindone_ft.RobertaForTokenClassification(config).dropout.p == config.classifier_dropout
    assert mindone_ft.RobertaForSequenceClassification(config).classifier.dropout.p == config.classifier_dropout


def test_mlm_decoder_is_tied_and_pretraining_auto_class_is_the_mlm(tmp_path):
    model = mindone_ft.RobertaForMaskedLM(tiny_config())
    assert model.lm_head.decoder.weight is model.roberta.embeddings.word_embeddings.weight
    model.save_pretrained(tmp_path)
    assert type(mindone_ft.AutoModelForPreTraining.from_pretrained(tmp_path)) is mindone_ft.RobertaForMaskedLM


@pytest.mark.parametrize("option", ["is_decoder", "add_cross_attention"])
def test_decoder_use_is_rejected(option):
    with pytest.raises(ValueError, match="encoder only"):
        mindone_ft.RobertaForMaskedLM(tiny_config(**{option: True}))


def test_config_of_another_family_is_rejected():
    with pytest.raises(TypeError, match="RobertaConfig"):
        mindone_ft.RobertaModel(transformers.BertConfig())
