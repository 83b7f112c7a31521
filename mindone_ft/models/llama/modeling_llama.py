"""MindSpore Llama, mirroring transformers 5.23's `modeling_llama.py` (eager attention, key/value cache, generate()).

Module and parameter names are the Hugging Face ones (`model.layers.0.self_attn.q_proj.weight`, `lm_head.weight`,
...), so checkpoints map 1:1 in both directions. Every `construct` returns a tuple in transformers'
`return_dict=False` layout; `MSPreTrainedModel.__call__` turns it into the `ModelOutput` users see.

What a decoder adds to the encoder families: causal attention (combined with the padding mask, so left- and
right-padded batches both work), grouped-query attention (`num_key_value_heads` key/value heads shared by the query
heads of their group), RoPE with every `rope_parameters["rope_type"]` of `mindone_ft.modeling_rope_utils`, a gated
SiLU MLP, pre-norm layers with RMSNorm, and the causal-LM head (shifted loss, `logits_to_keep`). Mistral, Qwen2,
Qwen3 and Gemma 3 subclass these pieces and override only what differs (the `*_class` attributes say which piece a
family swaps; GPT-2 reuses the heads); `layer_types` ("full_attention" / "sliding_attention") says which layers
attend within `config.sliding_window`.

Positions are `position_ids` when given, else the token's index counting the cached ones, like transformers' forward
(for left-padded prompts, `generate()` derives them from the attention mask). With `use_cache` (outside training)
the models return `past_key_values`, a `mindone_ft.cache_utils` cache; inside `construct` a cache is a tuple of
per-layer `(key, value)` pairs, growing (`DynamicCache`) or of fixed capacity written at `cache_position`
(`StaticCache`, what `generate()` uses so that one compiled graph serves every decoding step).
"""

from typing import Optional, Tuple

from mindspore import Tensor, nn
from transformers import LlamaConfig

from ...modeling_layers import (
    CachedAttention,
    Dropout,
    Embedding,
    FusedAttention,
    GradientCheckpointingLayer,
    Linear,
    RMSNorm,
    Softmax,
    apply_rotary_pos_emb,
    causal_attention_mask,
    causal_lm_outputs,
    checkpointed_call,
    cross_entropy,
    decoder_attention,
    get_activation,
    last_non_pad_token_logits,
    question_answering_loss,
    rotary_cos_sin,
    sequence_classification_outputs,
    slice_logits_to_keep,
    soft_cap,
    update_key_value_cache,
    with_cache,
    with_extras,
)
from ...cache_utils import decoder_positions
from ...modeling_outputs import (
    BaseModelOutputWithPast,
    CausalLMOutputWithPast,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutputWithPast,
    TokenClassifierOutput,
)
from ...modeling_rope_utils import ROPE_INIT_FUNCTIONS, dynamic_ntk_inv_freq, rope_dim, rope_parameters
from ...generation import GenerationMixin
from ...modeling_utils import MSPreTrainedModel
from ..bert.modeling_bert import BertForSequenceClassification

__all__ = [
    "LlamaPreTrainedModel",
    "LlamaModel",
    "LlamaForCausalLM",
    "LlamaForSequenceClassification",
    "LlamaForTokenClassification",
    "LlamaForQuestionAnswering",
]

FULL_ATTENTION, SLIDING_ATTENTION = "full_attention", "sliding_attention"  # `config.layer_types` entries

LlamaRMSNorm = RMSNorm  # transformers' name for the kit's RMSNorm (`weight * x / sqrt(mean(x^2) + eps)`)


def head_dim_of(config) -> int:
    """`config.head_dim` when set (it may differ from `hidden_size // num_attention_heads`), else that quotient."""
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


class LlamaRotaryEmbedding(nn.Cell):
    """`(cos, sin)` for the positions, from `config.rope_parameters` (`rope_type` "default", "linear", "dynamic",
    "yarn" or "llama3"). The inverse frequencies are constants, not parameters, like transformers' non-persistent
    buffers; dynamic NTK recomputes them in the graph for sequences longer than `max_position_embeddings`. With
    `layer_type`, from `config.rope_parameters[layer_type]` (Gemma 3 has one RoPE per layer type)."""

    def __init__(self, config: LlamaConfig, layer_type: Optional[str] = None):
        super().__init__()
        params = rope_parameters(config, layer_type)
        self.rope_type = params.get("rope_type", "default")
        if self.rope_type not in ROPE_INIT_FUNCTIONS:
            raise NotImplementedError(
                f"rope_type={self.rope_type!r} is not supported by mindone_ft; supported rope types: "
                f"{sorted(ROPE_INIT_FUNCTIONS)}."
            )
        if rope_dim(config, layer_type) != head_dim_of(config):
            raise NotImplementedError(
                f"partial_rotary_factor={params.get('partial_rotary_factor')} is not supported: Llama-style models "
                "rotate the whole head (transformers' Llama fails on it too). Remove it from rope_parameters."
            )
        inv_freq, self.attention_scaling = ROPE_INIT_FUNCTIONS[self.rope_type](config, layer_type)
        self.inv_freq = Tensor(inv_freq)
        self.dynamic = "dynamic" in self.rope_type
        if self.dynamic:  # plain values: the graph cannot read the config's dict
            self.rope_theta, self.factor = float(params["rope_theta"]), float(params["factor"])
            self.dim, self.max_position_embeddings = rope_dim(config, layer_type), config.max_position_embeddings

    def construct(self, position_ids, dtype):
        inv_freq = self.inv_freq
        if self.dynamic:
            inv_freq = dynamic_ntk_inv_freq(position_ids, inv_freq, self.rope_theta, self.factor, self.dim,
                                            self.max_position_embeddings)
        return rotary_cos_sin(position_ids, inv_freq, dtype, self.attention_scaling)


class LlamaMLP(nn.Cell):
    """Gated MLP: `down_proj(act(gate_proj(x)) * up_proj(x))`, biases when `config.mlp_bias`."""

    activation_config_name = "hidden_act"  # the config attribute naming the activation (Gemma: hidden_activation)

    def __init__(self, config: LlamaConfig):
        super().__init__()
        bias = getattr(config, "mlp_bias", False)  # Mistral and Qwen configs have none: no biases
        self.hidden_size = config.hidden_size
        self.intermediate_size = config.intermediate_size
        self.gate_proj = Linear(self.hidden_size, self.intermediate_size, has_bias=bias)
        self.up_proj = Linear(self.hidden_size, self.intermediate_size, has_bias=bias)
        self.down_proj = Linear(self.intermediate_size, self.hidden_size, has_bias=bias)
        self.act_fn = get_activation(getattr(config, self.activation_config_name))

    def construct(self, x):
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class LlamaAttention(nn.Cell):
    """Multi-head attention with `num_key_value_heads` key/value heads (grouped-query attention: each serves
    `num_attention_heads // num_key_value_heads` query heads), rotary query/key and `head_dim` per head. Causality,
    padding and any sliding window come from the mask it is given (see `LlamaModel`). Returns the output, the
    attention probabilities and the layer's key/value cache after this step (see `update_key_value_cache`)."""

    def __init__(self, config: LlamaConfig, layer_idx: int):
        super().__init__()
        if config.num_attention_heads % config.num_key_value_heads != 0:
            raise ValueError(
                f"num_attention_heads ({config.num_attention_heads}) must be a multiple of num_key_value_heads "
                f"({config.num_key_value_heads})."
            )
        self.layer_idx = layer_idx
        self.head_dim = head_dim_of(config)
        self.num_heads = config.num_attention_heads
        self.num_key_value_heads = config.num_key_value_heads
        self.num_key_value_groups = config.num_attention_heads // config.num_key_value_heads
        self.scaling = self.head_dim**-0.5
        qkv_bias, o_bias = self._projection_biases(config)
        self.q_proj = Linear(config.hidden_size, self.num_heads * self.head_dim, has_bias=qkv_bias)
        self.k_proj = Linear(config.hidden_size, self.num_key_value_heads * self.head_dim, has_bias=qkv_bias)
        self.v_proj = Linear(config.hidden_size, self.num_key_value_heads * self.head_dim, has_bias=qkv_bias)
        self.o_proj = Linear(self.num_heads * self.head_dim, config.hidden_size, has_bias=o_bias)
        self.softmax = Softmax()
        self.attention_dropout = Dropout(p=config.attention_dropout)
        self.cached_attention = CachedAttention()
        self.fused_attention = FusedAttention()

    def _projection_biases(self, config) -> Tuple[bool, bool]:
        """(q/k/v bias, output bias): both `config.attention_bias` (Mistral has no such flag: none)."""
        bias = getattr(config, "attention_bias", False)
        return bias, bias

    def _heads(self, x):
        """`(batch, seq, heads * head_dim)` -> `(batch, seq, heads, head_dim)`."""
        return x.view(x.shape[0], x.shape[1], -1, self.head_dim)

    def _project(self, hidden_states):
        """Query, key and value, each `(batch, heads, seq, head_dim)` (key/value with `num_key_value_heads`)."""
        query = self._heads(self.q_proj(hidden_states)).swapaxes(1, 2)
        key = self._heads(self.k_proj(hidden_states)).swapaxes(1, 2)
        value = self._heads(self.v_proj(hidden_states)).swapaxes(1, 2)
        return query, key, value

    def construct(self, hidden_states, cos, sin, attention_mask=None, past_key_value=None, cache_position=None,
                  output_attentions=False):
        batch_size, seq_length = hidden_states.shape[0], hidden_states.shape[1]
        query, key, value = self._project(hidden_states)
        query, key = apply_rotary_pos_emb(query, key, cos, sin)
        key, value = update_key_value_cache(past_key_value, key, value, cache_position)
        present = (key, value)
        context, probs = decoder_attention(
            self.cached_attention, self.fused_attention, query, key, value, attention_mask, self.scaling,
            self.softmax, self.attention_dropout, self.num_key_value_groups, output_attentions,
        )
        context = context.reshape(batch_size, seq_length, -1)
        return self.o_proj(context), probs, present


class LlamaDecoderLayer(GradientCheckpointingLayer):
    """Pre-norm layer: `x + self_attn(input_layernorm(x))`, then `x + mlp(post_attention_layernorm(x))`."""

    attention_class = LlamaAttention  # Qwen2/Qwen3/Gemma 3 put their own attention here
    mlp_class = LlamaMLP
    norm_class = LlamaRMSNorm  # Gemma 3: `(1 + weight)` RMSNorm

    def __init__(self, config: LlamaConfig, layer_idx: int):
        super().__init__()
        self.hidden_size = config.hidden_size
        self.self_attn = self.attention_class(config, layer_idx)
        self.mlp = self.mlp_class(config)
        self.input_layernorm = self.norm_class(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = self.norm_class(config.hidden_size, eps=config.rms_norm_eps)

    def construct(self, hidden_states, cos, sin, attention_mask=None, past_key_value=None, cache_position=None,
                  output_attentions=False):
        residual = hidden_states
        hidden_states, probs, present = self.self_attn(
            self.input_layernorm(hidden_states), cos, sin, attention_mask, past_key_value, cache_position,
            output_attentions,
        )
        hidden_states = residual + hidden_states
        residual = hidden_states
        hidden_states = residual + self.mlp(self.post_attention_layernorm(hidden_states))
        return hidden_states, probs, present


class LlamaPreTrainedModel(MSPreTrainedModel):
    """Base class of the Llama models: `LlamaConfig`, the "model" prefix and transformers' default initialization
    (normal weights, zero biases, unit RMSNorm weights)."""

    config_class = LlamaConfig
    base_model_prefix = "model"
    # Checkpoints of older transformers versions saved the rotary frequencies as a buffer.
    _keys_to_ignore_on_load_unexpected = MSPreTrainedModel._keys_to_ignore_on_load_unexpected + [
        r"rotary_emb\.inv_freq$"
    ]

    def _add_base_model(self, config: LlamaConfig) -> None:
        """The bare model under `base_model_prefix` (transformers' generic heads: `AutoModel.from_config`). Each
        family's PreTrainedModel overrides it with its own bare model, so the heads inherited from these build it."""
        setattr(self, self.base_model_prefix, LlamaModel(config))

    def _run_model(self, input_ids, attention_mask, position_ids, past_key_values, inputs_embeds, use_cache,
                   output_attentions, output_hidden_states, cache_position=None):
        """The base model's `forward_parts`: `(sequence_output, cache, hidden_states, attentions)`."""
        base_model = getattr(self, self.base_model_prefix)
        return base_model.forward_parts(input_ids, attention_mask, position_ids, past_key_values, inputs_embeds,
                                        use_cache, output_attentions, output_hidden_states, cache_position)


class LlamaModel(LlamaPreTrainedModel):
    """The bare Llama decoder, returning `last_hidden_state` (after the final norm).

    Args:
        config (`LlamaConfig`): model configuration.
    """

    output_class = BaseModelOutputWithPast
    decoder_layer_class = LlamaDecoderLayer  # Qwen3 puts its own layer here
    # Gemma 3 puts its scaled embedding, `(1 + weight)` RMSNorm and per-layer-type RoPE here.
    embedding_class = Embedding
    norm_class = LlamaRMSNorm
    rotary_class = LlamaRotaryEmbedding

    def __init__(self, config: LlamaConfig):
        super().__init__(config)
        if not getattr(config, "is_causal", True):
            raise NotImplementedError("is_causal=False (bidirectional attention) is not supported by mindone_ft's "
                                      "decoder models; remove it from the config.")
        self.padding_idx = config.pad_token_id
        self.vocab_size = config.vocab_size
        self.embed_tokens = self.embedding_class(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.layers = nn.CellList([self.decoder_layer_class(config, i) for i in range(config.num_hidden_layers)])
        self.norm = self.norm_class(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = self.rotary_class(config)
        # Python constants, decided here: the graph unrolls the layer loop and picks each layer's mask.
        self.layer_is_sliding = tuple(t == SLIDING_ATTENTION for t in self._layer_types(config))
        self.has_full = not all(self.layer_is_sliding)
        self.has_sliding = any(self.layer_is_sliding)
        self.sliding_window = getattr(config, "sliding_window", None)
        if self.has_sliding and self.sliding_window is None:
            raise ValueError("config.layer_types has sliding_attention layers but config.sliding_window is None.")
        self.post_init()

    def _layer_types(self, config) -> Tuple[str, ...]:
        """Which layers attend to all previous tokens and which within `sliding_window`: Llama, all of them."""
        return (FULL_ATTENTION,) * config.num_hidden_layers

    def _rotary_embeddings(self, position_ids, dtype):
        """`((cos, sin) of the full-attention layers, (cos, sin) of the sliding-window layers)`: Llama's layers
        share one rotary embedding (Gemma 3 has one per layer type)."""
        cos_sin = self.rotary_emb(position_ids, dtype)
        return cos_sin, cos_sin

    def get_input_embeddings(self) -> Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: Embedding) -> None:
        self.embed_tokens = value

    def forward_parts(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                      inputs_embeds=None, use_cache=None, output_attentions=False, output_hidden_states=False,
                      cache_position=None):
        """Decoder pass returning `(sequence_output, cache, hidden_states, attentions)`: the layout of every family's
        `forward_parts`, where a decoder puts its key/value cache (a tuple of per-layer `(key, value)`, None when
        not returned) in the encoders' pooler slot."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("You must specify exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        hidden_states = inputs_embeds
        dtype, seq_length = hidden_states.dtype, hidden_states.shape[1]
        if use_cache is None:
            use_cache = getattr(self.config, "use_cache", True)
        position_ids, packed_positions, cache_position, key_length, write_position = decoder_positions(
            past_key_values, cache_position, position_ids, attention_mask, seq_length, use_cache)
        full_mask, sliding_mask = None, None
        if self.has_full:
            full_mask = causal_attention_mask(attention_mask, seq_length, dtype, None, packed_positions,
                                              cache_position, key_length)
        if self.has_sliding:
            sliding_mask = causal_attention_mask(attention_mask, seq_length, dtype, self.sliding_window,
                                                 packed_positions, cache_position, key_length)
        full_rotary, sliding_rotary = self._rotary_embeddings(position_ids, dtype)

        all_hidden_states = ()
        all_attentions = ()
        presents = ()
        for i, layer in enumerate(self.layers):
            if output_hidden_states:
                all_hidden_states = all_hidden_states + (hidden_states,)
            mask = sliding_mask if self.layer_is_sliding[i] else full_mask
            cos, sin = sliding_rotary if self.layer_is_sliding[i] else full_rotary
            past = past_key_values[i] if past_key_values is not None else None
            hidden_states, probs, present = checkpointed_call(layer, hidden_states, cos, sin, mask, past,
                                                              write_position, output_attentions)
            presents = presents + (present,)
            if output_attentions:
                all_attentions = all_attentions + (probs,)
        hidden_states = self.norm(hidden_states)
        if output_hidden_states:  # like transformers, the last entry is the normalized output
            all_hidden_states = all_hidden_states + (hidden_states,)
        # In training nothing reads a cache, and returning one would keep every layer's keys and values alive.
        cache = presents if use_cache and not self.training else None
        return hidden_states, cache, all_hidden_states, all_attentions

    def construct(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                  inputs_embeds=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                  return_dict=None, cache_position=None):
        r"""
        Args:
            input_ids (`Tensor` of shape `(batch_size, sequence_length)`): token ids (int32 or int64).
            attention_mask (`Tensor` of shape `(batch_size, past + sequence_length)`, *optional*): 1 (or True) for
                tokens to attend to, 0 (False) for padding (left or right), covering the cached tokens too (all slots
                of a `StaticCache`); bool, int or float.
            position_ids (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): rotary positions, defaults
                to the tokens' indices counting the cached ones. Without `attention_mask` and with `use_cache=False`,
                positions that restart mark packed sequences (which do not attend to each other).
            past_key_values (`DynamicCache`, `StaticCache` or a tuple of per-layer `(key, value)`, *optional*): the
                cache of the tokens before these; a cache object is updated in place.
            inputs_embeds (`Tensor` of shape `(batch_size, sequence_length, hidden_size)`, *optional*): instead of
                `input_ids`.
            use_cache (`bool`, *optional*, defaults to `config.use_cache`): return `past_key_values` (not in training
                mode); as in transformers, `False` lets position ids mark packed sequences.
            output_attentions / output_hidden_states (`bool`, *optional*): also return per-layer attentions /
                hidden states (defaults from the config).
            return_dict (`bool`, *optional*): return a `ModelOutput` (default `config.return_dict`) or a tuple.
            cache_position (`Tensor` of shape `(sequence_length,)`, *optional*): the slots of a `StaticCache` the
                tokens are written to (default: after the tokens it holds).
        """
        sequence_output, cache, hidden_states, attentions = self.forward_parts(
            input_ids, attention_mask, position_ids, past_key_values, inputs_embeds, use_cache, output_attentions,
            output_hidden_states, cache_position,
        )
        return with_extras(with_cache((sequence_output,), cache), None, hidden_states, attentions)


class LlamaForCausalLM(GenerationMixin, LlamaPreTrainedModel):
    """Llama with a language modeling head (`lm_head`, tied to the input embeddings when
    `config.tie_word_embeddings`)."""

    output_class = CausalLMOutputWithPast
    loss_input_names = ("labels",)
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}

    def __init__(self, config: LlamaConfig):
        super().__init__(config)
        self._add_base_model(config)
        self.vocab_size = config.vocab_size
        self.lm_head = Linear(config.hidden_size, config.vocab_size, has_bias=False)
        # tanh soft-capping of the logits (Gemma 3's `final_logit_softcapping`; Llama configs have none)
        self.final_logit_softcapping = getattr(config, "final_logit_softcapping", None)
        self.post_init()

    def get_output_embeddings(self) -> nn.Dense:
        return self.lm_head

    def construct(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                  inputs_embeds=None, labels=None, use_cache=None, logits_to_keep=0, output_attentions=None,
                  output_hidden_states=None, return_dict=None, cache_position=None):
        r"""
        labels (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): the token ids themselves (the model
            shifts them: the logits at token t are scored against label t + 1); -100 marks tokens the loss ignores
            (padding, prompt tokens).
        logits_to_keep (`int` or `Tensor`, *optional*, defaults to 0): compute the logits of the last
            `logits_to_keep` positions only (0: all), or of the positions a 1-D / 2-D integer tensor lists.
        See `LlamaModel.construct` for the others.
        """
        hidden_states, cache, all_hidden_states, attentions = self._run_model(
            input_ids, attention_mask, position_ids, past_key_values, inputs_embeds, use_cache, output_attentions,
            output_hidden_states, cache_position,
        )
        logits = self.lm_head(slice_logits_to_keep(hidden_states, logits_to_keep))
        if self.final_logit_softcapping is not None:
            logits = soft_cap(logits, self.final_logit_softcapping)
        return causal_lm_outputs(logits, labels, self.config.vocab_size, all_hidden_states, attentions, cache)


class LlamaForSequenceClassification(LlamaPreTrainedModel):
    """Llama with a classification (or regression, `num_labels == 1`) head (`score`, no bias) on each row's last
    non-padding token (found with `config.pad_token_id`, so left and right padding both work)."""

    output_class = SequenceClassifierOutputWithPast
    loss_input_names = ("labels",)
    # Like transformers, the inferred problem type is stored in the config (and saved with it).
    _prepare_call = BertForSequenceClassification._prepare_call

    def __init__(self, config: LlamaConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self._add_base_model(config)
        self.score = Linear(config.hidden_size, self.num_labels, has_bias=False)
        self.post_init()

    def construct(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                  inputs_embeds=None, labels=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                  return_dict=None, cache_position=None):
        r"""
        labels (`Tensor` of shape `(batch_size,)`, *optional*): class indices (int32/int64) for single-label
            classification, floats for regression (`num_labels == 1`), or `(batch_size, num_labels)` multi-hot
            floats for multi-label classification; see `config.problem_type`. With `inputs_embeds`, padding cannot be
            seen and the last position is used. See `LlamaModel.construct` for the others.
        """
        hidden_states, cache, all_hidden_states, attentions = self._run_model(
            input_ids, attention_mask, position_ids, past_key_values, inputs_embeds, use_cache, output_attentions,
            output_hidden_states, cache_position,
        )
        pooled_logits = last_non_pad_token_logits(self.score(hidden_states), input_ids, self.config.pad_token_id)
        return sequence_classification_outputs(pooled_logits, labels, self.config.problem_type, all_hidden_states,
                                               attentions, cache)


def _token_classifier_dropout(config) -> float:
    """transformers' generic token-classification head: `classifier_dropout`, else `hidden_dropout`, else 0.1."""
    if getattr(config, "classifier_dropout", None) is not None:
        return config.classifier_dropout
    if getattr(config, "hidden_dropout", None) is not None:
        return config.hidden_dropout
    return 0.1


class LlamaForTokenClassification(LlamaPreTrainedModel):
    """Llama with a per-token classification head (dropout, then `score`)."""

    output_class = TokenClassifierOutput
    loss_input_names = ("labels",)

    def __init__(self, config: LlamaConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self._add_base_model(config)
        self.dropout = Dropout(p=_token_classifier_dropout(config))
        self.score = Linear(config.hidden_size, config.num_labels,
                            has_bias=getattr(config, "token_classification_bias", True))
        self.post_init()

    def construct(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                  inputs_embeds=None, labels=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                  return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): class index per token, -100 for
            tokens the loss ignores. See `LlamaModel.construct` for the others.
        """
        sequence_output, _, all_hidden_states, attentions = self._run_model(
            input_ids, attention_mask, position_ids, past_key_values, inputs_embeds, use_cache, output_attentions,
            output_hidden_states,
        )  # transformers' token-classification output has no cache: it is dropped
        logits = self.score(self.dropout(sequence_output))
        loss = None
        if labels is not None:
            loss = cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
        return with_extras((logits,), loss, all_hidden_states, attentions)


class LlamaForQuestionAnswering(LlamaPreTrainedModel):
    """Llama with a span extraction head (start and end logits). Its base model is `transformer`, as in
    transformers (kept for older checkpoints)."""

    base_model_prefix = "transformer"
    output_class = QuestionAnsweringModelOutput
    loss_input_names = ("start_positions", "end_positions")

    def __init__(self, config: LlamaConfig):
        super().__init__(config)
        self._add_base_model(config)
        self.qa_outputs = Linear(config.hidden_size, 2)
        self.post_init()

    def construct(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                  inputs_embeds=None, start_positions=None, end_positions=None, output_attentions=None,
                  output_hidden_states=None, return_dict=None):
        r"""
        start_positions / end_positions (`Tensor` of shape `(batch_size,)`, *optional*): token index of the span
            start / end; positions outside the sequence are ignored by the loss. See `LlamaModel.construct`.
        """
        sequence_output, _, all_hidden_states, attentions = self._run_model(
            input_ids, attention_mask, position_ids, past_key_values, inputs_embeds, None, output_attentions,
            output_hidden_states,
        )
        logits = self.qa_outputs(sequence_output)
        start_logits, end_logits = logits[:, :, 0], logits[:, :, 1]
        total_loss = None
        if start_positions is not None and end_positions is not None:
            total_loss = question_answering_loss(start_logits, end_logits, start_positions, end_positions)
        return with_extras((start_logits, end_logits), total_loss, all_hidden_states, attentions)
