"""transformers' logits processors and warpers, on the host in numpy (no torch), with the same rules and order.

`generate()` fetches one row of next-token logits per sequence each step; choosing the token is a few vector
operations on `(batch, vocab)`, cheaper on the host than as another compiled graph. Each function here mirrors the
`__call__` of the transformers class it names (transformers 5.23, `generation/logits_process.py`).
"""

from typing import Callable, List, Optional, Sequence

import numpy as np

FILTER_VALUE = -np.inf

LogitsProcessor = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (input_ids, scores) -> scores


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def repetition_penalty(penalty: float, padding_lengths: Optional[np.ndarray] = None) -> LogitsProcessor:
    """`RepetitionPenaltyLogitsProcessor`: the logit of every token already in the sequence (prompt included, its
    left padding not: the first `padding_lengths[row]` tokens are skipped, as transformers' `generate()` sets
    `prompt_ignore_length`) is divided by `penalty` when positive, multiplied when negative."""

    def process(input_ids, scores):
        vocab_size = scores.shape[-1]
        if padding_lengths is not None:  # padding points at an extra column that is dropped afterwards
            positions = np.arange(input_ids.shape[1])[None, :]
            input_ids = np.where(positions < padding_lengths[:, None], vocab_size, input_ids)
        padded = np.pad(scores, ((0, 0), (0, 1)))
        score = np.take_along_axis(padded, input_ids, axis=1)
        score = np.where(score < 0, score * penalty, score / penalty)
        np.put_along_axis(padded, input_ids, score, axis=1)
        return padded[:, :vocab_size]

    return process


def suppress_eos_until(min_length: int, eos_token_ids: Sequence[int], prompt_length: int = 0) -> LogitsProcessor:
    """`MinLengthLogitsProcessor` (`prompt_length` 0: `min_length` counts the prompt) and
    `MinNewTokensLengthLogitsProcessor` (`min_new_tokens` after a prompt of `prompt_length`): no end of sequence
    before that length."""
    eos = np.asarray(list(eos_token_ids), dtype=np.int64)

    def process(input_ids, scores):
        if input_ids.shape[-1] - prompt_length < min_length:
            scores = scores.copy()
            scores[:, eos] = FILTER_VALUE
        return scores

    return process


def temperature(value: float) -> LogitsProcessor:
    """`TemperatureLogitsWarper`."""
    return lambda input_ids, scores: scores / value


def top_k(k: int, min_tokens_to_keep: int = 1) -> LogitsProcessor:
    """`TopKLogitsWarper`: keep the `k` highest logits (ties with the k-th kept too)."""
    k = max(k, min_tokens_to_keep)

    def process(input_ids, scores):
        kth = min(k, scores.shape[-1])
        threshold = np.partition(scores, -kth, axis=-1)[:, -kth][:, None]
        return np.where(scores < threshold, FILTER_VALUE, scores)

    return process


def top_p(p: float, min_tokens_to_keep: int = 1) -> LogitsProcessor:
    """`TopPLogitsWarper` (nucleus): keep the most likely tokens whose probabilities add up to `p`."""

    def process(input_ids, scores):
        sorted_indices = np.argsort(scores, axis=-1, kind="stable")  # ascending, as transformers sorts
        sorted_logits = np.take_along_axis(scores, sorted_indices, axis=-1)
        cumulative = np.cumsum(softmax(sorted_logits), axis=-1)
        remove_sorted = cumulative <= (1 - p)
        remove_sorted[:, -min_tokens_to_keep:] = False
        remove = np.zeros_like(remove_sorted)
        np.put_along_axis(remove, sorted_indices, remove_sorted, axis=-1)
        return np.where(remove, FILTER_VALUE, scores)

    return process


def min_p(value: float, min_tokens_to_keep: int = 1) -> LogitsProcessor:
    """`MinPLogitsWarper`: drop tokens less likely than `value` times the most likely one."""

    def process(input_ids, scores):
        probs = softmax(scores)
        remove = probs < value * probs.max(axis=-1, keepdims=True)
        keep = np.argsort(-probs, axis=-1, kind="stable")[:, :min(min_tokens_to_keep, probs.shape[-1])]
        np.put_along_axis(remove, keep, False, axis=-1)
        return np.where(remove, FILTER_VALUE, scores)

    return process


def logits_processors(generation_config, prompt_length: int, eos_token_ids: List[int],
                      attention_mask: Optional[np.ndarray] = None) -> List[LogitsProcessor]:
    """The processors transformers' `_get_logits_processor` builds for these settings, in its order: repetition
    penalty, minimum lengths, then (when sampling) temperature, top-k, top-p, min-p. `attention_mask` is the
    prompts' (its left padding is not penalized)."""
    config = generation_config
    processors: List[LogitsProcessor] = []
    if config.repetition_penalty is not None and config.repetition_penalty != 1.0:
        padding_lengths = (attention_mask != 0).argmax(axis=1) if attention_mask is not None else None
        processors.append(repetition_penalty(config.repetition_penalty, padding_lengths))
    if eos_token_ids and config.min_length is not None and config.min_length > 0:
        processors.append(suppress_eos_until(config.min_length, eos_token_ids))
    if eos_token_ids and config.min_new_tokens is not None and config.min_new_tokens > 0:
        processors.append(suppress_eos_until(config.min_new_tokens, eos_token_ids, prompt_length))
    if config.do_sample:
        if config.temperature is not None and config.temperature != 1.0:
            processors.append(temperature(config.temperature))
        if config.top_k is not None and config.top_k != 0:
            processors.append(top_k(config.top_k))
        if config.top_p is not None and config.top_p < 1.0:
            processors.append(top_p(config.top_p))
        if config.min_p is not None:
            processors.append(min_p(config.min_p))
    return processors


def sample(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One token per row drawn from `softmax(scores)` (inverse transform of one uniform draw per row)."""
    probs = softmax(scores.astype(np.float64))
    cumulative = np.cumsum(probs, axis=-1)
    draws = rng.random((scores.shape[0], 1)) * cumulative[:, -1:]
    tokens = (cumulative <= draws).sum(axis=-1)
    return np.minimum(tokens, scores.shape[-1] - 1)


def apply_processors(processors: Sequence[LogitsProcessor], input_ids: np.ndarray,
                     scores: np.ndarray) -> np.ndarray:
    for process in processors:
        scores = process(input_ids, scores)
    return scores

