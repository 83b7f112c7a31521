"""`text-classification` (alias `sentiment-analysis`): transformers' `TextClassificationPipeline` on a mindone_ft
`...ForSequenceClassification` model. Arguments (`top_k`, `function_to_apply`, text pairs as
`{"text": ..., "text_pair": ...}`) and outputs are transformers'; single-label models get a softmax, multi-label
(`problem_type="multi_label_classification"`) and one-label models a sigmoid, regression none, as there."""

import numpy as np
from transformers.pipelines import text_classification as _hf

from ..models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES
from .base import MindSporePipelineMixin

__all__ = ["ClassificationFunction", "TextClassificationPipeline"]

ClassificationFunction = _hf.ClassificationFunction


class _HostArray(np.ndarray):
    """A numpy array with the two `torch.Tensor` methods transformers' `postprocess` calls on the logits
    (`.float().numpy()`), so that its post-processing runs verbatim on numpy."""

    def float(self) -> np.ndarray:
        return np.asarray(self, dtype=np.float32).view(_HostArray)

    def numpy(self) -> np.ndarray:
        return np.asarray(self)


class TextClassificationPipeline(MindSporePipelineMixin, _hf.TextClassificationPipeline):
    """transformers' `TextClassificationPipeline` on MindSpore; see its documentation for the arguments.

    Example:

    ```python
    >>> from mindone_ft import pipeline
    >>> classifier = pipeline("text-classification", model="path/to/fine-tuned-model")
    >>> classifier("This movie is disgustingly good !")
    [{'label': 'POSITIVE', 'score': 0.98}]
    ```
    """

    _model_mapping_names = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

    def preprocess(self, inputs, **tokenizer_kwargs):
        # transformers' preprocess, with numpy instead of torch tensors.
        if isinstance(inputs, dict):
            return self.tokenizer(**inputs, return_tensors="np", **tokenizer_kwargs)
        if isinstance(inputs, list) and len(inputs) == 1 and isinstance(inputs[0], list) and len(inputs[0]) == 2:
            # the older list-of-pairs form, which transformers still accepts
            return self.tokenizer(text=inputs[0][0], text_pair=inputs[0][1], return_tensors="np", **tokenizer_kwargs)
        if isinstance(inputs, list):
            raise ValueError(
                "The pipeline received invalid inputs, if you are trying to send text pairs, you can try to send a"
                ' dictionary `{"text": "My text", "text_pair": "My pair"}` in order to send a text pair.'
            )
        return self.tokenizer(inputs, return_tensors="np", **tokenizer_kwargs)

    def _forward(self, model_inputs):
        return self.model(**model_inputs)

    def postprocess(self, model_outputs, function_to_apply=None, top_k=1, _legacy=True):
        outputs = {"logits": np.asarray(model_outputs["logits"]).view(_HostArray)}
        return super().postprocess(outputs, function_to_apply=function_to_apply, top_k=top_k, _legacy=_legacy)
