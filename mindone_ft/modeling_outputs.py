"""User-facing model outputs, field for field the same as `transformers.modeling_outputs`.

Models compute tuples inside their (possibly graph-compiled) `construct`, because dict-like outputs lose dtypes
inside MindSpore graphs. `MSPreTrainedModel.__call__` wraps that tuple into one of these classes at the
boundary. `transformers.utils.ModelOutput` itself does not need torch, so we subclass it: indexing by position
(`outputs[0]`), by name (`outputs["logits"]`), attribute access and `to_tuple()` behave exactly as in transformers.
"""

from dataclasses import dataclass
from typing import Optional, Tuple

import mindspore as ms
from transformers.utils import ModelOutput

__all__ = [
    "ModelOutput",
    "BaseModelOutput",
    "BaseModelOutputWithPooling",
    "SequenceClassifierOutput",
    "TokenClassifierOutput",
    "QuestionAnsweringModelOutput",
    "MaskedLMOutput",
    "MultipleChoiceModelOutput",
    "BertForPreTrainingOutput",
    "AlbertForPreTrainingOutput",
    "ElectraForPreTrainingOutput",
    "BaseModelOutputWithPast",
    "CausalLMOutputWithPast",
    "SequenceClassifierOutputWithPast",
    "BaseModelOutputWithPastAndCrossAttentions",
    "CausalLMOutputWithCrossAttentions",
]


@dataclass
class BaseModelOutput(ModelOutput):
    """
    Args:
        last_hidden_state (`ms.Tensor` of shape `(batch_size, sequence_length, hidden_size)`):
            Hidden states at the output of the last layer.
        hidden_states (`tuple(ms.Tensor)`, *optional*, returned when `output_hidden_states=True`):
            Embedding output plus one tensor per layer, each `(batch_size, sequence_length, hidden_size)`.
        attentions (`tuple(ms.Tensor)`, *optional*, returned when `output_attentions=True`):
            Attention probabilities per layer, each `(batch_size, num_heads, sequence_length, sequence_length)`.
    """

    last_hidden_state: Optional[ms.Tensor] = None
    hidden_states: Optional[Tuple[ms.Tensor, ...]] = None
    attentions: Optional[Tuple[ms.Tensor, ...]] = None


@dataclass
class BaseModelOutputWithPooling(ModelOutput):
    """
    Args:
        last_hidden_state (`ms.Tensor` of shape `(batch_size, sequence_length, hidden_size)`):
            Hidden states at the output of the last layer.
        pooler_output (`ms.Tensor` of shape `(batch_size, hidden_size)`):
            First token's last hidden state passed through the pooler's dense layer and tanh.
        hidden_states (`tuple(ms.Tensor)`, *optional*, returned when `output_hidden_states=True`):
            Embedding output plus one tensor per layer.
        attentions (`tuple(ms.Tensor)`, *optional*, returned when `output_attentions=True`):
            Attention probabilities per layer.
    """

    last_hidden_state: Optional[ms.Tensor] = None
    pooler_output: Optional[ms.Tensor] = None
    hidden_states: Optional[Tuple[ms.Tensor, ...]] = None
    attentions: Optional[Tuple[ms.Tensor, ...]] = None


@dataclass
class SequenceClassifierOutput(ModelOutput):
    """
    Args:
        loss (`ms.Tensor` of shape `()`, *optional*, returned when `labels` is given):
            Classification (or regression if `config.num_labels == 1`) loss.
        logits (`ms.Tensor` of shape `(batch_size, config.num_labels)`):
            Classification (or regression) scores before softmax.
        hidden_states (`tuple(ms.Tensor)`, *optional*): see [`BaseModelOutput`].
        attentions (`tuple(ms.Tensor)`, *optional*): see [`BaseModelOutput`].
    """

    loss: Optional[ms.Tensor] = None
    logits: Optional[ms.Tensor] = None
    hidden_states: Optional[Tuple[ms.Tensor, ...]] = None
    attentions: Optional[Tuple[ms.Tensor, ...]] = None


@dataclass
class TokenClassifierOutput(ModelOutput):
    """
    Args:
        loss (`ms.Tensor` of shape `()`, *optional*, returned when `labels` is given): Classification loss.
        logits (`ms.Tensor` of shape `(batch_size, sequence_length, config.num_labels)`):
            Classification scores before softmax.
        hidden_states (`tuple(ms.Tensor)`, *optional*): see [`BaseModelOutput`].
        attentions (`tuple(ms.Tensor)`, *optional*): see [`BaseModelOutput`].
    """

    loss: Optional[ms.Tensor] = None
    logits: Optional[ms.Tensor] = None
    hidden_states: Optional[Tuple[ms.Tensor, ...]] = None
    attentions: Optional[Tuple[ms.Tensor, ...]] = None


@dataclass
class QuestionAnsweringModelOutput(ModelOutput):
    """
    Args:
        loss (`ms.Tensor` of shape `()`, *optional*, returned when `start_positions` and `end_positions` are given):
            Mean of the start and end cross-entropy losses.
        start_logits (`ms.Tensor` of shape `(batch_size, sequence_length)`): Span-start scores before softmax.
        end_logits (`ms.Tensor` of shape `(batch_size, sequence_length)`): Span-end scores before softmax.
        hidden_states (`tuple(ms.Tensor)`, *optional*): see [`BaseModelOutput`].
        attentions (`tuple(ms.Tensor)`, *optional*): see [`BaseModelOutput`].
    """

    loss: Optional[ms.Tensor] = None
    start_logits: Optional[ms.Tensor] = None
    end_logits: Optional[ms.Tensor] = None
    hidden_states: Optional[Tuple[ms.Tensor, ...]] = None
    attentions: Optional[Tuple[ms.Tensor, ...]] = None


@dataclass
class MaskedLMOutput(ModelOutput):
    """
    Args:
        loss (`ms.Tensor` of shape `()`, *optional*, returned when `labels` is given): Masked language modeling loss.
        logits (`ms.Tensor` of shape `(batch_size, sequence_length, config.vocab_size)`):
            Prediction scores of the language modeling head before softmax.
        hidden_states (`tuple(ms.Tensor)`, *optional*): see [`BaseModelOutput`].
        attentions (`tuple(ms.Tensor)`, *optional*): see [`BaseModelOutput`].
    """

    loss: Optional[ms.Tensor] = None
    logits: Optional[ms.Tensor] = None
    hidden_states: Optional[Tuple[ms.Tensor, ...]] = None
    attentions: Optional[Tuple[ms.Tensor, ...]] = None


@dataclass
class MultipleChoiceModelOutput(ModelOutput):
    """
    Args:
        loss (`ms.Tensor` of shape `()`, *optional*, returned when `labels` is given): Classification loss.
        logits (`ms.Tensor` of shape `(batch_size, num_choices)`): Scores of each choice before softmax.
        hidden_states (`tuple(ms.Tensor)`, *optional*): see [`BaseModelOutput`].
        attentions (`tuple(ms.Tensor)`, *optional*): see [`BaseModelOutput`].
    """

    loss: Optional[ms.Tensor] = None
    logits: Optional[ms.Tensor] = None
    hidden_states: Optional[Tuple[ms.Tensor, ...]] = None
    attentions: Optional[Tuple[ms.Tensor, ...]] = None


@dataclass
class BertForPreTrainingOutput(ModelOutput):
    """
    Args:
        loss (`ms.Tensor` of shape `()`, *optional*, returned when `labels` and `next_sentence_label` are given):
            Sum of the masked language modeling loss and the next sentence prediction loss.
        prediction_logits (`ms.Tensor` of shape `(batch_size, sequence_length, config.vocab_size)`):
            Prediction scores of the language modeling head before softmax.
        seq_relationship_logits (`ms.Tensor` of shape `(batch_size, 2)`):
            Next sentence prediction scores (True/False continuation) before softmax.
        hidden_states (`tuple(ms.Tensor)`, *optional*): see [`BaseModelOutput`].
        attentions (`tuple(ms.Tensor)`, *optional*): see [`BaseModelOutput`].
    """

    loss: Optional[ms.Tensor] = None
    prediction_logits: Optional[ms.Tensor] = None
    seq_relationship_logits: Optional[ms.Tensor] = None
    hidden_states: Optional[Tuple[ms.Tensor, ...]] = None
    attentions: Optional[Tuple[ms.Tensor, ...]] = None


@dataclass
class ElectraForPreTrainingOutput(ModelOutput):
    """
    Args:
        loss (`ms.Tensor` of shape `()`, *optional*, returned when `labels` is given):
            Replaced token detection loss (binary cross-entropy over the tokens the attention mask keeps).
        logits (`ms.Tensor` of shape `(batch_size, sequence_length)`):
            Discriminator score of each token (positive: replaced) before the sigmoid.
        hidden_states (`tuple(ms.Tensor)`, *optional*): see [`BaseModelOutput`].
        attentions (`tuple(ms.Tensor)`, *optional*): see [`BaseModelOutput`].
    """

    loss: Optional[ms.Tensor] = None
    logits: Optional[ms.Tensor] = None
    hidden_states: Optional[Tuple[ms.Tensor, ...]] = None
    attentions: Optional[Tuple[ms.Tensor, ...]] = None


@dataclass
class AlbertForPreTrainingOutput(ModelOutput):
    """
    Args:
        loss (`ms.Tensor` of shape `()`, *optional*, returned when `labels` and `sentence_order_label` are given):
            Sum of the masked language modeling loss and the sentence order prediction loss.
        prediction_logits (`ms.Tensor` of shape `(batch_size, sequence_length, config.vocab_size)`):
            Prediction scores of the language modeling head before softmax.
        sop_logits (`ms.Tensor` of shape `(batch_size, 2)`):
            Sentence order prediction scores (original/swapped order) before softmax.
        hidden_states (`tuple(ms.Tensor)`, *optional*): see [`BaseModelOutput`].
        attentions (`tuple(ms.Tensor)`, *optional*): see [`BaseModelOutput`].
    """

    loss: Optional[ms.Tensor] = None
    prediction_logits: Optional[ms.Tensor] = None
    sop_logits: Optional[ms.Tensor] = None
    hidden_states: Optional[Tuple[ms.Tensor, ...]] = None
    attentions: Optional[Tuple[ms.Tensor, ...]] = None


# Decoder models: `past_key_values` is a `mindone_ft.cache_utils` cache object (see `MSPreTrainedModel.__call__`).


@dataclass
class BaseModelOutputWithPast(ModelOutput):
    """
    Args:
        last_hidden_state (`ms.Tensor` of shape `(batch_size, sequence_length, hidden_size)`):
            Hidden states at the output of the last layer (after the final norm).
        past_key_values (`Cache`, *optional*): the key/value cache (with `use_cache`, outside training).
        hidden_states (`tuple(ms.Tensor)`, *optional*): see [`BaseModelOutput`].
        attentions (`tuple(ms.Tensor)`, *optional*): see [`BaseModelOutput`].
    """

    last_hidden_state: Optional[ms.Tensor] = None
    past_key_values: Optional[object] = None
    hidden_states: Optional[Tuple[ms.Tensor, ...]] = None
    attentions: Optional[Tuple[ms.Tensor, ...]] = None


@dataclass
class CausalLMOutputWithPast(ModelOutput):
    """
    Args:
        loss (`ms.Tensor` of shape `()`, *optional*, returned when `labels` is given):
            Next-token prediction loss (labels shifted by one inside the model, -100 ignored).
        logits (`ms.Tensor` of shape `(batch_size, sequence_length, config.vocab_size)`):
            Prediction scores of the language modeling head before softmax (`logits_to_keep` positions only when
            given).
        past_key_values (`Cache`, *optional*): the key/value cache (with `use_cache`, outside training).
        hidden_states (`tuple(ms.Tensor)`, *optional*): see [`BaseModelOutput`].
        attentions (`tuple(ms.Tensor)`, *optional*): see [`BaseModelOutput`].
    """

    loss: Optional[ms.Tensor] = None
    logits: Optional[ms.Tensor] = None
    past_key_values: Optional[object] = None
    hidden_states: Optional[Tuple[ms.Tensor, ...]] = None
    attentions: Optional[Tuple[ms.Tensor, ...]] = None


@dataclass
class SequenceClassifierOutputWithPast(ModelOutput):
    """
    Args:
        loss (`ms.Tensor` of shape `()`, *optional*, returned when `labels` is given):
            Classification (or regression if `config.num_labels == 1`) loss.
        logits (`ms.Tensor` of shape `(batch_size, config.num_labels)`):
            Scores at each row's last non-padding token, before softmax.
        past_key_values (`Cache`, *optional*): the key/value cache (with `use_cache`, outside training).
        hidden_states (`tuple(ms.Tensor)`, *optional*): see [`BaseModelOutput`].
        attentions (`tuple(ms.Tensor)`, *optional*): see [`BaseModelOutput`].
    """

    loss: Optional[ms.Tensor] = None
    logits: Optional[ms.Tensor] = None
    past_key_values: Optional[object] = None
    hidden_states: Optional[Tuple[ms.Tensor, ...]] = None
    attentions: Optional[Tuple[ms.Tensor, ...]] = None


# GPT-2's outputs carry a `cross_attentions` field (its blocks can cross-attend to an encoder in transformers); it is
# never returned here: mindone_ft's GPT-2 rejects `add_cross_attention`.


@dataclass
class BaseModelOutputWithPastAndCrossAttentions(BaseModelOutputWithPast):
    """
    Args:
        last_hidden_state, past_key_values, hidden_states, attentions: see [`BaseModelOutputWithPast`].
        cross_attentions (*optional*): attention over an encoder's states; never returned (always None).
    """

    cross_attentions: Optional[Tuple[ms.Tensor, ...]] = None


@dataclass
class CausalLMOutputWithCrossAttentions(CausalLMOutputWithPast):
    """
    Args:
        loss, logits, past_key_values, hidden_states, attentions: see [`CausalLMOutputWithPast`].
        cross_attentions (*optional*): attention over an encoder's states; never returned (always None).
    """

    cross_attentions: Optional[Tuple[ms.Tensor, ...]] = None
