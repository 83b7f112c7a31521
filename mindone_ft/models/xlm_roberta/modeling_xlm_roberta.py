"""MindSpore XLM-RoBERTa: RoBERTa with `XLMRobertaConfig`, as transformers' `modular_xlm_roberta.py` writes it.

The architecture, the checkpoint names (`roberta.` prefix, `lm_head.`) and the outputs are RoBERTa's; only the
configuration class differs (XLM-R checkpoints have a 250k-token vocabulary). Each class is its RoBERTa class with
`XLMRobertaPreTrainedModel` in front, which sets the config class and builds `XLMRobertaModel` as the base model.
"""

from transformers import XLMRobertaConfig

from ..roberta.modeling_roberta import (
    RobertaForMaskedLM,
    RobertaForMultipleChoice,
    RobertaForQuestionAnswering,
    RobertaForSequenceClassification,
    RobertaForTokenClassification,
    RobertaModel,
    RobertaPreTrainedModel,
)

__all__ = [
    "XLMRobertaPreTrainedModel",
    "XLMRobertaModel",
    "XLMRobertaForMaskedLM",
    "XLMRobertaForSequenceClassification",
    "XLMRobertaForMultipleChoice",
    "XLMRobertaForTokenClassification",
    "XLMRobertaForQuestionAnswering",
]


class XLMRobertaPreTrainedModel(RobertaPreTrainedModel):
    """Base class of the XLM-RoBERTa models: `XLMRobertaConfig`, RoBERTa's "roberta" prefix and initialization."""

    config_class = XLMRobertaConfig
    base_model_prefix = "roberta"

    def _add_base_model(self, config: XLMRobertaConfig, add_pooling_layer: bool = True) -> None:
        self.roberta = XLMRobertaModel(config, add_pooling_layer=add_pooling_layer)


class XLMRobertaModel(XLMRobertaPreTrainedModel, RobertaModel):
    """The bare XLM-RoBERTa encoder; see `RobertaModel`."""


class XLMRobertaForMaskedLM(XLMRobertaPreTrainedModel, RobertaForMaskedLM):
    """XLM-RoBERTa with the masked language modeling head; see `RobertaForMaskedLM`."""


class XLMRobertaForSequenceClassification(XLMRobertaPreTrainedModel, RobertaForSequenceClassification):
    """XLM-RoBERTa with a first-token classification / regression head; see `RobertaForSequenceClassification`."""


class XLMRobertaForMultipleChoice(XLMRobertaPreTrainedModel, RobertaForMultipleChoice):
    """XLM-RoBERTa with a multiple choice head; see `RobertaForMultipleChoice`."""


class XLMRobertaForTokenClassification(XLMRobertaPreTrainedModel, RobertaForTokenClassification):
    """XLM-RoBERTa with a per-token classification head; see `RobertaForTokenClassification`."""


class XLMRobertaForQuestionAnswering(XLMRobertaPreTrainedModel, RobertaForQuestionAnswering):
    """XLM-RoBERTa with a span extraction head; see `RobertaForQuestionAnswering`."""
