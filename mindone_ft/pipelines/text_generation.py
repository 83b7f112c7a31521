"""`text-generation`: transformers' `TextGenerationPipeline` on a mindone_ft causal LM (`AutoModelForCausalLM`), with
`generate()` on MindSpore: prompts (or chats, through the tokenizer's chat template), `return_full_text`,
`return_text` / `return_tensors`, `prefix`, `handle_long_generation="hole"`, and every generation setting of
`generate()`, on top of the pipeline's own defaults (`max_new_tokens=256`, sampling at temperature 0.7) as in
transformers."""

import numpy as np
from transformers.pipelines import text_generation as _hf

from ..models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
from .base import MindSporePipelineMixin

__all__ = ["TextGenerationPipeline"]


class _TokenIds(np.ndarray):
    """Token ids with a `.numpy()`, which transformers' post-processing calls on its torch tensors."""

    def numpy(self) -> np.ndarray:
        return np.asarray(self)


class _NumpyTokenizer:
    """The pipeline's tokenizer, giving numpy arrays where transformers' pipeline code asks for torch tensors."""

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)

    def __call__(self, *args, **kwargs):
        if kwargs.get("return_tensors") == "pt":
            kwargs["return_tensors"] = "np"
        return self._tokenizer(*args, **kwargs)

    def apply_chat_template(self, *args, **kwargs):
        if kwargs.get("return_tensors") == "pt":
            kwargs["return_tensors"] = "np"
        return self._tokenizer.apply_chat_template(*args, **kwargs)


class TextGenerationPipeline(MindSporePipelineMixin, _hf.TextGenerationPipeline):
    """transformers' `TextGenerationPipeline` on MindSpore; see its documentation for the arguments.

    Example:

    ```python
    >>> from mindone_ft import pipeline
    >>> generator = pipeline("text-generation", model="path/to/causal_lm_folder")
    >>> generator("review: a gem of a film sentiment:", max_new_tokens=2, do_sample=False)
    [{'generated_text': 'review: a gem of a film sentiment: positive'}]
    ```
    """

    _model_mapping_names = MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.tokenizer is not None:
            # Decoder-only models need left padding for batched generation (transformers sets it too).
            if self.tokenizer.padding_side == "right":
                self.tokenizer.padding_side = "left"
            self.tokenizer = _NumpyTokenizer(self.tokenizer)

    def _forward(self, model_inputs, **generate_kwargs):
        input_ids = model_inputs["input_ids"]
        attention_mask = model_inputs.get("attention_mask")
        if input_ids.shape[1] == 0:
            raise ValueError("text-generation: the prompt is empty; give at least one token of prompt.")
        prompt_text = model_inputs.pop("prompt_text")
        prefix_length = generate_kwargs.pop("prefix_length", 0)
        generate_kwargs = self._prepare_generate_kwargs(generate_kwargs)
        if prefix_length:  # a total length (as opposed to a number of new tokens) has to include the prefix
            generation_params = self._get_set_generation_params(generate_kwargs)
            for length, new_tokens in (("max_length", "max_new_tokens"), ("min_length", "min_new_tokens")):
                if length in generation_params and new_tokens not in generation_params:
                    generate_kwargs[length] = generation_params[length] + prefix_length
        generate_kwargs.pop("return_dict_in_generate", None)  # only the sequences are post-processed here
        sequences = np.asarray(self.model.generate(input_ids=np.asarray(input_ids), attention_mask=attention_mask,
                                                   **generate_kwargs))
        batch = input_ids.shape[0]
        sequences = sequences.reshape(batch, sequences.shape[0] // batch, *sequences.shape[1:]).view(_TokenIds)
        return {"generated_sequence": sequences, "input_ids": input_ids, "prompt_text": prompt_text}

    def forward(self, model_inputs, **forward_params):
        return self._forward(model_inputs, **forward_params)  # already numpy
