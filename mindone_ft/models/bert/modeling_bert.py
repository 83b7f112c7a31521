"""MindSpore BERT, mirroring transformers' `modeling_bert.py`.

Module and parameter names are the Hugging Face ones (`bert.encoder.layer.0.attention.self.query.weight`, ...), so
checkpoints map 1:1 in both directions. Every `construct` returns a tuple in transformers' `return_dict=False`
layout; `MSPreTrainedModel.__call__` turns it into the `ModelOutput` users see.
"""

from typing import Optional

import mindspore as ms
from mindspore import Parameter, nn, ops
from mindspore.common.initializer import initializer
from transformers import BertConfig

from ...modeling_outputs import (
    BaseModelOutputWithPooling,
    BertForPreTrainingOutput,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from ...modeling_layers import (
    Dropout,
    Embedding,
    GradientCheckpointingLayer,
    LayerNorm,
    Linear,
    MultiHeadSelfAttention,
    checkpointed_call,
    classifier_dropout_rate,
    expand_head_mask,
    extended_attention_mask,
    flatten_choices,
    get_activation,
    infer_problem_type,
    masked_lm_outputs,
    multiple_choice_outputs,
    pretraining_outputs,
    sequence_classification_outputs,
    span_outputs,
    token_classification_outputs,
    with_extras,
)
from ...modeling_utils import MSPreTrainedModel

__all__ = [
    "BertPreTrainedModel",
    "BertModel",
    "BertForPreTraining",
    "BertForMaskedLM",
    "BertForSequenceClassification",
    "BertForMultipleChoice",
    "BertForTokenClassification",
    "BertForQuestionAnswering",
]


class BertEmbeddings(nn.Cell):
    """Sum of word, position and token type embeddings, then LayerNorm and dropout.

    `embedding_size` defaults to `config.hidden_size`; families with narrower embeddings (ELECTRA) pass their own.
    """

    def __init__(self, config: BertConfig, embedding_size: Optional[int] = None):
        super().__init__()
        size = config.hidden_size if embedding_size is None else embedding_size
        self.word_embeddings = Embedding(config.vocab_size, size, padding_idx=config.pad_token_id)
        self.position_embeddings = Embedding(config.max_position_embeddings, size)
        self.token_type_embeddings = Embedding(config.type_vocab_size, size)
        self.LayerNorm = LayerNorm(size, eps=config.layer_norm_eps)
        self.dropout = Dropout(p=config.hidden_dropout_prob)

    def construct(self, input_ids=None, token_type_ids=None, position_ids=None, inputs_embeds=None):
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        batch_size, seq_length = inputs_embeds.shape[0], inputs_embeds.shape[1]
        if position_ids is None:
            position_ids = ops.arange(0, seq_length, dtype=ms.int32).expand_dims(0)
        if token_type_ids is None:
            token_type_ids = ops.zeros((batch_size, seq_length), ms.int32)
        embeddings = inputs_embeds + self.token_type_embeddings(token_type_ids)
        embeddings = embeddings + self.position_embeddings(position_ids)
        embeddings = self.LayerNorm(embeddings)
        return self.dropout(embeddings)


class BertSelfAttention(MultiHeadSelfAttention):
    def __init__(self, config: BertConfig):
        super().__init__(config.hidden_size, config.num_attention_heads, config.attention_probs_dropout_prob)
        self.query = Linear(config.hidden_size, self.all_head_size)
        self.key = Linear(config.hidden_size, self.all_head_size)
        self.value = Linear(config.hidden_size, self.all_head_size)

    def construct(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False):
        return self.attend(
            self.query(hidden_states), self.key(hidden_states), self.value(hidden_states), attention_mask, head_mask,
            output_attentions,
        )


class BertSelfOutput(nn.Cell):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(p=config.hidden_dropout_prob)

    def construct(self, hidden_states, input_tensor):
        hidden_states = self.dropout(self.dense(hidden_states))
        return self.LayerNorm(hidden_states + input_tensor)


class BertAttention(nn.Cell):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config)

    def construct(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False):
        context, probs = self.self(hidden_states, attention_mask, head_mask, output_attentions)
        return self.output(context, hidden_states), probs


class BertIntermediate(nn.Cell):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = get_activation(config.hidden_act)

    def construct(self, hidden_states):
        return self.intermediate_act_fn(self.dense(hidden_states))


class BertOutput(nn.Cell):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(p=config.hidden_dropout_prob)

    def construct(self, hidden_states, input_tensor):
        hidden_states = self.dropout(self.dense(hidden_states))
        return self.LayerNorm(hidden_states + input_tensor)


class BertLayer(GradientCheckpointingLayer):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def construct(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False):
        attention_output, probs = self.attention(hidden_states, attention_mask, head_mask, output_attentions)
        layer_output = self.output(self.intermediate(attention_output), attention_output)
        return layer_output, probs


class BertEncoder(nn.Cell):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.CellList([BertLayer(config) for _ in range(config.num_hidden_layers)])

    def construct(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False,
                  output_hidden_states=False):
        """Returns `(last_hidden_state, all_hidden_states, all_attentions)`; the last two are () when not asked."""
        all_hidden_states = ()
        all_attentions = ()
        for i, layer_module in enumerate(self.layer):
            if output_hidden_states:
                all_hidden_states = all_hidden_states + (hidden_states,)
            layer_head_mask = head_mask[i] if head_mask is not None else None
            hidden_states, probs = checkpointed_call(layer_module, hidden_states, attention_mask, layer_head_mask,
                                                     output_attentions)
            if output_attentions:
                all_attentions = all_attentions + (probs,)
        if output_hidden_states:
            all_hidden_states = all_hidden_states + (hidden_states,)
        return hidden_states, all_hidden_states, all_attentions


class BertPooler(nn.Cell):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)
        self.activation = get_activation("tanh")

    def construct(self, hidden_states):
        # "Pool" by taking the hidden state of the first token ([CLS]).
        return self.activation(self.dense(hidden_states[:, 0]))


class BertPredictionHeadTransform(nn.Cell):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)
        self.transform_act_fn = get_activation(config.hidden_act)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def construct(self, hidden_states):
        return self.LayerNorm(self.transform_act_fn(self.dense(hidden_states)))


class BertLMPredictionHead(nn.Cell):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        # The output weights are the input embeddings (tied), with an output-only bias per token. transformers
        # ties `decoder.bias` to this `bias`; keeping a single parameter gives the same checkpoint keys.
        self.decoder = Linear(config.hidden_size, config.vocab_size, has_bias=False)
        self.bias = Parameter(initializer("zeros", (config.vocab_size,), ms.float32), name="bias")

    def construct(self, hidden_states):
        return self.decoder(self.transform(hidden_states)) + self.bias


class BertOnlyMLMHead(nn.Cell):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.predictions = BertLMPredictionHead(config)

    def construct(self, sequence_output):
        return self.predictions(sequence_output)


class BertPreTrainingHeads(nn.Cell):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.predictions = BertLMPredictionHead(config)
        self.seq_relationship = Linear(config.hidden_size, 2)

    def construct(self, sequence_output, pooled_output):
        return self.predictions(sequence_output), self.seq_relationship(pooled_output)



class BertPreTrainedModel(MSPreTrainedModel):
    """Base class of the BERT models: `BertConfig`, the "bert" prefix and BERT's weight initialization."""

    config_class = BertConfig
    base_model_prefix = "bert"
    # The config attribute holding the task heads' dropout rate (None: `hidden_dropout_prob`); families reusing
    # the heads name theirs (ALBERT: `classifier_dropout_prob`).
    classifier_dropout_attribute = "classifier_dropout"

    def _init_weights(self, cell: nn.Cell) -> None:
        super()._init_weights(cell)
        if isinstance(cell, BertLMPredictionHead):
            self._init_parameter(cell.bias, "zeros")

    def _add_base_model(self, config: BertConfig, add_pooling_layer: bool = True) -> None:
        """`self.bert = BertModel(...)`. Families reusing these heads override it to set their own base model under
        their `base_model_prefix` (RoBERTa: `self.roberta`), which keeps their checkpoint names."""
        self.bert = BertModel(config, add_pooling_layer=add_pooling_layer)

    def _run_bert(self, input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                  output_attentions, output_hidden_states):
        """`self.bert(...)` (the base model under `base_model_prefix`) returning `(sequence_output, pooled_output,
        hidden_states, attentions)`."""
        base_model = getattr(self, self.base_model_prefix)
        return base_model.forward_parts(input_ids, attention_mask, token_type_ids, position_ids, head_mask,
                                        inputs_embeds, output_attentions, output_hidden_states)


class BertModel(BertPreTrainedModel):
    """The bare BERT encoder, returning `last_hidden_state` and (with `add_pooling_layer`) `pooler_output`.

    Args:
        config (`BertConfig`): model configuration.
        add_pooling_layer (`bool`, defaults to `True`): whether to add the [CLS] pooler (dense + tanh).
    """

    output_class = BaseModelOutputWithPooling
    embeddings_class = BertEmbeddings  # RoBERTa's derive position ids from the padding

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = self.embeddings_class(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.num_hidden_layers = config.num_hidden_layers
        self.num_attention_heads = config.num_attention_heads
        self.post_init()

    def get_input_embeddings(self) -> Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: Embedding) -> None:
        self.embeddings.word_embeddings = value

    def forward_parts(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                      head_mask=None, inputs_embeds=None, output_attentions=False, output_hidden_states=False):
        """Encoder pass returning `(sequence_output, pooled_output or None, hidden_states, attentions)`."""
        embedding_output = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)
        dtype = embedding_output.dtype
        extended_mask = None
        if attention_mask is not None:
            extended_mask = extended_attention_mask(attention_mask, dtype)
        if head_mask is not None:
            head_mask = expand_head_mask(head_mask, self.num_hidden_layers, self.num_attention_heads, dtype)
        sequence_output, hidden_states, attentions = self.encoder(
            embedding_output, extended_mask, head_mask, output_attentions, output_hidden_states
        )
        pooled_output = self.pooler(sequence_output) if self.pooler is not None else None
        return sequence_output, pooled_output, hidden_states, attentions

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                  inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        r"""
        Args:
            input_ids (`Tensor` of shape `(batch_size, sequence_length)`): token ids (int32 or int64).
            attention_mask (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): 1 (or True) for tokens
                to attend to, 0 (False) for padding; bool, int or float.
            token_type_ids (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): segment ids (0 or 1).
            position_ids (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): defaults to 0..len-1.
            head_mask (`Tensor` of shape `(num_heads,)` or `(num_layers, num_heads)`, *optional*): 1 keeps a head,
                0 masks it.
            inputs_embeds (`Tensor` of shape `(batch_size, sequence_length, hidden_size)`, *optional*): instead of
                `input_ids`.
            output_attentions / output_hidden_states (`bool`, *optional*): also return per-layer attentions /
                hidden states (defaults from the config).
            return_dict (`bool`, *optional*): return a `ModelOutput` (default `config.return_dict`) or a tuple.
        """
        sequence_output, pooled_output, hidden_states, attentions = self.forward_parts(
            input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
            output_attentions, output_hidden_states,
        )
        outputs = (sequence_output,) if pooled_output is None else (sequence_output, pooled_output)
        return with_extras(outputs, None, hidden_states, attentions)


class BertForPreTraining(BertPreTrainedModel):
    """BERT with the two pretraining heads: masked language modeling and next sentence prediction."""

    output_class = BertForPreTrainingOutput
    loss_input_names = ("labels", "next_sentence_label")
    _tied_weights_keys = {
        "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    }

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config)
        self.cls = BertPreTrainingHeads(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Dense:
        return self.cls.predictions.decoder

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                  inputs_embeds=None, labels=None, next_sentence_label=None, output_attentions=None,
                  output_hidden_states=None, return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): masked LM targets, -100 = ignored.
        next_sentence_label (`Tensor` of shape `(batch_size,)`, *optional*): 0 = continuation, 1 = random.
        The loss (sum of both) is returned only when both are given. See `BertModel.construct` for the others.
        """
        sequence_output, pooled_output, hidden_states, attentions = self._run_bert(
            input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
            output_attentions, output_hidden_states,
        )
        prediction_scores, seq_relationship_score = self.cls(sequence_output, pooled_output)
        return pretraining_outputs(
            prediction_scores, seq_relationship_score, labels, next_sentence_label, hidden_states, attentions
        )


class BertForMaskedLM(BertPreTrainedModel):
    """BERT with a masked language modeling head (decoder tied to the word embeddings)."""

    output_class = MaskedLMOutput
    loss_input_names = ("labels",)
    _tied_weights_keys = BertForPreTraining._tied_weights_keys
    _keys_to_ignore_on_load_unexpected = MSPreTrainedModel._keys_to_ignore_on_load_unexpected + [
        r"^bert\.pooler\.", r"^cls\.seq_relationship\."
    ]

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Dense:
        return self.cls.predictions.decoder

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                  inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                  return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): token ids to predict; -100 marks
            positions that are not masked (ignored by the loss). See `BertModel.construct` for the others.
        """
        sequence_output, _, hidden_states, attentions = self._run_bert(
            input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
            output_attentions, output_hidden_states,
        )
        return masked_lm_outputs(self.cls(sequence_output), labels, hidden_states, attentions)



class BertForSequenceClassification(BertPreTrainedModel):
    """BERT with a classification (or regression, `num_labels == 1`) head on the pooled [CLS] output."""

    output_class = SequenceClassifierOutput
    loss_input_names = ("labels",)

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self._add_base_model(config)
        self.dropout = Dropout(p=classifier_dropout_rate(config, self.classifier_dropout_attribute))
        self.classifier = Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def _prepare_call(self, arguments):
        # Like transformers, the inferred problem type is stored in the config (and saved with it).
        labels = arguments.get("labels")
        if labels is not None and self.config.problem_type is None:
            self.config.problem_type = infer_problem_type(self.num_labels, labels)

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                  inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                  return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size,)`, *optional*): class indices (int32/int64) for single-label
            classification, floats for regression (`num_labels == 1`), or `(batch_size, num_labels)` multi-hot
            floats for multi-label classification; see `config.problem_type`. See `BertModel.construct` for the
            others.
        """
        _, pooled_output, hidden_states, attentions = self._run_bert(
            input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
            output_attentions, output_hidden_states,
        )
        logits = self.classifier(self.dropout(pooled_output))
        return sequence_classification_outputs(logits, labels, self.config.problem_type, hidden_states, attentions)


class BertForMultipleChoice(BertPreTrainedModel):
    """BERT with a multiple choice head: one score per choice from the pooled output, softmax over choices."""

    output_class = MultipleChoiceModelOutput
    loss_input_names = ("labels",)

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self._add_base_model(config)
        self.dropout = Dropout(p=classifier_dropout_rate(config, self.classifier_dropout_attribute))
        self.classifier = Linear(config.hidden_size, 1)
        self.post_init()

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                  inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                  return_dict=None):
        r"""
        Inputs have shape `(batch_size, num_choices, sequence_length)` (`inputs_embeds` one more axis).
        labels (`Tensor` of shape `(batch_size,)`, *optional*): index of the correct choice.
        """
        num_choices, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds = flatten_choices(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds
        )
        _, pooled_output, hidden_states, attentions = self._run_bert(
            input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
            output_attentions, output_hidden_states,
        )
        logits = self.classifier(self.dropout(pooled_output))
        return multiple_choice_outputs(logits, num_choices, labels, hidden_states, attentions)


class BertForTokenClassification(BertPreTrainedModel):
    """BERT with a per-token classification head (e.g. named entity recognition)."""

    output_class = TokenClassifierOutput
    loss_input_names = ("labels",)
    _keys_to_ignore_on_load_unexpected = MSPreTrainedModel._keys_to_ignore_on_load_unexpected + [r"^bert\.pooler\."]

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self._add_base_model(config, add_pooling_layer=False)
        self.dropout = Dropout(p=classifier_dropout_rate(config, self.classifier_dropout_attribute))
        self.classifier = Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                  inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                  return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): class index per token, -100 for
            tokens the loss ignores (padding, sub-words). See `BertModel.construct` for the others.
        """
        sequence_output, _, hidden_states, attentions = self._run_bert(
            input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
            output_attentions, output_hidden_states,
        )
        logits = self.classifier(self.dropout(sequence_output))
        return token_classification_outputs(logits, labels, hidden_states, attentions)


class BertForQuestionAnswering(BertPreTrainedModel):
    """BERT with a span extraction head (start and end logits), e.g. for SQuAD."""

    output_class = QuestionAnsweringModelOutput
    loss_input_names = ("start_positions", "end_positions")
    _keys_to_ignore_on_load_unexpected = MSPreTrainedModel._keys_to_ignore_on_load_unexpected + [r"^bert\.pooler\."]

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self._add_base_model(config, add_pooling_layer=False)
        self.qa_outputs = Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                  inputs_embeds=None, start_positions=None, end_positions=None, output_attentions=None,
                  output_hidden_states=None, return_dict=None):
        r"""
        start_positions / end_positions (`Tensor` of shape `(batch_size,)`, *optional*): token index of the span
            start / end; positions outside the sequence are ignored by the loss. See `BertModel.construct`.
        """
        sequence_output, _, hidden_states, attentions = self._run_bert(
            input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
            output_attentions, output_hidden_states,
        )
        logits = self.qa_outputs(sequence_output)
        return span_outputs(logits, start_positions, end_positions, hidden_states, attentions)
