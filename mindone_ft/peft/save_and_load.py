"""Adapter weights <-> PEFT's `adapter_model.safetensors` keys (PEFT's `peft/utils/save_and_load.py`).

PEFT's keys are the parameter paths of the `PeftModel` with the adapter name removed:
`base_model.model.<module path>.lora_A.weight` for `<module path>.lora_A.<adapter>.weight`,
`base_model.model.<module path>.lora_embedding_A` for an embedding's `lora_embedding_A.<adapter>`, and
`base_model.model.<module path>.<parameter>` for a `modules_to_save` copy (`modules_to_save.<adapter>.` removed).
The mapping is built from the model's structure in both directions, so saving and loading are symmetric.
"""

import logging
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Tuple, Union

import numpy as np
from mindspore import Parameter, nn

from ..modeling_layers import RNG_STATE_NAME
from ..modeling_utils import _to_numpy
from .layer import LoraLayer, ModulesToSaveWrapper, _ParameterDict, _set_data

logger = logging.getLogger(__name__)

PEFT_PREFIX = "base_model.model."
WEIGHTS_NAME = "adapter_model.safetensors"
LEGACY_WEIGHTS_NAME = "adapter_model.bin"
# PEFT saves the embedding layers themselves when one of these is a target (`save_embedding_layers="auto"`).
EMBEDDING_LAYER_NAMES = ["embed_tokens", "lm_head"]


@dataclass
class AdapterLoadResult:
    """What `set_peft_model_state_dict` did (PEFT returns torch's `_IncompatibleKeys`): adapter parameters the
    file did not have, and file keys that match no parameter."""

    missing_keys: List[str] = field(default_factory=list)
    unexpected_keys: List[str] = field(default_factory=list)


def adapter_parameters(lora_model: nn.Cell, adapter_name: str) -> Dict[str, Parameter]:
    """`{PEFT checkpoint key: Parameter}` of one adapter: its LoRA weights, its `modules_to_save` copies and, for
    `bias="all"` / `"lora_only"`, the biases it trains."""
    model = lora_model.model
    config = lora_model.peft_config[adapter_name]
    keys: Dict[str, Parameter] = {}
    for path, cell in model.cells_and_names():
        if isinstance(cell, LoraLayer):
            for layer_name in cell.adapter_layer_names:
                container = getattr(cell, layer_name)
                if isinstance(container, _ParameterDict):
                    if adapter_name in container:
                        keys[f"{path}.{layer_name}"] = container[adapter_name]
                elif adapter_name in container:
                    for name, param in container[adapter_name].parameters_and_names():
                        keys[f"{path}.{layer_name}.{name}"] = param
        elif isinstance(cell, ModulesToSaveWrapper) and adapter_name in cell.modules_to_save:
            for name, param in cell.modules_to_save[adapter_name].parameters_and_names():
                if name.rsplit(".", 1)[-1] != RNG_STATE_NAME:  # dropout state is not a weight
                    keys[f"{path}.{name}"] = param
    if config.bias == "all":
        # Every bias of the model; those inside `modules_to_save` are saved once, under the copy's names.
        wrapped = [path + "." for path, cell in model.cells_and_names() if isinstance(cell, ModulesToSaveWrapper)]
        for name, param in model.parameters_and_names():
            if (name == "bias" or name.endswith(".bias")) and not any(name.startswith(p) for p in wrapped):
                keys[name] = param
    elif config.bias == "lora_only":
        for path, cell in model.cells_and_names():
            if isinstance(cell, LoraLayer) and getattr(cell.base_layer, "bias", None) is not None:
                keys[f"{path}.base_layer.bias"] = cell.base_layer.bias
    return {PEFT_PREFIX + key: param for key, param in keys.items()}


def _embedding_is_targeted(config, model: nn.Cell) -> bool:
    """PEFT's test for `save_embedding_layers="auto"`: a list of targets names `embed_tokens` or `lm_head`, or a
    regex matches a module path ending in one of them."""
    targets = config.target_modules
    if isinstance(targets, str):
        return any(re.fullmatch(targets, key) for key, _ in model.cells_and_names()
                   if any(re.match(rf"(.*\.)?{name}$", key) for name in EMBEDDING_LAYER_NAMES))
    return bool(targets) and any(name in targets for name in EMBEDDING_LAYER_NAMES)


def get_peft_model_state_dict(peft_model, adapter_name: str = "default",
                              save_embedding_layers: Union[bool, str] = "auto") -> Dict[str, np.ndarray]:
    """The adapter's weights as `{PEFT key: numpy array}`, what `save_pretrained` writes.

    Args:
        peft_model (`PeftModel`): the model.
        adapter_name (`str`): which adapter.
        save_embedding_layers (`bool` or `"auto"`): also save the (full) input/output embedding layers that carry
            LoRA; `"auto"` does when `target_modules` names `embed_tokens` or `lm_head`, as PEFT.
    """
    lora_model = peft_model.base_model
    state = {key: _to_numpy(param) for key, param in adapter_parameters(lora_model, adapter_name).items()}
    config = lora_model.peft_config[adapter_name]
    targeted = _embedding_is_targeted(config, lora_model.model)
    if save_embedding_layers == "auto":
        save_embedding_layers = targeted
        if targeted:
            logger.warning("Setting `save_embedding_layers` to `True` as embedding layers found in `target_modules`.")
    if save_embedding_layers:
        model = lora_model.model
        for layer in (model.get_input_embeddings(), model.get_output_embeddings()):
            if layer is None or (targeted and not isinstance(layer, LoraLayer)):
                continue  # as PEFT: with targeted embeddings, only those that carry LoRA
            base = layer.base_layer if isinstance(layer, LoraLayer) else layer
            path = next(key for key, cell in model.cells_and_names() if cell is base)
            for name, param in base.parameters_and_names():
                state[f"{PEFT_PREFIX}{path}.{name}"] = _to_numpy(param)
    return state


def set_peft_model_state_dict(peft_model, state_dict: Dict[str, np.ndarray],
                              adapter_name: str = "default") -> AdapterLoadResult:
    """Copies a PEFT adapter state dict (keys with or without `base_model.model.`) into adapter `adapter_name`.

    Keys that are not adapter weights but name a parameter of the model (an embedding layer saved with
    `save_embedding_layers`, a trained bias) are loaded into it. Shapes must match.

    Raises:
        ValueError: a tensor's shape differs from its parameter's (e.g. a different rank).
    """
    lora_model = peft_model.base_model
    targets = adapter_parameters(lora_model, adapter_name)
    model_params = {PEFT_PREFIX + name: param for name, param in lora_model.model.parameters_and_names()}
    result = AdapterLoadResult(missing_keys=sorted(k for k in targets if _with_prefix_in(k, state_dict) is None))
    mismatched: List[Tuple[str, tuple, tuple]] = []
    for key, array in state_dict.items():
        key = key if key.startswith(PEFT_PREFIX) else PEFT_PREFIX + key
        param = targets.get(key, model_params.get(key))
        if param is None:
            result.unexpected_keys.append(key)
            continue
        if tuple(array.shape) != tuple(param.shape):
            mismatched.append((key, tuple(array.shape), tuple(param.shape)))
            continue
        _set_data(param, np.asarray(array))
    if mismatched:
        details = "\n".join(f"- {k}: found shape {a} in the checkpoint and {b} in the model" for k, a, b in mismatched)
        raise ValueError(f"Error(s) in loading the adapter {adapter_name!r}: size mismatch\n{details}\nCheck that "
                         "the adapter config (r, rank_pattern, target_modules) is the one the weights were saved with.")
    return result


def _with_prefix_in(key: str, state_dict: Dict[str, np.ndarray]):
    if key in state_dict:
        return key
    short = key[len(PEFT_PREFIX):]
    return short if short in state_dict else None


def load_peft_weights(path: str) -> Dict[str, np.ndarray]:
    """Reads the adapter weights file at `path` (`adapter_model.safetensors`, or `adapter_model.bin` when torch is
    installed)."""
    from ..modeling_utils import load_state_dict_from_file

    if not os.path.isfile(path):
        raise OSError(f"Adapter weights file {path} does not exist.")
    return load_state_dict_from_file(path)
