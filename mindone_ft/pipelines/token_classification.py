"""`token-classification` (alias `ner`): transformers' `TokenClassificationPipeline` on a mindone_ft
`...ForTokenClassification` model. `aggregation_strategy` ("none", "simple", "first", "average", "max"),
`ignore_labels`, `stride`, `is_split_into_words` and `offset_mapping` work as there: grouping entities and words is
transformers' own code, run on numpy."""

import numpy as np
from transformers.pipelines import token_classification as _hf

from ..models.auto.modeling_auto import MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES
from .base import MindSporePipelineMixin

__all__ = ["AggregationStrategy", "TokenClassificationArgumentHandler", "TokenClassificationPipeline"]

AggregationStrategy = _hf.AggregationStrategy
TokenClassificationArgumentHandler = _hf.TokenClassificationArgumentHandler


class TokenClassificationPipeline(MindSporePipelineMixin, _hf.TokenClassificationPipeline):
    """transformers' `TokenClassificationPipeline` on MindSpore; see its documentation for the arguments.

    Example:

    ```python
    >>> from mindone_ft import pipeline
    >>> ner = pipeline("ner", model="path/to/fine-tuned-model", aggregation_strategy="simple")
    >>> ner("My name is Sarah and I live in London")
    [{'entity_group': 'PER', 'score': 0.99, 'word': 'sarah', 'start': 11, 'end': 16}, ...]
    ```
    """

    _model_mapping_names = MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES

    def __init__(self, args_parser=None, **kwargs):
        from transformers.models.bert.tokenization_bert_legacy import BasicTokenizer

        super().__init__(**kwargs)
        self._basic_tokenizer = BasicTokenizer(do_lower_case=False)  # as transformers sets it
        self._args_parser = TokenClassificationArgumentHandler() if args_parser is None else args_parser

    def preprocess(self, sentence, offset_mapping=None, **preprocess_params):
        # transformers' preprocess, with numpy instead of torch tensors.
        tokenizer_params = dict(preprocess_params.pop("tokenizer_params", {}))
        truncation = bool(self.tokenizer.model_max_length and self.tokenizer.model_max_length > 0)

        word_to_chars_map = None
        is_split_into_words = preprocess_params["is_split_into_words"]
        if is_split_into_words:
            delimiter = preprocess_params["delimiter"]
            if not isinstance(sentence, list):
                raise ValueError("When `is_split_into_words=True`, `sentence` must be a list of tokens.")
            words = sentence
            sentence = delimiter.join(words)  # the sentence string, for display and slicing
            word_to_chars_map = []  # word index -> character span in `sentence`
            char_offset = 0
            for word in words:
                word_to_chars_map.append((char_offset, char_offset + len(word)))
                char_offset += len(word) + len(delimiter)
            text_to_tokenize = words
            tokenizer_params["is_split_into_words"] = True
        else:
            if not isinstance(sentence, str):
                raise ValueError("When `is_split_into_words=False`, `sentence` must be an untokenized string.")
            text_to_tokenize = sentence

        if is_split_into_words and not self.tokenizer.is_fast:
            raise ValueError("is_split_into_words=True is only supported with fast tokenizers.")
        inputs = self.tokenizer(
            text_to_tokenize,
            return_tensors="np",
            truncation=truncation,
            return_special_tokens_mask=True,
            return_offsets_mapping=self.tokenizer.is_fast,
            **tokenizer_params,
        )
        inputs.pop("overflow_to_sample_mapping", None)
        num_chunks = len(inputs["input_ids"])

        for i in range(num_chunks):
            model_inputs = {key: value[i][None] for key, value in inputs.items()}
            if offset_mapping is not None:
                model_inputs["offset_mapping"] = offset_mapping
            model_inputs["sentence"] = sentence if i == 0 else None
            model_inputs["is_last"] = i == num_chunks - 1
            if word_to_chars_map is not None:
                model_inputs["word_ids"] = inputs.word_ids(i)
                model_inputs["word_to_chars_map"] = word_to_chars_map
            yield model_inputs

    def postprocess(self, all_outputs, aggregation_strategy=AggregationStrategy.NONE, ignore_labels=None):
        # transformers' postprocess on numpy logits (already float32, see `to_numpy`).
        if ignore_labels is None:
            ignore_labels = ["O"]
        all_entities = []
        word_to_chars_map = all_outputs[0].get("word_to_chars_map")  # the same for every chunk
        sentence = all_outputs[0]["sentence"]
        for model_outputs in all_outputs:
            logits = np.asarray(model_outputs["logits"][0])
            input_ids = model_outputs["input_ids"][0]
            offset_mapping = model_outputs["offset_mapping"][0] if model_outputs["offset_mapping"] is not None else None
            special_tokens_mask = np.asarray(model_outputs["special_tokens_mask"][0])
            maxes = np.max(logits, axis=-1, keepdims=True)
            shifted_exp = np.exp(logits - maxes)
            scores = shifted_exp / shifted_exp.sum(axis=-1, keepdims=True)
            pre_entities = self.gather_pre_entities(
                sentence,
                input_ids,
                scores,
                offset_mapping,
                special_tokens_mask,
                aggregation_strategy,
                word_ids=model_outputs.get("word_ids"),
                word_to_chars_map=word_to_chars_map,
            )
            grouped_entities = self.aggregate(pre_entities, aggregation_strategy)
            all_entities.extend(
                entity
                for entity in grouped_entities
                if entity.get("entity", None) not in ignore_labels
                and entity.get("entity_group", None) not in ignore_labels
            )
        if len(all_outputs) > 1:
            all_entities = self.aggregate_overlapping_entities(all_entities)
        return all_entities
