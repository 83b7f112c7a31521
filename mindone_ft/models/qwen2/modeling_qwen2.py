"""MindSpore Qwen2 (Qwen2 / Qwen2.5), written as its difference from Llama, like transformers 5.23's
`modular_qwen2.py`.

What differs from Llama: the query/key/value projections always have biases and the output projection never has
one (there is no `attention_bias` flag), the MLP has no biases, and `config.layer_types` can make layers attend within
`config.sliding_window` (with `use_sliding_window`, the layers from `max_window_layers` on). Everything else (names,
RoPE, grouped-query attention, heads, tuple outputs) is Llama's; see `mindone_ft.models.llama.modeling_llama`.
"""

from typing import Tuple

from transformers import Qwen2Config

from ..llama.modeling_llama import (
    LlamaAttention,
    LlamaDecoderLayer,
    LlamaForCausalLM,
    LlamaForQuestionAnswering,
    LlamaForSequenceClassification,
    LlamaForTokenClassification,
    LlamaModel,
    LlamaPreTrainedModel,
)

__all__ = [
    "Qwen2PreTrainedModel",
    "Qwen2Model",
    "Qwen2ForCausalLM",
    "Qwen2ForSequenceClassification",
    "Qwen2ForTokenClassification",
    "Qwen2ForQuestionAnswering",
]


class Qwen2Attention(LlamaAttention):
    """Llama's attention with biases on the query/key/value projections and none on the output projection."""

    def _projection_biases(self, config) -> Tuple[bool, bool]:
        return True, False  # biases on q/k/v, none on o_proj


class Qwen2DecoderLayer(LlamaDecoderLayer):
    attention_class = Qwen2Attention


class Qwen2PreTrainedModel(LlamaPreTrainedModel):
    """Base class of the Qwen2 models: `Qwen2Config`; the heads are Llama's, on a `Qwen2Model`."""

    config_class = Qwen2Config

    def _add_base_model(self, config: Qwen2Config) -> None:
        setattr(self, self.base_model_prefix, Qwen2Model(config))


class Qwen2Model(Qwen2PreTrainedModel, LlamaModel):
    """The bare Qwen2 decoder; `config.layer_types` says which layers use the sliding window."""

    decoder_layer_class = Qwen2DecoderLayer

    def _layer_types(self, config) -> Tuple[str, ...]:
        return tuple(config.layer_types)


class Qwen2ForCausalLM(Qwen2PreTrainedModel, LlamaForCausalLM):
    pass


class Qwen2ForSequenceClassification(Qwen2PreTrainedModel, LlamaForSequenceClassification):
    pass


class Qwen2ForTokenClassification(Qwen2PreTrainedModel, LlamaForTokenClassification):
    pass


class Qwen2ForQuestionAnswering(Qwen2PreTrainedModel, LlamaForQuestionAnswering):
    pass
