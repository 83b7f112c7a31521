"""MindSpore ModernBERT, mirroring transformers 5.23's `modeling_modernbert.py` (eager attention, padded batches).

Module and parameter names are the Hugging Face ones (`model.layers.1.attn.Wqkv.weight`, `decoder.bias`, ...), so
checkpoints map 1:1 in both directions. Every `construct` returns a tuple in transformers' `return_dict=False`
layout; `MSPreTrainedModel.__call__` turns it into the `ModelOutput` users see.

What differs from BERT: rotary position embeddings (one theta for global, one for local layers), a GeGLU MLP, pre-norm
layers (the first layer has no attention norm), layers alternating global attention and a local window of
`local_attention // 2` tokens on each side (`config.layer_types`), no biases unless the config asks for them, and
task heads on a dense + norm "prediction head". Like transformers in eager mode, the batch is kept padded (no
unpadding); padding is masked out of attention.
"""

import math

import mindspore as ms
from mindspore import Tensor, nn, ops
from mindspore.common.initializer import TruncatedNormal
from transformers import ModernBertConfig

from ...modeling_layers import (
    Dropout,
    Embedding,
    FusedAttention,
    GradientCheckpointingLayer,
    LayerNorm,
    Linear,
    Softmax,
    apply_rotary_pos_emb,
    bidirectional_attention_mask,
    checkpointed_call,
    flatten_choices,
    fused_or_eager_attention,
    get_activation,
    masked_lm_outputs,
    multiple_choice_outputs,
    rotary_cos_sin,
    rotary_inv_freq,
    sequence_classification_outputs,
    span_outputs,
    token_classification_outputs,
    with_extras,
)
from ...modeling_outputs import (
    BaseModelOutput,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from ...modeling_utils import MSPreTrainedModel
from ..bert.modeling_bert import BertForSequenceClassification

__all__ = [
    "ModernBertPreTrainedModel",
    "ModernBertModel",
    "ModernBertForMaskedLM",
    "ModernBertForSequenceClassification",
    "ModernBertForTokenClassification",
    "ModernBertForQuestionAnswering",
    "ModernBertForMultipleChoice",
]

FULL_ATTENTION, SLIDING_ATTENTION = "full_attention", "sliding_attention"  # `config.layer_types` entries


class ModernBertEmbeddings(nn.Cell):
    """Token embeddings (no positions: those are rotary), then LayerNorm and dropout."""

    def __init__(self, config: ModernBertConfig):
        super().__init__()
        self.tok_embeddings = Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.norm = LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        self.drop = Dropout(p=config.embedding_dropout)

    def construct(self, input_ids=None, inputs_embeds=None):
        if inputs_embeds is None:
            inputs_embeds = self.tok_embeddings(input_ids)
        return self.drop(self.norm(inputs_embeds))


class ModernBertMLP(nn.Cell):
    """GeGLU: `Wi` projects to twice the intermediate size, `act(input) * gate`, then `Wo` back."""

    def __init__(self, config: ModernBertConfig):
        super().__init__()
        self.intermediate_size = int(config.intermediate_size)
        self.Wi = Linear(config.hidden_size, self.intermediate_size * 2, has_bias=config.mlp_bias)
        self.act = get_activation(config.hidden_activation)
        self.drop = Dropout(p=config.mlp_dropout)
        self.Wo = Linear(self.intermediate_size, config.hidden_size, has_bias=config.mlp_bias)

    def construct(self, hidden_states):
        projected = self.Wi(hidden_states)
        input, gate = projected[..., : self.intermediate_size], projected[..., self.intermediate_size :]
        return self.Wo(self.drop(self.act(input) * gate))


class ModernBertRotaryEmbedding(nn.Cell):
    """`(cos, sin)` per layer type: each has its own `rope_theta` in `config.rope_parameters` (ModernBERT-base:
    160,000 for global layers, 10,000 for local ones). The inverse frequencies are constants, not parameters, like
    transformers' non-persistent buffers (they are not in checkpoints)."""

    def __init__(self, config: ModernBertConfig):
        super().__init__()
        head_dim = config.hidden_size // config.num_attention_heads
        self.full_attention_inv_freq = None
        self.sliding_attention_inv_freq = None
        for layer_type in sorted(set(config.layer_types)):
            if layer_type not in (FULL_ATTENTION, SLIDING_ATTENTION):
                raise ValueError(f"Unknown ModernBERT layer type {layer_type!r} in config.layer_types; expected "
                                 f"{FULL_ATTENTION!r} or {SLIDING_ATTENTION!r}.")
            params = config.rope_parameters[layer_type]
            rope_type = params.get("rope_type", "default")
            if rope_type != "default":
                raise NotImplementedError(
                    f"rope_type={rope_type!r} for {layer_type} layers is not supported by mindone_ft's ModernBERT; "
                    "only the default RoPE (rope_type='default' with a rope_theta) is implemented."
                )
            inv_freq = Tensor(rotary_inv_freq(head_dim, params["rope_theta"]))
            setattr(self, f"{layer_type}_inv_freq", inv_freq)

    def construct(self, position_ids, dtype, sliding: bool):
        inv_freq = self.sliding_attention_inv_freq if sliding else self.full_attention_inv_freq
        return rotary_cos_sin(position_ids, inv_freq, dtype)


class ModernBertAttention(nn.Cell):
    """Multi-head self attention with one fused `Wqkv` projection and rotary query/key. Whether the layer attends
    globally or within its local window is decided by the mask it is given (see `ModernBertModel`)."""

    def __init__(self, config: ModernBertConfig, layer_idx: int):
        super().__init__()
        if config.hidden_size % config.num_attention_heads != 0:
            raise ValueError(
                f"The hidden size ({config.hidden_size}) is not a multiple of the number of attention heads "
                f"({config.num_attention_heads})"
            )
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.Wqkv = Linear(config.hidden_size, 3 * self.head_dim * self.num_heads, has_bias=config.attention_bias)
        self.Wo = Linear(config.hidden_size, config.hidden_size, has_bias=config.attention_bias)
        self.softmax = Softmax()
        self.attention_dropout = Dropout(p=config.attention_dropout)  # on the probabilities
        self.fused_attention = FusedAttention()
        self.out_drop = Dropout(p=config.attention_dropout)  # on the output (transformers: Identity when 0)

    def construct(self, hidden_states, cos, sin, attention_mask=None, output_attentions=False):
        batch_size, seq_length = hidden_states.shape[0], hidden_states.shape[1]
        qkv = self.Wqkv(hidden_states).view(batch_size, seq_length, 3, self.num_heads, self.head_dim)
        query = qkv[:, :, 0].swapaxes(1, 2)
        key = qkv[:, :, 1].swapaxes(1, 2)
        value = qkv[:, :, 2].swapaxes(1, 2)
        query, key = apply_rotary_pos_emb(query, key, cos, sin)
        context, probs = fused_or_eager_attention(
            self.fused_attention, query, key, value, attention_mask, self.scaling, self.softmax,
            self.attention_dropout, output_attentions=output_attentions,
        )
        context = context.reshape(batch_size, seq_length, -1)
        return self.out_drop(self.Wo(context)), probs


class ModernBertEncoderLayer(GradientCheckpointingLayer):
    """Pre-norm layer: `x + attn(attn_norm(x))`, then `x + mlp(mlp_norm(x))`. Layer 0's `attn_norm` is the identity
    (the embeddings are normalized already), so it has no parameters."""

    def __init__(self, config: ModernBertConfig, layer_idx: int):
        super().__init__()
        if layer_idx == 0:
            self.attn_norm = nn.Identity()
        else:
            self.attn_norm = LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        self.attn = ModernBertAttention(config, layer_idx)
        self.mlp_norm = LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        self.mlp = ModernBertMLP(config)

    def construct(self, hidden_states, cos, sin, attention_mask=None, output_attentions=False):
        attn_output, probs = self.attn(self.attn_norm(hidden_states), cos, sin, attention_mask, output_attentions)
        hidden_states = hidden_states + attn_output
        hidden_states = hidden_states + self.mlp(self.mlp_norm(hidden_states))
        return hidden_states, probs


class ModernBertPredictionHead(nn.Cell):
    """Dense + activation + norm between the encoder and every task head's output layer."""

    def __init__(self, config: ModernBertConfig):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size, has_bias=config.classifier_bias)
        self.act = get_activation(config.classifier_activation)
        self.norm = LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)

    def construct(self, hidden_states):
        return self.norm(self.act(self.dense(hidden_states)))


def mean_pool(hidden_states, attention_mask):
    """Mean of the hidden states over the real tokens (`classifier_pooling="mean"`); all tokens when no mask."""
    if attention_mask is None:
        return hidden_states.mean(axis=1)
    mask = attention_mask.astype(hidden_states.dtype)
    return (hidden_states * mask.expand_dims(-1)).sum(axis=1) / mask.sum(axis=1, keepdims=True)


class ModernBertPreTrainedModel(MSPreTrainedModel):
    """Base class of the ModernBERT models: `ModernBertConfig`, the "model" prefix and ModernBERT's initialization
    (truncated normal weights, smaller for the layers that write into the residual stream)."""

    config_class = ModernBertConfig
    base_model_prefix = "model"

    def _init_weights(self, cell: nn.Cell) -> None:
        config = self.config
        cutoff = config.initializer_cutoff_factor if config.initializer_cutoff_factor is not None else 3
        stds = {
            "in": config.initializer_range,
            "out": config.initializer_range / math.sqrt(2.0 * config.num_hidden_layers),
            "embedding": config.initializer_range,
            "final_out": config.hidden_size**-0.5,
        }

        def init_weight(target: nn.Cell, std: float) -> None:
            self._init_parameter(target.weight, TruncatedNormal(std, 0.0, -cutoff * std, cutoff * std))
            if isinstance(target, nn.Dense) and target.bias is not None:
                self._init_parameter(target.bias, "zeros")

        # Every Linear and Embedding is initialized by the cell that owns it (below), as in transformers; the
        # generic normal init must not run after it (cells are visited parents first here).
        if isinstance(cell, (nn.Dense, Embedding)):
            return
        super()._init_weights(cell)  # norms
        if isinstance(cell, ModernBertEmbeddings):
            init_weight(cell.tok_embeddings, stds["embedding"])
        elif isinstance(cell, (ModernBertMLP, ModernBertAttention)):
            init_weight(cell.Wi if isinstance(cell, ModernBertMLP) else cell.Wqkv, stds["in"])
            init_weight(cell.Wo, stds["out"])
        elif isinstance(cell, ModernBertPredictionHead):
            init_weight(cell.dense, stds["out"])
        elif isinstance(cell, ModernBertForMaskedLM):
            init_weight(cell.decoder, stds["out"])
        elif isinstance(cell, _ModernBertWithClassifier):
            init_weight(cell.classifier, stds["final_out"])

    def _run_model(self, input_ids, attention_mask, position_ids, inputs_embeds, output_attentions,
                   output_hidden_states):
        """`self.model(...)` returning `(sequence_output, None, hidden_states, attentions)`."""
        return self.model.forward_parts(input_ids, attention_mask, position_ids, inputs_embeds, output_attentions,
                                        output_hidden_states)


class ModernBertModel(ModernBertPreTrainedModel):
    """The bare ModernBERT encoder, returning `last_hidden_state` (after `final_norm`).

    Args:
        config (`ModernBertConfig`): model configuration. `config.layer_types` (from `global_attn_every_n_layers`
            in older configs) says which layers attend globally and which within `local_attention // 2` tokens
            on each side.
    """

    output_class = BaseModelOutput

    def __init__(self, config: ModernBertConfig):
        super().__init__(config)
        self.embeddings = ModernBertEmbeddings(config)
        self.layers = nn.CellList([ModernBertEncoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.final_norm = LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        self.rotary_emb = ModernBertRotaryEmbedding(config)
        # Python constants, decided here: the graph unrolls the layer loop and picks each layer's mask and angles.
        self.layer_is_sliding = tuple(t == SLIDING_ATTENTION for t in config.layer_types)
        self.has_full = not all(self.layer_is_sliding)
        self.has_sliding = any(self.layer_is_sliding)
        self.sliding_window = config.local_attention // 2  # transformers' `config.sliding_window`
        self.post_init()

    def get_input_embeddings(self) -> Embedding:
        return self.embeddings.tok_embeddings

    def set_input_embeddings(self, value: Embedding) -> None:
        self.embeddings.tok_embeddings = value

    def forward_parts(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None,
                      output_attentions=False, output_hidden_states=False):
        """Encoder pass returning `(sequence_output, None, hidden_states, attentions)`: the layout of every
        family's `forward_parts`; ModernBERT has no pooler."""
        hidden_states = self.embeddings(input_ids, inputs_embeds)
        dtype, seq_length = hidden_states.dtype, hidden_states.shape[1]
        if position_ids is None:
            position_ids = ops.arange(0, seq_length, dtype=ms.int32).expand_dims(0)
        full_mask, full_cos, full_sin = None, None, None
        if self.has_full:
            full_mask = bidirectional_attention_mask(attention_mask, seq_length, dtype)
            full_cos, full_sin = self.rotary_emb(position_ids, dtype, False)
        sliding_mask, sliding_cos, sliding_sin = None, None, None
        if self.has_sliding:
            sliding_mask = bidirectional_attention_mask(attention_mask, seq_length, dtype, self.sliding_window)
            sliding_cos, sliding_sin = self.rotary_emb(position_ids, dtype, True)

        all_hidden_states = ()
        all_attentions = ()
        for i, layer in enumerate(self.layers):
            if output_hidden_states:
                all_hidden_states = all_hidden_states + (hidden_states,)
            if self.layer_is_sliding[i]:
                hidden_states, probs = checkpointed_call(layer, hidden_states, sliding_cos, sliding_sin, sliding_mask,
                                                         output_attentions)
            else:
                hidden_states, probs = checkpointed_call(layer, hidden_states, full_cos, full_sin, full_mask,
                                                         output_attentions)
            if output_attentions:
                all_attentions = all_attentions + (probs,)
        hidden_states = self.final_norm(hidden_states)
        if output_hidden_states:  # like transformers, the last entry is the normalized output
            all_hidden_states = all_hidden_states + (hidden_states,)
        return hidden_states, None, all_hidden_states, all_attentions

    def construct(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None,
                  output_attentions=None, output_hidden_states=None, return_dict=None):
        r"""
        Args:
            input_ids (`Tensor` of shape `(batch_size, sequence_length)`): token ids (int32 or int64).
            attention_mask (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): 1 (or True) for tokens
                to attend to, 0 (False) for padding; bool, int or float.
            position_ids (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): rotary positions,
                defaults to 0..len-1.
            inputs_embeds (`Tensor` of shape `(batch_size, sequence_length, hidden_size)`, *optional*): instead of
                `input_ids` (normalized by the embedding norm like token embeddings).
            output_attentions / output_hidden_states (`bool`, *optional*): also return per-layer attentions /
                hidden states (defaults from the config).
            return_dict (`bool`, *optional*): return a `ModelOutput` (default `config.return_dict`) or a tuple.
        """
        sequence_output, _, hidden_states, attentions = self.forward_parts(
            input_ids, attention_mask, position_ids, inputs_embeds, output_attentions, output_hidden_states
        )
        return with_extras((sequence_output,), None, hidden_states, attentions)


class ModernBertForMaskedLM(ModernBertPreTrainedModel):
    """ModernBERT with a masked language modeling head; the decoder weight is tied to the token embeddings and
    the decoder has its own bias (`config.decoder_bias`)."""

    output_class = MaskedLMOutput
    loss_input_names = ("labels",)
    _tied_weights_keys = {"decoder.weight": "model.embeddings.tok_embeddings.weight"}

    def __init__(self, config: ModernBertConfig):
        if config.sparse_prediction:
            raise NotImplementedError(
                "sparse_prediction=True (logits only at the labelled tokens) gives outputs whose shape depends on "
                "the labels, which MindSpore graphs cannot compile. Set sparse_prediction=False: the logits are "
                "then dense and the loss is the same (tokens labelled -100 are ignored either way)."
            )
        super().__init__(config)
        self.model = ModernBertModel(config)
        self.head = ModernBertPredictionHead(config)
        self.decoder = Linear(config.hidden_size, config.vocab_size, has_bias=config.decoder_bias)
        self.post_init()

    def get_output_embeddings(self) -> nn.Dense:
        return self.decoder

    def construct(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None, labels=None,
                  output_attentions=None, output_hidden_states=None, return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): token ids to predict; -100 marks
            positions that are not masked (ignored by the loss). See `ModernBertModel.construct` for the others.
        """
        sequence_output, _, hidden_states, attentions = self._run_model(
            input_ids, attention_mask, position_ids, inputs_embeds, output_attentions, output_hidden_states
        )
        logits = self.decoder(self.head(sequence_output))
        return masked_lm_outputs(logits, labels, hidden_states, attentions)


class _ModernBertWithClassifier(ModernBertPreTrainedModel):
    """The classification heads' common part: encoder, prediction head, dropout and a `classifier` Linear."""

    def __init__(self, config: ModernBertConfig, num_outputs: int):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = ModernBertModel(config)
        self.head = ModernBertPredictionHead(config)
        self.drop = Dropout(p=config.classifier_dropout)
        self.classifier = Linear(config.hidden_size, num_outputs)
        self.post_init()

    def _classify(self, hidden_states):
        return self.classifier(self.drop(self.head(hidden_states)))


class ModernBertForSequenceClassification(_ModernBertWithClassifier):
    """ModernBERT with a classification (or regression, `num_labels == 1`) head on the first token's hidden state
    (`classifier_pooling="cls"`) or the mean over real tokens (`"mean"`)."""

    output_class = SequenceClassifierOutput
    loss_input_names = ("labels",)
    # Like transformers, the inferred problem type is stored in the config (and saved with it).
    _prepare_call = BertForSequenceClassification._prepare_call

    def __init__(self, config: ModernBertConfig):
        super().__init__(config, config.num_labels)

    def construct(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None, labels=None,
                  output_attentions=None, output_hidden_states=None, return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size,)`, *optional*): class indices (int32/int64) for single-label
            classification, floats for regression (`num_labels == 1`), or `(batch_size, num_labels)` multi-hot
            floats for multi-label classification; see `config.problem_type`. See `ModernBertModel.construct` for
            the others.
        """
        sequence_output, _, hidden_states, attentions = self._run_model(
            input_ids, attention_mask, position_ids, inputs_embeds, output_attentions, output_hidden_states
        )
        if self.config.classifier_pooling == "mean":
            pooled = mean_pool(sequence_output, attention_mask)
        else:
            pooled = sequence_output[:, 0]
        logits = self._classify(pooled)
        return sequence_classification_outputs(logits, labels, self.config.problem_type, hidden_states, attentions)


class ModernBertForTokenClassification(_ModernBertWithClassifier):
    """ModernBERT with a per-token classification head (e.g. named entity recognition)."""

    output_class = TokenClassifierOutput
    loss_input_names = ("labels",)

    def __init__(self, config: ModernBertConfig):
        super().__init__(config, config.num_labels)

    def construct(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None, labels=None,
                  output_attentions=None, output_hidden_states=None, return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): class index per token, -100 for
            tokens the loss ignores (padding, sub-words). See `ModernBertModel.construct` for the others.
        """
        sequence_output, _, hidden_states, attentions = self._run_model(
            input_ids, attention_mask, position_ids, inputs_embeds, output_attentions, output_hidden_states
        )
        logits = self._classify(sequence_output)
        return token_classification_outputs(logits, labels, hidden_states, attentions)


class ModernBertForQuestionAnswering(_ModernBertWithClassifier):
    """ModernBERT with a span extraction head (start and end logits), e.g. for SQuAD. Like transformers 5.23, it
    takes no `inputs_embeds`."""

    output_class = QuestionAnsweringModelOutput
    loss_input_names = ("start_positions", "end_positions")

    def __init__(self, config: ModernBertConfig):
        super().__init__(config, config.num_labels)

    def construct(self, input_ids=None, attention_mask=None, position_ids=None, start_positions=None,
                  end_positions=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        r"""
        start_positions / end_positions (`Tensor` of shape `(batch_size,)`, *optional*): token index of the span
            start / end; positions outside the sequence are ignored by the loss. See `ModernBertModel.construct`.
        """
        sequence_output, _, hidden_states, attentions = self._run_model(
            input_ids, attention_mask, position_ids, None, output_attentions, output_hidden_states
        )
        logits = self._classify(sequence_output)
        return span_outputs(logits, start_positions, end_positions, hidden_states, attentions)


class ModernBertForMultipleChoice(_ModernBertWithClassifier):
    """ModernBERT with a multiple choice head: one score per choice, softmax over choices. With
    `classifier_pooling="cls"` a choice is represented by its first real token (left or right padding), with
    `"mean"` by the mean over its real tokens."""

    output_class = MultipleChoiceModelOutput
    loss_input_names = ("labels",)

    def __init__(self, config: ModernBertConfig):
        super().__init__(config, 1)

    def construct(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None, labels=None,
                  output_attentions=None, output_hidden_states=None, return_dict=None):
        r"""
        Inputs have shape `(batch_size, num_choices, sequence_length)` (`inputs_embeds` one more axis).
        labels (`Tensor` of shape `(batch_size,)`, *optional*): index of the correct choice.
        """
        num_choices, input_ids, attention_mask, position_ids, inputs_embeds = flatten_choices(
            input_ids, attention_mask, position_ids, inputs_embeds
        )
        sequence_output, _, hidden_states, attentions = self._run_model(
            input_ids, attention_mask, position_ids, inputs_embeds, output_attentions, output_hidden_states
        )
        if self.config.classifier_pooling == "mean":
            pooled = mean_pool(sequence_output, attention_mask)
        elif attention_mask is not None:
            pooled = _first_real_token(sequence_output, attention_mask)
        else:
            pooled = sequence_output[:, 0]
        return multiple_choice_outputs(self._classify(pooled), num_choices, labels, hidden_states, attentions)


def _first_real_token(hidden_states, attention_mask):
    """Hidden state of each row's first non-padding token: transformers' `attention_mask.argmax(-1)` (the first
    maximum; row 0 when a row is all padding)."""
    index = ops.argmax(attention_mask.astype(ms.int32), -1)
    index = index.reshape(-1, 1, 1).broadcast_to((hidden_states.shape[0], 1, hidden_states.shape[2]))
    return ops.gather_elements(hidden_states, 1, index).squeeze(1)
