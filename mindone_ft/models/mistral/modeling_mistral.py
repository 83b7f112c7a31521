"""MindSpore Mistral, written as its difference from Llama, like transformers 5.23's `modular_mistral.py`.

What differs from Llama: every layer attends within `config.sliding_window` tokens (the query and the
`sliding_window - 1` before it) when it is set, there are no bias flags (no biases anywhere), and the
question-answering head keeps its base model under `model`. Everything else is Llama's; see
`mindone_ft.models.llama.modeling_llama`.
"""

from typing import Tuple

from transformers import MistralConfig

from ..llama.modeling_llama import (
    FULL_ATTENTION,
    SLIDING_ATTENTION,
    LlamaForCausalLM,
    LlamaForQuestionAnswering,
    LlamaForSequenceClassification,
    LlamaForTokenClassification,
    LlamaModel,
    LlamaPreTrainedModel,
)

__all__ = [
    "MistralPreTrainedModel",
    "MistralModel",
    "MistralForCausalLM",
    "MistralForSequenceClassification",
    "MistralForTokenClassification",
    "MistralForQuestionAnswering",
]


class MistralPreTrainedModel(LlamaPreTrainedModel):
    """Base class of the Mistral models: `MistralConfig`; the heads are Llama's, on a `MistralModel`."""

    config_class = MistralConfig

    def _add_base_model(self, config: MistralConfig) -> None:
        setattr(self, self.base_model_prefix, MistralModel(config))


class MistralModel(MistralPreTrainedModel, LlamaModel):
    """The bare Mistral decoder: all layers use the sliding window when `config.sliding_window` is set (like
    transformers, a `layer_types` in the config is ignored)."""

    def _layer_types(self, config) -> Tuple[str, ...]:
        layer_type = FULL_ATTENTION if config.sliding_window is None else SLIDING_ATTENTION
        return (layer_type,) * config.num_hidden_layers


class MistralForCausalLM(MistralPreTrainedModel, LlamaForCausalLM):
    pass


class MistralForSequenceClassification(MistralPreTrainedModel, LlamaForSequenceClassification):
    pass


class MistralForTokenClassification(MistralPreTrainedModel, LlamaForTokenClassification):
    pass


class MistralForQuestionAnswering(MistralPreTrainedModel, LlamaForQuestionAnswering):
    base_model_prefix = "model"  # transformers' Llama keeps the older "transformer", Mistral does not
