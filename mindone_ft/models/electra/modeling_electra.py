"""MindSpore ELECTRA, mirroring transformers' `modeling_electra.py`.

ELECTRA is BERT's encoder (the same parameter names under `electra.encoder.layer.N`, reused from
`mindone_ft.models.bert`) behind embeddings of their own width `embedding_size`, projected to `hidden_size` by
`embeddings_project` when the two differ, with ELECTRA's own heads: the replaced-token discriminator
(`ElectraForPreTraining`), the generator (`ElectraForMaskedLM`, its output layer tied to the word embeddings) and
the fine-tuning heads. Names are the Hugging Face ones, so checkpoints map 1:1; every `construct` returns a tuple in
transformers' `return_dict=False` layout, which `MSPreTrainedModel.__call__` turns into the `ModelOutput` users see.
"""

import mindspore as ms
from mindspore import nn
from transformers import ElectraConfig

from ...modeling_layers import (
    ClassificationHead,
    Dropout,
    Embedding,
    LayerNorm,
    Linear,
    SequenceSummary,
    bce_with_logits,
    classifier_dropout_rate,
    extended_attention_mask,
    flatten_choices,
    get_activation,
    masked_lm_outputs,
    multiple_choice_outputs,
    sequence_classification_outputs,
    span_outputs,
    token_classification_outputs,
    with_extras,
)
from ...modeling_outputs import (
    BaseModelOutput,
    ElectraForPreTrainingOutput,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from ...modeling_utils import MSPreTrainedModel
from ..bert.modeling_bert import BertEmbeddings, BertEncoder, BertForSequenceClassification

__all__ = [
    "ElectraPreTrainedModel",
    "ElectraModel",
    "ElectraForPreTraining",
    "ElectraForMaskedLM",
    "ElectraForSequenceClassification",
    "ElectraForMultipleChoice",
    "ElectraForTokenClassification",
    "ElectraForQuestionAnswering",
]


class ElectraEmbeddings(BertEmbeddings):
    """BERT's embeddings (word + position + token type, LayerNorm, dropout) of width `config.embedding_size`."""

    def __init__(self, config: ElectraConfig):
        super().__init__(config, embedding_size=config.embedding_size)


class ElectraDiscriminatorPredictions(nn.Cell):
    """The discriminator head: dense, `config.hidden_act`, then one score per token (replaced or original)."""

    def __init__(self, config: ElectraConfig):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)
        self.activation = get_activation(config.hidden_act)
        self.dense_prediction = Linear(config.hidden_size, 1)

    def construct(self, discriminator_hidden_states):
        hidden_states = self.activation(self.dense(discriminator_hidden_states))
        return self.dense_prediction(hidden_states).squeeze(-1)


class ElectraGeneratorPredictions(nn.Cell):
    """The generator head before its output layer: dense to `embedding_size`, GELU (fixed, as in transformers, not
    `config.hidden_act`), LayerNorm."""

    def __init__(self, config: ElectraConfig):
        super().__init__()
        self.activation = get_activation("gelu")
        self.LayerNorm = LayerNorm(config.embedding_size, eps=config.layer_norm_eps)
        self.dense = Linear(config.hidden_size, config.embedding_size)

    def construct(self, generator_hidden_states):
        return self.LayerNorm(self.activation(self.dense(generator_hidden_states)))


class ElectraPreTrainedModel(MSPreTrainedModel):
    """Base class of the ELECTRA models: `ElectraConfig`, the "electra" prefix and transformers' default
    initialization (normal dense and embedding weights, zero biases and padding row, unit LayerNorms)."""

    config_class = ElectraConfig
    base_model_prefix = "electra"

    def _run_electra(self, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_attentions,
                     output_hidden_states):
        """`self.electra(...)` returning `(sequence_output, hidden_states, attentions)`."""
        return self.electra.forward_parts(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                                          output_attentions, output_hidden_states)


class ElectraModel(ElectraPreTrainedModel):
    """The bare ELECTRA encoder (discriminator or generator), returning `last_hidden_state`; it has no pooler.

    Args:
        config (`ElectraConfig`): model configuration. Only the encoder use is supported: `is_decoder` and
            `add_cross_attention` must be False (`ElectraForCausalLM` is not ported).
    """

    output_class = BaseModelOutput

    def __init__(self, config: ElectraConfig):
        super().__init__(config)
        if config.is_decoder or config.add_cross_attention:
            raise ValueError(
                "mindone_ft's ELECTRA is an encoder only: is_decoder=True / add_cross_attention=True (causal "
                "attention, cross-attention, ElectraForCausalLM) are not supported. Use is_decoder=False and "
                "add_cross_attention=False, e.g. ElectraForMaskedLM for the generator."
            )
        self.embeddings = ElectraEmbeddings(config)
        # Only when the widths differ, as in transformers (the checkpoint has no such key otherwise).
        self.embeddings_project = (
            Linear(config.embedding_size, config.hidden_size)
            if config.embedding_size != config.hidden_size else None
        )
        self.encoder = BertEncoder(config)
        self.post_init()

    def get_input_embeddings(self) -> Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: Embedding) -> None:
        self.embeddings.word_embeddings = value

    def forward_parts(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                      inputs_embeds=None, output_attentions=False, output_hidden_states=False):
        """Encoder pass returning `(sequence_output, hidden_states, attentions)`."""
        hidden_states = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)
        if self.embeddings_project is not None:
            hidden_states = self.embeddings_project(hidden_states)
        additive_mask = None
        if attention_mask is not None:
            additive_mask = extended_attention_mask(attention_mask, hidden_states.dtype)
        return self.encoder(hidden_states, additive_mask, None, output_attentions, output_hidden_states)

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
                of `input_ids` (before `embeddings_project`, like transformers).
            output_attentions / output_hidden_states (`bool`, *optional*): also return per-layer attentions /
                hidden states (defaults from the config). The first hidden state is the projected embedding output.
            return_dict (`bool`, *optional*): return a `ModelOutput` (default `config.return_dict`) or a tuple.
        """
        sequence_output, hidden_states, attentions = self.forward_parts(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_attentions,
            output_hidden_states,
        )
        return with_extras((sequence_output,), None, hidden_states, attentions)


class ElectraForPreTraining(ElectraPreTrainedModel):
    """The ELECTRA discriminator: one score per token, positive when the token was replaced by the generator."""

    output_class = ElectraForPreTrainingOutput
    loss_input_names = ("labels",)

    def __init__(self, config: ElectraConfig):
        super().__init__(config)
        self.electra = ElectraModel(config)
        self.discriminator_predictions = ElectraDiscriminatorPredictions(config)
        self.post_init()

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                  inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                  return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): 1 where the token was replaced, 0
            where it is the original. The loss is the binary cross-entropy over the tokens where `attention_mask`
            is 1 (all tokens without a mask), as in transformers. See `ElectraModel.construct` for the others.
        """
        sequence_output, hidden_states, attentions = self._run_electra(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_attentions,
            output_hidden_states,
        )
        logits = self.discriminator_predictions(sequence_output)
        loss = None
        if labels is not None:
            active = None
            if attention_mask is not None:  # transformers: `attention_mask == 1`, also for float masks
                active = attention_mask.astype(ms.float32).view(logits.shape) == 1
            loss = bce_with_logits(logits, labels.view(logits.shape), active)
        return with_extras((logits,), loss, hidden_states, attentions)


class ElectraForMaskedLM(ElectraPreTrainedModel):
    """The ELECTRA generator: a masked language modeling head whose output layer is tied to the word embeddings."""

    output_class = MaskedLMOutput
    loss_input_names = ("labels",)
    _tied_weights_keys = {"generator_lm_head.weight": "electra.embeddings.word_embeddings.weight"}

    def __init__(self, config: ElectraConfig):
        super().__init__(config)
        self.electra = ElectraModel(config)
        self.generator_predictions = ElectraGeneratorPredictions(config)
        self.generator_lm_head = Linear(config.embedding_size, config.vocab_size)
        self.post_init()

    def get_output_embeddings(self) -> nn.Dense:
        return self.generator_lm_head

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                  inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                  return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): token ids to predict; -100 marks
            positions that are not masked (ignored by the loss). See `ElectraModel.construct` for the others.
        """
        sequence_output, hidden_states, attentions = self._run_electra(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_attentions,
            output_hidden_states,
        )
        prediction_scores = self.generator_lm_head(self.generator_predictions(sequence_output))
        return masked_lm_outputs(prediction_scores, labels, hidden_states, attentions)


class ElectraForSequenceClassification(ElectraPreTrainedModel):
    """ELECTRA with a classification (or regression, `num_labels == 1`) head on the first token: dropout, dense,
    GELU (transformers hard-codes it: "although BERT uses tanh here, it seems Electra authors used gelu"), dropout,
    `out_proj`."""

    output_class = SequenceClassifierOutput
    loss_input_names = ("labels",)
    # Like transformers, the inferred problem type is stored in the config: BERT's rule, shared.
    _prepare_call = BertForSequenceClassification._prepare_call

    def __init__(self, config: ElectraConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.electra = ElectraModel(config)
        self.classifier = ClassificationHead(config, "gelu", classifier_dropout_rate(config))
        self.post_init()

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                  inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                  return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size,)`, *optional*): class indices (int32/int64) for single-label
            classification, floats for regression (`num_labels == 1`), or `(batch_size, num_labels)` multi-hot
            floats for multi-label classification; see `config.problem_type`. See `ElectraModel.construct` for
            the others.
        """
        sequence_output, hidden_states, attentions = self._run_electra(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_attentions,
            output_hidden_states,
        )
        logits = self.classifier(sequence_output)
        return sequence_classification_outputs(logits, labels, self.config.problem_type, hidden_states, attentions)


class ElectraForMultipleChoice(ElectraPreTrainedModel):
    """ELECTRA with a multiple choice head: `sequence_summary` (transformers' `ElectraSequenceSummary`, by default
    the first token, dense, GELU, dropout), one score per choice, softmax over choices."""

    output_class = MultipleChoiceModelOutput
    loss_input_names = ("labels",)

    def __init__(self, config: ElectraConfig):
        super().__init__(config)
        self.electra = ElectraModel(config)
        self.sequence_summary = SequenceSummary(config)
        self.classifier = Linear(config.hidden_size, 1)
        self.post_init()

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
        sequence_output, hidden_states, attentions = self._run_electra(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_attentions,
            output_hidden_states,
        )
        logits = self.classifier(self.sequence_summary(sequence_output))
        return multiple_choice_outputs(logits, num_choices, labels, hidden_states, attentions)


class ElectraForTokenClassification(ElectraPreTrainedModel):
    """ELECTRA with a per-token classification head (e.g. named entity recognition)."""

    output_class = TokenClassifierOutput
    loss_input_names = ("labels",)

    def __init__(self, config: ElectraConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.electra = ElectraModel(config)
        self.dropout = Dropout(p=classifier_dropout_rate(config))
        self.classifier = Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                  inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                  return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): class index per token, -100 for
            tokens the loss ignores (padding, sub-words). See `ElectraModel.construct` for the others.
        """
        sequence_output, hidden_states, attentions = self._run_electra(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_attentions,
            output_hidden_states,
        )
        logits = self.classifier(self.dropout(sequence_output))
        return token_classification_outputs(logits, labels, hidden_states, attentions)


class ElectraForQuestionAnswering(ElectraPreTrainedModel):
    """ELECTRA with a span extraction head (start and end logits), e.g. for SQuAD."""

    output_class = QuestionAnsweringModelOutput
    loss_input_names = ("start_positions", "end_positions")

    def __init__(self, config: ElectraConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.electra = ElectraModel(config)
        self.qa_outputs = Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                  inputs_embeds=None, start_positions=None, end_positions=None, output_attentions=None,
                  output_hidden_states=None, return_dict=None):
        r"""
        start_positions / end_positions (`Tensor` of shape `(batch_size,)`, *optional*): token index of the span
            start / end; positions outside the sequence are ignored by the loss. See `ElectraModel.construct`.
        """
        sequence_output, hidden_states, attentions = self._run_electra(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_attentions,
            output_hidden_states,
        )
        logits = self.qa_outputs(sequence_output)
        return span_outputs(logits, start_positions, end_positions, hidden_states, attentions)
