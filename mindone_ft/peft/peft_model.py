"""`PeftModel` and `get_peft_model`: PEFT's user API over `LoraModel`, with PEFT's adapter files.

`PeftModel` wraps `LoraModel`, which wraps the model (`peft_model.base_model.model`), so parameter paths are PEFT's
(`base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.default.weight`). Calling it calls the
wrapped model (inputs, `ModelOutput`s and `generate()` work as without the adapter); attributes it does not have
are looked up on `LoraModel`, then on the model (`config`, `merge_and_unload`, `generate`, ...), as in PEFT.
"""

import contextlib
import dataclasses
import logging
import os
from typing import Any, Dict, List, Optional, Tuple, Union

from mindspore import nn

from ..mindspore_adapter.cell_mode import TrainEvalModeMixin
from ..modeling_layers import RNG_STATE_NAME
from ..modeling_utils import _atomic_write_dir, _resolve_hub_file
from .config import LoraConfig, TaskType
from .layer import ForwardsAttributes, recompile_graphs
from .model import LoraModel
from .save_and_load import (
    LEGACY_WEIGHTS_NAME,
    WEIGHTS_NAME,
    AdapterLoadResult,
    get_peft_model_state_dict,
    load_peft_weights,
    set_peft_model_state_dict,
)

logger = logging.getLogger(__name__)

HUB_KWARGS = ("revision", "cache_dir", "token", "local_files_only", "force_download")


def resolve_adapter_file(path: str, filename: str, subfolder: Optional[str] = None,
                         hub_kwargs: Optional[Dict[str, Any]] = None) -> Optional[str]:
    """Local path of `filename` of an adapter: in the folder `path` (and `subfolder`), else from the Hugging Face
    Hub repository `path` through the `huggingface_hub` cache (as `from_pretrained` resolves model files). None
    when the folder or repository has no such file.

    Raises:
        OSError: `path` is neither a folder nor a repository the Hub (or its cache, offline) can resolve.
    """
    if os.path.isdir(path):
        candidate = os.path.join(path, subfolder or "", filename)
        return candidate if os.path.isfile(candidate) else None
    kwargs = {k: v for k, v in (hub_kwargs or {}).items() if k in HUB_KWARGS and v is not None}
    kwargs["subfolder"] = subfolder or ""
    try:
        return _resolve_hub_file(path, filename, kwargs)
    except Exception as error:  # invalid repo id, repository not found, network errors, ...
        raise OSError(f"{path!r} is not a local folder and could not be resolved as an adapter on the Hugging Face "
                      f"Hub ({type(error).__name__}: {error}).") from error


def _hub_kwargs(kwargs: Dict[str, Any]) -> Dict[str, Any]:
    return {key: kwargs.pop(key) for key in list(kwargs) if key in HUB_KWARGS + ("subfolder",)}


class PeftModel(TrainEvalModeMixin, ForwardsAttributes, nn.Cell):
    """A model with LoRA adapters, with the API of PEFT's `PeftModel`.

    Args:
        model (`MSPreTrainedModel`): the model to adapt (changed in place: its targeted layers become LoRA layers).
        peft_config (`LoraConfig`): the adapter.
        adapter_name (`str`, *optional*, defaults to `"default"`): its name.

    Use `get_peft_model(model, config)` (which picks the class of the task type) or `PeftModel.from_pretrained`.
    """

    # Task heads trained in full beside the adapter (PEFT's PeftModelForSequenceClassification & co).
    _task_modules_to_save: Tuple[str, ...] = ()
    _forward_to = "base_model"  # then LoraModel forwards to the model

    def __init__(self, model: nn.Cell, peft_config: LoraConfig, adapter_name: str = "default", **kwargs):
        super().__init__(auto_prefix=False)  # the model's parameter names stay as they are
        if not isinstance(peft_config, LoraConfig):
            raise NotImplementedError(f"{type(peft_config).__name__} is not implemented in mindone_ft; only LoRA "
                                      "adapters (`mindone_ft.peft.LoraConfig`) are.")
        self._extend_modules_to_save(peft_config)
        self.base_model = LoraModel(model, {adapter_name: peft_config}, adapter_name)
        recompile_graphs()  # graphs compiled for the model before it had adapters are stale

    def _extend_modules_to_save(self, config: LoraConfig) -> None:
        # As PEFT: the task head is new (randomly initialized), so it is trained and saved with the adapter. PEFT
        # appends the names even when present; they are appended once here.
        if self._task_modules_to_save:
            names = list(config.modules_to_save or [])
            config.modules_to_save = names + [n for n in self._task_modules_to_save if n not in names]

    # --- calling ------------------------------------------------------------------------------------------------

    def __call__(self, *args, **kwargs):
        # A top-level call is the wrapped model's own call: numpy inputs, config defaults and `ModelOutput`s as
        # without the adapter (its compiled graph contains the LoRA layers).
        return self.get_base_model()(*args, **kwargs)

    def construct(self, *args, **kwargs):
        # Inside another Cell's graph (the Trainer's train step) the model is traced through here.
        return self.base_model(*args, **kwargs)

    def forward(self, *args, **kwargs):
        """PEFT's `forward`: the same as calling the model."""
        return self(*args, **kwargs)

    def get_base_model(self) -> nn.Cell:
        """The wrapped model (with the LoRA layers in it)."""
        return self.base_model.model

    # --- adapters -----------------------------------------------------------------------------------------------

    @property
    def peft_config(self) -> Dict[str, LoraConfig]:
        return self.base_model.peft_config

    @property
    def active_adapter(self) -> Union[str, List[str]]:
        return self.base_model.active_adapter

    @property
    def active_adapters(self) -> List[str]:
        return self.base_model.active_adapters

    @property
    def active_peft_config(self) -> LoraConfig:
        return self.peft_config[self.active_adapters[0]]

    @property
    def modules_to_save(self) -> Optional[set]:
        names = set()
        for config in self.peft_config.values():
            names |= set(config.modules_to_save or [])
        return names or None

    def add_adapter(self, adapter_name: str, peft_config: LoraConfig, **kwargs) -> None:
        """Adds another adapter, not activated (`set_adapter` activates it)."""
        self._extend_modules_to_save(peft_config)
        self.base_model.add_adapter(adapter_name, peft_config)
        recompile_graphs()

    def set_adapter(self, adapter_name: str, inference_mode: bool = False) -> None:
        """Makes `adapter_name` the active adapter (trainable unless `inference_mode`); graphs recompile."""
        if adapter_name not in self.peft_config:
            raise ValueError(f"Adapter {adapter_name} not found.")
        self.base_model.set_adapter(adapter_name, inference_mode=inference_mode)

    def delete_adapter(self, adapter_name: str) -> None:
        """Removes an adapter."""
        self.base_model.delete_adapter(adapter_name)

    @contextlib.contextmanager
    def disable_adapter(self):
        """Context manager running the base model without the adapters (also in GRAPH_MODE: graphs recompile on
        entry and exit)::

            with peft_model.disable_adapter():
                base_logits = peft_model(**inputs).logits
        """
        self.base_model.disable_adapter_layers()
        try:
            yield
        finally:
            self.base_model.enable_adapter_layers()

    # --- parameters ---------------------------------------------------------------------------------------------

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        """`(name, Parameter)` with PEFT's names (`base_model.model.<path>`), tied parameters once, without
        dropout's random-stream state."""
        seen = set()
        for name, param in self.parameters_and_names(name_prefix=prefix, expand=recurse):
            if name.rsplit(".", 1)[-1] == RNG_STATE_NAME or id(param) in seen:
                continue
            seen.add(id(param))
            yield name, param

    def parameters(self, recurse: bool = True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def get_nb_trainable_parameters(self) -> Tuple[int, int]:
        """`(trainable parameters, all parameters)`, counted as PEFT does (tied weights once)."""
        trainable, total = 0, 0
        for _, param in self.named_parameters():
            count = int(param.size)
            total += count
            if param.requires_grad:
                trainable += count
        return trainable, total

    def print_trainable_parameters(self) -> None:
        """Prints `trainable params: N || all params: M || trainable%: P`, as PEFT."""
        trainable, total = self.get_nb_trainable_parameters()
        percent = 100 * trainable / total
        print(f"trainable params: {trainable:,d} || all params: {total:,d} || trainable%: {percent:.4f}")

    # --- files --------------------------------------------------------------------------------------------------

    def save_pretrained(
        self,
        save_directory: Union[str, os.PathLike],
        safe_serialization: bool = True,
        selected_adapters: Optional[List[str]] = None,
        save_embedding_layers: Union[str, bool] = "auto",
        is_main_process: bool = True,
        **kwargs,
    ) -> None:
        """Writes each adapter as PEFT does: `adapter_config.json` and `adapter_model.safetensors` (PEFT's keys,
        metadata `{"format": "pt"}`) in `save_directory` for `"default"`, in `save_directory/<name>` for other
        names, plus a `README.md` model card. PEFT on PyTorch loads the folder with `PeftModel.from_pretrained`.

        Files are written in a temporary folder and moved into place, the config last, so an interrupted save
        leaves the previous adapter intact.

        Args:
            save_directory: folder to write to (created if needed).
            safe_serialization: only `True` (safetensors) is supported.
            selected_adapters (`list[str]`, *optional*): adapters to save (default: all).
            save_embedding_layers (`bool` or `"auto"`): also save embedding layers that carry LoRA (see
                `get_peft_model_state_dict`).
            is_main_process (`bool`): only the main process writes (data-parallel training).
        """
        save_directory = os.fspath(save_directory)
        if os.path.isfile(save_directory):
            raise ValueError(f"Provided path ({save_directory}) should be a directory, not a file")
        if not safe_serialization:
            raise ValueError("mindone_ft only writes safetensors (adapter_model.safetensors); pickle files are not "
                             "supported.")
        if selected_adapters is None:
            selected_adapters = list(self.peft_config)
        unknown = [name for name in selected_adapters if name not in self.peft_config]
        if unknown:
            raise ValueError(f"You passed an invalid `selected_adapters` arguments, current supported adapter names "
                             f"are {list(self.peft_config)} - got {unknown}.")
        if not is_main_process:
            return
        from safetensors.numpy import save_file

        for adapter_name in selected_adapters:
            state = get_peft_model_state_dict(self, adapter_name, save_embedding_layers=save_embedding_layers)
            output_dir = os.path.join(save_directory, adapter_name) if adapter_name != "default" else save_directory
            config = self._config_to_save(adapter_name)

            def write_weights(tmp_dir: str, state=state) -> None:
                save_file(state, os.path.join(tmp_dir, WEIGHTS_NAME), metadata={"format": "pt"})

            _atomic_write_dir(output_dir, write_weights)
            _atomic_write_dir(output_dir, lambda tmp_dir, config=config: config.save_pretrained(tmp_dir))
        self._write_model_card(save_directory)

    def _config_to_save(self, adapter_name: str) -> LoraConfig:
        """The config as PEFT writes it: `inference_mode` True, `base_model_name_or_path` filled in, and for a
        config without task type an `auto_mapping` naming the transformers class to load the base model with."""
        config = dataclasses.replace(self.peft_config[adapter_name])
        config.inference_mode = True
        if config.base_model_name_or_path is None:
            config.base_model_name_or_path = getattr(self.get_base_model(), "name_or_path", None) or None
        if config.task_type is None:
            model_class = type(self.get_base_model())
            module = model_class.__module__
            config.auto_mapping = {
                "base_model_class": model_class.__name__,
                # The same class in transformers: mindone_ft's model modules mirror transformers' paths.
                "parent_library": module.replace("mindone_ft.", "transformers.", 1),
            }
        return config

    def _write_model_card(self, save_directory: str) -> None:
        base = self.peft_config[self.active_adapters[0]].base_model_name_or_path or getattr(
            self.get_base_model(), "name_or_path", "")
        header = ["---"] + ([f"base_model: {base}"] if base else []) + ["library_name: peft", "tags:"]
        header += ([f"- base_model:adapter:{base}"] if base else []) + ["- lora", "- mindone_ft", "- mindspore", "---"]
        body = ("\n# LoRA adapter\n\nTrained with mindone_ft on MindSpore; the files are PEFT's, so "
                "`peft.PeftModel.from_pretrained(model, path)` (PyTorch) and "
                "`mindone_ft.peft.PeftModel.from_pretrained(model, path)` (MindSpore) load them.\n")

        def write(tmp_dir: str) -> None:
            with open(os.path.join(tmp_dir, "README.md"), "w", encoding="utf-8") as handle:
                handle.write("\n".join(header) + "\n" + body)

        _atomic_write_dir(save_directory, write)

    def push_to_hub(self, repo_id: str, *, commit_message: Optional[str] = None, private: Optional[bool] = None,
                    token: Optional[Union[str, bool]] = None, revision: Optional[str] = None, create_pr: bool = False,
                    commit_description: Optional[str] = None, **kwargs):
        """Uploads the adapter files (what `save_pretrained` writes, not the base model) to the Hugging Face Hub
        repository `repo_id`, as PEFT's `push_to_hub`. Returns `huggingface_hub.CommitInfo`; raises `OSError`
        when the Hub cannot be reached (see `mindone_ft.modeling_utils.upload_folder_to_hub`)."""
        import tempfile

        from ..modeling_utils import upload_folder_to_hub

        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder, **kwargs)
            _, commit = upload_folder_to_hub(folder, repo_id, commit_message=commit_message or "Upload model",
                                             token=token, private=private, revision=revision, create_pr=create_pr,
                                             commit_description=commit_description)
        return commit

    @classmethod
    def from_pretrained(
        cls,
        model: nn.Cell,
        model_id: Union[str, os.PathLike],
        adapter_name: str = "default",
        is_trainable: bool = False,
        config: Optional[LoraConfig] = None,
        **kwargs,
    ) -> "PeftModel":
        """Loads a PEFT adapter (a folder or a Hugging Face Hub id, e.g. one saved by PEFT on PyTorch) onto
        `model`, as PEFT's `PeftModel.from_pretrained`.

        Args:
            model (`MSPreTrainedModel`): the base model (changed in place).
            model_id (`str` or `os.PathLike`): folder with `adapter_config.json` and `adapter_model.safetensors`,
                or a Hub repository id (resolved through the `huggingface_hub` cache).
            adapter_name (`str`, *optional*, defaults to `"default"`): the name to load it under.
            is_trainable (`bool`, *optional*, defaults to `False`): keep the adapter trainable; else it is frozen
                and the model is put in inference mode.
            config (`LoraConfig`, *optional*): use this config instead of the saved one.
            kwargs: `subfolder`, `revision`, `cache_dir`, `token`, `local_files_only`, `force_download`
                (`hf_hub_download`'s).
        """
        hub_kwargs = _hub_kwargs(kwargs)
        model_id = os.fspath(model_id)
        if config is None:
            config = LoraConfig.from_pretrained(model_id, **hub_kwargs)
        config.inference_mode = not is_trainable
        peft_class = cls
        if cls is PeftModel and config.task_type is not None:
            peft_class = MODEL_TYPE_TO_PEFT_MODEL_MAPPING.get(config.task_type.value, cls)
        peft_model = peft_class(model, config, adapter_name)
        peft_model.load_adapter(model_id, adapter_name, is_trainable=is_trainable, **hub_kwargs)
        return peft_model

    def load_adapter(self, model_id: Union[str, os.PathLike], adapter_name: str, is_trainable: bool = False,
                     **kwargs) -> AdapterLoadResult:
        """Loads adapter weights from a folder or Hub id as `adapter_name`, adding the adapter first if the model
        does not have it (not activated then: `set_adapter`). Missing or unexpected keys are reported with a
        warning, as PEFT; returns them."""
        hub_kwargs = _hub_kwargs(kwargs)
        model_id = os.fspath(model_id)
        if adapter_name not in self.peft_config:
            config = LoraConfig.from_pretrained(model_id, **hub_kwargs)
            config.inference_mode = not is_trainable
            self.add_adapter(adapter_name, config)
        weights = self._resolve_weights(model_id, hub_kwargs)
        result = set_peft_model_state_dict(self, load_peft_weights(weights), adapter_name)
        if result.unexpected_keys:
            logger.warning(f"Found unexpected keys while loading the adapter {adapter_name!r} from {model_id}: "
                           f"{result.unexpected_keys}")
        if result.missing_keys:
            logger.warning(f"Found missing adapter keys while loading the adapter {adapter_name!r} from {model_id}: "
                           f"{result.missing_keys}")
        if not is_trainable:  # the adapter was added frozen (inference_mode); PEFT also calls eval()
            self.set_train(False)
        return result

    @staticmethod
    def _resolve_weights(model_id: str, hub_kwargs: Dict[str, Any]) -> str:
        subfolder = hub_kwargs.get("subfolder")
        for name in (WEIGHTS_NAME, LEGACY_WEIGHTS_NAME):
            path = resolve_adapter_file(model_id, name, subfolder, hub_kwargs)
            if path is not None:
                return path
        raise ValueError(f"Can't find weights for {model_id} in {model_id} or in the Hugging Face Hub. Please check "
                         f"that the file {WEIGHTS_NAME} is present at {model_id}.")


class PeftModelForSequenceClassification(PeftModel):
    """`PeftModel` for `SEQ_CLS`: the classification head (`classifier` or `score`) is trained in full."""

    _task_modules_to_save = ("classifier", "score")


class PeftModelForTokenClassification(PeftModel):
    """`PeftModel` for `TOKEN_CLS`: the classification head (`classifier` or `score`) is trained in full."""

    _task_modules_to_save = ("classifier", "score")


class PeftModelForQuestionAnswering(PeftModel):
    """`PeftModel` for `QUESTION_ANS`: the span head (`qa_outputs`) is trained in full."""

    _task_modules_to_save = ("qa_outputs",)


class PeftModelForCausalLM(PeftModel):
    """`PeftModel` for `CAUSAL_LM` (`generate()` is the model's)."""


class PeftModelForFeatureExtraction(PeftModel):
    """`PeftModel` for `FEATURE_EXTRACTION`."""


MODEL_TYPE_TO_PEFT_MODEL_MAPPING = {
    TaskType.SEQ_CLS.value: PeftModelForSequenceClassification,
    TaskType.TOKEN_CLS.value: PeftModelForTokenClassification,
    TaskType.QUESTION_ANS.value: PeftModelForQuestionAnswering,
    TaskType.CAUSAL_LM.value: PeftModelForCausalLM,
    TaskType.FEATURE_EXTRACTION.value: PeftModelForFeatureExtraction,
}


def get_peft_model(model: nn.Cell, peft_config: LoraConfig, adapter_name: str = "default", mixed: bool = False,
                   autocast_adapter_dtype: bool = True, revision: Optional[str] = None,
                   low_cpu_mem_usage: bool = False) -> PeftModel:
    """Adds a LoRA adapter to `model` and returns the `PeftModel` of the config's task type, as PEFT's
    `get_peft_model`: `PeftModelForSequenceClassification` for `SEQ_CLS`, ..., `PeftModel` without a task type.

    Args:
        model (`MSPreTrainedModel`): the model (changed in place).
        peft_config (`LoraConfig`): the adapter.
        adapter_name (`str`, *optional*, defaults to `"default"`).
        mixed (`bool`): PEFT's mixed adapter types; only `False` is supported.
        autocast_adapter_dtype, low_cpu_mem_usage: accepted for PEFT compatibility (adapters are float32).
        revision (`str`, *optional*): recorded in the config, as PEFT.
    """
    if mixed:
        raise NotImplementedError("mixed=True (PeftMixedModel) is not implemented in mindone_ft; use one adapter type "
                                  "(LoRA).")
    if peft_config.base_model_name_or_path is None:
        peft_config.base_model_name_or_path = getattr(model, "name_or_path", None) or None
    if revision is not None:
        peft_config.revision = revision
    task_type = peft_config.task_type.value if peft_config.task_type is not None else None
    peft_class = MODEL_TYPE_TO_PEFT_MODEL_MAPPING.get(task_type, PeftModel)
    return peft_class(model, peft_config, adapter_name)
