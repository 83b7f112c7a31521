"""MindSpore Qwen3, written as its difference from Llama and Qwen2, like transformers 5.23's `modular_qwen3.py`.

What differs from Qwen2: the queries and keys are RMS-normalized per head (`q_norm` / `k_norm` over `head_dim`,
before the rotary embedding), `head_dim` is a config field of its own (128 in the released models, not
`hidden_size // num_attention_heads`), and the projection biases follow `config.attention_bias` like Llama's (none in
the released models). `layer_types` and the sliding window are Qwen2's. Everything else is Llama's; see
`mindone_ft.models.llama.modeling_llama`.
"""

from transformers import Qwen3Config

from ..llama.modeling_llama import (
    LlamaAttention,
    LlamaDecoderLayer,
    LlamaForCausalLM,
    LlamaForQuestionAnswering,
    LlamaForSequenceClassification,
    LlamaForTokenClassification,
    LlamaPreTrainedModel,
    LlamaRMSNorm,
)
from ..qwen2.modeling_qwen2 import Qwen2Model

__all__ = [
    "Qwen3PreTrainedModel",
    "Qwen3Model",
    "Qwen3ForCausalLM",
    "Qwen3ForSequenceClassification",
    "Qwen3ForTokenClassification",
    "Qwen3ForQuestionAnswering",
]

Qwen3RMSNorm = LlamaRMSNorm


class Qwen3Attention(LlamaAttention):
    """Llama's attention with the queries and keys RMS-normalized over each head's `head_dim` (one weight shared by
    the heads) before the rotary embedding."""

    def __init__(self, config: Qwen3Config, layer_idx: int):
        super().__init__(config, layer_idx)
        self.q_norm = Qwen3RMSNorm(self.head_dim, eps=config.rms_norm_eps)
        self.k_norm = Qwen3RMSNorm(self.head_dim, eps=config.rms_norm_eps)

    def _project(self, hidden_states):
        query = self.q_norm(self._heads(self.q_proj(hidden_states))).swapaxes(1, 2)
        key = self.k_norm(self._heads(self.k_proj(hidden_states))).swapaxes(1, 2)
        value = self._heads(self.v_proj(hidden_states)).swapaxes(1, 2)
        return query, key, value


class Qwen3DecoderLayer(LlamaDecoderLayer):
    attention_class = Qwen3Attention


class Qwen3PreTrainedModel(LlamaPreTrainedModel):
    """Base class of the Qwen3 models: `Qwen3Config`; the heads are Llama's, on a `Qwen3Model`."""

    config_class = Qwen3Config

    def _add_base_model(self, config: Qwen3Config) -> None:
        setattr(self, self.base_model_prefix, Qwen3Model(config))


class Qwen3Model(Qwen3PreTrainedModel, Qwen2Model):
    """The bare Qwen3 decoder; `config.layer_types` says which layers use the sliding window (as Qwen2)."""

    decoder_layer_class = Qwen3DecoderLayer


class Qwen3ForCausalLM(Qwen3PreTrainedModel, LlamaForCausalLM):
    pass


class Qwen3ForSequenceClassification(Qwen3PreTrainedModel, LlamaForSequenceClassification):
    pass


class Qwen3ForTokenClassification(Qwen3PreTrainedModel, LlamaForTokenClassification):
    pass


class Qwen3ForQuestionAnswering(Qwen3PreTrainedModel, LlamaForQuestionAnswering):
    pass
