"""XLM-RoBERTa against transformers: the parity harness on RoBERTa's code with `XLMRobertaConfig`.

RoBERTa's test file covers one token type; this one gives the tiny model two, with segments, so that the same code
is also checked with `token_type_ids`.
"""

import pytest
from transformers import RobertaConfig, XLMRobertaConfig

import mindone_ft
import test_modeling_roberta as roberta_tests  # a module: its test class is not collected here
from model_parity import ModelFamily, ModelParityTests


def tiny_config(**overrides) -> XLMRobertaConfig:
    """RoBERTa's tiny config as an `XLMRobertaConfig`, with two token types and the default GELU."""
    values = dict(type_vocab_size=2, hidden_act="gelu", classifier_dropout=None)
    return roberta_tests.tiny_config(XLMRobertaConfig, **{**values, **overrides})


class TestXLMRobertaParity(ModelParityTests):
    family = ModelFamily(
        "xlm-roberta",
        tiny_config,
        heads=("XLMRobertaModel", "XLMRobertaForSequenceClassification", "XLMRobertaForTokenClassification",
               "XLMRobertaForQuestionAnswering", "XLMRobertaForMaskedLM", "XLMRobertaForMultipleChoice"),
        input_names=("input_ids", "attention_mask", "token_type_ids"),
        seq_length=roberta_tests.SEQ_LENGTH,
    )


@pytest.mark.parametrize("name", TestXLMRobertaParity.family.heads)
def test_heads_are_roberta_with_the_xlm_roberta_config_and_base_model(name):
    cls = getattr(mindone_ft, name)
    assert issubclass(cls, getattr(mindone_ft, name.replace("XLMRoberta", "Roberta")))
    model = cls(tiny_config())
    assert model.base_model_prefix == "roberta"
    assert type(model.base_model) is mindone_ft.XLMRobertaModel
    with pytest.raises(TypeError, match="XLMRobertaConfig"):
        cls(RobertaConfig(vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=4))
