"""MindSpore GPT-2, mirroring transformers 5.23's `modeling_gpt2.py` (eager attention, key/value cache, generate()).

Module and parameter names are the Hugging Face ones (`transformer.h.0.attn.c_attn.weight`, `transformer.wte.weight`,
...), and the projections are transformers' `Conv1D` (kit `Conv1D`): their weights are stored `(in, out)`, as
transformers saves them, so checkpoints map 1:1 in both directions without transposing. Every `construct` returns a
tuple in transformers' `return_dict=False` layout; `MSPreTrainedModel.__call__` turns it into the `ModelOutput` users
see.

What differs from Llama: learned absolute position embeddings (`wpe`) added to the token embeddings (and, as in
transformers, `token_type_ids` are looked up in the token embedding `wte` and added too), LayerNorm pre-norm blocks,
one fused query/key/value projection `c_attn`, a GELU MLP (`activation_function`, "gelu_new" in the released models),
dropout on embeddings, attention probabilities and residual branches, and the attention scaling options
`scale_attn_weights`, `scale_attn_by_inverse_layer_idx` and `reorder_and_upcast_attn` (float32 scores, for fp16
training). The task heads are Llama's (the same layers and losses: transformers' generic decoder heads) on a
`GPT2Model` under `transformer`, with GPT-2's argument order (`past_key_values` second, `token_type_ids`).

Positions are `position_ids` when given, else `0..seq-1`, like transformers 5.23's forward, also for left-padded rows
(`generate()` derives them from the attention mask, as transformers' does; the mask itself hides the padding). The
key/value cache works as Llama's (`mindone_ft.cache_utils`). Cross-attention
(`add_cross_attention`, GPT-2 as the decoder of an encoder-decoder model) is not supported.
"""

import mindspore as ms
from mindspore import nn, ops
from mindspore.common.initializer import Normal
from transformers import GPT2Config

from ...modeling_layers import (
    CachedAttention,
    Conv1D,
    Dropout,
    Embedding,
    GradientCheckpointingLayer,
    LayerNorm,
    MultiHeadSelfAttention,
    causal_attention_mask,
    causal_lm_outputs,
    checkpointed_call,
    decoder_attention,
    get_activation,
    last_non_pad_token_logits,
    sequence_classification_outputs,
    slice_logits_to_keep,
    span_outputs,
    token_classification_outputs,
    update_key_value_cache,
    with_cache,
    with_extras,
)
from ...cache_utils import decoder_positions
from ...modeling_outputs import BaseModelOutputWithPastAndCrossAttentions, CausalLMOutputWithCrossAttentions
from ...modeling_utils import MSPreTrainedModel
from ..llama.modeling_llama import (
    LlamaForCausalLM,
    LlamaForQuestionAnswering,
    LlamaForSequenceClassification,
    LlamaForTokenClassification,
)

__all__ = [
    "GPT2PreTrainedModel",
    "GPT2Model",
    "GPT2LMHeadModel",
    "GPT2ForSequenceClassification",
    "GPT2ForTokenClassification",
    "GPT2ForQuestionAnswering",
]


class GPT2Attention(MultiHeadSelfAttention):
    """Causal self-attention with one fused projection `c_attn` (query, key and value side by side) and the output
    projection `c_proj`. Scores are scaled by `1 / sqrt(head_dim)` when `scale_attn_weights`, and further by
    `1 / (layer_idx + 1)` when `scale_attn_by_inverse_layer_idx`; with `reorder_and_upcast_attn` they are computed
    and normalized in float32 whatever the model dtype."""

    def __init__(self, config: GPT2Config, layer_idx: int):
        # heads first: the key/value cache's layout
        super().__init__(config.hidden_size, config.num_attention_heads, config.attn_pdrop, layout="BHSD")
        self.layer_idx = layer_idx
        self.embed_dim = config.hidden_size
        self.scaling = self.attention_head_size**-0.5 if config.scale_attn_weights else 1.0
        if config.scale_attn_by_inverse_layer_idx:
            self.scaling /= float(layer_idx + 1)
        self.reorder_and_upcast_attn = config.reorder_and_upcast_attn
        self.c_attn = Conv1D(3 * self.embed_dim, self.embed_dim)
        self.c_proj = Conv1D(self.embed_dim, self.embed_dim)
        self.resid_dropout = Dropout(p=config.resid_pdrop)
        self.cached_attention = CachedAttention()

    def _project(self, hidden_states):
        """Query, key and value, each `(batch, heads, seq, head_dim)`."""
        query, key, value = ops.split(self.c_attn(hidden_states), self.embed_dim, axis=2)
        return self._split_heads(query), self._split_heads(key), self._split_heads(value)

    def construct(self, hidden_states, attention_mask=None, past_key_value=None, cache_position=None,
                  output_attentions=False):
        batch_size, seq_length = hidden_states.shape[0], hidden_states.shape[1]
        query, key, value = self._project(hidden_states)
        key, value = update_key_value_cache(past_key_value, key, value, cache_position)
        present = (key, value)
        if self.reorder_and_upcast_attn:  # float32 scores and softmax; the probabilities go back to value's dtype
            query, key = query.astype(ms.float32), key.astype(ms.float32)
            if attention_mask is not None:
                attention_mask = attention_mask.astype(ms.float32)
        context, probs = decoder_attention(self.cached_attention, self.fused_attention, query, key, value,
                                           attention_mask, self.scaling, self.softmax, self.dropout,
                                           output_attentions=output_attentions)
        context = context.reshape(batch_size, seq_length, self.embed_dim)
        return self.resid_dropout(self.c_proj(context)), probs, present


class GPT2MLP(nn.Cell):
    """`dropout(c_proj(act(c_fc(x))))`, with `config.activation_function`."""

    def __init__(self, intermediate_size: int, config: GPT2Config):
        super().__init__()
        self.c_fc = Conv1D(intermediate_size, config.hidden_size)
        self.c_proj = Conv1D(config.hidden_size, intermediate_size)
        self.act = get_activation(config.activation_function)
        self.dropout = Dropout(p=config.resid_pdrop)

    def construct(self, hidden_states):
        return self.dropout(self.c_proj(self.act(self.c_fc(hidden_states))))


class GPT2Block(GradientCheckpointingLayer):
    """Pre-norm block: `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`; the MLP is `n_inner` wide (default 4 x hidden)."""

    def __init__(self, config: GPT2Config, layer_idx: int):
        super().__init__()
        inner_dim = config.n_inner if config.n_inner is not None else 4 * config.hidden_size
        self.ln_1 = LayerNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.attn = GPT2Attention(config, layer_idx)
        self.ln_2 = LayerNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.mlp = GPT2MLP(inner_dim, config)

    def construct(self, hidden_states, attention_mask=None, past_key_value=None, cache_position=None,
                  output_attentions=False):
        attn_output, probs, present = self.attn(self.ln_1(hidden_states), attention_mask, past_key_value,
                                                cache_position, output_attentions)
        hidden_states = attn_output + hidden_states
        hidden_states = hidden_states + self.mlp(self.ln_2(hidden_states))
        return hidden_states, probs, present


class GPT2PreTrainedModel(MSPreTrainedModel):
    """Base class of the GPT-2 models: `GPT2Config`, the "transformer" prefix and transformers' initialization
    (normal weights, zero biases, unit LayerNorms, and the output projections `c_proj` of every block scaled by
    `1 / sqrt(2 * n_layer)`, GPT-2's scheme for the residual path)."""

    config_class = GPT2Config
    base_model_prefix = "transformer"
    # Checkpoints of older transformers versions saved the causal mask as a buffer of every attention.
    _keys_to_ignore_on_load_unexpected = MSPreTrainedModel._keys_to_ignore_on_load_unexpected + [
        r"(^|\.)attn\.(masked_)?bias$"
    ]

    def _init_weights(self, cell: nn.Cell) -> None:
        # Set on the attention and MLP cells rather than on each Conv1D: cells are visited parent first here (torch
        # visits children first), so the parent decides both of its projections and nothing overwrites them.
        super()._init_weights(cell)
        if isinstance(cell, (GPT2Attention, GPT2MLP)):
            std = self.config.initializer_range
            first = cell.c_attn if isinstance(cell, GPT2Attention) else cell.c_fc
            for conv, conv_std in ((first, std), (cell.c_proj, std / (2 * self.config.n_layer) ** 0.5)):
                self._init_parameter(conv.weight, Normal(conv_std, 0.0))
                self._init_parameter(conv.bias, "zeros")

    def _add_base_model(self, config: GPT2Config) -> None:
        """The bare model under `transformer` (the task heads inherited from Llama's build it)."""
        setattr(self, self.base_model_prefix, GPT2Model(config))

    def _run_model(self, input_ids, past_key_values, attention_mask, token_type_ids, position_ids, inputs_embeds,
                   use_cache, output_attentions, output_hidden_states, encoder_hidden_states=None,
                   encoder_attention_mask=None, cache_position=None):
        """The base model's `forward_parts`: `(sequence_output, cache, hidden_states, attentions)`."""
        return self.transformer.forward_parts(input_ids, past_key_values, attention_mask, token_type_ids,
                                              position_ids, inputs_embeds, encoder_hidden_states,
                                              encoder_attention_mask, use_cache, output_attentions,
                                              output_hidden_states, cache_position)

    def _output_fields(self, has_loss, output_hidden_states, output_attentions):
        # No cross-attention is returned: that field stays None in the output.
        fields = super()._output_fields(has_loss, output_hidden_states, output_attentions)
        return [f for f in fields if f != "cross_attentions"]


class GPT2Model(GPT2PreTrainedModel):
    """The bare GPT-2 decoder, returning `last_hidden_state` (after the final LayerNorm `ln_f`).

    Args:
        config (`GPT2Config`): model configuration (`add_cross_attention=True` is rejected).
    """

    output_class = BaseModelOutputWithPastAndCrossAttentions

    def __init__(self, config: GPT2Config):
        super().__init__(config)
        if config.add_cross_attention:
            raise NotImplementedError(
                "add_cross_attention=True (GPT-2 as the decoder of an encoder-decoder model) is not supported by "
                "mindone_ft; use GPT-2 as a decoder-only model (add_cross_attention=False)."
            )
        self.embed_dim = config.hidden_size
        self.wte = Embedding(config.vocab_size, self.embed_dim)
        self.wpe = Embedding(config.max_position_embeddings, self.embed_dim)
        self.drop = Dropout(p=config.embd_pdrop)
        self.h = nn.CellList([GPT2Block(config, layer_idx=i) for i in range(config.num_hidden_layers)])
        self.ln_f = LayerNorm(self.embed_dim, eps=config.layer_norm_epsilon)
        self.post_init()

    def get_input_embeddings(self) -> Embedding:
        return self.wte

    def set_input_embeddings(self, value: Embedding) -> None:
        self.wte = value

    def forward_parts(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                      position_ids=None, inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None,
                      use_cache=None, output_attentions=False, output_hidden_states=False, cache_position=None):
        """Decoder pass returning `(sequence_output, cache, hidden_states, attentions)` (the layout of every family's
        `forward_parts`; see `LlamaModel.forward_parts`)."""
        if encoder_hidden_states is not None or encoder_attention_mask is not None:
            raise NotImplementedError("encoder_hidden_states: cross-attention is not supported by mindone_ft's GPT-2.")
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("You must specify exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.wte(input_ids)
        seq_length = inputs_embeds.shape[1]
        if use_cache is None:
            use_cache = getattr(self.config, "use_cache", True)
        position_ids, packed_positions, cache_position, key_length, write_position = decoder_positions(
            past_key_values, cache_position, position_ids, attention_mask, seq_length, use_cache)
        hidden_states = inputs_embeds + self.wpe(position_ids)
        if token_type_ids is not None:
            hidden_states = hidden_states + self.wte(token_type_ids)
        hidden_states = self.drop(hidden_states)
        mask = causal_attention_mask(attention_mask, seq_length, hidden_states.dtype, None, packed_positions,
                                     cache_position, key_length)

        all_hidden_states = ()
        all_attentions = ()
        presents = ()
        for i, block in enumerate(self.h):
            if output_hidden_states:
                all_hidden_states = all_hidden_states + (hidden_states,)
            past = past_key_values[i] if past_key_values is not None else None
            hidden_states, probs, present = checkpointed_call(block, hidden_states, mask, past, write_position,
                                                              output_attentions)
            presents = presents + (present,)
            if output_attentions:
                all_attentions = all_attentions + (probs,)
        hidden_states = self.ln_f(hidden_states)
        if output_hidden_states:  # like transformers, the last entry is the normalized output
            all_hidden_states = all_hidden_states + (hidden_states,)
        cache = presents if use_cache and not self.training else None  # as Llama: none in training
        return hidden_states, cache, all_hidden_states, all_attentions

    def construct(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                  position_ids=None, inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None,
                  use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None,
                  cache_position=None):
        r"""
        Args:
            input_ids (`Tensor` of shape `(batch_size, sequence_length)`): token ids (int32 or int64).
            past_key_values (`DynamicCache`, `StaticCache` or a tuple of per-layer `(key, value)`, *optional*): see
                `LlamaModel.construct`.
            attention_mask (`Tensor` of shape `(batch_size, past + sequence_length)`, *optional*): 1 (or True) for
                tokens to attend to, 0 (False) for padding (left or right), the cached tokens included.
            token_type_ids (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): ids whose token
                embeddings (`wte`) are added to the inputs, as in transformers.
            position_ids (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): indices into `wpe`,
                defaults to 0..len-1 (also for left-padded rows, like transformers' forward).
            inputs_embeds (`Tensor` of shape `(batch_size, sequence_length, hidden_size)`, *optional*): instead of
                `input_ids`.
            encoder_hidden_states / encoder_attention_mask: cross-attention, not supported (must be None).
            use_cache (`bool`, *optional*, defaults to `config.use_cache`): return `past_key_values` (not in
                training mode); `False` lets position ids mark packed sequences (see `LlamaModel.construct`).
            output_attentions / output_hidden_states (`bool`, *optional*): also return per-layer attentions /
                hidden states (defaults from the config).
            return_dict (`bool`, *optional*): return a `ModelOutput` (default `config.return_dict`) or a tuple.
            cache_position (`Tensor` of shape `(sequence_length,)`, *optional*): the slots of a `StaticCache`.
        """
        sequence_output, cache, hidden_states, attentions = self.forward_parts(
            input_ids, past_key_values, attention_mask, token_type_ids, position_ids, inputs_embeds,
            encoder_hidden_states, encoder_attention_mask, use_cache, output_attentions, output_hidden_states,
            cache_position,
        )
        return with_extras(with_cache((sequence_output,), cache), None, hidden_states, attentions)


class GPT2LMHeadModel(GPT2PreTrainedModel, LlamaForCausalLM):
    """GPT-2 with a language modeling head (`lm_head`, tied to `transformer.wte` when `config.tie_word_embeddings`,
    the default): transformers' name for the causal LM (`AutoModelForCausalLM`)."""

    output_class = CausalLMOutputWithCrossAttentions
    _tied_weights_keys = {"lm_head.weight": "transformer.wte.weight"}

    def construct(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                  position_ids=None, inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None,
                  labels=None, use_cache=None, logits_to_keep=0, output_attentions=None, output_hidden_states=None,
                  return_dict=None, cache_position=None):
        r"""
        labels (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): the token ids themselves (shifted
            inside: the logits at token t are scored against label t + 1); -100 marks tokens the loss ignores.
        logits_to_keep (`int` or `Tensor`, *optional*, defaults to 0): see `LlamaForCausalLM.construct`.
        See `GPT2Model.construct` for the others.
        """
        hidden_states, cache, all_hidden_states, attentions = self._run_model(
            input_ids, past_key_values, attention_mask, token_type_ids, position_ids, inputs_embeds, use_cache,
            output_attentions, output_hidden_states, encoder_hidden_states, encoder_attention_mask, cache_position,
        )
        logits = self.lm_head(slice_logits_to_keep(hidden_states, logits_to_keep))
        return causal_lm_outputs(logits, labels, self.config.vocab_size, all_hidden_states, attentions, cache)


class GPT2ForSequenceClassification(GPT2PreTrainedModel, LlamaForSequenceClassification):
    """GPT-2 with a classification (or regression, `num_labels == 1`) head (`score`, no bias) on each row's last
    non-padding token (found with `config.pad_token_id`, which GPT-2 configs leave unset: set it to classify batches
    of more than one row)."""

    def construct(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                  position_ids=None, inputs_embeds=None, labels=None, use_cache=None, output_attentions=None,
                  output_hidden_states=None, return_dict=None, cache_position=None):
        r"""
        labels (`Tensor` of shape `(batch_size,)`, *optional*): see `LlamaForSequenceClassification.construct`.
        See `GPT2Model.construct` for the others.
        """
        hidden_states, cache, all_hidden_states, attentions = self._run_model(
            input_ids, past_key_values, attention_mask, token_type_ids, position_ids, inputs_embeds, use_cache,
            output_attentions, output_hidden_states, None, None, cache_position,
        )
        pooled_logits = last_non_pad_token_logits(self.score(hidden_states), input_ids, self.config.pad_token_id)
        return sequence_classification_outputs(pooled_logits, labels, self.config.problem_type, all_hidden_states,
                                               attentions, cache)


class GPT2ForTokenClassification(GPT2PreTrainedModel, LlamaForTokenClassification):
    """GPT-2 with a per-token classification head: Llama's (dropout, then a linear layer with a bias), whose layer
    transformers' GPT-2 names `classifier` rather than `score`."""

    def __init__(self, config: GPT2Config):
        super().__init__(config)
        self.classifier = self.score  # re-registered under GPT-2's name: its parameters become `classifier.*`
        del self.score

    def construct(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                  position_ids=None, inputs_embeds=None, labels=None, use_cache=None, output_attentions=None,
                  output_hidden_states=None, return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): class index per token, -100 for
            tokens the loss ignores. See `GPT2Model.construct` for the others.
        """
        sequence_output, _, all_hidden_states, attentions = self._run_model(
            input_ids, past_key_values, attention_mask, token_type_ids, position_ids, inputs_embeds, use_cache,
            output_attentions, output_hidden_states,
        )
        logits = self.classifier(self.dropout(sequence_output))
        return token_classification_outputs(logits, labels, all_hidden_states, attentions)


class GPT2ForQuestionAnswering(GPT2PreTrainedModel, LlamaForQuestionAnswering):
    """GPT-2 with a span extraction head (`qa_outputs`: start and end logits)."""

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                  inputs_embeds=None, start_positions=None, end_positions=None, output_attentions=None,
                  output_hidden_states=None, return_dict=None):
        r"""
        start_positions / end_positions (`Tensor` of shape `(batch_size,)`, *optional*): token index of the span
            start / end; positions outside the sequence are ignored by the loss. See `GPT2Model.construct`.
        """
        sequence_output, _, all_hidden_states, attentions = self._run_model(
            input_ids, None, attention_mask, token_type_ids, position_ids, inputs_embeds, None, output_attentions,
            output_hidden_states,
        )
        return span_outputs(self.qa_outputs(sequence_output), start_positions, end_positions, all_hidden_states,
                            attentions)
