"""`LoraModel`: puts LoRA layers into a mindone_ft model, as PEFT's `peft/tuners/lora/model.py` does.

Target modules are matched against the module paths of the model with PEFT's rules (`check_target_module_exists`),
so a config selects the same layers here and in PEFT: the paths are the Hugging Face module names, 1:1. Matched
kit `Linear`s become `LoraLinear`, kit `Embedding`s `LoraEmbedding`; `modules_to_save` are wrapped in
`ModulesToSaveWrapper`. Only adapter weights (and `modules_to_save` copies, and biases with `bias != "none"`)
require gradients afterwards.
"""

import logging
import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

from mindspore import nn

from ..modeling_layers import Conv1D, Embedding
from .config import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING, LoraConfig, TaskType
from .layer import ForwardsAttributes, LoraEmbedding, LoraLayer, LoraLinear, ModulesToSaveWrapper, recompile_graphs

logger = logging.getLogger(__name__)

INCLUDE_LINEAR_LAYERS_SHORTHAND = "all-linear"
SEQ_CLS_HEAD_NAMES = ["score", "classifier"]


class _ExcludedModule:
    """Marks a module that matched `exclude_modules` or `modules_to_save` (falsy, as in PEFT)."""

    def __bool__(self) -> bool:
        return False


def check_target_module_exists(config: LoraConfig, key: str):
    """PEFT's `check_target_module_exists`: whether the module at path `key` is a LoRA target of `config`.

    A list of names matches a path equal to a name or ending in `.<name>`, a string is a regex that must match the
    whole path; `layers_to_transform` (with `layers_pattern`) keeps the listed layer indices only; `exclude_modules`
    and `modules_to_save` win over targets.
    """
    if config.exclude_modules:
        if isinstance(config.exclude_modules, str):
            if re.fullmatch(config.exclude_modules, key):
                return _ExcludedModule()
        elif key in config.exclude_modules or any(key.endswith(f".{name}") for name in config.exclude_modules):
            return _ExcludedModule()
    if config.modules_to_save and any(re.match(rf"(^|.*\.){m}($|\..*)", key) for m in config.modules_to_save):
        return _ExcludedModule()
    if isinstance(config.target_modules, str):
        return re.fullmatch(config.target_modules, key)
    if key in config.target_modules:
        return True
    found = any(key.endswith(f".{name}") for name in config.target_modules)
    layer_indexes = config.layers_to_transform
    using_indexes = layer_indexes is not None and (len(layer_indexes) != 0 if isinstance(layer_indexes, list) else True)
    if using_indexes and found:
        patterns = config.layers_pattern
        match = None
        if patterns is None or len(patterns) == 0:
            match = re.match(r".*?\.[^.]*\.(?P<idx>\d+)\.", key)
        else:
            for pattern in [patterns] if isinstance(patterns, str) else patterns:
                match = re.match(rf"(?:^|.*?\.){pattern}\.(?P<idx>\d+)\.", key)
                if match is not None:
                    break
        if match is None:
            return False
        index = int(match.group("idx"))
        found = index == layer_indexes if isinstance(layer_indexes, int) else index in layer_indexes
    return found


def get_pattern_key(pattern_keys: Sequence[str], key: str) -> str:
    """PEFT's `get_pattern_key`: the first key of `rank_pattern` / `alpha_pattern` that matches the end of `key`."""
    for pattern in pattern_keys:
        if re.match(rf"(.*\.)?({pattern})$", key):
            return pattern
    return key


def _wrapper_cells(model: nn.Cell) -> List[Tuple[str, nn.Cell]]:
    return [(key, cell) for key, cell in model.cells_and_names() if isinstance(cell, (LoraLayer, ModulesToSaveWrapper))]


def _module_items(model: nn.Cell) -> List[Tuple[str, nn.Cell]]:
    """`(path, cell)` of the model's modules, without the insides of LoRA layers and `ModulesToSaveWrapper`s."""
    inside = []
    items = []
    for key, cell in model.cells_and_names():
        if any(key.startswith(prefix) for prefix in inside):
            continue
        items.append((key, cell))
        if isinstance(cell, (LoraLayer, ModulesToSaveWrapper)):
            inside.append(key + ".")
    return items


def _replace_module(model: nn.Cell, key: str, new: nn.Cell) -> None:
    """Puts `new` at path `key`, without renaming any parameter (`insert_child_to_cell`, not `setattr`: a parent
    with `auto_prefix` would rename the new Cell's parameters to start at the parent)."""
    parent_key, _, name = key.rpartition(".")
    parent = dict(model.cells_and_names())[parent_key] if parent_key else model
    parent.insert_child_to_cell(name, new)


def _maybe_include_all_linear_layers(config: LoraConfig, model: nn.Cell) -> None:
    """PEFT's `"all-linear"`: every Linear of the model except the output embedding (LM heads) or, for `SEQ_CLS`
    without one, the classification head (`score` / `classifier`). `target_modules` becomes that set of paths."""
    targets = config.target_modules
    if not (isinstance(targets, str) and targets.lower() == INCLUDE_LINEAR_LAYERS_SHORTHAND):
        return
    items = _module_items(model)
    names = {key for key, cell in items if isinstance(cell, (nn.Dense, Conv1D, LoraLinear))}
    exclude = set()
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if output is not None:
        exclude |= {key for key, cell in items if cell is output}
    elif config.task_type == TaskType.SEQ_CLS:
        for name in SEQ_CLS_HEAD_NAMES:
            head = getattr(model, name, None)
            if head is not None:
                exclude |= {key for key, cell in items if cell is head}
                break
    config.target_modules = names - exclude


class LoraModel(ForwardsAttributes, nn.Cell):
    """The model with LoRA layers in it (PEFT's `LoraModel`): `self.model` is the wrapped model, changed in place.

    Args:
        model (`MSPreTrainedModel`): the model to adapt.
        config (`LoraConfig` or `dict[str, LoraConfig]`): the adapter(s) to add.
        adapter_name (`str`, *optional*, defaults to `"default"`): the name of the adapter, which is active.
    """

    prefix = "lora_"
    _forward_to = "model"

    def __init__(self, model: nn.Cell, config: Union[LoraConfig, Dict[str, LoraConfig]], adapter_name: str = "default"):
        super().__init__(auto_prefix=False)  # the model's parameter names stay as they are
        self.model = model
        self.peft_config: Dict[str, LoraConfig] = {}
        self.active_adapter: Union[str, List[str]] = adapter_name
        configs = config if isinstance(config, dict) else {adapter_name: config}
        for name, adapter_config in configs.items():
            self.inject_adapter(name, adapter_config)

    def construct(self, *args, **kwargs):
        return self.model(*args, **kwargs)

    @property
    def active_adapters(self) -> List[str]:
        return [self.active_adapter] if isinstance(self.active_adapter, str) else list(self.active_adapter)

    # --- adding adapters ----------------------------------------------------------------------------------------

    def _prepare_adapter_config(self, config: LoraConfig) -> LoraConfig:
        if config.target_modules is None:
            model_type = getattr(getattr(self.model, "config", None), "model_type", None)
            if model_type not in TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING:
                raise ValueError("Please specify `target_modules` in `peft_config`")
            config.target_modules = set(TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING[model_type])
        return config

    def inject_adapter(self, adapter_name: str, config: LoraConfig) -> None:
        """Adds adapter `adapter_name`: LoRA layers on the matching modules, copies of `modules_to_save`.

        Raises:
            ValueError: no module matches `target_modules`, or a matching module is not a Linear / Embedding.
        """
        if adapter_name in self.peft_config:
            raise ValueError(f"Adapter with name {adapter_name} already exists.")
        if not isinstance(config, LoraConfig):
            raise NotImplementedError(f"{type(config).__name__} adapters are not implemented in mindone_ft; only "
                                      "LoRA (`LoraConfig`) is.")
        config = self._prepare_adapter_config(config)
        _maybe_include_all_linear_layers(config, self.model)
        self.peft_config[adapter_name] = config
        matched, excluded, targeted = False, False, []
        try:
            for key, cell in _module_items(self.model):
                if not key:
                    continue
                found = check_target_module_exists(config, key)
                if isinstance(found, _ExcludedModule):
                    excluded = True
                    continue
                if not found:
                    continue
                matched = True
                self._create_and_replace(config, adapter_name, cell, key)
                targeted.append(key)
            if not matched:
                hint = " (some modules were excluded by `exclude_modules` or `modules_to_save`)" if excluded else ""
                raise ValueError(f"Target modules {config.target_modules} not found in the base model{hint}. Please "
                                 "check the target modules and try again.")
        except Exception:
            del self.peft_config[adapter_name]
            raise
        for pattern_name in ("rank_pattern", "alpha_pattern"):  # as PEFT: a pattern that selects nothing is a typo
            unused = [p for p in getattr(config, pattern_name)
                      if not any(get_pattern_key([p], key) == p for key in targeted)]
            if unused:
                logger.warning(f"The following {pattern_name} keys did not match any targeted module and were "
                               f"ignored: {unused}.")
        self._set_modules_to_save(adapter_name, config)
        active_config = self.peft_config.get(self.active_adapters[0], config) if self.active_adapters else config
        self.set_adapter(self.active_adapters, inference_mode=active_config.inference_mode)
        self._mark_only_adapters_as_trainable()

    def _create_and_replace(self, config: LoraConfig, adapter_name: str, target: nn.Cell, key: str) -> None:
        r = config.rank_pattern.get(get_pattern_key(config.rank_pattern.keys(), key), config.r)
        alpha = config.alpha_pattern.get(get_pattern_key(config.alpha_pattern.keys(), key), config.lora_alpha)
        arguments = dict(r=r, lora_alpha=alpha, lora_dropout=config.lora_dropout,
                         init_lora_weights=config.init_lora_weights, use_rslora=config.use_rslora)
        if isinstance(target, LoraLayer):
            target.update_layer(adapter_name, **arguments)
            return
        if isinstance(target, Embedding):
            new = LoraEmbedding(target, path=key)
        elif isinstance(target, (nn.Dense, Conv1D)):
            # As PEFT: the flag must describe the weight layout, (out, in) for Linear and (in, out) for Conv1D.
            conv1d = isinstance(target, Conv1D)
            if config.fan_in_fan_out != conv1d:
                logger.warning(f"fan_in_fan_out is set to {config.fan_in_fan_out} but the target module is "
                               f"`{type(target).__name__}`. Setting fan_in_fan_out to {conv1d}.")
                config.fan_in_fan_out = conv1d
            new = LoraLinear(target, path=key, fan_in_fan_out=conv1d)
        else:
            raise ValueError(
                f"Target module {key} ({type(target).__name__}) is not supported. mindone_ft supports LoRA on the "
                "layer kit's `Linear` (nn.Dense), `Conv1D` and `Embedding`; target those modules instead."
            )
        new.update_layer(adapter_name, **arguments)
        _replace_module(self.model, key, new)

    def _set_modules_to_save(self, adapter_name: str, config: LoraConfig) -> None:
        """PEFT's `_set_trainable`: every module whose path ends with a name of `modules_to_save` gets a copy."""
        if not config.modules_to_save:
            return
        for key, cell in list(self.model.cells_and_names()):
            if not key or not any(key.endswith(name) for name in config.modules_to_save):
                continue
            if isinstance(cell, ModulesToSaveWrapper):
                if adapter_name not in cell.modules_to_save:
                    cell.update(adapter_name)
            elif isinstance(cell, LoraLayer):  # PEFT refuses this too (names match by suffix: `pre_classifier`)
                raise TypeError(f"modules_to_save cannot be applied to {key}, which has LoRA layers: exclude it from "
                                f"the targets (exclude_modules=[{key.rsplit('.', 1)[-1]!r}]) or from modules_to_save.")
            elif not any(key.startswith(k + ".") for k, c in _wrapper_cells(self.model)):
                _replace_module(self.model, key, ModulesToSaveWrapper(cell, adapter_name, path=key))

    def _mark_only_adapters_as_trainable(self) -> None:
        """Freezes everything but the adapters and `modules_to_save` copies, then unfreezes biases for
        `bias="all"` (every bias) or `"lora_only"` (the biases of the LoRA layers)."""
        adapter_ids = set()
        for _, cell in _wrapper_cells(self.model):
            if isinstance(cell, LoraLayer):
                for layer_name in cell.adapter_layer_names:
                    adapter_ids |= {id(p) for _, p in cell._adapter_parameters(layer_name)}
            else:
                adapter_ids |= {id(p) for _, module in cell.modules_to_save.items() for p in module.get_parameters()}
        for _, param in self.model.parameters_and_names():
            if id(param) not in adapter_ids:
                param.requires_grad = False
        for adapter in self.active_adapters:
            bias = self.peft_config[adapter].bias
            if bias == "all":
                for name, param in self.model.parameters_and_names():
                    if name == "bias" or name.endswith(".bias"):
                        param.requires_grad = True
            elif bias == "lora_only":
                for _, cell in _wrapper_cells(self.model):
                    if isinstance(cell, LoraLayer) and getattr(cell.base_layer, "bias", None) is not None:
                        cell.base_layer.bias.requires_grad = True

    def add_adapter(self, adapter_name: str, config: LoraConfig) -> None:
        """Adds another adapter (not activated: see `set_adapter`)."""
        self.inject_adapter(adapter_name, config)

    # --- switching adapters -------------------------------------------------------------------------------------

    def set_adapter(self, adapter_name: Union[str, List[str]], inference_mode: bool = False) -> None:
        """Activates adapter(s) `adapter_name` in every layer (merged layers are unmerged first); they require
        gradients unless `inference_mode`, the others are frozen. Several LoRA adapters can be active at once;
        `modules_to_save` follow the first."""
        names = [adapter_name] if isinstance(adapter_name, str) else list(adapter_name)
        for name in names:
            if name not in self.peft_config:
                raise ValueError(f"Adapter {name} not found.")
        for _, cell in _wrapper_cells(self.model):
            if isinstance(cell, LoraLayer):
                if cell.merged:
                    logger.warning("Adapter cannot be set when the model is merged. Unmerging the model first.")
                    cell.unmerge()
                cell.set_adapter(names, inference_mode=inference_mode)
            else:
                cell.set_adapter([n for n in names if n in cell.modules_to_save][:1], inference_mode=inference_mode)
        self.active_adapter = names[0] if len(names) == 1 else names
        recompile_graphs()

    def _set_adapter_layers(self, enabled: bool) -> None:
        for _, cell in _wrapper_cells(self.model):
            cell.enable_adapters(enabled)
        recompile_graphs()

    def enable_adapter_layers(self) -> None:
        """Turns the adapters back on after `disable_adapter_layers`."""
        self._set_adapter_layers(True)

    def disable_adapter_layers(self) -> None:
        """Runs the base model alone (merged layers are unmerged). With `bias != "none"` the trained biases stay,
        so the outputs are not the base model's (as in PEFT)."""
        for adapter in self.active_adapters:
            if self.peft_config[adapter].bias != "none":
                logger.warning(f"Careful, disabling adapter layers with bias configured to be "
                               f"'{self.peft_config[adapter].bias}' does not produce the same output as the base "
                               "model would without adaption.")
        self._set_adapter_layers(False)

    def delete_adapter(self, adapter_name: str) -> None:
        """Removes adapter `adapter_name` from every layer; the first remaining one becomes active if it was."""
        if adapter_name not in self.peft_config:
            raise ValueError(f"Adapter {adapter_name} does not exist")
        del self.peft_config[adapter_name]
        for _, cell in _wrapper_cells(self.model):
            cell.delete_adapter(adapter_name)
        if adapter_name in self.active_adapters:
            remaining = [n for n in self.active_adapters if n != adapter_name] or list(self.peft_config)[:1]
            if remaining:
                self.set_adapter(remaining[0] if len(remaining) == 1 else remaining)
        recompile_graphs()

    # --- merging ------------------------------------------------------------------------------------------------

    def merge_adapter(self, adapter_names: Optional[List[str]] = None, safe_merge: bool = False) -> None:
        """Adds the active adapters' (or `adapter_names`') updates into the base weights; LoRA layers stay."""
        for _, cell in _wrapper_cells(self.model):
            if isinstance(cell, LoraLayer):
                cell.merge(safe_merge=safe_merge, adapter_names=adapter_names)
        recompile_graphs()

    def unmerge_adapter(self) -> None:
        """Subtracts merged adapters from the base weights again."""
        for _, cell in _wrapper_cells(self.model):
            if isinstance(cell, LoraLayer) and cell.merged:
                cell.unmerge()
        recompile_graphs()

    def _unload_and_optionally_merge(self, merge: bool, safe_merge: bool = False,
                                     adapter_names: Optional[List[str]] = None) -> nn.Cell:
        for key, cell in _wrapper_cells(self.model):
            if isinstance(cell, LoraLayer):
                if merge:
                    cell.merge(safe_merge=safe_merge, adapter_names=adapter_names)
                elif cell.merged:
                    cell.unmerge()
                _replace_module(self.model, key, cell.base_layer)
            else:
                active = cell.active_adapter
                module = cell.modules_to_save[active] if active in cell.modules_to_save else cell.original_module
                for name, param in module.parameters_and_names():  # back to the names of the plain model
                    param.name = f"{key}.{name}"
                _replace_module(self.model, key, module)
        recompile_graphs()
        return self.model

    def merge_and_unload(self, progressbar: bool = False, safe_merge: bool = False,
                         adapter_names: Optional[List[str]] = None) -> nn.Cell:
        """Merges the adapters into the base weights and returns the plain model (LoRA layers replaced by their
        base layers, `modules_to_save` by the active adapter's copy). The result saves and loads as a normal
        Hugging Face checkpoint.

        Args:
            progressbar (`bool`): accepted for PEFT compatibility (no progress bar is shown).
            safe_merge (`bool`): check for non-finite merged weights before writing them.
            adapter_names (`list[str]`, *optional*): adapters to merge (default: the active ones).
        """
        return self._unload_and_optionally_merge(True, safe_merge=safe_merge, adapter_names=adapter_names)

    def unload(self) -> nn.Cell:
        """Removes the LoRA layers without merging: the base model as it was (with the active adapter's copies
        of `modules_to_save`, as PEFT)."""
        return self._unload_and_optionally_merge(False)
