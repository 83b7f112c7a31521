"""MindSpore RoBERTa, mirroring transformers' `modular_roberta.py`: BERT with fairseq position ids and its own heads.

The encoder is mindone_ft's BERT encoder (`roberta.encoder.layer.0.attention.self.query.weight`, ... are BERT's names
under the `roberta.` prefix); the embeddings number positions from `pad_token_id + 1` and leave padding at
`pad_token_id`. Heads that are BERT's (token classification, question answering, multiple choice) are BERT's classes
with transformers 5.23's RoBERTa signatures; the sequence classifier (transformers' `RobertaClassificationHead`, the
shared `ClassificationHead` with tanh) and the masked LM head (`lm_head`) are RoBERTa's own. As everywhere in
mindone_ft, `construct` returns a tuple in transformers' `return_dict=False` layout and `MSPreTrainedModel.__call__`
turns it into the `ModelOutput` users see.

The constructs that delegate to BERT's spell out `super(Class, self)`: in GRAPH_MODE, MindSpore 2.10 resolves a bare
`super()` from the instance's type, so in the XLM-RoBERTa subclasses it called the RoBERTa construct again.
"""

import mindspore as ms
from mindspore import Parameter, nn
from mindspore.common.initializer import initializer
from transformers import RobertaConfig

from ...modeling_layers import (
    ClassificationHead,
    Embedding,
    LayerNorm,
    Linear,
    classifier_dropout_rate,
    get_activation,
    masked_lm_outputs,
    position_ids_from_input_ids,
    position_ids_from_inputs_embeds,
    sequence_classification_outputs,
)
from ...modeling_outputs import MaskedLMOutput, SequenceClassifierOutput
from ...modeling_utils import MSPreTrainedModel
from ..bert.modeling_bert import (
    BertEmbeddings,
    BertForMultipleChoice,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    BertPreTrainedModel,
)

__all__ = [
    "RobertaPreTrainedModel",
    "RobertaModel",
    "RobertaForMaskedLM",
    "RobertaForSequenceClassification",
    "RobertaForMultipleChoice",
    "RobertaForTokenClassification",
    "RobertaForQuestionAnswering",
]


class RobertaEmbeddings(BertEmbeddings):
    """BERT's embeddings with fairseq position ids: from `input_ids`, real tokens count from `padding_idx + 1` and
    padding stays at `padding_idx` (whose position embedding gets no gradient); from `inputs_embeds`, positions
    run from `padding_idx + 1`. Token types default to zeros (RoBERTa checkpoints have `type_vocab_size=1`)."""

    def __init__(self, config: RobertaConfig):
        super().__init__(config)
        self.padding_idx = config.pad_token_id
        self.position_embeddings = Embedding(
            config.max_position_embeddings, config.hidden_size, padding_idx=self.padding_idx
        )

    def construct(self, input_ids=None, token_type_ids=None, position_ids=None, inputs_embeds=None):
        if position_ids is None:
            if input_ids is not None:
                position_ids = position_ids_from_input_ids(input_ids, self.padding_idx)
            else:
                position_ids = position_ids_from_inputs_embeds(inputs_embeds, self.padding_idx)
        return super(RobertaEmbeddings, self).construct(input_ids, token_type_ids, position_ids, inputs_embeds)


class RobertaLMHead(nn.Cell):
    """Masked LM head: dense, GELU (always the exact one, whatever `hidden_act`), `layer_norm`, then the decoder
    tied to the word embeddings plus an output-only bias per token."""

    def __init__(self, config: RobertaConfig):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)
        self.activation = get_activation("gelu")
        self.layer_norm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        # transformers ties `decoder.bias` to `bias`; one parameter gives the same checkpoint keys (as in BERT).
        self.decoder = Linear(config.hidden_size, config.vocab_size, has_bias=False)
        self.bias = Parameter(initializer("zeros", (config.vocab_size,), ms.float32), name="bias")

    def construct(self, features):
        x = self.layer_norm(self.activation(self.dense(features)))
        return self.decoder(x) + self.bias


class RobertaPreTrainedModel(BertPreTrainedModel):
    """Base class of the RoBERTa models: `RobertaConfig`, the "roberta" prefix, BERT's initialization plus a zero
    LM head bias."""

    config_class = RobertaConfig
    base_model_prefix = "roberta"
    # A pooler in the checkpoint (roberta-base has one) is not a weight of the heads built without it.
    _keys_to_ignore_on_load_unexpected = MSPreTrainedModel._keys_to_ignore_on_load_unexpected + [
        r"^roberta\.pooler\."
    ]

    def _init_weights(self, cell: nn.Cell) -> None:
        super()._init_weights(cell)
        if isinstance(cell, RobertaLMHead):
            self._init_parameter(cell.bias, "zeros")

    def _add_base_model(self, config: RobertaConfig, add_pooling_layer: bool = True) -> None:
        self.roberta = RobertaModel(config, add_pooling_layer=add_pooling_layer)


class RobertaModel(RobertaPreTrainedModel, BertModel):
    """The bare RoBERTa encoder, returning `last_hidden_state` and (with `add_pooling_layer`) `pooler_output`.

    Args:
        config (`RobertaConfig`): model configuration. Only the encoder use is supported: `is_decoder` and
            `add_cross_attention` must be False (`RobertaForCausalLM` is not ported yet).
        add_pooling_layer (`bool`, defaults to `True`): whether to add the first-token pooler (dense + tanh).
    """

    embeddings_class = RobertaEmbeddings

    def __init__(self, config: RobertaConfig, add_pooling_layer: bool = True):
        if config.is_decoder or config.add_cross_attention:
            raise ValueError(
                "mindone_ft's RoBERTa is an encoder only: is_decoder=True / add_cross_attention=True (causal "
                "attention, cross-attention, RobertaForCausalLM) are not supported. Use is_decoder=False and "
                "add_cross_attention=False (RobertaForMaskedLM for language modeling)."
            )
        super().__init__(config, add_pooling_layer)

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                  inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        r"""
        Args:
            input_ids (`Tensor` of shape `(batch_size, sequence_length)`): token ids (int32 or int64).
            attention_mask (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): 1 (or True) for tokens
                to attend to, 0 (False) for padding; bool, int or float.
            token_type_ids (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): segment ids, all zeros
                by default (only meaningful with `type_vocab_size > 1`).
            position_ids (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): by default
                `pad_token_id + 1, ...` over the real tokens of `input_ids` and `pad_token_id` at padding.
            inputs_embeds (`Tensor` of shape `(batch_size, sequence_length, hidden_size)`, *optional*): instead of
                `input_ids` (positions are then sequential from `pad_token_id + 1`).
            output_attentions / output_hidden_states (`bool`, *optional*): also return per-layer attentions /
                hidden states (defaults from the config).
            return_dict (`bool`, *optional*): return a `ModelOutput` (default `config.return_dict`) or a tuple.
        """
        return super(RobertaModel, self).construct(
            input_ids, attention_mask, token_type_ids, position_ids, None, inputs_embeds, output_attentions,
            output_hidden_states, return_dict,
        )


class RobertaForMaskedLM(RobertaPreTrainedModel):
    """RoBERTa with the masked language modeling head `lm_head` (decoder tied to the word embeddings)."""

    output_class = MaskedLMOutput
    loss_input_names = ("labels",)
    _tied_weights_keys = {
        "lm_head.decoder.weight": "roberta.embeddings.word_embeddings.weight",
        "lm_head.decoder.bias": "lm_head.bias",
    }

    def __init__(self, config: RobertaConfig):
        super().__init__(config)
        self._add_base_model(config, add_pooling_layer=False)
        self.lm_head = RobertaLMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Dense:
        return self.lm_head.decoder

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                  inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                  return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): token ids to predict; -100 marks
            positions that are not masked (ignored by the loss). See `RobertaModel.construct` for the others.
        """
        sequence_output, _, hidden_states, attentions = self._run_bert(
            input_ids, attention_mask, token_type_ids, position_ids, None, inputs_embeds,
            output_attentions, output_hidden_states,
        )
        return masked_lm_outputs(self.lm_head(sequence_output), labels, hidden_states, attentions)


class RobertaForSequenceClassification(RobertaPreTrainedModel):
    """RoBERTa with a classification (or regression, `num_labels == 1`) head on the first token (`<s>`): dropout,
    dense, tanh, dropout, `out_proj` (transformers' `RobertaClassificationHead`)."""

    output_class = SequenceClassifierOutput
    loss_input_names = ("labels",)
    # Stores the problem type inferred from the labels in the config, like transformers.
    _prepare_call = BertForSequenceClassification._prepare_call

    def __init__(self, config: RobertaConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self._add_base_model(config, add_pooling_layer=False)
        self.classifier = ClassificationHead(config, "tanh", classifier_dropout_rate(config))
        self.post_init()

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                  inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                  return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size,)`, *optional*): class indices for single-label classification,
            floats for regression (`num_labels == 1`), or `(batch_size, num_labels)` multi-hot floats for
            multi-label classification; see `config.problem_type`. See `RobertaModel.construct` for the others.
        """
        sequence_output, _, hidden_states, attentions = self._run_bert(
            input_ids, attention_mask, token_type_ids, position_ids, None, inputs_embeds,
            output_attentions, output_hidden_states,
        )
        logits = self.classifier(sequence_output)
        return sequence_classification_outputs(logits, labels, self.config.problem_type, hidden_states, attentions)


class RobertaForMultipleChoice(RobertaPreTrainedModel, BertForMultipleChoice):
    """BERT's multiple choice head (one score per choice from the pooled output) on RoBERTa, with transformers'
    argument order `(input_ids, token_type_ids, attention_mask, labels, position_ids, inputs_embeds)`."""

    # transformers' RoBERTa drops out at `hidden_dropout_prob` here, ignoring `classifier_dropout`.
    classifier_dropout_attribute = "hidden_dropout_prob"

    def construct(self, input_ids=None, token_type_ids=None, attention_mask=None, labels=None, position_ids=None,
                  inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        r"""
        Inputs have shape `(batch_size, num_choices, sequence_length)` (`inputs_embeds` one more axis).
        labels (`Tensor` of shape `(batch_size,)`, *optional*): index of the correct choice.
        """
        return super(RobertaForMultipleChoice, self).construct(
            input_ids, attention_mask, token_type_ids, position_ids, None, inputs_embeds, labels, output_attentions,
            output_hidden_states, return_dict,
        )


class RobertaForTokenClassification(RobertaPreTrainedModel, BertForTokenClassification):
    """BERT's per-token classification head (e.g. named entity recognition) on RoBERTa."""

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                  inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                  return_dict=None):
        r"""
        labels (`Tensor` of shape `(batch_size, sequence_length)`, *optional*): class index per token, -100 for
            tokens the loss ignores (padding, sub-words). See `RobertaModel.construct` for the others.
        """
        return super(RobertaForTokenClassification, self).construct(
            input_ids, attention_mask, token_type_ids, position_ids, None, inputs_embeds, labels, output_attentions,
            output_hidden_states, return_dict,
        )


class RobertaForQuestionAnswering(RobertaPreTrainedModel, BertForQuestionAnswering):
    """BERT's span extraction head (start and end logits, e.g. for SQuAD) on RoBERTa."""

    def construct(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                  inputs_embeds=None, start_positions=None, end_positions=None, output_attentions=None,
                  output_hidden_states=None, return_dict=None):
        r"""
        start_positions / end_positions (`Tensor` of shape `(batch_size,)`, *optional*): token index of the span
            start / end; positions outside the sequence are ignored by the loss. See `RobertaModel.construct`.
        """
        return super(RobertaForQuestionAnswering, self).construct(
            input_ids, attention_mask, token_type_ids, position_ids, None, inputs_embeds, start_positions,
            end_positions, output_attentions, output_hidden_states, return_dict,
        )
