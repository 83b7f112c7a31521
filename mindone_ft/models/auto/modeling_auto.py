"""Auto classes: pick the model class from `config.model_type`, like transformers' `AutoModel*`."""

import importlib
import os
from collections import OrderedDict
from typing import Dict, Iterator, Tuple, Union

from transformers import PretrainedConfig

from ...modeling_utils import MSPreTrainedModel
from ...utils.offline import resolve_model_name

# model_type -> class name, one table per task, as in transformers' `modeling_auto.py`. Adding a family means one
# line per head it has; its package `mindone_ft.models.<model_type with "-" as "_">` is imported on first use.
MODEL_MAPPING_NAMES = OrderedDict([
    ("albert", "AlbertModel"),
    ("bert", "BertModel"),
    ("deberta-v2", "DebertaV2Model"),
    ("distilbert", "DistilBertModel"),
    ("electra", "ElectraModel"),
    ("gemma3_text", "Gemma3TextModel"),
    ("gpt2", "GPT2Model"),
    ("llama", "LlamaModel"),
    ("mistral", "MistralModel"),
    ("modernbert", "ModernBertModel"),
    ("mpnet", "MPNetModel"),
    ("qwen2", "Qwen2Model"),
    ("qwen3", "Qwen3Model"),
    ("roberta", "RobertaModel"),
    ("xlm-roberta", "XLMRobertaModel"),
])
# Pretraining: the family's pretraining head, else its masked-LM head, as transformers maps them.
MODEL_FOR_PRETRAINING_MAPPING_NAMES = OrderedDict([
    ("albert", "AlbertForPreTraining"),
    ("bert", "BertForPreTraining"),
    ("deberta-v2", "DebertaV2ForMaskedLM"),
    ("distilbert", "DistilBertForMaskedLM"),
    ("electra", "ElectraForPreTraining"),
    ("mpnet", "MPNetForMaskedLM"),
    ("roberta", "RobertaForMaskedLM"),
    ("xlm-roberta", "XLMRobertaForMaskedLM"),
])
MODEL_FOR_MASKED_LM_MAPPING_NAMES = OrderedDict([
    ("albert", "AlbertForMaskedLM"),
    ("bert", "BertForMaskedLM"),
    ("deberta-v2", "DebertaV2ForMaskedLM"),
    ("distilbert", "DistilBertForMaskedLM"),
    ("electra", "ElectraForMaskedLM"),
    ("modernbert", "ModernBertForMaskedLM"),
    ("mpnet", "MPNetForMaskedLM"),
    ("roberta", "RobertaForMaskedLM"),
    ("xlm-roberta", "XLMRobertaForMaskedLM"),
])
MODEL_FOR_CAUSAL_LM_MAPPING_NAMES = OrderedDict([
    ("gemma3_text", "Gemma3ForCausalLM"),
    ("gpt2", "GPT2LMHeadModel"),
    ("llama", "LlamaForCausalLM"),
    ("mistral", "MistralForCausalLM"),
    ("qwen2", "Qwen2ForCausalLM"),
    ("qwen3", "Qwen3ForCausalLM"),
])
MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES = OrderedDict([
    ("albert", "AlbertForSequenceClassification"),
    ("bert", "BertForSequenceClassification"),
    ("deberta-v2", "DebertaV2ForSequenceClassification"),
    ("distilbert", "DistilBertForSequenceClassification"),
    ("electra", "ElectraForSequenceClassification"),
    ("gemma3_text", "Gemma3TextForSequenceClassification"),
    ("gpt2", "GPT2ForSequenceClassification"),
    ("llama", "LlamaForSequenceClassification"),
    ("mistral", "MistralForSequenceClassification"),
    ("modernbert", "ModernBertForSequenceClassification"),
    ("mpnet", "MPNetForSequenceClassification"),
    ("qwen2", "Qwen2ForSequenceClassification"),
    ("qwen3", "Qwen3ForSequenceClassification"),
    ("roberta", "RobertaForSequenceClassification"),
    ("xlm-roberta", "XLMRobertaForSequenceClassification"),
])
MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES = OrderedDict([
    ("albert", "AlbertForTokenClassification"),
    ("bert", "BertForTokenClassification"),
    ("deberta-v2", "DebertaV2ForTokenClassification"),
    ("distilbert", "DistilBertForTokenClassification"),
    ("electra", "ElectraForTokenClassification"),
    ("gpt2", "GPT2ForTokenClassification"),
    ("llama", "LlamaForTokenClassification"),
    ("mistral", "MistralForTokenClassification"),
    ("modernbert", "ModernBertForTokenClassification"),
    ("mpnet", "MPNetForTokenClassification"),
    ("qwen2", "Qwen2ForTokenClassification"),
    ("qwen3", "Qwen3ForTokenClassification"),
    ("roberta", "RobertaForTokenClassification"),
    ("xlm-roberta", "XLMRobertaForTokenClassification"),
])
MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES = OrderedDict([
    ("albert", "AlbertForQuestionAnswering"),
    ("bert", "BertForQuestionAnswering"),
    ("deberta-v2", "DebertaV2ForQuestionAnswering"),
    ("distilbert", "DistilBertForQuestionAnswering"),
    ("electra", "ElectraForQuestionAnswering"),
    ("gpt2", "GPT2ForQuestionAnswering"),
    ("llama", "LlamaForQuestionAnswering"),
    ("mistral", "MistralForQuestionAnswering"),
    ("modernbert", "ModernBertForQuestionAnswering"),
    ("mpnet", "MPNetForQuestionAnswering"),
    ("qwen2", "Qwen2ForQuestionAnswering"),
    ("qwen3", "Qwen3ForQuestionAnswering"),
    ("roberta", "RobertaForQuestionAnswering"),
    ("xlm-roberta", "XLMRobertaForQuestionAnswering"),
])
MODEL_FOR_MULTIPLE_CHOICE_MAPPING_NAMES = OrderedDict([
    ("albert", "AlbertForMultipleChoice"),
    ("bert", "BertForMultipleChoice"),
    ("deberta-v2", "DebertaV2ForMultipleChoice"),
    ("distilbert", "DistilBertForMultipleChoice"),
    ("electra", "ElectraForMultipleChoice"),
    ("modernbert", "ModernBertForMultipleChoice"),
    ("mpnet", "MPNetForMultipleChoice"),
    ("roberta", "RobertaForMultipleChoice"),
    ("xlm-roberta", "XLMRobertaForMultipleChoice"),
])


# Model types whose family lives in a folder of another name, as transformers' `SPECIAL_MODEL_TYPE_TO_MODULE_NAME`
# (Gemma 3's text model sits beside the multimodal one, in `gemma3`).
SPECIAL_MODEL_TYPE_TO_MODULE_NAME = {"gemma3_text": "gemma3"}


def model_module_name(model_type: str) -> str:
    """`mindone_ft.models` subpackage of a model type ("xlm-roberta" -> "xlm_roberta", "gemma3_text" -> "gemma3")."""
    return SPECIAL_MODEL_TYPE_TO_MODULE_NAME.get(model_type, model_type.replace("-", "_"))


class _LazyAutoMapping(Dict[str, type]):
    """A read-only `{model_type: model class}` over a table of class names, importing each family when looked up."""

    def __init__(self, names: "OrderedDict[str, str]"):
        super().__init__()
        self._names = names

    def __getitem__(self, model_type: str) -> type:
        module = importlib.import_module(f"mindone_ft.models.{model_module_name(model_type)}")
        return getattr(module, self._names[model_type])

    def __contains__(self, model_type: object) -> bool:
        return model_type in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def keys(self):
        return self._names.keys()

    def items(self) -> Iterator[Tuple[str, type]]:
        return ((model_type, self[model_type]) for model_type in self._names)

    def get(self, model_type, default=None):
        return self[model_type] if model_type in self._names else default


MODEL_MAPPING = _LazyAutoMapping(MODEL_MAPPING_NAMES)
MODEL_FOR_PRETRAINING_MAPPING = _LazyAutoMapping(MODEL_FOR_PRETRAINING_MAPPING_NAMES)
MODEL_FOR_MASKED_LM_MAPPING = _LazyAutoMapping(MODEL_FOR_MASKED_LM_MAPPING_NAMES)
MODEL_FOR_CAUSAL_LM_MAPPING = _LazyAutoMapping(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)
MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING = _LazyAutoMapping(MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES)
MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING = _LazyAutoMapping(MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES)
MODEL_FOR_QUESTION_ANSWERING_MAPPING = _LazyAutoMapping(MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES)
MODEL_FOR_MULTIPLE_CHOICE_MAPPING = _LazyAutoMapping(MODEL_FOR_MULTIPLE_CHOICE_MAPPING_NAMES)

_HUB_DEFAULTS = dict(
    cache_dir=None, force_download=False, local_files_only=False, token=None, revision="main", subfolder=""
)
_HUB_KWARGS = tuple(_HUB_DEFAULTS)
# Arguments of the model's from_pretrained that must not be mistaken for config attributes (`dtype` is one).
_MODEL_KWARGS = ("dtype", "mindspore_dtype", "torch_dtype", "ignore_mismatched_sizes", "output_loading_info")


class _BaseAutoModelClass:
    """Dispatches `from_pretrained` / `from_config` to the class registered for `config.model_type`."""

    _model_mapping: _LazyAutoMapping = _LazyAutoMapping(OrderedDict())

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


class AutoModelForCausalLM(_BaseAutoModelClass):
    _model_mapping = MODEL_FOR_CAUSAL_LM_MAPPING


class AutoModelForSequenceClassification(_BaseAutoModelClass):
    _model_mapping = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING


class AutoModelForTokenClassification(_BaseAutoModelClass):
    _model_mapping = MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING


class AutoModelForQuestionAnswering(_BaseAutoModelClass):
    _model_mapping = MODEL_FOR_QUESTION_ANSWERING_MAPPING


class AutoModelForMultipleChoice(_BaseAutoModelClass):
    _model_mapping = MODEL_FOR_MULTIPLE_CHOICE_MAPPING


# Task tables in the order the "Supported models" table lists them: (column title, names table).
TASK_TABLES = (
    ("base", MODEL_MAPPING_NAMES),
    ("pretraining", MODEL_FOR_PRETRAINING_MAPPING_NAMES),
    ("masked LM", MODEL_FOR_MASKED_LM_MAPPING_NAMES),
    ("causal LM", MODEL_FOR_CAUSAL_LM_MAPPING_NAMES),
    ("sequence classification", MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES),
    ("token classification", MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES),
    ("question answering", MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES),
    ("multiple choice", MODEL_FOR_MULTIPLE_CHOICE_MAPPING_NAMES),
)


def supported_models() -> "OrderedDict[str, list]":
    """`{model_type: [class names of its heads]}` from the Auto tables, model types in order of first appearance."""
    models: "OrderedDict[str, list]" = OrderedDict()
    for _, names in TASK_TABLES:
        for model_type, class_name in names.items():
            heads = models.setdefault(model_type, [])
            if class_name not in heads:
                heads.append(class_name)
    return models


def supported_models_markdown(parity: Dict[str, Dict[str, float]]) -> str:
    """The table of `docs/supported_models.md`: model type, heads, and the largest differences from Hugging Face
    PyTorch measured by the parity harness (`parity[model_type]` has "forward" and "gradient"; see
    `tests/update_parity_figures.py`). Generated here so that the docs cannot drift from the Auto tables."""
    lines = [
        "| model type | heads | forward max abs diff | gradient max rel diff |",
        "| --- | --- | --- | --- |",
    ]
    for model_type, heads in supported_models().items():
        figures = parity.get(model_type, {})
        forward = f"{figures['forward']:.1e}" if "forward" in figures else "not measured"
        gradient = f"{figures['gradient']:.1e}" if "gradient" in figures else "not measured"
        lines.append(f"| `{model_type}` | {', '.join(f'`{h}`' for h in heads)} | {forward} | {gradient} |")
    return "\n".join(lines) + "\n"
