"""mindone_ft: fine-tune Hugging Face Transformers models on MindSpore with the Transformers API."""

from .utils import compat as _compat  # noqa: F401  (sets environment defaults before transformers loads)

__version__ = "0.1.0"
