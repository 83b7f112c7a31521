from .modeling_gemma3 import (
    Gemma3ForCausalLM,
    Gemma3PreTrainedModel,
    Gemma3TextForSequenceClassification,
    Gemma3TextModel,
)

__all__ = [
    "Gemma3PreTrainedModel",
    "Gemma3TextModel",
    "Gemma3ForCausalLM",
    "Gemma3TextForSequenceClassification",
]
