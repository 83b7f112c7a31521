"""Data collators (transformers' `transformers.data` counterpart)."""

from .data_collator import DataCollatorForPromptCompletion, as_numpy_collator

__all__ = ["DataCollatorForPromptCompletion", "as_numpy_collator"]
