"""Collators for causal-LM fine-tuning, and the adapter that lets the Trainer use transformers' own collators.

- `DataCollatorForPromptCompletion`: supervised fine-tuning on prompt/completion pairs; the loss is on the
  completion only (prompt and padding tokens get the label -100).
- `as_numpy_collator`: any collator a user passes to the `Trainer`, made torch-free and compile-friendly:
  transformers' collators (e.g. `DataCollatorForLanguageModeling(tokenizer, mlm=False)`, whose default is
  `return_tensors="pt"`) are asked for numpy arrays, and the sequence length of every batch is padded up to a
  bucket so that GRAPH_MODE compiles a bounded number of shapes. The extra positions are right padding with
  attention mask 0 and label -100: no real token attends to them or is scored by them, so the loss is unchanged.
"""

import copy
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..mindspore_adapter.data import LABEL_PAD_DEFAULT

__all__ = ["DataCollatorForPromptCompletion", "as_numpy_collator"]

# Per-token fields and their padding values (input_ids: the tokenizer's pad id, filled in at runtime).
_TOKEN_FIELD_PADDING = {"attention_mask": 0, "token_type_ids": 0, "special_tokens_mask": 1, "labels": LABEL_PAD_DEFAULT,
                        "position_ids": 0, "completion_mask": 0}


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


class DataCollatorForPromptCompletion:
    """Batches prompt/completion pairs for supervised fine-tuning of a causal LM: `input_ids` are the prompt's tokens
    followed by the completion's (and the end-of-sequence token), `labels` are the completion's tokens with -100 on
    the prompt and on padding, so the loss (shifted inside the model) scores the completion only.

    Rows are either text, `{"prompt": str, "completion": str}` (tokenized here, the prompt with the tokenizer's
    special tokens, the completion without), or already tokenized in TRL's format, `{"input_ids": [...],
    "completion_mask": [...]}` (1 on completion tokens).

    Args:
        tokenizer: a transformers tokenizer (its `pad_token_id`, else `eos_token_id`, pads).
        max_length (`int`, *optional*): truncate longer rows (from the right, as TRL does).
        pad_to_multiple_of (`int`, *optional*): round the padded length up to a multiple of this.
        prompt_column / completion_column (`str`): the text fields' names.
        add_eos_token (`bool`, defaults to True): end each completion with `tokenizer.eos_token_id` (learned, so the
            model stops after its answer).
        padding_side (`str`, defaults to "right"): where padding goes.
    """

    def __init__(self, tokenizer, max_length: Optional[int] = None, pad_to_multiple_of: Optional[int] = None,
                 prompt_column: str = "prompt", completion_column: str = "completion", add_eos_token: bool = True,
                 padding_side: str = "right"):
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}.")
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if pad is None:
            raise ValueError("The tokenizer has neither a pad nor an eos token: set `tokenizer.pad_token` first.")
        if add_eos_token and tokenizer.eos_token_id is None:
            raise ValueError("add_eos_token=True needs tokenizer.eos_token_id (or pass add_eos_token=False).")
        self.tokenizer = tokenizer
        self.pad_token_id = pad
        self.max_length = max_length
        self.pad_to_multiple_of = pad_to_multiple_of
        self.prompt_column, self.completion_column = prompt_column, completion_column
        self.add_eos_token = add_eos_token
        self.padding_side = padding_side
        # The Trainer keeps these dataset columns (it drops those that are not model inputs).
        self.required_columns = (prompt_column, completion_column, "input_ids", "completion_mask")

    def _tokenize(self, feature: Dict[str, Any]):
        if "input_ids" in feature and "completion_mask" in feature:
            return list(feature["input_ids"]), list(feature["completion_mask"])
        if self.prompt_column not in feature or self.completion_column not in feature:
            raise ValueError(
                f"DataCollatorForPromptCompletion needs rows with {self.prompt_column!r} and "
                f"{self.completion_column!r} texts, or tokenized 'input_ids' with a 'completion_mask'; got "
                f"{sorted(feature)}. If the Trainer dropped the columns, pass remove_unused_columns=False."
            )
        prompt = self.tokenizer(feature[self.prompt_column], add_special_tokens=True)["input_ids"]
        completion = self.tokenizer(feature[self.completion_column], add_special_tokens=False)["input_ids"]
        # A tokenizer that closes every text with its end token (BERT's [SEP]) would end the prompt with it: keep
        # the prompt as the model will see it in generate(), which is the same tokenization.
        if self.add_eos_token:
            completion = completion + [self.tokenizer.eos_token_id]
        return prompt + completion, [0] * len(prompt) + [1] * len(completion)

    def __call__(self, features: List[Dict[str, Any]], *batch_info) -> Dict[str, np.ndarray]:
        rows = [self._tokenize(f) for f in features]
        if self.max_length is not None:
            rows = [(ids[:self.max_length], mask[:self.max_length]) for ids, mask in rows]
        length = max(len(ids) for ids, _ in rows)
        if self.pad_to_multiple_of:
            length = _round_up(length, self.pad_to_multiple_of)
        batch = len(rows)
        input_ids = np.full((batch, length), self.pad_token_id, np.int32)
        attention_mask = np.zeros((batch, length), np.int32)
        labels = np.full((batch, length), LABEL_PAD_DEFAULT, np.int32)
        for i, (ids, completion) in enumerate(rows):
            start = 0 if self.padding_side == "right" else length - len(ids)
            span = slice(start, start + len(ids))
            input_ids[i, span] = ids
            attention_mask[i, span] = 1
            labels[i, span] = np.where(np.asarray(completion, bool), ids, LABEL_PAD_DEFAULT)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


class _NumpyBatches:
    """A user's collator whose batches are turned into numpy arrays padded up to a length bucket."""

    def __init__(self, collator, bucket_boundaries: Optional[Sequence[int]], pad_token_id: Optional[int],
                 multiple: int):
        self.collator = collator
        self.bucket_boundaries = sorted(bucket_boundaries) if bucket_boundaries else None
        self.pad_token_id = 0 if pad_token_id is None else pad_token_id
        self.multiple = multiple
        self.required_columns = getattr(collator, "required_columns", ())

    def _target_length(self, length: int) -> int:
        if self.bucket_boundaries:
            for boundary in self.bucket_boundaries:
                if boundary >= length:
                    return boundary
        return _round_up(length, self.multiple)

    def __call__(self, features, *batch_info):
        batch = self.collator(features)
        batch = {k: (v.numpy() if hasattr(v, "numpy") and not isinstance(v, np.ndarray) else np.asarray(v))
                 for k, v in dict(batch).items()}
        ids = batch.get("input_ids")
        if ids is None or ids.ndim != 2:
            return batch
        length = ids.shape[1]
        target = self._target_length(length)
        if target == length:
            return batch
        for name, value in batch.items():
            if value.ndim >= 2 and value.shape[:2] == ids.shape:
                fill = self.pad_token_id if name == "input_ids" else _TOKEN_FIELD_PADDING.get(name)
                if fill is None:
                    continue  # an unknown per-token field keeps its length
                width = [(0, 0), (0, target - length)] + [(0, 0)] * (value.ndim - 2)
                batch[name] = np.pad(value, width, constant_values=fill)
        return batch


def as_numpy_collator(collator, bucket_boundaries: Optional[Sequence[int]] = None,
                      pad_token_id: Optional[int] = None, multiple: int = 32):
    """The Trainer's wrapper of a user's `data_collator` (see the module docstring). transformers' collators with
    `return_tensors="pt"` are copied with `return_tensors="np"`; batches longer than the largest bucket are padded
    to a multiple of `multiple`."""
    if getattr(collator, "return_tensors", None) in ("pt", "tf", "jax"):
        collator = copy.copy(collator)
        collator.return_tensors = "np"
    return _NumpyBatches(collator, bucket_boundaries, pad_token_id, multiple)
