"""`fill-mask`: transformers' `FillMaskPipeline` on a mindone_ft `...ForMaskedLM` model, with `top_k`, `targets`
and `tokenizer_kwargs` as there (several masks in one input give one list per mask)."""

import numpy as np
from transformers.pipelines import fill_mask as _hf

from ..models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES
from .base import MindSporePipelineMixin

__all__ = ["FillMaskPipeline"]


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class FillMaskPipeline(MindSporePipelineMixin, _hf.FillMaskPipeline):
    """transformers' `FillMaskPipeline` on MindSpore; see its documentation for the arguments.

    Example:

    ```python
    >>> from mindone_ft import pipeline
    >>> unmasker = pipeline("fill-mask", model="path/to/masked-lm")
    >>> unmasker("Paris is the [MASK] of France.", top_k=2)
    [{'score': 0.7, 'token': 3007, 'token_str': 'capital', 'sequence': 'paris is the capital of france.'}, ...]
    ```
    """

    _model_mapping_names = MODEL_FOR_MASKED_LM_MAPPING_NAMES

    def get_masked_index(self, input_ids) -> np.ndarray:
        return np.argwhere(np.asarray(input_ids) == self.tokenizer.mask_token_id)

    def preprocess(self, inputs, return_tensors=None, tokenizer_kwargs=None, **preprocess_parameters):
        return super().preprocess(inputs, return_tensors=return_tensors or "np", tokenizer_kwargs=tokenizer_kwargs,
                                  **preprocess_parameters)

    def _forward(self, model_inputs):
        return {"logits": self.model(**model_inputs)["logits"], "input_ids": model_inputs["input_ids"]}

    def postprocess(self, model_outputs, top_k=5, target_ids=None):
        # transformers' postprocess, with numpy for torch's nonzero / softmax / topk.
        if target_ids is not None and target_ids.shape[0] < top_k:
            top_k = target_ids.shape[0]
        input_ids = np.asarray(model_outputs["input_ids"][0])
        outputs = np.asarray(model_outputs["logits"])
        masked_index = np.nonzero(input_ids == self.tokenizer.mask_token_id)[0]
        probs = _softmax(outputs[0, masked_index, :])
        if target_ids is not None:
            probs = probs[..., target_ids]
        predictions = np.argsort(-probs, axis=-1, kind="stable")[..., :top_k]
        values = np.take_along_axis(probs, predictions, axis=-1)

        result = []
        single_mask = values.shape[0] == 1
        for i, (_values, _predictions) in enumerate(zip(values.tolist(), predictions.tolist())):
            row = []
            for v, p in zip(_values, _predictions):
                tokens = input_ids.copy()
                if target_ids is not None:
                    p = target_ids[p].tolist()
                tokens[masked_index[i]] = p
                tokens = tokens[np.where(tokens != self.tokenizer.pad_token_id)]  # drop padding
                # Special tokens are skipped for readability, except with several masks, where the other [MASK]s stay.
                sequence = self.tokenizer.decode(tokens, skip_special_tokens=single_mask)
                row.append({"score": v, "token": p, "token_str": self.tokenizer.decode([p]), "sequence": sequence})
            result.append(row)
        if single_mask:
            return result[0]
        return result
