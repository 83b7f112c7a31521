"""MindSpore ALBERT, mirroring transformers' `modeling_albert.py`.

Module and parameter names are the Hugging Face ones (`albert.encoder.albert_layer_groups.0.albert_layers.0.ffn.weight`
...), so checkpoints map 1:1 in both directions. Every `construct` returns a tuple in transformers' `return_dict=False`
layout; `MSPreTrainedModel.__call__` turns it into the `ModelOutput` users see.

ALBERT is BERT with two changes, and this file is written as that difference: the embeddings are `embedding_size`
wide (BERT's embeddings at that size) and mapped up to `hidden_size` by `encoder.embedding_hidden_mapping_in`; and
the encoder has `num_hidden_groups` groups of `inner_group_num` layers whose parameters are shared: layer `i` of
`num_hidden_layers` runs group `int(i / (num_hidden_layers / num_hidden_groups))`. The classification, token,
span and multiple-choice heads are BERT's, run on the ALBERT encoder.
"""

from typing import Tuple

import mindspore as ms
from mindspore import Parameter, nn
from mindspore.common.initializer import initializer
from transformers import AlbertConfig

from ...modeling_layers import (
    Dropout,
    GradientCheckpointingLayer,
    LayerNorm,
    Linear,
    checkpointed_call,
    extended_attention_mask,
    get_activation,
    masked_lm_outputs,
    pretraining_outputs,
    with_extras,
)
from ...modeling_outputs import AlbertForPreTrainingOutput, BaseModelOutputWithPooling, MaskedLMOutput
from ...modeling_utils import MSPreTrainedModel
from ..bert.modeling_bert import (
    BertEmbeddings,
    BertForMultipleChoice,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    BertSelfAttention,
)

__all__ = [
    "AlbertPreTrainedModel",
    "AlbertModel",
    "AlbertForPreTraining",
    "AlbertForMaskedLM",
    "AlbertForSequenceClassification",
    "AlbertForTokenClassification",
    "AlbertForQuestionAnswering",
    "AlbertForMultipleChoice",
]


class AlbertAttention(BertSelfAttention):
    """BERT's self-attention (query/key/value) with ALBERT's output projection `dense`, dropout and residual
    `LayerNorm` in the same module (BERT keeps them in a separate `attention.output`)."""

    def __init__(self, config: AlbertConfig):
        super().__init__(config)
        self.dense = Linear(config.hidden_size, config.hidden_size)
        self.output_dropout = Dropout(p=config.hidden_dropout_prob)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def construct(self, hidden_states, attention_mask=None, output_attentions=False):
        context, probs = super(AlbertAttention, self).construct(hidden_states, attention_mask, None, output_attentions)
        attention_output = self.output_dropout(self.dense(context))
        return self.LayerNorm(hidden_states + attention_output), probs


class AlbertLayer(nn.Cell):
    """Attention, then the feed-forward `ffn` -> activation -> `ffn_output` with a residual `full_layer_layer_norm`.

    transformers also defines a `dropout` here that its forward never applies, and may split the feed-forward
    into chunks along the sequence (`chunk_size_feed_forward`), which changes memory use, not results: neither is
    reproduced.
    """

    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.full_layer_layer_norm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = AlbertAttention(config)
        self.ffn = Linear(config.hidden_size, config.intermediate_size)
        self.ffn_output = Linear(config.intermediate_size, config.hidden_size)
        self.activation = get_activation(config.hidden_act)

    def construct(self, hidden_states, attention_mask=None, output_attentions=False):
        attention_output, probs = self.attention(hidden_states, attention_mask, output_attentions)
        ffn_output = self.ffn_output(self.activation(self.ffn(attention_output)))
        return self.full_layer_layer_norm(ffn_output + attention_output), probs


class AlbertLayerGroup(GradientCheckpointingLayer):
    """`inner_group_num` layers applied in turn: one set of parameters, run by every layer of its group."""

    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.albert_layers = nn.CellList([AlbertLayer(config) for _ in range(config.inner_group_num)])

    def construct(self, hidden_states, attention_mask=None, output_attentions=False, output_hidden_states=False):
        """Returns `(hidden_states, per-layer hidden states, per-layer attentions)`; the last two are () when not
        asked."""
        all_hidden_states = ()
        all_attentions = ()
        for albert_layer in self.albert_layers:
            hidden_states, probs = albert_layer(hidden_states, attention_mask, output_attentions)
            if output_hidden_states:
                all_hidden_states = all_hidden_states + (hidden_states,)
            if output_attentions:
                all_attentions = all_attentions + (probs,)
        return hidden_states, all_hidden_states, all_attentions


def layer_group_indices(config: AlbertConfig) -> Tuple[int, ...]:
    """The layer group each of the `num_hidden_layers` layers runs, with transformers' formula (float division, so
    3 layers in 2 groups run groups 0, 0, 1)."""
    layers_per_group = config.num_hidden_layers / config.num_hidden_groups
    return tuple(int(i / layers_per_group) for i in range(config.num_hidden_layers))


class AlbertTransformer(nn.Cell):
    """`embedding_hidden_mapping_in` (embedding_size -> hidden_size), then the shared layer groups in layer order."""

    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.embedding_hidden_mapping_in = Linear(config.embedding_size, config.hidden_size)
        self.albert_layer_groups = nn.CellList([AlbertLayerGroup(config) for _ in range(config.num_hidden_groups)])
        # Decided here, in Python: the graph unrolls the loop over these constants.
        self.group_indices = layer_group_indices(config)

    def construct(self, hidden_states, attention_mask=None, output_attentions=False, output_hidden_states=False):
        """Returns `(last_hidden_state, all_hidden_states, all_attentions)`. As in transformers 5.23, which records
        every `AlbertLayer` call, the hidden states are the mapped embeddings plus one per inner layer run
        (`num_hidden_layers * inner_group_num + 1`) and the attentions one per inner layer run."""
        hidden_states = self.embedding_hidden_mapping_in(hidden_states)
        all_hidden_states = (hidden_states,) if output_hidden_states else ()
        all_attentions = ()
        for group_idx in self.group_indices:
            hidden_states, group_hidden_states, group_attentions = checkpointed_call(
                self.albert_layer_groups[group_idx], hidden_states, attention_mask, output_attentions,
                output_hidden_states
            )
            all_hidden_states = all_hidden_states + group_hidden_states
            all_attentions = all_attentions + group_attentions
        return hidden_states, all_hidden_states, all_attentions


class AlbertMLMHead(nn.Cell):
    """`dense` (hidden_size -> embedding_size), activation, `LayerNorm`, then `decoder` (embedding_size ->
    vocab_size) tied to the word embeddings, with an output-only `bias`."""

    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.LayerNorm = LayerNorm(config.embedding_size, eps=config.layer_norm_eps)
        # transformers ties `decoder.bias` to this `bias`; keeping a single parameter gives the same checkpoint keys.
        self.bias = Parameter(initializer("zeros", (config.vocab_size,), ms.float32), name="bias")
        self.dense = Linear(config.hidden_size, config.embedding_size)
        self.decoder = Linear(config.embedding_size, config.vocab_size, has_bias=False)
        self.activation = get_activation(config.hidden_act)

    def construct(self, hidden_states):
        hidden_states = self.LayerNorm(self.activation(self.dense(hidden_states)))
        return self.decoder(hidden_states) + self.bias


class AlbertSOPHead(nn.Cell):
    """Sentence order prediction: dropout and a linear classifier on the pooled output."""

    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.dropout = Dropout(p=config.classifier_dropout_prob)
        self.classifier = Linear(config.hidden_size, config.num_labels)

    def construct(self, pooled_output):
        return self.classifier(self.dropout(pooled_output))


class AlbertPreTrainedModel(MSPreTrainedModel):
    """Base class of the ALBERT models: `AlbertConfig`, the "albert" prefix and ALBERT's weight initialization."""

    config_class = AlbertConfig
    base_model_prefix = "albert"
    classifier_dropout_attribute = "classifier_dropout_prob"  # the rate of the BERT heads' dropout (see below)

    def _init_weights(self, cell: nn.Cell) -> None:
        super()._init_weights(cell)
        if isinstance(cell, AlbertMLMHead):
            self._init_parameter(cell.bias, "zeros")

    def _add_base_model(self, config: AlbertConfig, add_pooling_layer: bool = True) -> None:
        """The hook through which the BERT heads reused below build their encoder: `self.albert`."""
        self.albert = AlbertModel(config, add_pooling_layer=add_pooling_layer)

    def _run_bert(self, input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                  output_attentions, output_hidden_states):
        """The hook through which the BERT heads reused below run their encoder: here `self.albert`. `head_mask`
        is always None (transformers 5.23's ALBERT has no head mask; the heads' `construct` does not take one)."""
        return self.albert.forward_parts(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                                         output_attentions, output_hidden_states)


class AlbertModel(AlbertPreTrainedModel, BertModel):
    """The bare ALBERT encoder, returning `last_hidden_state` and (with `add_pooling_layer`) `pooler_output`.

    Args:
        config (`AlbertConfig`): model configuration.
        add_pooling_layer (`bool`, defaults to `True`): whether to add the [CLS] pooler (`pooler` dense + tanh).
    """

    output_class = BaseModelOutputWithPooling

    def __init__(self, config: AlbertConfig, add_pooling_layer: bool = True):
        MSPreTrainedModel.__init__(self, config)  # not BertModel's: it builds BERT's encoder
        self.embeddings = BertEmbeddings(config, embedding_size=config.embedding_size)
        self.encoder = AlbertTransformer(config)
        self.pooler = Linear(config.hidden_size, config.hidden_size) if add_pooling_layer else None
        self.pooler_activation = get_activation("tanh") if add_pooling_layer else None
        self.post_init()

    def forward_parts(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                      inputs_embeds=None, output_attentions=False, output_hidden_states=False):
        """Encoder pass returning `(sequence_output, pooled_output or None, hidden_states, attentions)`."""
        embedding_output = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)
        extended_mask = None
        if attention_mask is not None:
            extended_mask = extended_attention_mask(attention_mask, embedding_output.dtype)
        sequence_output, hidden_states, attentions = self.encoder(
            embedding_output, extended_mask, output_attentions, output_hidden_states
        )
        pooled_output = None
        if self.pooler is not None:
            pooled_output = self.pooler_activation(self.pooler(sequence_output[:, 0]))
        return sequence_output, pooled_output, hidden_states, attentions

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                  inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        r"""
        Args:
            input_ids (`Tensor` of shape `(batch_size, sequence_length)`): token ids (int32 or int64).
            attention_mask (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): 1 (or True) for tokens
                to attend to, 0 (False) for padding; bool, int or float.
            token_type_ids (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): segment ids (0 or 1).
            position_ids (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): defaults to 0..len-1.
            inputs_embeds (`Tensor` of shape `(batch_size, sequence_length, embedding_size)`, *optional*): instead
                of `input_ids` (note: `embedding_size`, before `embedding_hidden_mapping_in`).
            output_attentions / output_hidden_states (`bool`, *optional*): also return the attentions / hidden
                states of every inner layer run (defaults from the config).
            return_dict (`bool`, *optional*): return a `ModelOutput` (default `config.return_dict`) or a tuple.
        """
        sequence_output, pooled_output, hidden_states, attentions = self.forward_parts(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
            output_attentions, output_hidden_states,
        )
        outputs = (sequence_output,) if pooled_output is None else (sequence_output, pooled_output)
        return with_extras(outputs, None, hidden_states, attentions)


# Heads without the pooler ignore a checkpoint's pooler weights (e.g. loading an `AlbertModel` checkpoint).
_IGNORE_POOLER = MSPreTrainedModel._keys_to_ignore_on_load_unexpected + [r"^albert\.pooler\."]
_TIED_MLM_WEIGHTS = {
    "predictions.decoder.weight": "albert.embeddings.word_embeddings.weight",
    "predictions.decoder.bias": "predictions.bias",
}


class AlbertForPreTraining(AlbertPreTrainedModel):
    """ALBERT with the two pretraining heads: masked language modeling and sentence order prediction."""

    output_class = AlbertForPreTrainingOutput
    loss_input_names = ("labels", "sentence_order_label")
    _tied_weights_keys = _TIED_MLM_WEIGHTS

    def __init__(self, config: AlbertConfig):
        super().__init__(config)
        self.albert = AlbertModel(config)
        self.predictions = AlbertMLMHead(config)
        self.sop_classifier = AlbertSOPHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Dense:
        return self.predictions.decoder

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                  inputs_embeds=None, labels=None, sentence_order_label=None, output_attentions=None,
                  output_hidden_states=None, return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): masked LM targets, -100 = ignored.
        sentence_order_label (`Tensor` of shape `(batch_size,)`, *optional*): 0 = original order (A then B),
            1 = swapped. The loss (sum of both) is returned only when both are given. See `AlbertModel.construct`.
        """
        sequence_output, pooled_output, hidden_states, attentions = self.albert.forward_parts(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
            output_attentions, output_hidden_states,
        )
        prediction_scores = self.predictions(sequence_output)
        sop_scores = self.sop_classifier(pooled_output)
        return pretraining_outputs(
            prediction_scores, sop_scores, labels, sentence_order_label, hidden_states, attentions
        )


class AlbertForMaskedLM(AlbertPreTrainedModel):
    """ALBERT with a masked language modeling head (decoder tied to the word embeddings)."""

    output_class = MaskedLMOutput
    loss_input_names = ("labels",)
    _tied_weights_keys = _TIED_MLM_WEIGHTS
    _keys_to_ignore_on_load_unexpected = _IGNORE_POOLER + [r"^sop_classifier\."]

    def __init__(self, config: AlbertConfig):
        super().__init__(config)
        self.albert = AlbertModel(config, add_pooling_layer=False)
        self.predictions = AlbertMLMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Dense:
        return self.predictions.decoder

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                  inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                  return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): token ids to predict; -100 marks
            positions that are not masked (ignored by the loss). See `AlbertModel.construct` for the others.
        """
        sequence_output, _, hidden_states, attentions = self.albert.forward_parts(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
            output_attentions, output_hidden_states,
        )
        return masked_lm_outputs(self.predictions(sequence_output), labels, hidden_states, attentions)


# The four heads below are BERT's (same module names, layers, losses and outputs): BERT's `__init__` builds the
# encoder through `AlbertPreTrainedModel._add_base_model` and its dropout at `classifier_dropout_prob`, and BERT's
# `construct` reaches the encoder through `AlbertPreTrainedModel._run_bert`. ALBERT's `construct` has no
# `head_mask` (transformers 5.23's has none) and passes None for it.


class AlbertForSequenceClassification(AlbertPreTrainedModel, BertForSequenceClassification):
    """ALBERT with a classification (or regression, `num_labels == 1`) head on the pooled [CLS] output."""

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                  inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                  return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size,)`, *optional*): class indices (int32/int64) for single-label
            classification, floats for regression (`num_labels == 1`), or `(batch_size, num_labels)` multi-hot
            floats for multi-label classification; see `config.problem_type`. See `AlbertModel.construct` for the
            others.
        """
        return super(AlbertForSequenceClassification, self).construct(
            input_ids, attention_mask, token_type_ids, position_ids, None, inputs_embeds, labels, output_attentions,
            output_hidden_states,
        )


class AlbertForTokenClassification(AlbertPreTrainedModel, BertForTokenClassification):
    """ALBERT with a per-token classification head (e.g. named entity recognition)."""

    _keys_to_ignore_on_load_unexpected = _IGNORE_POOLER

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                  inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                  return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): class index per token, -100 for
            tokens the loss ignores (padding, sub-words). See `AlbertModel.construct` for the others.
        """
        return super(AlbertForTokenClassification, self).construct(
            input_ids, attention_mask, token_type_ids, position_ids, None, inputs_embeds, labels, output_attentions,
            output_hidden_states,
        )


class AlbertForQuestionAnswering(AlbertPreTrainedModel, BertForQuestionAnswering):
    """ALBERT with a span extraction head (start and end logits), e.g. for SQuAD."""

    _keys_to_ignore_on_load_unexpected = _IGNORE_POOLER

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                  inputs_embeds=None, start_positions=None, end_positions=None, output_attentions=None,
                  output_hidden_states=None, return_dict=None):
        r"""
        start_positions / end_positions (`Tensor` of shape `(batch_size,)`, *optional*): token index of the span
            start / end; positions outside the sequence are ignored by the loss. See `AlbertModel.construct`.
        """
        return super(AlbertForQuestionAnswering, self).construct(
            input_ids, attention_mask, token_type_ids, position_ids, None, inputs_embeds, start_positions,
            end_positions, output_attentions, output_hidden_states,
        )


class AlbertForMultipleChoice(AlbertPreTrainedModel, BertForMultipleChoice):
    """ALBERT with a multiple choice head: one score per choice from the pooled output, softmax over choices."""

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                  inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                  return_dict=None):
        r"""
        Inputs have shape `(batch_size, num_choices, sequence_length)` (`inputs_embeds` one more axis).
        labels (`Tensor` of shape `(batch_size,)`, *optional*): index of the correct choice.
        """
        return super(AlbertForMultipleChoice, self).construct(
            input_ids, attention_mask, token_type_ids, position_ids, None, inputs_embeds, labels, output_attentions,
            output_hidden_states,
        )
