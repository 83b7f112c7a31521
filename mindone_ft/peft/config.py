"""`LoraConfig` with Hugging Face PEFT's fields, defaults and `adapter_config.json` format (PEFT 0.21).

Every field of PEFT's `LoraConfig` exists here with PEFT's default, so a config file written by PEFT loads and one
written here loads in PEFT. The fields of LoRA variants and initializations mindone_ft does not implement (DoRA,
PiSSA, LoftQ, EVA, ...) must keep their defaults: anything else raises a `NotImplementedError` naming what is
supported.
"""

import dataclasses
import enum
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

logger = logging.getLogger(__name__)

CONFIG_NAME = "adapter_config.json"
# The PEFT release whose file format and defaults this module mirrors (written as `peft_version`).
PEFT_VERSION = "0.21.2"


class PeftType(str, enum.Enum):
    """PEFT's tuner names. Only `LORA` is implemented; the others are listed so that a config naming them gets a
    clear error instead of a parse failure."""

    LORA = "LORA"
    ADALORA = "ADALORA"
    IA3 = "IA3"
    LOHA = "LOHA"
    LOKR = "LOKR"
    OFT = "OFT"
    BOFT = "BOFT"
    VERA = "VERA"
    FOURIERFT = "FOURIERFT"
    PROMPT_TUNING = "PROMPT_TUNING"
    P_TUNING = "P_TUNING"
    PREFIX_TUNING = "PREFIX_TUNING"
    MULTITASK_PROMPT_TUNING = "MULTITASK_PROMPT_TUNING"
    ADAPTION_PROMPT = "ADAPTION_PROMPT"
    POLY = "POLY"
    LN_TUNING = "LN_TUNING"
    XLORA = "XLORA"
    HRA = "HRA"
    BONE = "BONE"
    TRAINABLE_TOKENS = "TRAINABLE_TOKENS"


class TaskType(str, enum.Enum):
    """PEFT's task types. `SEQ_CLS`, `TOKEN_CLS` and `QUESTION_ANS` add the task head to `modules_to_save` (it is
    new and must be trained); `SEQ_2_SEQ_LM` needs encoder-decoder models, which mindone_ft does not have."""

    SEQ_CLS = "SEQ_CLS"
    SEQ_2_SEQ_LM = "SEQ_2_SEQ_LM"
    CAUSAL_LM = "CAUSAL_LM"
    TOKEN_CLS = "TOKEN_CLS"
    QUESTION_ANS = "QUESTION_ANS"
    FEATURE_EXTRACTION = "FEATURE_EXTRACTION"


SUPPORTED_TASK_TYPES = (None, "SEQ_CLS", "CAUSAL_LM", "TOKEN_CLS", "QUESTION_ANS", "FEATURE_EXTRACTION")
SUPPORTED_INIT_LORA_WEIGHTS = (True, False, "gaussian")


@dataclass
class LoraConfig:
    """Configuration of a LoRA adapter, field for field PEFT's `LoraConfig` (see its documentation).

    Implemented: `r`, `lora_alpha`, `lora_dropout` (mindone_ft's reproducible `Dropout`), `target_modules` (names
    matched against the end of module paths, a regex matched against the whole path, or `"all-linear"`: every
    Linear except the output / classification head, as PEFT), `exclude_modules`, `bias` (`"none"`, `"all"`,
    `"lora_only"`), `modules_to_save`, `use_rslora` (scaling `lora_alpha / sqrt(r)` instead of `lora_alpha / r`),
    `init_lora_weights` (`True`: A Kaiming-uniform and B zero, the adapter starts as a no-op; `False`: both random,
    for tests; `"gaussian"`), `rank_pattern`, `alpha_pattern`, `layers_to_transform`, `layers_pattern`,
    `task_type`, `fan_in_fan_out` (set per layer as PEFT does: False for `Linear`, True for GPT-2's `Conv1D`,
    whose weights are stored `(in, out)`), `inference_mode`,
    `base_model_name_or_path`, `revision`.

    Rejected with `NotImplementedError` unless left at PEFT's default: `use_dora`, `lora_bias`, `use_qalora`,
    `use_bdlora`, `layer_replication`, `trainable_token_indices`, `target_parameters`, `alora_invocation_tokens`,
    `ensure_weight_tying`, `megatron_config`, the `*_config` fields of other initializations and variants (LoftQ,
    EVA, CorDA, LoRA-GA, Arrow, KaSA, VeLoRA, MonteCLoRA), and `init_lora_weights` other than True, False and
    "gaussian".
    """

    task_type: Optional[Union[str, TaskType]] = None
    peft_type: Optional[Union[str, PeftType]] = None
    auto_mapping: Optional[dict] = None
    peft_version: Optional[str] = None
    base_model_name_or_path: Optional[str] = None
    revision: Optional[str] = None
    inference_mode: bool = False
    r: int = 8
    target_modules: Optional[Union[List[str], str]] = None
    exclude_modules: Optional[Union[List[str], str]] = None
    lora_alpha: int = 8
    lora_dropout: float = 0.0
    fan_in_fan_out: bool = False
    bias: str = "none"
    use_rslora: bool = False
    modules_to_save: Optional[List[str]] = None
    init_lora_weights: Union[bool, str] = True
    layers_to_transform: Optional[Union[List[int], int]] = None
    layers_pattern: Optional[Union[List[str], str]] = None
    rank_pattern: Optional[dict] = field(default_factory=dict)
    alpha_pattern: Optional[dict] = field(default_factory=dict)
    megatron_config: Optional[dict] = None
    megatron_core: Optional[str] = "megatron.core"
    trainable_token_indices: Optional[Union[List[int], dict]] = None
    loftq_config: Union[dict, Any] = field(default_factory=dict)
    eva_config: Optional[Any] = None
    corda_config: Optional[Any] = None
    lora_ga_config: Optional[Any] = None
    use_dora: bool = False
    velora_config: Optional[Any] = None
    alora_invocation_tokens: Optional[List[int]] = None
    use_qalora: bool = False
    qalora_group_size: int = 16
    monteclora_config: Optional[Any] = None
    layer_replication: Optional[List] = None
    lora_bias: bool = False
    target_parameters: Optional[List[str]] = None
    use_bdlora: Optional[Any] = None
    arrow_config: Optional[Any] = None
    kasa_config: Optional[Any] = None
    ensure_weight_tying: bool = False

    # Fields that must keep these values (PEFT's defaults): the features behind them are not implemented.
    _NOT_IMPLEMENTED = {
        "use_dora": (False, "DoRA"),
        "lora_bias": (False, "a trainable bias on lora_B"),
        "use_qalora": (False, "QA-LoRA"),
        "use_bdlora": (None, "block-diagonal LoRA"),
        "layer_replication": (None, "layer replication"),
        "trainable_token_indices": (None, "trainable tokens"),
        "target_parameters": (None, "LoRA on nn.Parameter targets"),
        "alora_invocation_tokens": (None, "activated LoRA (aLoRA)"),
        "ensure_weight_tying": (False, "weight tying of modules_to_save"),
        "megatron_config": (None, "Megatron parallel layers"),
        "eva_config": (None, "EVA initialization"),
        "corda_config": (None, "CorDA initialization"),
        "lora_ga_config": (None, "LoRA-GA initialization"),
        "arrow_config": (None, "Arrow routing"),
        "kasa_config": (None, "KaSA"),
        "velora_config": (None, "VeLoRA"),
        "monteclora_config": (None, "MonteCLoRA"),
    }

    def __post_init__(self):
        if self.peft_type is not None and str(getattr(self.peft_type, "value", self.peft_type)) != "LORA":
            raise NotImplementedError(_other_tuner_message(self.peft_type))
        self.peft_type = PeftType.LORA
        if self.peft_version is None:  # as PEFT: the version whose format this is
            self.peft_version = PEFT_VERSION
        if self.task_type is not None:
            self.task_type = TaskType(getattr(self.task_type, "value", self.task_type))
        if getattr(self.task_type, "value", None) not in SUPPORTED_TASK_TYPES:
            raise NotImplementedError(
                f"task_type={self.task_type.value!r} is not supported: mindone_ft has no encoder-decoder models. "
                f"Use one of {[t for t in SUPPORTED_TASK_TYPES if t]} (or None)."
            )
        for name, (default, feature) in self._NOT_IMPLEMENTED.items():
            if getattr(self, name) != default:
                raise NotImplementedError(
                    f"LoraConfig({name}={getattr(self, name)!r}) is not implemented in mindone_ft ({feature}). "
                    f"Leave it at {default!r}; mindone_ft implements plain LoRA and rsLoRA (use_rslora=True)."
                )
        if self.init_lora_weights not in SUPPORTED_INIT_LORA_WEIGHTS:
            raise NotImplementedError(
                f"init_lora_weights={self.init_lora_weights!r} is not implemented in mindone_ft; use True (PEFT's "
                "default: A Kaiming-uniform, B zero), 'gaussian' (A normal with std 1/r, B zero) or False (both "
                "random, for tests)."
            )
        if self.loftq_config:
            logger.warning("`loftq_config` specified but will be ignored when `init_lora_weights` is not 'loftq'.")
            self.loftq_config = {}
        if self.bias not in ("none", "all", "lora_only"):
            raise NotImplementedError(f"Requested bias: {self.bias}, is not implemented; use 'none', 'all' or "
                                      "'lora_only'.")
        if self.r <= 0:
            raise ValueError(f"`r` should be a positive integer value but the value passed is {self.r}")
        # As PEFT: lists become sets (matching ignores order and duplicates); a string is a regex.
        if isinstance(self.target_modules, (list, tuple)):
            self.target_modules = set(self.target_modules)
        if isinstance(self.exclude_modules, (list, tuple)):
            self.exclude_modules = set(self.exclude_modules)
        if isinstance(self.target_modules, str) and self.layers_to_transform is not None:
            raise ValueError("`layers_to_transform` cannot be used when `target_modules` is a str.")
        if isinstance(self.target_modules, str) and self.layers_pattern is not None:
            raise ValueError("`layers_pattern` cannot be used when `target_modules` is a str.")
        if self.layers_pattern and self.layers_to_transform is None:
            raise ValueError("When `layers_pattern` is specified, `layers_to_transform` must also be specified. ")
        if self.modules_to_save is not None:
            self.modules_to_save = list(self.modules_to_save)
        self.rank_pattern = dict(self.rank_pattern or {})
        self.alpha_pattern = dict(self.alpha_pattern or {})

    @property
    def is_prompt_learning(self) -> bool:
        return False

    def to_dict(self) -> Dict[str, Any]:
        """All fields, as PEFT's `to_dict` (enums as their values)."""
        output = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, enum.Enum):
                value = value.value
            output[item.name] = value
        return output

    def to_json_string(self) -> str:
        """The text of `adapter_config.json`: PEFT's `json.dumps(indent=2, sort_keys=True)`, sets as lists (sorted
        here, so that the file does not change from run to run; PEFT writes them in set order)."""
        output = self.to_dict()
        for key, value in output.items():
            if isinstance(value, set):
                output[key] = sorted(value)
        return json.dumps(output, indent=2, sort_keys=True)

    def save_pretrained(self, save_directory: str, auto_mapping_dict: Optional[dict] = None) -> None:
        """Writes `adapter_config.json` into `save_directory` (created if needed), as PEFT's `save_pretrained`."""
        if os.path.isfile(save_directory):
            raise AssertionError(f"Provided path ({save_directory}) should be a directory, not a file")
        os.makedirs(save_directory, exist_ok=True)
        config = self
        if auto_mapping_dict is not None:
            config = dataclasses.replace(self)
            config.auto_mapping = auto_mapping_dict
        with open(os.path.join(save_directory, CONFIG_NAME), "w", encoding="utf-8") as handle:
            handle.write(config.to_json_string())

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "LoraConfig":
        """A config from the fields of an `adapter_config.json`. Keys this version does not know (written by a newer
        PEFT) are ignored with a warning, as PEFT does."""
        values = dict(values)
        peft_type = values.get("peft_type")
        if peft_type is not None and peft_type != "LORA":
            raise NotImplementedError(_other_tuner_message(peft_type))
        known = {item.name for item in dataclasses.fields(cls)}
        unexpected = sorted(set(values) - known - {"runtime_config"})
        if unexpected:
            logger.warning(
                f"Unexpected keyword arguments {unexpected} for class LoraConfig, these are ignored. This probably "
                "means that you're loading a configuration file that was saved using a higher version of PEFT."
            )
        return cls(**{key: value for key, value in values.items() if key in known})

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str, subfolder: Optional[str] = None,
                        **hub_kwargs) -> "LoraConfig":
        """Reads `adapter_config.json` from a local folder or a Hugging Face Hub repository (through the
        `huggingface_hub` cache; `hub_kwargs` are `hf_hub_download`'s: `revision`, `cache_dir`, `token`, ...)."""
        from .peft_model import resolve_adapter_file

        path = resolve_adapter_file(os.fspath(pretrained_model_name_or_path), CONFIG_NAME, subfolder, hub_kwargs)
        if path is None:
            where = "in that folder" if os.path.isdir(pretrained_model_name_or_path) else (
                "as a local folder, nor on the Hugging Face Hub or in its cache (offline mode or local_files_only "
                "may prevent downloading)")
            raise ValueError(f"Can't find '{CONFIG_NAME}' at '{pretrained_model_name_or_path}'"
                             f"{' (subfolder ' + subfolder + ')' if subfolder else ''} {where}.")
        with open(path, encoding="utf-8") as handle:
            return cls.from_dict(json.load(handle))


def _other_tuner_message(peft_type) -> str:
    name = getattr(peft_type, "value", peft_type)
    return (f"PEFT method {name!r} is not implemented in mindone_ft: only LoRA adapters (peft_type 'LORA', "
            "`LoraConfig`) are. Train or convert the adapter as LoRA.")


# The PEFT default target modules of the model types mindone_ft has (peft.utils.constants), used when
# `target_modules` is None.
TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING = {
    "bert": ["query", "value"],
    "roberta": ["query", "value"],
    "xlm-roberta": ["query", "value"],
    "electra": ["query", "value"],
    "deberta-v2": ["query_proj", "value_proj"],
    "llama": ["q_proj", "v_proj"],
    "mistral": ["q_proj", "v_proj"],
    "qwen2": ["q_proj", "v_proj"],
    "qwen3": ["q_proj", "v_proj"],
}
