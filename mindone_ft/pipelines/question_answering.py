"""`question-answering`: extractive question answering with a mindone_ft `...ForQuestionAnswering` model.

transformers 5 removed this pipeline (it points to text generation with chat models), so it is written here, with
the arguments and output of transformers 4's `QuestionAnsweringPipeline`: `question=`/`context=` (strings or lists),
`{"question": ..., "context": ...}` dicts, `top_k`, `handle_impossible_answer`, `max_answer_len`, `align_to_words`,
and long contexts split into overlapping spans with `max_seq_len` and `doc_stride` (the fast tokenizer's
`return_overflowing_tokens`). Each answer is `{"score", "start", "end", "answer"}`, `start`/`end` being character
positions in the context; a single answer comes as a dict, several as a list.

Scoring, as in transformers 4: per span, the start and end logits outside the context (question, special and padding
tokens, except the first [CLS]) are masked, each is softmaxed, a span's score is p_start * p_end over start <= end <
start + max_answer_len, and the best spans of all chunks are ranked together. With `handle_impossible_answer` the
empty answer scores p_start[CLS] * p_end[CLS] (the lowest over the chunks).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from transformers.pipelines.base import ArgumentHandler, ChunkPipeline

from ..models.auto.modeling_auto import MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES
from .base import MindSporePipelineMixin

__all__ = [
    "QuestionAnsweringArgumentHandler",
    "QuestionAnsweringExample",
    "QuestionAnsweringPipeline",
    "decode_spans",
    "select_starts_ends",
]

_MASKED_LOGIT = -10000.0


@dataclass
class QuestionAnsweringExample:
    """One question and its context (the fields of transformers 4's `SquadExample` that the pipeline uses)."""

    question_text: str
    context_text: str


class QuestionAnsweringArgumentHandler(ArgumentHandler):
    """Turns the accepted call forms into a list of `QuestionAnsweringExample`: `(question, context)` positional
    strings, `question=`/`context=` keywords (a list of questions may share one context), dicts with `question` and
    `context` (alone, in a list, or as `X=`/`data=`), and objects with `question_text`/`context_text` attributes
    (e.g. a `SquadExample`)."""

    def normalize(self, item) -> QuestionAnsweringExample:
        if isinstance(item, QuestionAnsweringExample):
            return item
        if hasattr(item, "question_text") and hasattr(item, "context_text"):
            return QuestionAnsweringExample(item.question_text, item.context_text)
        if isinstance(item, dict):
            for key in ("question", "context"):
                if key not in item:
                    raise KeyError("You need to provide a dictionary with keys {question:..., context:...}")
                if item[key] is None:
                    raise ValueError(f"`{key}` cannot be None")
                if isinstance(item[key], str) and len(item[key]) == 0:
                    raise ValueError(f"`{key}` cannot be empty")
            return QuestionAnsweringExample(item["question"], item["context"])
        raise ValueError(f"{item} argument needs to be of type (QuestionAnsweringExample, dict)")

    def __call__(self, *args, **kwargs) -> List[QuestionAnsweringExample]:
        if args:
            if len(args) == 1:
                inputs = args[0]
            elif len(args) == 2 and {type(arg) for arg in args} == {str}:
                inputs = [{"question": args[0], "context": args[1]}]
            else:
                inputs = list(args)
        elif "X" in kwargs:
            inputs = kwargs["X"]
        elif "data" in kwargs:
            inputs = kwargs["data"]
        elif "question" in kwargs and "context" in kwargs:
            question, context = kwargs["question"], kwargs["context"]
            if isinstance(question, list) and isinstance(context, str):
                inputs = [{"question": q, "context": context} for q in question]
            elif isinstance(question, list) and isinstance(context, list):
                if len(question) != len(context):
                    raise ValueError("Questions and contexts don't have the same lengths")
                inputs = [{"question": q, "context": c} for q, c in zip(question, context)]
            elif isinstance(question, str) and isinstance(context, str):
                inputs = [{"question": question, "context": context}]
            else:
                raise ValueError("Arguments can't be understood")
        else:
            raise ValueError(f"Unknown arguments {kwargs}")

        if isinstance(inputs, dict) or hasattr(inputs, "question_text"):
            inputs = [inputs]
        elif isinstance(inputs, Iterable) and not isinstance(inputs, str):
            inputs = list(inputs)
        else:
            raise ValueError(f"Invalid arguments {kwargs}")
        return [self.normalize(item) for item in inputs]


def decode_spans(start: np.ndarray, end: np.ndarray, topk: int, max_answer_len: int,
                 allowed: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The `topk` best (start, end) token pairs of one span by `start[s] * end[e]`, with s <= e < s + max_answer_len
    and both tokens `allowed` (context tokens).

    Args:
        start, end: probabilities, shape `(sequence_length,)` (or `(1, sequence_length)`).
        allowed: booleans (or 0/1), shape `(sequence_length,)`: tokens an answer may start or end on.

    Returns:
        `(starts, ends, scores)`, best first; fewer than `topk` when fewer pairs are allowed.
    """
    start, end = np.reshape(start, -1), np.reshape(end, -1)
    allowed = np.reshape(np.asarray(allowed, dtype=bool), -1)
    length = start.shape[0]
    # start <= end < start + max_answer_len, both on allowed tokens; the rest scores -1, below every real score.
    valid = np.tril(np.triu(np.ones((length, length), dtype=bool)), max_answer_len - 1)
    valid &= allowed[:, None] & allowed[None, :]
    candidates = np.where(valid, np.outer(start, end), -1.0)
    flat = candidates.reshape(-1)
    count = min(topk, flat.size)
    if count == 1:
        order = np.array([np.argmax(flat)])
    else:
        order = np.argsort(-flat, kind="stable")[:count]
    order = order[flat[order] >= 0]
    starts, ends = np.unravel_index(order, candidates.shape)
    return starts, ends, candidates[starts, ends]


def select_starts_ends(start: np.ndarray, end: np.ndarray, p_mask: np.ndarray,
                       attention_mask: Optional[np.ndarray], min_null_score: float = 1000000.0, top_k: int = 1,
                       handle_impossible_answer: bool = False, max_answer_len: int = 15):
    """Scores the answers of one span from its start/end logits (shape `(1, sequence_length)` or
    `(sequence_length,)`). `p_mask` is 1 where an answer cannot be (question, special tokens), 0 on the context and
    on [CLS]. Returns `(starts, ends, scores, min_null_score)`, the last updated with this span's empty answer."""
    start = np.reshape(np.asarray(start, dtype=np.float64), -1)
    end = np.reshape(np.asarray(end, dtype=np.float64), -1)
    possible = np.reshape(np.asarray(p_mask), -1) == 0
    if attention_mask is not None:
        possible &= np.reshape(np.asarray(attention_mask), -1) != 0
    start = np.where(possible, start, _MASKED_LOGIT)
    end = np.where(possible, end, _MASKED_LOGIT)
    start = np.exp(start - start.max())
    start /= start.sum()
    end = np.exp(end - end.max())
    end /= end.sum()
    if handle_impossible_answer:
        min_null_score = min(min_null_score, float(start[0] * end[0]))
    # The first token ([CLS]) stands for "no answer": never part of a span.
    start[0] = end[0] = 0.0
    allowed = possible.copy()
    allowed[0] = False
    starts, ends, scores = decode_spans(start, end, top_k, max_answer_len, allowed)
    return starts, ends, scores, min_null_score


class QuestionAnsweringPipeline(MindSporePipelineMixin, ChunkPipeline):
    """Extractive question answering on MindSpore, with transformers 4's `QuestionAnsweringPipeline` interface.

    Example:

    ```python
    >>> from mindone_ft import pipeline
    >>> qa = pipeline("question-answering", model="path/to/fine-tuned-model")
    >>> qa(question="Where do I live?", context="My name is Wolfgang and I live in Berlin")
    {'score': 0.9, 'start': 33, 'end': 39, 'answer': 'Berlin'}
    ```

    Call arguments (also accepted by `pipeline(...)` as defaults):
        top_k (`int`, defaults to 1): number of answers (fewer when the context has fewer candidate spans).
        doc_stride (`int`, defaults to `min(max_seq_len // 2, 128)`): overlap, in tokens, of consecutive spans of a
            context too long for `max_seq_len`.
        max_answer_len (`int`, defaults to 15): longest answer, in tokens.
        max_seq_len (`int`, defaults to `min(tokenizer.model_max_length, 384)`): tokens of question + context span.
        max_question_len (`int`, defaults to 64): accepted for compatibility (used by slow tokenizers only there).
        handle_impossible_answer (`bool`, defaults to False): also consider the empty answer.
        align_to_words (`bool`, defaults to True): widen answers to whole words (else token offsets).
        padding: tokenizer padding of the spans (default: none).
    """

    _model_mapping_names = MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES
    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True
    default_input_names = "question,context"
    handle_impossible_answer = False

    _INPUT_KEYS = ("question", "context", "X", "data")

    def __init__(self, *args, **kwargs):
        self._args_parser = QuestionAnsweringArgumentHandler()
        super().__init__(*args, **kwargs)

    @staticmethod
    def create_sample(question, context):
        """A `QuestionAnsweringExample`, or a list of them for lists of questions and contexts."""
        if isinstance(question, list):
            return [QuestionAnsweringExample(q, c) for q, c in zip(question, context)]
        return QuestionAnsweringExample(question, context)

    def _sanitize_parameters(self, padding=None, topk=None, top_k=None, doc_stride=None, max_answer_len=None,
                             max_seq_len=None, max_question_len=None, handle_impossible_answer=None,
                             align_to_words=None, **kwargs):
        unknown = set(kwargs) - set(self._INPUT_KEYS)
        if unknown:
            raise TypeError(f"question-answering got unexpected argument(s): {', '.join(sorted(unknown))}")
        preprocess_params = {}
        if padding is not None:
            preprocess_params["padding"] = padding
        if doc_stride is not None:
            preprocess_params["doc_stride"] = doc_stride
        if max_question_len is not None:
            preprocess_params["max_question_len"] = max_question_len
        if max_seq_len is not None:
            preprocess_params["max_seq_len"] = max_seq_len

        postprocess_params = {}
        if topk is not None and top_k is None:
            top_k = topk  # transformers 4's older name
        if top_k is not None:
            if top_k < 1:
                raise ValueError(f"top_k parameter should be >= 1 (got {top_k})")
            postprocess_params["top_k"] = top_k
        if max_answer_len is not None:
            if max_answer_len < 1:
                raise ValueError(f"max_answer_len parameter should be >= 1 (got {max_answer_len})")
            postprocess_params["max_answer_len"] = max_answer_len
        if handle_impossible_answer is not None:
            postprocess_params["handle_impossible_answer"] = handle_impossible_answer
        if align_to_words is not None:
            postprocess_params["align_to_words"] = align_to_words
        return preprocess_params, {}, postprocess_params

    def __call__(self, *args, **kwargs):
        """Answers the question(s): `qa(question=..., context=...)`, `qa({"question": ..., "context": ...})`,
        `qa([{...}, {...}])` or `qa(question_list, context)`. One example gives a dict (or a list with `top_k > 1`),
        several give one such result per example."""
        examples = self._args_parser(*args, **kwargs)
        for key in self._INPUT_KEYS:
            kwargs.pop(key, None)
        if len(examples) == 1:
            return super().__call__(examples[0], **kwargs)
        return super().__call__(examples, **kwargs)

    def preprocess(self, example, padding="do_not_pad", doc_stride=None, max_question_len=64, max_seq_len=None):
        if isinstance(example, dict) or not isinstance(example, QuestionAnsweringExample):
            example = self._args_parser.normalize(example)
        if not self.tokenizer.is_fast:
            raise ValueError("The question-answering pipeline needs a fast tokenizer (its offsets and overflowing "
                             "spans); load the tokenizer with `use_fast=True`.")
        if max_seq_len is None:
            max_seq_len = min(self.tokenizer.model_max_length, 384)
        if doc_stride is None:
            doc_stride = min(max_seq_len // 2, 128)
        if doc_stride > max_seq_len:
            raise ValueError(f"`doc_stride` ({doc_stride}) is larger than `max_seq_len` ({max_seq_len})")

        # The question goes first unless the tokenizer pads on the left (then the context is first, truncated).
        question_first = self.tokenizer.padding_side == "right"
        encoded = self.tokenizer(
            text=example.question_text if question_first else example.context_text,
            text_pair=example.context_text if question_first else example.question_text,
            padding=padding,
            truncation="only_second" if question_first else "only_first",
            max_length=max_seq_len,
            stride=doc_stride,
            return_token_type_ids=True,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
        )
        context_sequence = 1 if question_first else 0
        num_spans = len(encoded["input_ids"])
        model_input_names = list(self.tokenizer.model_input_names)
        for span in range(num_spans):
            input_ids = np.asarray(encoded["input_ids"][span])
            # 1 where an answer cannot be: the question and special tokens; the [CLS] token stays 0 (no answer).
            p_mask = np.array([seq_id != context_sequence for seq_id in encoded.sequence_ids(span)], dtype=np.int64)
            if self.tokenizer.cls_token_id is not None:
                p_mask[input_ids == self.tokenizer.cls_token_id] = 0
            inputs = {name: np.asarray(encoded[name][span])[None] for name in model_input_names if name in encoded}
            yield {
                "example": example,
                "is_last": span == num_spans - 1,
                "p_mask": p_mask[None],
                "encoding": encoded[span],
                "context_sequence": context_sequence,
                **inputs,
            }

    def _forward(self, inputs: Dict[str, Any]) -> Dict[str, Any]:
        model_inputs = {name: inputs[name] for name in self.tokenizer.model_input_names if name in inputs}
        output = self.model(**model_inputs)
        if isinstance(output, dict):
            start, end = output["start_logits"], output["end_logits"]
        else:
            start, end = output[:2]
        return {"start": start, "end": end, **inputs}

    @staticmethod
    def get_indices(enc, s: int, e: int, sequence_index: int, align_to_words: bool) -> Tuple[int, int]:
        """Character span in the context of tokens `s`..`e` (whole words with `align_to_words`)."""
        if align_to_words:
            try:
                start_word = enc.token_to_word(s)
                end_word = enc.token_to_word(e)
                start_index = enc.word_to_chars(start_word, sequence_index=sequence_index)[0]
                end_index = enc.word_to_chars(end_word, sequence_index=sequence_index)[1]
                return start_index, end_index
            except Exception:  # tokenizers without words: token offsets
                pass
        return enc.offsets[s][0], enc.offsets[e][1]

    def postprocess(self, model_outputs, top_k=1, handle_impossible_answer=False, max_answer_len=15,
                    align_to_words=True):
        min_null_score = 1000000.0  # large and positive
        answers = []
        for output in model_outputs:
            starts, ends, scores, min_null_score = select_starts_ends(
                output["start"], output["end"], output["p_mask"], output.get("attention_mask"), min_null_score,
                top_k, handle_impossible_answer, max_answer_len,
            )
            example, enc = output["example"], output["encoding"]
            # The encoding is not padded; with left padding the model's token positions are shifted.
            offset = 0
            if self.tokenizer.padding_side == "left" and self.tokenizer.pad_token_id is not None:
                offset = int((np.asarray(output["input_ids"]) == self.tokenizer.pad_token_id).sum())
            for s, e, score in zip(starts, ends, scores):
                start_index, end_index = self.get_indices(
                    enc, int(s) - offset, int(e) - offset, output["context_sequence"], align_to_words
                )
                answers.append({"score": float(score), "start": start_index, "end": end_index,
                                "answer": example.context_text[start_index:end_index]})
        if handle_impossible_answer:
            answers.append({"score": min_null_score, "start": 0, "end": 0, "answer": ""})
        answers = sorted(answers, key=lambda answer: answer["score"], reverse=True)[:top_k]
        if len(answers) == 1:
            return answers[0]
        return answers
