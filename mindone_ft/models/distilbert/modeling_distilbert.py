"""MindSpore DistilBERT, mirroring transformers' `modeling_distilbert.py`.

Module and parameter names are the Hugging Face ones (`distilbert.transformer.layer.0.attention.q_lin.weight`, ...),
so checkpoints map 1:1 in both directions. Every `construct` returns a tuple in transformers' `return_dict=False`
layout; `MSPreTrainedModel.__call__` turns it into the `ModelOutput` users see. DistilBERT is BERT without token
types and pooler, with its own names; the encoder loop is BERT's.
"""

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn, ops
from transformers import DistilBertConfig

from ...modeling_layers import (
    Dropout,
    Embedding,
    GradientCheckpointingLayer,
    LayerNorm,
    Linear,
    MultiHeadSelfAttention,
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
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from ...modeling_utils import MSPreTrainedModel
from ..bert.modeling_bert import BertEncoder, BertForSequenceClassification

__all__ = [
    "DistilBertPreTrainedModel",
    "DistilBertModel",
    "DistilBertForMaskedLM",
    "DistilBertForSequenceClassification",
    "DistilBertForMultipleChoice",
    "DistilBertForTokenClassification",
    "DistilBertForQuestionAnswering",
]

LAYER_NORM_EPS = 1e-12  # fixed in transformers' DistilBERT (not a config attribute)


def sinusoidal_position_embeddings(n_pos: int, dim: int) -> np.ndarray:
    """transformers' `create_sinusoidal_embeddings`: sin on even, cos on odd features, computed in float64."""
    position_enc = np.array([[pos / np.power(10000, 2 * (j // 2) / dim) for j in range(dim)] for pos in range(n_pos)])
    table = np.zeros((n_pos, dim), np.float32)
    table[:, 0::2] = np.sin(position_enc[:, 0::2])
    table[:, 1::2] = np.cos(position_enc[:, 1::2])
    return table


class Embeddings(nn.Cell):
    """Sum of word and position embeddings (no token types), then LayerNorm and dropout."""

    def __init__(self, config: DistilBertConfig):
        super().__init__()
        self.word_embeddings = Embedding(config.vocab_size, config.dim, padding_idx=config.pad_token_id)
        self.position_embeddings = Embedding(config.max_position_embeddings, config.dim)
        self.LayerNorm = LayerNorm(config.dim, eps=LAYER_NORM_EPS)
        self.dropout = Dropout(p=config.dropout)

    def construct(self, input_ids=None, inputs_embeds=None, position_ids=None):
        if input_ids is not None:
            inputs_embeds = self.word_embeddings(input_ids)
        if position_ids is None:
            position_ids = ops.arange(0, inputs_embeds.shape[1], dtype=ms.int32).expand_dims(0)
        embeddings = inputs_embeds + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))


class DistilBertSelfAttention(MultiHeadSelfAttention):
    """Multi-head self-attention with its output projection (`out_lin`) inside, as in transformers."""

    def __init__(self, config: DistilBertConfig):
        super().__init__(config.dim, config.n_heads, config.attention_dropout)
        self.q_lin = Linear(config.dim, config.dim)
        self.k_lin = Linear(config.dim, config.dim)
        self.v_lin = Linear(config.dim, config.dim)
        self.out_lin = Linear(config.dim, config.dim)

    def construct(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False):
        context, probs = self.attend(
            self.q_lin(hidden_states), self.k_lin(hidden_states), self.v_lin(hidden_states), attention_mask, head_mask,
            output_attentions,
        )
        return self.out_lin(context), probs


class FFN(nn.Cell):
    """lin1 -> activation -> lin2 -> dropout. `config.chunk_size_feed_forward` is not needed: transformers' chunking
    over the sequence computes the same values (it only saves memory)."""

    def __init__(self, config: DistilBertConfig):
        super().__init__()
        self.dropout = Dropout(p=config.dropout)
        self.lin1 = Linear(config.dim, config.hidden_dim)
        self.lin2 = Linear(config.hidden_dim, config.dim)
        self.activation = get_activation(config.activation)

    def construct(self, hidden_states):
        return self.dropout(self.lin2(self.activation(self.lin1(hidden_states))))


class TransformerBlock(GradientCheckpointingLayer):
    """Post-norm block: `sa_layer_norm(attention + x)`, then `output_layer_norm(ffn + that)`."""

    def __init__(self, config: DistilBertConfig):
        super().__init__()
        self.attention = DistilBertSelfAttention(config)
        self.sa_layer_norm = LayerNorm(config.dim, eps=LAYER_NORM_EPS)
        self.ffn = FFN(config)
        self.output_layer_norm = LayerNorm(config.dim, eps=LAYER_NORM_EPS)

    def construct(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False):
        attention_output, probs = self.attention(hidden_states, attention_mask, head_mask, output_attentions)
        attention_output = self.sa_layer_norm(attention_output + hidden_states)
        ffn_output = self.output_layer_norm(self.ffn(attention_output) + attention_output)
        return ffn_output, probs


class Transformer(BertEncoder):
    """The stack of `TransformerBlock`s; the loop (hidden states and attentions per layer) is `BertEncoder`'s."""

    def __init__(self, config: DistilBertConfig):
        nn.Cell.__init__(self)  # not BertEncoder.__init__, which would build BERT layers
        self.layer = nn.CellList([TransformerBlock(config) for _ in range(config.n_layers)])


class DistilBertPreTrainedModel(MSPreTrainedModel):
    """Base class of the DistilBERT models: `DistilBertConfig`, the "distilbert" prefix and its initialization
    (optionally sinusoidal position embeddings)."""

    config_class = DistilBertConfig
    base_model_prefix = "distilbert"

    def post_init(self) -> None:
        super().post_init()
        # transformers fills the (still trainable) position table after the generic init of each module; here
        # `post_init` visits parents before children, so the table is written once everything else is.
        if self.config.sinusoidal_pos_embds:
            table = sinusoidal_position_embeddings(self.config.max_position_embeddings, self.config.dim)
            for _, cell in self.cells_and_names():
                if isinstance(cell, Embeddings):
                    cell.position_embeddings.weight.set_data(Tensor(table, cell.position_embeddings.weight.dtype))

    def _run_distilbert(self, input_ids, attention_mask, inputs_embeds, position_ids, output_attentions,
                        output_hidden_states):
        """`self.distilbert(...)` returning `(sequence_output, None, hidden_states, attentions)`."""
        return self.distilbert.forward_parts(input_ids, attention_mask, inputs_embeds, position_ids,
                                             output_attentions, output_hidden_states)

    def _classify_first_token(self, sequence_output):
        """The sequence classification and multiple choice head: first token -> pre_classifier -> ReLU -> dropout
        -> classifier."""
        pooled_output = ops.relu(self.pre_classifier(sequence_output[:, 0]))
        return self.classifier(self.dropout(pooled_output))


class DistilBertModel(DistilBertPreTrainedModel):
    """The bare DistilBERT encoder, returning `last_hidden_state` (DistilBERT has no pooler).

    Args:
        config (`DistilBertConfig`): model configuration.
    """

    output_class = BaseModelOutput

    def __init__(self, config: DistilBertConfig):
        super().__init__(config)
        self.embeddings = Embeddings(config)
        self.transformer = Transformer(config)
        self.post_init()

    def get_input_embeddings(self) -> Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: Embedding) -> None:
        self.embeddings.word_embeddings = value

    def get_position_embeddings(self) -> Embedding:
        return self.embeddings.position_embeddings

    def forward_parts(self, input_ids=None, attention_mask=None, inputs_embeds=None, position_ids=None,
                      output_attentions=False, output_hidden_states=False):
        """Encoder pass returning `(sequence_output, None, hidden_states, attentions)`: the second slot (pooled
        output in the other families) is always None."""
        embedding_output = self.embeddings(input_ids, inputs_embeds, position_ids)
        extended_mask = None
        if attention_mask is not None:
            extended_mask = extended_attention_mask(attention_mask, embedding_output.dtype)
        sequence_output, hidden_states, attentions = self.transformer(
            embedding_output, extended_mask, None, output_attentions, output_hidden_states
        )
        return sequence_output, None, hidden_states, attentions

    def construct(self, input_ids=None, attention_mask=None, inputs_embeds=None, position_ids=None,
                  output_attentions=None, output_hidden_states=None, return_dict=None):
        r"""
        Args:
            input_ids (`Tensor` of shape `(batch_size, sequence_length)`): token ids (int32 or int64).
            attention_mask (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): 1 (or True) for tokens
                to attend to, 0 (False) for padding; bool, int or float.
            inputs_embeds (`Tensor` of shape `(batch_size, sequence_length, dim)`, *optional*): instead of
                `input_ids`.
            position_ids (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): defaults to 0..len-1.
            output_attentions / output_hidden_states (`bool`, *optional*): also return per-layer attentions /
                hidden states (defaults from the config).
            return_dict (`bool`, *optional*): return a `ModelOutput` (default `config.return_dict`) or a tuple.
        """
        sequence_output, _, hidden_states, attentions = self.forward_parts(
            input_ids, attention_mask, inputs_embeds, position_ids, output_attentions, output_hidden_states
        )
        return with_extras((sequence_output,), None, hidden_states, attentions)


class DistilBertForMaskedLM(DistilBertPreTrainedModel):
    """DistilBERT with a masked language modeling head (`vocab_projector` tied to the word embeddings)."""

    output_class = MaskedLMOutput
    loss_input_names = ("labels",)
    _tied_weights_keys = {"vocab_projector.weight": "distilbert.embeddings.word_embeddings.weight"}

    def __init__(self, config: DistilBertConfig):
        super().__init__(config)
        self.activation = get_activation(config.activation)
        self.distilbert = DistilBertModel(config)
        self.vocab_transform = Linear(config.dim, config.dim)
        self.vocab_layer_norm = LayerNorm(config.dim, eps=LAYER_NORM_EPS)
        self.vocab_projector = Linear(config.dim, config.vocab_size)
        self.post_init()

    def get_output_embeddings(self) -> nn.Dense:
        return self.vocab_projector

    def construct(self, input_ids=None, attention_mask=None, inputs_embeds=None, labels=None, position_ids=None,
                  output_attentions=None, output_hidden_states=None, return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): token ids to predict; -100 marks
            positions that are not masked (ignored by the loss). See `DistilBertModel.construct` for the others.
        """
        sequence_output, _, hidden_states, attentions = self._run_distilbert(
            input_ids, attention_mask, inputs_embeds, position_ids, output_attentions, output_hidden_states
        )
        prediction_logits = self.vocab_layer_norm(self.activation(self.vocab_transform(sequence_output)))
        prediction_logits = self.vocab_projector(prediction_logits)
        return masked_lm_outputs(prediction_logits, labels, hidden_states, attentions)


class DistilBertForSequenceClassification(DistilBertPreTrainedModel):
    """DistilBERT with a classification (or regression, `num_labels == 1`) head on the first token:
    pre_classifier -> ReLU -> dropout (`seq_classif_dropout`) -> classifier."""

    output_class = SequenceClassifierOutput
    loss_input_names = ("labels",)
    # Like transformers, the inferred problem type is stored in the config (and saved with it).
    _prepare_call = BertForSequenceClassification._prepare_call

    def __init__(self, config: DistilBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.distilbert = DistilBertModel(config)
        self.pre_classifier = Linear(config.dim, config.dim)
        self.classifier = Linear(config.dim, config.num_labels)
        self.dropout = Dropout(p=config.seq_classif_dropout)
        self.post_init()

    def construct(self, input_ids=None, attention_mask=None, inputs_embeds=None, labels=None, position_ids=None,
                  output_attentions=None, output_hidden_states=None, return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size,)`, *optional*): class indices (int32/int64) for single-label
            classification, floats for regression (`num_labels == 1`), or `(batch_size, num_labels)` multi-hot
            floats for multi-label classification; see `config.problem_type`. See `DistilBertModel.construct` for
            the others.
        """
        sequence_output, _, hidden_states, attentions = self._run_distilbert(
            input_ids, attention_mask, inputs_embeds, position_ids, output_attentions, output_hidden_states
        )
        logits = self._classify_first_token(sequence_output)
        return sequence_classification_outputs(logits, labels, self.config.problem_type, hidden_states, attentions)


class DistilBertForMultipleChoice(DistilBertPreTrainedModel):
    """DistilBERT with a multiple choice head: one score per choice from the first token (the sequence
    classification head with one output), softmax over choices."""

    output_class = MultipleChoiceModelOutput
    loss_input_names = ("labels",)

    def __init__(self, config: DistilBertConfig):
        super().__init__(config)
        self.distilbert = DistilBertModel(config)
        self.pre_classifier = Linear(config.dim, config.dim)
        self.classifier = Linear(config.dim, 1)
        self.dropout = Dropout(p=config.seq_classif_dropout)
        self.post_init()

    def construct(self, input_ids=None, attention_mask=None, inputs_embeds=None, labels=None, position_ids=None,
                  output_attentions=None, output_hidden_states=None, return_dict=None):
        r"""
        Inputs have shape `(batch_size, num_choices, sequence_length)` (`inputs_embeds` one more axis).
        labels (`Tensor` of shape `(batch_size,)`, *optional*): index of the correct choice.
        """
        # transformers passes position_ids on unflattened (which fails for 3-d ones); flattened here like the rest.
        num_choices, input_ids, attention_mask, inputs_embeds, position_ids = flatten_choices(
            input_ids, attention_mask, inputs_embeds, position_ids
        )
        sequence_output, _, hidden_states, attentions = self._run_distilbert(
            input_ids, attention_mask, inputs_embeds, position_ids, output_attentions, output_hidden_states
        )
        logits = self._classify_first_token(sequence_output)
        return multiple_choice_outputs(logits, num_choices, labels, hidden_states, attentions)


class DistilBertForTokenClassification(DistilBertPreTrainedModel):
    """DistilBERT with a per-token classification head (e.g. named entity recognition)."""

    output_class = TokenClassifierOutput
    loss_input_names = ("labels",)

    def __init__(self, config: DistilBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.distilbert = DistilBertModel(config)
        self.dropout = Dropout(p=config.dropout)
        self.classifier = Linear(config.dim, config.num_labels)
        self.post_init()

    def construct(self, input_ids=None, attention_mask=None, inputs_embeds=None, labels=None, position_ids=None,
                  output_attentions=None, output_hidden_states=None, return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): class index per token, -100 for
            tokens the loss ignores (padding, sub-words). See `DistilBertModel.construct` for the others.
        """
        sequence_output, _, hidden_states, attentions = self._run_distilbert(
            input_ids, attention_mask, inputs_embeds, position_ids, output_attentions, output_hidden_states
        )
        logits = self.classifier(self.dropout(sequence_output))
        return token_classification_outputs(logits, labels, hidden_states, attentions)


class DistilBertForQuestionAnswering(DistilBertPreTrainedModel):
    """DistilBERT with a span extraction head (dropout `qa_dropout`, then start and end logits), e.g. for SQuAD."""

    output_class = QuestionAnsweringModelOutput
    loss_input_names = ("start_positions", "end_positions")

    def __init__(self, config: DistilBertConfig):
        super().__init__(config)
        if config.num_labels != 2:
            raise ValueError(f"config.num_labels should be 2, but it is {config.num_labels}")
        self.distilbert = DistilBertModel(config)
        self.qa_outputs = Linear(config.dim, config.num_labels)
        self.dropout = Dropout(p=config.qa_dropout)
        self.post_init()

    def construct(self, input_ids=None, attention_mask=None, inputs_embeds=None, start_positions=None,
                  end_positions=None, position_ids=None, output_attentions=None, output_hidden_states=None,
                  return_dict=None):
        r"""
        start_positions / end_positions (`Tensor` of shape `(batch_size,)`, *optional*): token index of the span
            start / end; positions outside the sequence are ignored by the loss. See `DistilBertModel.construct`.
        """
        sequence_output, _, hidden_states, attentions = self._run_distilbert(
            input_ids, attention_mask, inputs_embeds, position_ids, output_attentions, output_hidden_states
        )
        logits = self.qa_outputs(self.dropout(sequence_output))
        return span_outputs(logits, start_positions, end_positions, hidden_states, attentions)
