"""Text generation for the causal LMs: `GenerationMixin.generate()` (see `utils.py`)."""

from .utils import GenerateDecoderOnlyOutput, GenerationMixin

__all__ = ["GenerationMixin", "GenerateDecoderOnlyOutput"]
