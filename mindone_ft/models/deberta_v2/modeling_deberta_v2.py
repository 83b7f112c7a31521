"""MindSpore DeBERTa-v2 (and DeBERTa-v3 checkpoints), mirroring transformers' `modeling_deberta_v2.py`.

Module and parameter names are the Hugging Face ones (`deberta.encoder.layer.0.attention.self.query_proj.weight`,
`deberta.encoder.rel_embeddings.weight`, ...), so checkpoints map 1:1 in both directions. Every `construct` returns a
tuple in transformers' `return_dict=False` layout; `MSPreTrainedModel.__call__` turns it into the `ModelOutput`.

Disentangled attention adds content->position (c2p) and position->content (p2c) scores, read from a table of
relative position embeddings at each (query, key) pair's relative distance (log-bucketed in v3). Those indices only
depend on the distance, so they are computed once per model as numpy tables (`make_log_bucket_position`, the same
float32 operations as transformers) and gathered in the graph: no data-dependent shapes inside `construct`.
"""

from typing import Optional, Tuple

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import Normal, initializer
from transformers import DebertaV2Config

from ...modeling_layers import (
    Dropout,
    Embedding,
    GradientCheckpointingLayer,
    LayerNorm,
    Linear,
    Softmax,
    checkpointed_call,
    classifier_dropout_rate,
    dtype_min,
    flatten_choices,
    get_activation,
    masked_lm_outputs,
    mse_loss,
    multiple_choice_outputs,
    sequence_classification_loss,
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
from ...utils import compat
from ..bert.modeling_bert import BertIntermediate, BertOutput, BertPredictionHeadTransform, BertSelfOutput

__all__ = [
    "DebertaV2PreTrainedModel",
    "DebertaV2Model",
    "DebertaV2ForMaskedLM",
    "DebertaV2ForSequenceClassification",
    "DebertaV2ForTokenClassification",
    "DebertaV2ForQuestionAnswering",
    "DebertaV2ForMultipleChoice",
]

# transformers copies these from BERT (same layers, same order, same config attributes).
DebertaV2SelfOutput = BertSelfOutput
DebertaV2Intermediate = BertIntermediate
DebertaV2Output = BertOutput


# ----------------------------------------------------------------------------------------------------------------
# Relative positions (numpy, computed once per model).
# ----------------------------------------------------------------------------------------------------------------


def make_log_bucket_position(relative_pos: np.ndarray, bucket_size: int, max_position: int) -> np.ndarray:
    """transformers' `make_log_bucket_position` in numpy: distances below `bucket_size // 2` are kept, longer ones
    share logarithmically wider buckets up to `max_position`. Returns float32 values, like transformers.

    Computed with the same float32 operations as transformers (int / int -> float32, float32 log and ceil), so
    bucket boundaries come out identical (tested against transformers' function).
    """
    relative_pos = np.asarray(relative_pos, dtype=np.int64)
    sign = np.sign(relative_pos).astype(np.float32)
    mid = bucket_size // 2
    abs_pos = np.where((relative_pos < mid) & (relative_pos > -mid), mid - 1, np.abs(relative_pos))
    with np.errstate(divide="ignore", invalid="ignore"):  # log(0) on the kept distances, discarded below
        log_pos = (
            np.ceil(np.log(abs_pos.astype(np.float32) / np.float32(mid))
                    / np.log(np.float32((max_position - 1) / mid)) * np.float32(mid - 1))
            + np.float32(mid)
        )
    return np.where(abs_pos <= mid, relative_pos.astype(np.float32), log_pos * sign)


def build_relative_position(query_size: int, key_size: int, bucket_size: int = -1,
                            max_position: int = -1) -> np.ndarray:
    """transformers' `build_relative_position` for a query and key of these lengths: `(1, query_size, key_size)`
    int64 `q - k` (log-bucketed when `bucket_size` and `max_position` are positive)."""
    rel_pos_ids = np.arange(query_size, dtype=np.int64)[:, None] - np.arange(key_size, dtype=np.int64)[None, :]
    if bucket_size > 0 and max_position > 0:
        rel_pos_ids = make_log_bucket_position(rel_pos_ids, bucket_size, max_position)
    return rel_pos_ids.astype(np.int64)[None]


def relative_position_index_tables(att_span: int, bucket_size: int,
                                   max_position: int) -> Tuple[int, np.ndarray, np.ndarray]:
    """`(max_distance, c2p_table, p2c_table)`: for each distance `d = q - k` in `[-max_distance, max_distance]`
    (entry `d + max_distance`), the row of the relative embeddings that c2p and p2c attention read, i.e.
    transformers' `clamp(±relative_pos + att_span, 0, 2 * att_span - 1)`.

    Beyond `max_distance` both indices are constant (the distance is past the last bucket, or past `att_span`
    without buckets), so a sequence of any length looks its distances up with `clamp(d, -max_distance,
    max_distance)`: the same indices as transformers, without a table per length.
    """
    max_distance = 2 * max(max_position, att_span) + 2
    distances = np.arange(-max_distance, max_distance + 1, dtype=np.int64)
    if bucket_size > 0 and max_position > 0:
        distances_ids = make_log_bucket_position(distances, bucket_size, max_position).astype(np.int64)
    else:
        distances_ids = distances
    c2p = np.clip(distances_ids + att_span, 0, att_span * 2 - 1).astype(np.int32)
    p2c = np.clip(-distances_ids + att_span, 0, att_span * 2 - 1).astype(np.int32)
    return max_distance, c2p, p2c


def _split_heads(x, num_heads: int):
    """`(batch, seq, heads * head_dim)` -> `(batch, heads, seq, head_dim)` (transformers' `transpose_for_scores`
    with the batch and head axes kept apart)."""
    return x.view(x.shape[0], x.shape[1], num_heads, -1).swapaxes(1, 2)


# BatchMatMul primitives, as in `modeling_layers.eager_attention` (cheaper gradients than `ops.matmul` on CPU).
_matmul = ops.BatchMatMul()
_matmul_transpose_b = ops.BatchMatMul(transpose_b=True)


# ----------------------------------------------------------------------------------------------------------------
# Layers.
# ----------------------------------------------------------------------------------------------------------------


class DisentangledSelfAttention(nn.Cell):
    """Self-attention with disentangled relative position scores (c2p and p2c, `config.pos_att_type`).

    Scores are `q.k / sqrt(d * s) + c2p / sqrt(d * s) + p2c / sqrt(d * s)` with `s = 1 + len(pos_att_type)`;
    masked (query, key) pairs are set to the dtype's minimum before the softmax (transformers' `masked_fill`, so
    fully padded query rows attend uniformly and pass no gradient to their scores).
    """

    def __init__(self, config: DebertaV2Config):
        super().__init__()
        if config.hidden_size % config.num_attention_heads != 0:
            raise ValueError(
                f"The hidden size ({config.hidden_size}) is not a multiple of the number of attention "
                f"heads ({config.num_attention_heads})"
            )
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = getattr(
            config, "attention_head_size", config.hidden_size // config.num_attention_heads
        )
        self.all_head_size = self.num_attention_heads * self.attention_head_size
        self.query_proj = Linear(config.hidden_size, self.all_head_size)
        self.key_proj = Linear(config.hidden_size, self.all_head_size)
        self.value_proj = Linear(config.hidden_size, self.all_head_size)

        self.share_att_key = getattr(config, "share_att_key", False)
        self.pos_att_type = tuple(config.pos_att_type) if config.pos_att_type is not None else ()
        self.relative_attention = getattr(config, "relative_attention", False)
        self.use_c2p = "c2p" in self.pos_att_type
        self.use_p2c = "p2c" in self.pos_att_type
        # transformers counts the position score types even without relative attention.
        scale_factor = 1 + int(self.use_c2p) + int(self.use_p2c)
        # transformers: sqrt(float32(head_dim) * scale_factor) in float32, the divisor of every score term.
        self.scale = float(np.sqrt(np.float32(self.attention_head_size) * np.float32(scale_factor)))

        if self.relative_attention:
            self.pos_dropout = Dropout(p=config.hidden_dropout_prob)
            if not self.share_att_key:
                if self.use_c2p:
                    self.pos_key_proj = Linear(config.hidden_size, self.all_head_size)
                if self.use_p2c:
                    self.pos_query_proj = Linear(config.hidden_size, self.all_head_size)
        self.softmax = Softmax()
        self.dropout = Dropout(p=config.attention_probs_dropout_prob)

    def construct(self, hidden_states, attention_mask, c2p_index=None, p2c_index=None, rel_embeddings=None):
        """
        Args:
            hidden_states: `(batch, seq, hidden)`.
            attention_mask: bool `(batch, 1, seq, seq)`, True where the query may attend to the key.
            c2p_index / p2c_index: int `(seq, seq)` rows of `rel_embeddings` per (query, key) / (key, query) pair.
            rel_embeddings: `(2 * att_span, hidden)` relative position embeddings (already normalized).

        Returns `(context (batch, seq, all_head_size), attention probabilities (batch, heads, seq, seq))`.
        """
        query_layer = _split_heads(self.query_proj(hidden_states), self.num_attention_heads)
        key_layer = _split_heads(self.key_proj(hidden_states), self.num_attention_heads)
        value_layer = _split_heads(self.value_proj(hidden_states), self.num_attention_heads)

        # Same order as transformers: the key is divided by the scale before the product.
        attention_scores = _matmul_transpose_b(query_layer, key_layer / self.scale)
        if self.relative_attention and (self.use_c2p or self.use_p2c):
            rel_embeddings = self.pos_dropout(rel_embeddings)
            attention_scores = attention_scores + self.disentangled_attention_bias(
                query_layer, key_layer, c2p_index, p2c_index, rel_embeddings
            )
        attention_scores = ops.masked_fill(
            attention_scores, ops.logical_not(attention_mask), dtype_min(attention_scores.dtype)
        )
        attention_probs = self.softmax(attention_scores)
        attention_probs = self.dropout(attention_probs)
        context = _matmul(attention_probs, value_layer).swapaxes(1, 2)
        context = context.reshape(context.shape[0], context.shape[1], -1)
        return context, attention_probs

    def _positions(self, projection: nn.Cell, rel_embeddings, batch_size: int):
        """Relative embeddings projected and split into heads, `(batch, heads, 2 * att_span, head_dim)`."""
        layer = _split_heads(projection(rel_embeddings.expand_dims(0)), self.num_attention_heads)
        return ops.broadcast_to(layer, (batch_size,) + layer.shape[1:])

    def disentangled_attention_bias(self, query_layer, key_layer, c2p_index, p2c_index, rel_embeddings):
        """The c2p and p2c scores, `(batch, heads, query, key)`, already divided by the scale."""
        batch_size, num_heads, seq_length = query_layer.shape[0], query_layer.shape[1], query_layer.shape[2]
        index_shape = (batch_size, num_heads, seq_length, seq_length)
        score = None
        if self.use_c2p:  # content -> position: the query against the key's relative position embedding
            key_projection = self.key_proj if self.share_att_key else self.pos_key_proj
            pos_key_layer = self._positions(key_projection, rel_embeddings, batch_size)
            c2p_att = _matmul_transpose_b(query_layer, pos_key_layer)
            c2p_att = ops.gather_elements(c2p_att, 3, ops.broadcast_to(c2p_index, index_shape))
            score = c2p_att / self.scale
        if self.use_p2c:  # position -> content: the key against the query's relative position embedding
            query_projection = self.query_proj if self.share_att_key else self.pos_query_proj
            pos_query_layer = self._positions(query_projection, rel_embeddings, batch_size)
            p2c_att = _matmul_transpose_b(key_layer, pos_query_layer)
            p2c_att = ops.gather_elements(p2c_att, 3, ops.broadcast_to(p2c_index, index_shape)).swapaxes(-1, -2)
            score = p2c_att / self.scale if score is None else score + p2c_att / self.scale
        return score


class DebertaV2Attention(nn.Cell):
    def __init__(self, config: DebertaV2Config):
        super().__init__()
        self.self = DisentangledSelfAttention(config)
        self.output = DebertaV2SelfOutput(config)

    def construct(self, hidden_states, attention_mask, c2p_index=None, p2c_index=None, rel_embeddings=None):
        self_output, probs = self.self(hidden_states, attention_mask, c2p_index, p2c_index, rel_embeddings)
        return self.output(self_output, hidden_states), probs


class DebertaV2Layer(GradientCheckpointingLayer):
    def __init__(self, config: DebertaV2Config):
        super().__init__()
        self.attention = DebertaV2Attention(config)
        self.intermediate = DebertaV2Intermediate(config)
        self.output = DebertaV2Output(config)

    def construct(self, hidden_states, attention_mask, c2p_index=None, p2c_index=None, rel_embeddings=None):
        attention_output, probs = self.attention(hidden_states, attention_mask, c2p_index, p2c_index, rel_embeddings)
        layer_output = self.output(self.intermediate(attention_output), attention_output)
        return layer_output, probs


class Conv1d(nn.Cell):
    """`torch.nn.Conv1d` (stride 1, zero padding) with PyTorch's parameter names and weight layout
    `(out_channels, in_channels // groups, kernel_size)` (MindSpore's `nn.Conv1d` stores a 4-D weight)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0, groups: int = 1):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv1d channels ({in_channels}, {out_channels}) must be multiples of groups={groups}.")
        self.padding = padding
        self.groups = groups
        self.weight = Parameter(
            initializer("zeros", (out_channels, in_channels // groups, kernel_size), ms.float32), name="weight"
        )
        self.bias = Parameter(initializer("zeros", (out_channels,), ms.float32), name="bias")

    def construct(self, x):
        """`(batch, channels, length)` -> `(batch, out_channels, length + 2 * padding - kernel_size + 1)`."""
        return ops.conv1d(x, self.weight, self.bias, 1, "pad", self.padding, 1, self.groups)


class ConvLayer(nn.Cell):
    """The convolution DeBERTa-v2 (xlarge, xxlarge) adds to the first layer's output (`conv_kernel_size > 0`)."""

    def __init__(self, config: DebertaV2Config):
        super().__init__()
        kernel_size = getattr(config, "conv_kernel_size", 3)
        if kernel_size % 2 == 0:
            # transformers pads by (k - 1) // 2, so an even kernel returns one position less and fails there.
            raise ValueError(f"conv_kernel_size must be odd (the output keeps the sequence length), got {kernel_size}.")
        self.conv = Conv1d(config.hidden_size, config.hidden_size, kernel_size, padding=(kernel_size - 1) // 2,
                           groups=getattr(config, "conv_groups", 1))
        self.conv_act = get_activation(getattr(config, "conv_act", "tanh"))
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(p=config.hidden_dropout_prob)

    def construct(self, hidden_states, residual_states, input_mask):
        """`hidden_states`: the first layer's input; `residual_states`: its output; `input_mask`: `(batch, seq)`."""
        out = self.conv(hidden_states.swapaxes(1, 2)).swapaxes(1, 2)
        rmask = (1.0 - input_mask.astype(ms.float32)) != 0  # transformers' (1 - input_mask).bool()
        out = ops.masked_fill(out, rmask.expand_dims(-1), 0.0)
        out = self.conv_act(self.dropout(out))
        output = self.LayerNorm(residual_states + out)
        return output * input_mask.expand_dims(-1).astype(output.dtype)


class DebertaV2Embeddings(nn.Cell):
    """Word embeddings (+ absolute positions when `position_biased_input`, + token types when `type_vocab_size > 0`),
    projected to `hidden_size` when `embedding_size` differs, LayerNorm, zeroed at padding, dropout."""

    def __init__(self, config: DebertaV2Config):
        super().__init__()
        self.embedding_size = getattr(config, "embedding_size", None) or config.hidden_size
        self.word_embeddings = Embedding(config.vocab_size, self.embedding_size, padding_idx=config.pad_token_id)
        self.position_biased_input = getattr(config, "position_biased_input", True)
        self.position_embeddings = (
            Embedding(config.max_position_embeddings, self.embedding_size) if self.position_biased_input else None
        )
        self.token_type_embeddings = (
            Embedding(config.type_vocab_size, self.embedding_size) if config.type_vocab_size > 0 else None
        )
        self.embed_proj = (
            Linear(self.embedding_size, config.hidden_size, has_bias=False)
            if self.embedding_size != config.hidden_size else None
        )
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(p=config.hidden_dropout_prob)

    def construct(self, input_ids=None, token_type_ids=None, position_ids=None, mask=None, inputs_embeds=None):
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        batch_size, seq_length = inputs_embeds.shape[0], inputs_embeds.shape[1]
        embeddings = inputs_embeds
        if self.position_embeddings is not None:
            if position_ids is None:
                position_ids = ops.arange(0, seq_length, dtype=ms.int32).expand_dims(0)
            embeddings = embeddings + self.position_embeddings(position_ids)
        if self.token_type_embeddings is not None:
            if token_type_ids is None:
                token_type_ids = ops.zeros((batch_size, seq_length), ms.int32)
            embeddings = embeddings + self.token_type_embeddings(token_type_ids)
        if self.embed_proj is not None:
            embeddings = self.embed_proj(embeddings)
        embeddings = self.LayerNorm(embeddings)
        if mask is not None:
            embeddings = embeddings * mask.expand_dims(2).astype(embeddings.dtype)
        return self.dropout(embeddings)


class DebertaV2Encoder(nn.Cell):
    """The layers plus what they share: relative position embeddings (`rel_embeddings`, normalized by `LayerNorm`
    when `norm_rel_ebd` has "layer_norm"), the relative position indices, and the optional `ConvLayer`."""

    def __init__(self, config: DebertaV2Config):
        super().__init__()
        self.layer = nn.CellList([DebertaV2Layer(config) for _ in range(config.num_hidden_layers)])
        self.relative_attention = getattr(config, "relative_attention", False)
        if self.relative_attention:
            self.max_relative_positions = getattr(config, "max_relative_positions", -1)
            if self.max_relative_positions < 1:
                self.max_relative_positions = config.max_position_embeddings
            self.position_buckets = getattr(config, "position_buckets", -1)
            att_span = self.position_buckets if self.position_buckets > 0 else self.max_relative_positions
            self.rel_embeddings = Embedding(att_span * 2, config.hidden_size)
            self.max_distance, c2p_table, p2c_table = relative_position_index_tables(
                att_span, self.position_buckets, self.max_relative_positions
            )
            self.c2p_table = Tensor(c2p_table, ms.int32)
            self.p2c_table = Tensor(p2c_table, ms.int32)
        self.norm_rel_ebd = [x.strip() for x in getattr(config, "norm_rel_ebd", "none").lower().split("|")]
        self.use_rel_layer_norm = "layer_norm" in self.norm_rel_ebd
        if self.use_rel_layer_norm:
            self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.conv = ConvLayer(config) if getattr(config, "conv_kernel_size", 0) > 0 else None

    def get_rel_embedding(self):
        if not self.relative_attention:
            return None
        rel_embeddings = self.rel_embeddings.weight
        if self.use_rel_layer_norm:
            rel_embeddings = self.LayerNorm(rel_embeddings)
        return rel_embeddings

    def get_rel_pos(self, seq_length: int):
        """`(c2p_index, p2c_index)`, int32 `(seq, seq)`: transformers' clamped `±relative_pos + att_span` for
        position pairs `(i, j)`, looked up by the distance `i - j`."""
        if not self.relative_attention:
            return None, None
        positions = ops.arange(0, seq_length, dtype=ms.int32)
        distances = positions.expand_dims(1) - positions.expand_dims(0)
        distances = ops.clamp(distances, -self.max_distance, self.max_distance) + self.max_distance
        return ops.gather(self.c2p_table, distances, 0), ops.gather(self.p2c_table, distances, 0)

    def get_attention_mask(self, attention_mask):
        """`(batch, seq)` -> bool `(batch, 1, seq, seq)`: True where both the query and the key are real tokens
        (transformers multiplies the mask by its transpose)."""
        valid = attention_mask != 0
        return ops.logical_and(valid.expand_dims(1).expand_dims(2), valid.expand_dims(1).expand_dims(3))

    def construct(self, hidden_states, attention_mask, output_attentions=False, output_hidden_states=False):
        """Returns `(last_hidden_state, all_hidden_states, all_attentions)`; the last two are () when not asked."""
        input_mask = attention_mask
        attention_mask = self.get_attention_mask(attention_mask)
        c2p_index, p2c_index = self.get_rel_pos(hidden_states.shape[1])
        rel_embeddings = self.get_rel_embedding()
        all_hidden_states = (hidden_states,) if output_hidden_states else ()
        all_attentions = ()
        next_kv = hidden_states
        for i, layer_module in enumerate(self.layer):
            output_states, probs = checkpointed_call(layer_module, next_kv, attention_mask, c2p_index, p2c_index,
                                                     rel_embeddings)
            if output_attentions:
                all_attentions = all_attentions + (probs,)
            if i == 0 and self.conv is not None:
                output_states = self.conv(hidden_states, output_states, input_mask)
            if output_hidden_states:
                all_hidden_states = all_hidden_states + (output_states,)
            next_kv = output_states
        return next_kv, all_hidden_states, all_attentions


class LegacyDebertaV2PredictionHeadTransform(BertPredictionHeadTransform):
    """BERT's head transform (dense, activation, LayerNorm), projecting to `embedding_size`."""

    def __init__(self, config: DebertaV2Config):
        nn.Cell.__init__(self)  # not BERT's __init__: the dense maps hidden_size -> embedding_size here
        self.embedding_size = getattr(config, "embedding_size", None) or config.hidden_size
        self.dense = Linear(config.hidden_size, self.embedding_size)
        self.transform_act_fn = get_activation(config.hidden_act)
        self.LayerNorm = LayerNorm(self.embedding_size, eps=config.layer_norm_eps)


class LegacyDebertaV2LMPredictionHead(nn.Cell):
    """`cls.predictions` (`config.legacy=True`, transformers' default): transform, then the decoder tied to the
    word embeddings, plus an output-only bias.

    transformers ties `decoder.bias` to `bias`; with tied weights the decoder has no bias of its own here and `bias`
    is added, which is the same sum with the same checkpoint keys. With `tie_word_embeddings=False` transformers
    keeps both and uses only `decoder.bias`, and so does this head.
    """

    def __init__(self, config: DebertaV2Config):
        super().__init__()
        self.transform = LegacyDebertaV2PredictionHeadTransform(config)
        self.embedding_size = self.transform.embedding_size
        self.decoder = Linear(self.embedding_size, config.vocab_size, has_bias=not config.tie_word_embeddings)
        self.bias = Parameter(initializer("zeros", (config.vocab_size,), ms.float32), name="bias")

    def construct(self, hidden_states):
        hidden_states = self.decoder(self.transform(hidden_states))
        return hidden_states if self.decoder.has_bias else hidden_states + self.bias


class LegacyDebertaV2OnlyMLMHead(nn.Cell):
    def __init__(self, config: DebertaV2Config):
        super().__init__()
        self.predictions = LegacyDebertaV2LMPredictionHead(config)

    def construct(self, sequence_output):
        return self.predictions(sequence_output)


class DebertaV2LMPredictionHead(nn.Cell):
    """`lm_predictions.lm_head` (`config.legacy=False`, the original DeBERTa head): dense, activation, LayerNorm,
    then a product with the word embedding matrix (passed in, not a parameter of the head) plus `bias`."""

    def __init__(self, config: DebertaV2Config):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)
        self.transform_act_fn = get_activation(config.hidden_act)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.bias = Parameter(initializer("zeros", (config.vocab_size,), ms.float32), name="bias")
        self.matmul_transpose_b = ops.MatMul(transpose_b=True)

    def construct(self, hidden_states, word_embeddings):
        hidden_states = self.LayerNorm(self.transform_act_fn(self.dense(hidden_states)))
        shape = hidden_states.shape
        scores = self.matmul_transpose_b(hidden_states.reshape(-1, shape[-1]), word_embeddings)
        return scores.reshape(shape[:-1] + (-1,)) + self.bias


class DebertaV2OnlyMLMHead(nn.Cell):
    def __init__(self, config: DebertaV2Config):
        super().__init__()
        self.lm_head = DebertaV2LMPredictionHead(config)

    def construct(self, sequence_output, word_embeddings):
        return self.lm_head(sequence_output, word_embeddings)


class ContextPooler(nn.Cell):
    """First token's hidden state through dropout (`pooler_dropout`), a dense layer and `pooler_hidden_act`."""

    def __init__(self, config: DebertaV2Config):
        super().__init__()
        self.dense = Linear(config.pooler_hidden_size, config.pooler_hidden_size)
        self.dropout = Dropout(p=config.pooler_dropout)
        self.activation = get_activation(config.pooler_hidden_act)
        self.output_dim = config.hidden_size

    def construct(self, hidden_states):
        return self.activation(self.dense(self.dropout(hidden_states[:, 0])))


# ----------------------------------------------------------------------------------------------------------------
# Models.
# ----------------------------------------------------------------------------------------------------------------


def _labelled_rows_cross_entropy(logits, labels):
    """Cross-entropy over the rows whose label is >= 0, 0 when there are none (transformers' DeBERTa keeps those
    rows with `nonzero`; a masked mean gives the same loss and gradients without a data-dependent shape)."""
    labels = labels.astype(ms.int32)
    valid = labels >= 0
    log_probs = compat.accurate_log_softmax(logits.astype(ms.float32), axis=-1)
    nll = -ops.gather_elements(log_probs, 1, ops.where(valid, labels, ops.zeros_like(labels)).expand_dims(-1))
    valid = valid.astype(ms.float32)
    return (nll.squeeze(-1) * valid).sum() / ops.maximum(valid.sum(), 1.0)


def deberta_sequence_classification_loss(logits, labels, num_labels: int, problem_type: Optional[str]):
    """The loss of transformers' DeBERTa sequence classification heads. With `config.problem_type` set it is the
    standard one; without it DeBERTa decides by itself (and stores nothing in the config): MSE for one label,
    cross-entropy over rows with a label >= 0 for class indices, and soft-label cross-entropy
    `-(log_softmax(logits) * labels).sum(-1).mean()` for `(batch, num_labels)` label distributions."""
    if problem_type is not None:
        return sequence_classification_loss(logits, labels, num_labels, problem_type)
    if num_labels == 1:
        return mse_loss(logits.view(-1), labels.view(-1))
    if labels.ndim == 1 or labels.shape[-1] == 1:
        return _labelled_rows_cross_entropy(logits, labels.view(-1))
    log_probs = compat.accurate_log_softmax(logits.astype(ms.float32), axis=-1)
    return -((log_probs * labels.astype(ms.float32)).sum(-1)).mean()


class DebertaV2PreTrainedModel(MSPreTrainedModel):
    """Base class of the DeBERTa-v2 models: `DebertaV2Config`, the "deberta" prefix and DeBERTa's initialization."""

    config_class = DebertaV2Config
    base_model_prefix = "deberta"
    # v3 checkpoints without absolute positions may still carry a position table (transformers ignores it too).
    _keys_to_ignore_on_load_unexpected = MSPreTrainedModel._keys_to_ignore_on_load_unexpected + [
        r"position_embeddings"
    ]

    def _init_weights(self, cell: nn.Cell) -> None:
        super()._init_weights(cell)
        if isinstance(cell, (LegacyDebertaV2LMPredictionHead, DebertaV2LMPredictionHead)):
            self._init_parameter(cell.bias, "zeros")
        elif isinstance(cell, Conv1d):  # transformers initializes convolutions like linear layers
            self._init_parameter(cell.weight, Normal(self.config.initializer_range, 0.0))
            self._init_parameter(cell.bias, "zeros")

    def _run_deberta(self, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                     output_attentions, output_hidden_states):
        """`self.deberta(...)` returning `(sequence_output, hidden_states, attentions)`."""
        return self.deberta.forward_parts(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                                          output_attentions, output_hidden_states)


class DebertaV2Model(DebertaV2PreTrainedModel):
    """The bare DeBERTa-v2 encoder, returning `last_hidden_state` (DeBERTa has no pooler in the base model).

    Args:
        config (`DebertaV2Config`): model configuration.
    """

    output_class = BaseModelOutput

    def __init__(self, config: DebertaV2Config):
        super().__init__(config)
        self.embeddings = DebertaV2Embeddings(config)
        self.encoder = DebertaV2Encoder(config)
        self.post_init()

    def get_input_embeddings(self) -> Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: Embedding) -> None:
        self.embeddings.word_embeddings = value

    def forward_parts(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                      inputs_embeds=None, output_attentions=False, output_hidden_states=False):
        """Encoder pass returning `(sequence_output, hidden_states, attentions)` (() when not asked)."""
        if attention_mask is None:
            shape = input_ids.shape if input_ids is not None else inputs_embeds.shape[:-1]
            attention_mask = ops.ones(shape, ms.float32)
        if attention_mask.ndim != 2:
            raise ValueError("DeBERTa-v2 takes a (batch_size, sequence_length) attention_mask, like transformers.")
        embedding_output = self.embeddings(input_ids, token_type_ids, position_ids, attention_mask, inputs_embeds)
        return self.encoder(embedding_output, attention_mask, output_attentions, output_hidden_states)

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                  inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        r"""
        Args:
            input_ids (`Tensor` of shape `(batch_size, sequence_length)`): token ids (int32 or int64).
            attention_mask (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): 1 (or True) for tokens
                to attend to, 0 (False) for padding; bool, int or float. Padding positions are also zeroed in the
                embedding output, like transformers.
            token_type_ids (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): segment ids; ignored
                when `config.type_vocab_size == 0` (DeBERTa-v3).
            position_ids (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): absolute positions, used
                only with `config.position_biased_input`; defaults to 0..len-1.
            inputs_embeds (`Tensor` of shape `(batch_size, sequence_length, embedding_size)`, *optional*): instead
                of `input_ids`.
            output_attentions / output_hidden_states (`bool`, *optional*): also return per-layer attentions /
                hidden states (defaults from the config).
            return_dict (`bool`, *optional*): return a `ModelOutput` (default `config.return_dict`) or a tuple.
        """
        sequence_output, hidden_states, attentions = self.forward_parts(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
            output_attentions, output_hidden_states,
        )
        return with_extras((sequence_output,), None, hidden_states, attentions)


class DebertaV2ForMaskedLM(DebertaV2PreTrainedModel):
    """DeBERTa-v2 with a masked language modeling head: `cls.predictions` (decoder tied to the word embeddings)
    when `config.legacy` (transformers' default), else the original `lm_predictions.lm_head`."""

    output_class = MaskedLMOutput
    loss_input_names = ("labels",)
    _tied_weights_keys = {
        "cls.predictions.decoder.bias": "cls.predictions.bias",
        "cls.predictions.decoder.weight": "deberta.embeddings.word_embeddings.weight",
    }
    _keys_to_ignore_on_load_unexpected = DebertaV2PreTrainedModel._keys_to_ignore_on_load_unexpected + [
        r"mask_predictions.*"
    ]

    def __init__(self, config: DebertaV2Config):
        super().__init__(config)
        self.legacy = config.legacy
        self.deberta = DebertaV2Model(config)
        if self.legacy:
            self.cls = LegacyDebertaV2OnlyMLMHead(config)
        else:
            self._tied_weights_keys = {}
            self.lm_predictions = DebertaV2OnlyMLMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> Optional[nn.Dense]:
        """The legacy decoder (tied to the word embeddings). The non-legacy head multiplies by the word embedding
        matrix itself and has nothing to tie, so None (transformers returns its `dense`, which it does not tie)."""
        return self.cls.predictions.decoder if self.legacy else None

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                  inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                  return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): token ids to predict; -100 marks
            positions that are not masked (ignored by the loss). See `DebertaV2Model.construct` for the others.
        """
        sequence_output, hidden_states, attentions = self._run_deberta(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
            output_attentions, output_hidden_states,
        )
        if self.legacy:
            prediction_scores = self.cls(sequence_output)
        else:
            prediction_scores = self.lm_predictions(sequence_output, self.deberta.embeddings.word_embeddings.weight)
        return masked_lm_outputs(prediction_scores, labels, hidden_states, attentions)


class _DebertaV2WithContextPooler(DebertaV2PreTrainedModel):
    """The sequence classification and multiple choice heads' common part: encoder, `ContextPooler`, dropout
    (`cls_dropout`, else `hidden_dropout_prob`) and a `classifier` Linear."""

    def __init__(self, config: DebertaV2Config, num_outputs: int):
        super().__init__(config)
        self.num_labels = getattr(config, "num_labels", 2)
        self.deberta = DebertaV2Model(config)
        self.pooler = ContextPooler(config)
        self.classifier = Linear(self.pooler.output_dim, num_outputs)
        self.dropout = Dropout(p=classifier_dropout_rate(config, "cls_dropout"))
        self.post_init()

    def _classify(self, sequence_output):
        return self.classifier(self.dropout(self.pooler(sequence_output)))


class DebertaV2ForSequenceClassification(_DebertaV2WithContextPooler):
    """DeBERTa-v2 with a classification (or regression, `num_labels == 1`) head on the `ContextPooler` output.

    Without `config.problem_type` the loss follows DeBERTa's own rule (see `deberta_sequence_classification_loss`),
    and, like transformers, the config is not updated.
    """

    output_class = SequenceClassifierOutput
    loss_input_names = ("labels",)

    def __init__(self, config: DebertaV2Config):
        super().__init__(config, getattr(config, "num_labels", 2))

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                  inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                  return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size,)`, *optional*): class indices (rows with a negative label are left
            out of the loss), floats for regression (`num_labels == 1`), or `(batch_size, num_labels)` label
            distributions (soft-label cross-entropy unless `config.problem_type` says otherwise). See
            `DebertaV2Model.construct` for the others.
        """
        sequence_output, hidden_states, attentions = self._run_deberta(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
            output_attentions, output_hidden_states,
        )
        logits = self._classify(sequence_output)
        loss = None
        if labels is not None:
            if self.config.problem_type is None and self.num_labels == 1:
                logits = logits.view(-1)  # transformers returns the regression logits flattened in this case
            loss = deberta_sequence_classification_loss(logits, labels, self.num_labels, self.config.problem_type)
        return with_extras((logits,), loss, hidden_states, attentions)


class DebertaV2ForTokenClassification(DebertaV2PreTrainedModel):
    """DeBERTa-v2 with a per-token classification head (e.g. named entity recognition)."""

    output_class = TokenClassifierOutput
    loss_input_names = ("labels",)

    def __init__(self, config: DebertaV2Config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.deberta = DebertaV2Model(config)
        self.dropout = Dropout(p=config.hidden_dropout_prob)
        self.classifier = Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                  inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                  return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): class index per token, -100 for
            tokens the loss ignores. See `DebertaV2Model.construct` for the others.
        """
        sequence_output, hidden_states, attentions = self._run_deberta(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
            output_attentions, output_hidden_states,
        )
        logits = self.classifier(self.dropout(sequence_output))
        return token_classification_outputs(logits, labels, hidden_states, attentions)


class DebertaV2ForQuestionAnswering(DebertaV2PreTrainedModel):
    """DeBERTa-v2 with a span extraction head (start and end logits), e.g. for SQuAD."""

    output_class = QuestionAnsweringModelOutput
    loss_input_names = ("start_positions", "end_positions")

    def __init__(self, config: DebertaV2Config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.deberta = DebertaV2Model(config)
        self.qa_outputs = Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                  inputs_embeds=None, start_positions=None, end_positions=None, output_attentions=None,
                  output_hidden_states=None, return_dict=None):
        r"""
        start_positions / end_positions (`Tensor` of shape `(batch_size,)`, *optional*): token index of the span
            start / end; positions outside the sequence are ignored by the loss. See `DebertaV2Model.construct`.
        """
        sequence_output, hidden_states, attentions = self._run_deberta(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
            output_attentions, output_hidden_states,
        )
        logits = self.qa_outputs(sequence_output)
        return span_outputs(logits, start_positions, end_positions, hidden_states, attentions)


class DebertaV2ForMultipleChoice(_DebertaV2WithContextPooler):
    """DeBERTa-v2 with a multiple choice head: one score per choice from the `ContextPooler` output."""

    output_class = MultipleChoiceModelOutput
    loss_input_names = ("labels",)

    def __init__(self, config: DebertaV2Config):
        super().__init__(config, 1)

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                  inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                  return_dict=None):
        r"""
        Inputs have shape `(batch_size, num_choices, sequence_length)` (`inputs_embeds` one more axis).
        labels (`Tensor` of shape `(batch_size,)`, *optional*): index of the correct choice.
        """
        num_choices, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds = flatten_choices(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds
        )
        sequence_output, hidden_states, attentions = self._run_deberta(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
            output_attentions, output_hidden_states,
        )
        return multiple_choice_outputs(self._classify(sequence_output), num_choices, labels, hidden_states, attentions)
