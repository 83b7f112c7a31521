"""MindSpore Gemma 3 (text), written as its difference from Llama, like transformers 5.23's `modular_gemma3.py`.

Model type `gemma3_text` (`Gemma3TextConfig`; the multimodal `gemma3` is not covered). What differs from Llama:
- the token embeddings are multiplied by `sqrt(hidden_size)` (in the model dtype, as transformers rounds it);
- every RMSNorm scales by `(1 + weight)` (weights start at zero; the kit's `RMSNorm(unit_offset=True)`), and each
  layer has four: around the attention (`input_layernorm`, `post_attention_layernorm`, applied to its output before
  the residual) and around the MLP (`pre_feedforward_layernorm`, `post_feedforward_layernorm`);
- queries and keys are RMS-normalized per head (`q_norm` / `k_norm`, as Qwen3) and the scores are scaled by
  `query_pre_attn_scalar ** -0.5` instead of `head_dim ** -0.5`;
- `layer_types` alternates sliding-window and full-attention layers, each type with its own RoPE
  (`rope_parameters[layer_type]`: a local base frequency of 10k for the sliding layers, the global one for the full
  layers, any rope_type Llama supports);
- optional tanh soft-capping of the logits (`final_logit_softcapping`); the MLP activation is `hidden_activation`
  ("gelu_pytorch_tanh").
`attn_logit_softcapping` is read but not applied, exactly as in transformers 5.23, whose Gemma 3 attention does not
pass it on (Gemma 3 replaced Gemma 2's score soft-capping by the q/k norms; released configs set it to null): a
config that sets it gives transformers' numbers, and a warning says it is ignored.
Everything else (grouped-query attention, masks, heads, tuple outputs) is Llama's; see
`mindone_ft.models.llama.modeling_llama`. Bidirectional attention (`use_bidirectional_attention`) is not supported.
"""

import logging
from typing import Optional

import mindspore as ms
from mindspore import Tensor, nn
from transformers import Gemma3TextConfig

from ...modeling_layers import Embedding, RMSNorm
from ..llama.modeling_llama import (
    FULL_ATTENTION,
    SLIDING_ATTENTION,
    LlamaAttention,
    LlamaDecoderLayer,
    LlamaForCausalLM,
    LlamaForSequenceClassification,
    LlamaMLP,
    LlamaModel,
    LlamaPreTrainedModel,
    LlamaRotaryEmbedding,
)
from ..qwen3.modeling_qwen3 import Qwen3Attention

logger = logging.getLogger(__name__)

__all__ = [
    "Gemma3PreTrainedModel",
    "Gemma3TextModel",
    "Gemma3ForCausalLM",
    "Gemma3TextForSequenceClassification",
]


class Gemma3RMSNorm(RMSNorm):
    """RMSNorm scaling by `(1 + weight)`, computed in float32 before casting back (Gemma's convention)."""

    def __init__(self, hidden_size: int, eps: float = 1e-6):
        super().__init__(hidden_size, eps=eps, unit_offset=True)


class Gemma3TextScaledWordEmbedding(Embedding):
    """Token embeddings multiplied by `embed_scale` (`sqrt(hidden_size)`), cast to the weight's dtype first as in
    transformers (in bfloat16, `sqrt(3072)` = 55.43 becomes 55.5)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: Optional[int] = None,
                 embed_scale: Optional[float] = None):
        super().__init__(num_embeddings, embedding_dim, padding_idx=padding_idx)
        self.embed_scale = Tensor(embedding_dim**0.5 if embed_scale is None else embed_scale, ms.float32)

    def construct(self, ids):
        return super().construct(ids) * self.embed_scale.astype(self.weight.dtype)


class Gemma3MLP(LlamaMLP):
    """Llama's gated MLP (no biases) with the activation named by `config.hidden_activation`."""

    activation_config_name = "hidden_activation"


class Gemma3RotaryEmbedding(nn.Cell):
    """One rotary embedding per layer type, from `config.rope_parameters[layer_type]`: returns
    `((cos, sin) of the full-attention layers, (cos, sin) of the sliding-window layers)`, None for a type no layer
    has."""

    def __init__(self, config: Gemma3TextConfig):
        super().__init__()
        types = set(config.layer_types)
        self.full_attention = LlamaRotaryEmbedding(config, FULL_ATTENTION) if FULL_ATTENTION in types else None
        self.sliding_attention = LlamaRotaryEmbedding(config, SLIDING_ATTENTION) if SLIDING_ATTENTION in types else None

    def construct(self, position_ids, dtype):
        full = None if self.full_attention is None else self.full_attention(position_ids, dtype)
        sliding = None if self.sliding_attention is None else self.sliding_attention(position_ids, dtype)
        return full, sliding


class Gemma3Attention(LlamaAttention):
    """Llama's attention with Qwen3's per-head q/k norms (here `(1 + weight)` RMSNorms) and scores scaled by
    `query_pre_attn_scalar ** -0.5`."""

    _project = Qwen3Attention._project

    def __init__(self, config: Gemma3TextConfig, layer_idx: int):
        super().__init__(config, layer_idx)
        self.scaling = config.query_pre_attn_scalar**-0.5
        self.q_norm = Gemma3RMSNorm(self.head_dim, eps=config.rms_norm_eps)
        self.k_norm = Gemma3RMSNorm(self.head_dim, eps=config.rms_norm_eps)


class Gemma3DecoderLayer(LlamaDecoderLayer):
    """Sandwich-norm layer: `x + post_attention_layernorm(self_attn(input_layernorm(x)))`, then
    `x + post_feedforward_layernorm(mlp(pre_feedforward_layernorm(x)))`."""

    attention_class = Gemma3Attention
    mlp_class = Gemma3MLP
    norm_class = Gemma3RMSNorm

    def __init__(self, config: Gemma3TextConfig, layer_idx: int):
        super().__init__(config, layer_idx)
        self.pre_feedforward_layernorm = Gemma3RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_feedforward_layernorm = Gemma3RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def construct(self, hidden_states, cos, sin, attention_mask=None, past_key_value=None, cache_position=None,
                  output_attentions=False):
        residual = hidden_states
        hidden_states, probs, present = self.self_attn(
            self.input_layernorm(hidden_states), cos, sin, attention_mask, past_key_value, cache_position,
            output_attentions,
        )
        hidden_states = residual + self.post_attention_layernorm(hidden_states)
        residual = hidden_states
        hidden_states = self.post_feedforward_layernorm(self.mlp(self.pre_feedforward_layernorm(hidden_states)))
        return residual + hidden_states, probs, present


class Gemma3PreTrainedModel(LlamaPreTrainedModel):
    """Base class of the Gemma 3 text models: `Gemma3TextConfig`; the heads are Llama's, on a `Gemma3TextModel`."""

    config_class = Gemma3TextConfig

    def _add_base_model(self, config: Gemma3TextConfig) -> None:
        setattr(self, self.base_model_prefix, Gemma3TextModel(config))


class Gemma3TextModel(Gemma3PreTrainedModel, LlamaModel):
    """The bare Gemma 3 text decoder; `config.layer_types` says which layers use the sliding window."""

    decoder_layer_class = Gemma3DecoderLayer
    embedding_class = Gemma3TextScaledWordEmbedding
    norm_class = Gemma3RMSNorm
    rotary_class = Gemma3RotaryEmbedding

    def __init__(self, config: Gemma3TextConfig):
        if config.use_bidirectional_attention:
            raise NotImplementedError("use_bidirectional_attention=True is not supported by mindone_ft's Gemma 3 "
                                      "(causal attention only); remove it from the config.")
        if config.attn_logit_softcapping is not None:
            logger.warning("attn_logit_softcapping=%s is ignored, as by transformers' Gemma 3 (only Gemma 2 "
                           "soft-caps attention scores).", config.attn_logit_softcapping)
        super().__init__(config)

    def _layer_types(self, config):
        return tuple(config.layer_types)

    def _rotary_embeddings(self, position_ids, dtype):
        return self.rotary_emb(position_ids, dtype)


class Gemma3ForCausalLM(Gemma3PreTrainedModel, LlamaForCausalLM):
    """Gemma 3 with a language modeling head (`lm_head`, tied to the embeddings by default), its logits
    soft-capped by `config.final_logit_softcapping` when set."""


class Gemma3TextForSequenceClassification(Gemma3PreTrainedModel, LlamaForSequenceClassification):
    pass
