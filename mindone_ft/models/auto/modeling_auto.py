"""Auto classes: pick the model class from `config.model_type`, like transformers' `AutoModel*`."""

import os
from typing import Dict, Union

from transformers import PretrainedConfig

from ...modeling_utils import MSPreTrainedModel
from ...utils.offline import resolve_model_name
from ..bert import (
    BertForMaskedLM,
    BertForMultipleChoice,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
)

# model_type -> class, one mapping per task. Adding an architecture means adding one entry per task here.
MODEL_MAPPING: Dict[str, type] = {"bert": BertModel}
MODEL_FOR_PRETRAINING_MAPPING: Dict[str, type] = {"bert": BertForPreTraining}
MODEL_FOR_MASKED_LM_MAPPING: Dict[str, type] = {"bert": BertForMaskedLM}
MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING: Dict[str, type] = {"bert": BertForSequenceClassification}
MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING: Dict[str, type] = {"bert": BertForTokenClassification}
MODEL_FOR_QUESTION_ANSWERING_MAPPING: Dict[str, type] = {"bert": BertForQuestionAnswering}
MODEL_FOR_MULTIPLE_CHOICE_MAPPING: Dict[str, type] = {"bert": BertForMultipleChoice}

_HUB_DEFAULTS = dict(
    cache_dir=None, force_download=False, local_files_only=False, token=None, revision="main", subfolder=""
)
_HUB_KWARGS = tuple(_HUB_DEFAULTS)
# Arguments of the model's from_pretrained that must not be mistaken for config attributes (`dtype` is one).
_MODEL_KWARGS = ("dtype", "mindspore_dtype", "torch_dtype", "ignore_mismatched_sizes", "output_loading_info")


class _BaseAutoModelClass:
    """Dispatches `from_pretrained` / `from_config` to the class registered for `config.model_type`."""

    _model_mapping: Dict[str, type] = {}

    def __init__(self, *args, **kwargs):
        raise EnvironmentError(
            f"{type(self).__name__} is designed to be instantiated using "
            f"`{type(self).__name__}.from_pretrained(pretrained_model_name_or_path)` or "
            f"`{type(self).__name__}.from_config(config)`."
        )

    @classmethod
    def _model_class(cls, config: PretrainedConfig) -> type:
        model_type = getattr(config, "model_type", None)
        if model_type not in cls._model_mapping:
            raise ValueError(
                f"Unrecognized configuration class {type(config).__name__} (model_type={model_type!r}) for "
                f"{cls.__name__}. mindone_ft supports model types: {', '.join(sorted(cls._model_mapping))}."
            )
        return cls._model_mapping[model_type]

    @classmethod
    def from_config(cls, config: PretrainedConfig, **kwargs):
        """A freshly initialized model (no pretrained weights) of the class matching `config.model_type`."""
        return cls._model_class(config).from_config(config, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Union[str, os.PathLike], *model_args, **kwargs):
        """Loads the configuration, picks the class for its `model_type`, and calls that class's `from_pretrained`.

        Accepts the same arguments as `MSPreTrainedModel.from_pretrained`.
        """
        config = kwargs.pop("config", None)
        model_kwargs = {key: kwargs.pop(key) for key in _MODEL_KWARGS if key in kwargs}
        if not isinstance(config, PretrainedConfig):
            path = resolve_model_name(os.fspath(config or pretrained_model_name_or_path))
            hub_kwargs = {key: kwargs.pop(key) for key in _HUB_KWARGS if key in kwargs}
            # Same resolution and error messages as the model classes; `config_class` None means AutoConfig.
            # Config attributes among kwargs (num_labels, problem_type, ...) update the config; the rest go on.
            config, kwargs = MSPreTrainedModel._load_config(path, {**_HUB_DEFAULTS, **hub_kwargs}, kwargs)
            kwargs.update(hub_kwargs)
        model_class = cls._model_class(config)
        return model_class.from_pretrained(
            pretrained_model_name_or_path, *model_args, config=config, **model_kwargs, **kwargs
        )


class AutoModel(_BaseAutoModelClass):
    _model_mapping = MODEL_MAPPING


class AutoModelForPreTraining(_BaseAutoModelClass):
    _model_mapping = MODEL_FOR_PRETRAINING_MAPPING


class AutoModelForMaskedLM(_BaseAutoModelClass):
    _model_mapping = MODEL_FOR_MASKED_LM_MAPPING


class AutoModelForSequenceClassification(_BaseAutoModelClass):
    _model_mapping = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING


class AutoModelForTokenClassification(_BaseAutoModelClass):
    _model_mapping = MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING


class AutoModelForQuestionAnswering(_BaseAutoModelClass):
    _model_mapping = MODEL_FOR_QUESTION_ANSWERING_MAPPING


class AutoModelForMultipleChoice(_BaseAutoModelClass):
    _model_mapping = MODEL_FOR_MULTIPLE_CHOICE_MAPPING
