"""MindSpore MPNet, mirroring transformers' `modeling_mpnet.py`.

Module and parameter names are the Hugging Face ones (`mpnet.encoder.layer.0.attention.attn.q.weight`, ...), so
checkpoints map 1:1 in both directions. Every `construct` returns a tuple in transformers' `return_dict=False`
layout; `MSPreTrainedModel.__call__` turns it into the `ModelOutput` users see. MPNet is BERT without token types,
with RoBERTa-style position ids and a T5-style relative position bias that the encoder computes once and adds to
every layer's attention scores; the layer's feed-forward part, the encoder loop and the pooler are BERT's.
"""

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import initializer
from transformers import MPNetConfig

from ...modeling_layers import (
    ClassificationHead,
    Dropout,
    Embedding,
    LayerNorm,
    Linear,
    MultiHeadSelfAttention,
    extended_attention_mask,
    flatten_choices,
    get_activation,
    masked_lm_outputs,
    multiple_choice_outputs,
    position_ids_from_input_ids,
    position_ids_from_inputs_embeds,
    relative_position_bucket,
    sequence_classification_outputs,
    span_outputs,
    token_classification_outputs,
    with_extras,
)
from ...modeling_outputs import (
    BaseModelOutputWithPooling,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from ...modeling_utils import MSPreTrainedModel
from ..bert.modeling_bert import (
    BertEncoder,
    BertForSequenceClassification,
    BertIntermediate,
    BertLayer,
    BertOutput,
    BertPooler,
)

__all__ = [
    "MPNetPreTrainedModel",
    "MPNetModel",
    "MPNetForMaskedLM",
    "MPNetForSequenceClassification",
    "MPNetForMultipleChoice",
    "MPNetForTokenClassification",
    "MPNetForQuestionAnswering",
]

# transformers' MPNet fixes these: the padding index of both embedding tables (whatever `config.pad_token_id`
# says) and the bucketing of relative positions (`compute_position_bias` is always called with its defaults;
# `config.relative_attention_num_buckets` only sizes the bias table).
PADDING_IDX = 1
NUM_BUCKETS = 32
MAX_DISTANCE = 128


class MPNetEmbeddings(nn.Cell):
    """Sum of word and position embeddings (no token types), then LayerNorm and dropout. Position ids count real
    tokens from `PADDING_IDX + 1` (padding gets `PADDING_IDX`), like RoBERTa."""

    def __init__(self, config: MPNetConfig):
        super().__init__()
        self.padding_idx = PADDING_IDX
        self.word_embeddings = Embedding(config.vocab_size, config.hidden_size, padding_idx=self.padding_idx)
        self.position_embeddings = Embedding(
            config.max_position_embeddings, config.hidden_size, padding_idx=self.padding_idx
        )
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(p=config.hidden_dropout_prob)

    def construct(self, input_ids=None, position_ids=None, inputs_embeds=None):
        if position_ids is None:
            if input_ids is not None:
                position_ids = position_ids_from_input_ids(input_ids, self.padding_idx)
            else:  # padding cannot be seen in embeddings
                position_ids = position_ids_from_inputs_embeds(inputs_embeds, self.padding_idx)
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        embeddings = inputs_embeds + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))


class MPNetSelfAttention(MultiHeadSelfAttention):
    """Multi-head self-attention with its output projection (`o`) inside. The additive `attention_mask` it gets
    already holds the relative position bias (see `MPNetEncoder`)."""

    def __init__(self, config: MPNetConfig):
        super().__init__(config.hidden_size, config.num_attention_heads, config.attention_probs_dropout_prob,
                         mask_needs_gradient=True)  # it holds the relative position bias
        self.q = Linear(config.hidden_size, self.all_head_size)
        self.k = Linear(config.hidden_size, self.all_head_size)
        self.v = Linear(config.hidden_size, self.all_head_size)
        self.o = Linear(config.hidden_size, config.hidden_size)

    def construct(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False):
        # transformers adds the bias and then the mask to the scaled scores; adding their sum instead gives the
        # same scores at attended positions and the dtype's minimum at masked ones.
        context, probs = self.attend(
            self.q(hidden_states), self.k(hidden_states), self.v(hidden_states), attention_mask, head_mask,
            output_attentions,
        )
        return self.o(context), probs


class MPNetAttention(nn.Cell):
    """Self-attention, then dropout, residual and LayerNorm."""

    def __init__(self, config: MPNetConfig):
        super().__init__()
        self.attn = MPNetSelfAttention(config)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(p=config.hidden_dropout_prob)

    def construct(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False):
        context, probs = self.attn(hidden_states, attention_mask, head_mask, output_attentions)
        return self.LayerNorm(self.dropout(context) + hidden_states), probs


class MPNetLayer(BertLayer):
    """`MPNetAttention` followed by BERT's feed-forward part (`intermediate`, `output`); `BertLayer`'s forward."""

    def __init__(self, config: MPNetConfig):
        nn.Cell.__init__(self)  # not BertLayer.__init__, which would build BERT's attention
        self.attention = MPNetAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)


class MPNetEncoder(BertEncoder):
    """The layers plus the relative position bias table (`relative_attention_bias`, one value per bucket and
    head), computed once per forward and shared by all layers; the loop is `BertEncoder`'s."""

    def __init__(self, config: MPNetConfig):
        nn.Cell.__init__(self)  # not BertEncoder.__init__, which would build BERT layers
        if config.relative_attention_num_buckets < NUM_BUCKETS:
            raise ValueError(
                f"relative_attention_num_buckets={config.relative_attention_num_buckets} is not supported: MPNet "
                f"(as transformers computes it) puts relative positions into {NUM_BUCKETS} buckets whatever the "
                f"config says, so a smaller bias table is indexed out of range. Use at least {NUM_BUCKETS}."
            )
        self.n_heads = config.num_attention_heads
        self.layer = nn.CellList([MPNetLayer(config) for _ in range(config.num_hidden_layers)])
        self.relative_attention_bias = Embedding(config.relative_attention_num_buckets, self.n_heads)
        # Bucket of every relative position a sequence of up to max_position_embeddings tokens can have,
        # indexed by `relative position + max_relative`.
        self.max_relative = config.max_position_embeddings - 1
        relative = np.arange(-self.max_relative, self.max_relative + 1)
        buckets = relative_position_bucket(relative, num_buckets=NUM_BUCKETS, max_distance=MAX_DISTANCE)
        self.bucket_table = Tensor(buckets.astype(np.int32))

    def compute_position_bias(self, hidden_states):
        """`(1, heads, seq, seq)` bias from the buckets of `key position - query position`."""
        positions = ops.arange(0, hidden_states.shape[1], dtype=ms.int32)
        relative_position = positions.expand_dims(0) - positions.expand_dims(1)
        buckets = ops.gather(self.bucket_table, relative_position + self.max_relative, 0)
        values = self.relative_attention_bias(buckets)  # (query, key, heads)
        return values.transpose(2, 0, 1).expand_dims(0)

    def construct(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False,
                  output_hidden_states=False):
        """Returns `(last_hidden_state, all_hidden_states, all_attentions)`; the last two are () when not asked."""
        additive_mask = self.compute_position_bias(hidden_states)
        if attention_mask is not None:
            additive_mask = additive_mask + attention_mask
        return super(MPNetEncoder, self).construct(
            hidden_states, additive_mask, head_mask, output_attentions, output_hidden_states
        )


class MPNetLMHead(nn.Cell):
    """dense -> gelu -> layer_norm -> decoder (tied to the word embeddings) + an output-only bias per token."""

    def __init__(self, config: MPNetConfig):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)
        self.activation = get_activation("gelu")  # fixed in transformers, not config.hidden_act
        self.layer_norm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        # transformers ties `decoder.bias` to this `bias`; keeping a single parameter gives the same checkpoint keys.
        self.decoder = Linear(config.hidden_size, config.vocab_size, has_bias=False)
        self.bias = Parameter(initializer("zeros", (config.vocab_size,), ms.float32), name="bias")

    def construct(self, features):
        return self.decoder(self.layer_norm(self.activation(self.dense(features)))) + self.bias


class MPNetPreTrainedModel(MSPreTrainedModel):
    """Base class of the MPNet models: `MPNetConfig`, the "mpnet" prefix and MPNet's weight initialization."""

    config_class = MPNetConfig
    base_model_prefix = "mpnet"

    def _init_weights(self, cell: nn.Cell) -> None:
        super()._init_weights(cell)
        if isinstance(cell, MPNetLMHead):
            self._init_parameter(cell.bias, "zeros")

    def _run_mpnet(self, input_ids, attention_mask, position_ids, inputs_embeds, output_attentions,
                   output_hidden_states):
        """`self.mpnet(...)` returning `(sequence_output, pooled_output, hidden_states, attentions)`."""
        return self.mpnet.forward_parts(input_ids, attention_mask, position_ids, inputs_embeds, output_attentions,
                                        output_hidden_states)


class MPNetModel(MPNetPreTrainedModel):
    """The bare MPNet encoder, returning `last_hidden_state` and (with `add_pooling_layer`) `pooler_output`.

    Args:
        config (`MPNetConfig`): model configuration.
        add_pooling_layer (`bool`, defaults to `True`): whether to add the first-token pooler (dense + tanh).
    """

    output_class = BaseModelOutputWithPooling

    def __init__(self, config: MPNetConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = MPNetEmbeddings(config)
        self.encoder = MPNetEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self) -> Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: Embedding) -> None:
        self.embeddings.word_embeddings = value

    def forward_parts(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None,
                      output_attentions=False, output_hidden_states=False):
        """Encoder pass returning `(sequence_output, pooled_output or None, hidden_states, attentions)`."""
        embedding_output = self.embeddings(input_ids, position_ids, inputs_embeds)
        extended_mask = None
        if attention_mask is not None:
            extended_mask = extended_attention_mask(attention_mask, embedding_output.dtype)
        sequence_output, hidden_states, attentions = self.encoder(
            embedding_output, extended_mask, None, output_attentions, output_hidden_states
        )
        pooled_output = self.pooler(sequence_output) if self.pooler is not None else None
        return sequence_output, pooled_output, hidden_states, attentions

    def construct(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None,
                  output_attentions=None, output_hidden_states=None, return_dict=None):
        r"""
        Args:
            input_ids (`Tensor` of shape `(batch_size, sequence_length)`): token ids (int32 or int64).
            attention_mask (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): 1 (or True) for tokens
                to attend to, 0 (False) for padding; bool, int or float.
            position_ids (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): defaults to RoBERTa-style
                ids from `input_ids` (real tokens count from 2, padding tokens get 1).
            inputs_embeds (`Tensor` of shape `(batch_size, sequence_length, hidden_size)`, *optional*): instead of
                `input_ids` (positions then count from 2 on every token).
            output_attentions / output_hidden_states (`bool`, *optional*): also return per-layer attentions /
                hidden states (defaults from the config).
            return_dict (`bool`, *optional*): return a `ModelOutput` (default `config.return_dict`) or a tuple.
        """
        sequence_output, pooled_output, hidden_states, attentions = self.forward_parts(
            input_ids, attention_mask, position_ids, inputs_embeds, output_attentions, output_hidden_states
        )
        outputs = (sequence_output,) if pooled_output is None else (sequence_output, pooled_output)
        return with_extras(outputs, None, hidden_states, attentions)


class MPNetForMaskedLM(MPNetPreTrainedModel):
    """MPNet with a masked language modeling head (decoder tied to the word embeddings)."""

    output_class = MaskedLMOutput
    loss_input_names = ("labels",)
    _tied_weights_keys = {
        "lm_head.decoder.weight": "mpnet.embeddings.word_embeddings.weight",
        "lm_head.decoder.bias": "lm_head.bias",
    }
    _keys_to_ignore_on_load_unexpected = MSPreTrainedModel._keys_to_ignore_on_load_unexpected + [r"^mpnet\.pooler\."]

    def __init__(self, config: MPNetConfig):
        super().__init__(config)
        self.mpnet = MPNetModel(config, add_pooling_layer=False)
        self.lm_head = MPNetLMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Dense:
        return self.lm_head.decoder

    def construct(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None, labels=None,
                  output_attentions=None, output_hidden_states=None, return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): token ids to predict; -100 marks
            positions that are not masked (ignored by the loss). See `MPNetModel.construct` for the others.
        """
        sequence_output, _, hidden_states, attentions = self._run_mpnet(
            input_ids, attention_mask, position_ids, inputs_embeds, output_attentions, output_hidden_states
        )
        return masked_lm_outputs(self.lm_head(sequence_output), labels, hidden_states, attentions)


class MPNetForSequenceClassification(MPNetPreTrainedModel):
    """MPNet with a classification (or regression, `num_labels == 1`) head on the first token: dropout, dense, tanh,
    dropout, `out_proj` (transformers' `MPNetClassificationHead`, dropping out at `hidden_dropout_prob`)."""

    output_class = SequenceClassifierOutput
    loss_input_names = ("labels",)
    _keys_to_ignore_on_load_unexpected = MSPreTrainedModel._keys_to_ignore_on_load_unexpected + [r"^mpnet\.pooler\."]
    # Like transformers, the inferred problem type is stored in the config (and saved with it).
    _prepare_call = BertForSequenceClassification._prepare_call

    def __init__(self, config: MPNetConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.mpnet = MPNetModel(config, add_pooling_layer=False)
        self.classifier = ClassificationHead(config, "tanh", config.hidden_dropout_prob)
        self.post_init()

    def construct(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None, labels=None,
                  output_attentions=None, output_hidden_states=None, return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size,)`, *optional*): class indices (int32/int64) for single-label
            classification, floats for regression (`num_labels == 1`), or `(batch_size, num_labels)` multi-hot
            floats for multi-label classification; see `config.problem_type`. See `MPNetModel.construct` for the
            others.
        """
        sequence_output, _, hidden_states, attentions = self._run_mpnet(
            input_ids, attention_mask, position_ids, inputs_embeds, output_attentions, output_hidden_states
        )
        logits = self.classifier(sequence_output)
        return sequence_classification_outputs(logits, labels, self.config.problem_type, hidden_states, attentions)


class MPNetForMultipleChoice(MPNetPreTrainedModel):
    """MPNet with a multiple choice head: one score per choice from the pooled output, softmax over choices."""

    output_class = MultipleChoiceModelOutput
    loss_input_names = ("labels",)

    def __init__(self, config: MPNetConfig):
        super().__init__(config)
        self.mpnet = MPNetModel(config)
        self.dropout = Dropout(p=config.hidden_dropout_prob)
        self.classifier = Linear(config.hidden_size, 1)
        self.post_init()

    def construct(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None, labels=None,
                  output_attentions=None, output_hidden_states=None, return_dict=None):
        r"""
        Inputs have shape `(batch_size, num_choices, sequence_length)` (`inputs_embeds` one more axis).
        labels (`Tensor` of shape `(batch_size,)`, *optional*): index of the correct choice.
        """
        num_choices, input_ids, attention_mask, position_ids, inputs_embeds = flatten_choices(
            input_ids, attention_mask, position_ids, inputs_embeds
        )
        _, pooled_output, hidden_states, attentions = self._run_mpnet(
            input_ids, attention_mask, position_ids, inputs_embeds, output_attentions, output_hidden_states
        )
        logits = self.classifier(self.dropout(pooled_output))
        return multiple_choice_outputs(logits, num_choices, labels, hidden_states, attentions)


class MPNetForTokenClassification(MPNetPreTrainedModel):
    """MPNet with a per-token classification head (e.g. named entity recognition)."""

    output_class = TokenClassifierOutput
    loss_input_names = ("labels",)
    _keys_to_ignore_on_load_unexpected = MSPreTrainedModel._keys_to_ignore_on_load_unexpected + [r"^mpnet\.pooler\."]

    def __init__(self, config: MPNetConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.mpnet = MPNetModel(config, add_pooling_layer=False)
        self.dropout = Dropout(p=config.hidden_dropout_prob)
        self.classifier = Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def construct(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None, labels=None,
                  output_attentions=None, output_hidden_states=None, return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): class index per token, -100 for
            tokens the loss ignores (padding, sub-words). See `MPNetModel.construct` for the others.
        """
        sequence_output, _, hidden_states, attentions = self._run_mpnet(
            input_ids, attention_mask, position_ids, inputs_embeds, output_attentions, output_hidden_states
        )
        logits = self.classifier(self.dropout(sequence_output))
        return token_classification_outputs(logits, labels, hidden_states, attentions)


class MPNetForQuestionAnswering(MPNetPreTrainedModel):
    """MPNet with a span extraction head (start and end logits), e.g. for SQuAD."""

    output_class = QuestionAnsweringModelOutput
    loss_input_names = ("start_positions", "end_positions")
    _keys_to_ignore_on_load_unexpected = MSPreTrainedModel._keys_to_ignore_on_load_unexpected + [r"^mpnet\.pooler\."]

    def __init__(self, config: MPNetConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.mpnet = MPNetModel(config, add_pooling_layer=False)
        self.qa_outputs = Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def construct(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None,
                  start_positions=None, end_positions=None, output_attentions=None, output_hidden_states=None,
                  return_dict=None):
        r"""
        start_positions / end_positions (`Tensor` of shape `(batch_size,)`, *optional*): token index of the span
            start / end; positions outside the sequence are ignored by the loss. See `MPNetModel.construct`.
        """
        sequence_output, _, hidden_states, attentions = self._run_mpnet(
            input_ids, attention_mask, position_ids, inputs_embeds, output_attentions, output_hidden_states
        )
        logits = self.qa_outputs(sequence_output)
        return span_outputs(logits, start_positions, end_positions, hidden_states, attentions)
