"""What every mindone_ft pipeline shares: transformers' `Pipeline` machinery with its torch parts replaced.

transformers' pipeline classes split each task into `preprocess` (tokenizer), `_forward` (model) and `postprocess`
(numpy), and their `__call__` handles single inputs, lists, generators and chunked inputs. Only a few methods of the
base class use torch: `__init__` (`torch.device`), `forward` (`torch.no_grad`, device moves) and `get_iterator`
(`torch.utils.data.DataLoader`). `MindSporePipelineMixin` replaces exactly those, so that a task class is
`class XPipeline(MindSporePipelineMixin, transformers.XPipeline)` plus the few task methods that call torch
(`return_tensors="pt"`, `torch.nonzero`, ...). Model outputs are converted to numpy (float32) at the model boundary,
so transformers' numpy post-processing runs unchanged. Nothing here imports torch.
"""

import contextlib
import dataclasses
from collections import UserDict
from typing import Any, Optional, Union

import mindspore as ms
from transformers.utils import ModelOutput

from ..utils import compat

__all__ = ["MindSporePipelineMixin", "PipelineDevice", "resolve_device", "to_numpy"]

# transformers' device names -> MindSpore device targets.
_DEVICE_TARGETS = {
    "cpu": compat.CPU,
    "ascend": compat.ASCEND,
    "npu": compat.ASCEND,
    "gpu": compat.GPU,
    "cuda": compat.GPU,
}


class PipelineDevice(str):
    """Where the pipeline runs, as MindSpore names it (`"CPU"`, `"Ascend:0"`, `"GPU:1"`). Like a `torch.device` it
    has `.type` (`"cpu"`, `"ascend"`, `"gpu"`) and `.index` (`None` on CPU)."""

    @property
    def type(self) -> str:
        return self.split(":")[0].lower()

    @property
    def index(self) -> Optional[int]:
        return int(self.split(":")[1]) if ":" in self else None


def _current_device() -> PipelineDevice:
    target = compat.device_target()
    return PipelineDevice(target if target == compat.CPU else f"{target}:{ms.get_context('device_id')}")


def resolve_device(device: Union[int, str, None] = None) -> PipelineDevice:
    """The MindSpore device for transformers' `device` argument of `pipeline(...)`.

    MindSpore places every model of a process on one device (`mindspore.set_device`), not per model. So:

    - `None`: the process's current device.
    - `-1` or `"cpu"`: CPU. An integer `>= 0`: that device id of the current accelerator (CPU when the process runs
      on CPU, as transformers falls back to CPU when no accelerator is there).
    - `"npu"`, `"ascend"`, `"cuda"`, `"gpu"` (optionally `":<id>"`), or MindSpore's `"Ascend:0"`, `"GPU:0"`.

    When the device differs from the process's, `mindspore.set_device` switches it (MindSpore allows that only
    before the first operation has run); an unavailable device raises `ValueError`.
    """
    if device is None:
        return _current_device()
    if hasattr(device, "type") and not isinstance(device, str):  # a torch.device-like object
        index = getattr(device, "index", None)
        device = device.type if index is None else f"{device.type}:{index}"
    if isinstance(device, bool) or not isinstance(device, (int, str)):
        raise ValueError(f"`device` must be an int, a string or None, got {device!r}.")
    current = compat.device_target()
    if isinstance(device, int):
        if device < 0 or current == compat.CPU:
            target, device_id = compat.CPU, None
        else:
            target, device_id = current, device
    else:
        name, _, index = device.partition(":")
        target = _DEVICE_TARGETS.get(name.strip().lower())
        if target is None:
            raise ValueError(
                f"Unknown device {device!r}: use -1 or 'cpu', a device id (int), 'npu'/'ascend' or 'cuda'/'gpu' "
                "(optionally with ':<id>')."
            )
        device_id = int(index) if index else (None if target == compat.CPU else 0)
    if target != current or (device_id is not None and device_id != ms.get_context("device_id")):
        if not compat.is_device_available(target):
            raise ValueError(f"device {device!r} is not available in this MindSpore installation or machine; "
                             "use device='cpu' (or -1).")
        try:
            if device_id is None:
                ms.set_device(target)
            else:
                ms.set_device(target, device_id)
        except Exception as error:  # MindSpore refuses to switch once the device is in use
            raise ValueError(
                f"Cannot move this process to device {device!r}: {error}. MindSpore runs every model of a process on "
                "one device; call `mindspore.set_device(...)` before creating the model and the pipeline."
            ) from error
    return _current_device()


def to_numpy(value: Any) -> Any:
    """MindSpore Tensors inside `value` (nested in ModelOutput, dict, list, tuple) as numpy arrays; float16 and
    bfloat16 become float32, as transformers' post-processing casts them. Everything else is returned as is."""
    if isinstance(value, ms.Tensor):
        if value.dtype in (ms.float16, ms.bfloat16):
            value = value.astype(ms.float32)
        return value.asnumpy()
    if isinstance(value, ModelOutput):
        converted = {key: to_numpy(item) for key, item in value.items()}
        fields = {field.name for field in dataclasses.fields(value)} if dataclasses.is_dataclass(value) else set()
        output = type(value)(**{key: item for key, item in converted.items() if key in fields})
        for key, item in converted.items():
            if key not in fields:
                output[key] = item
        return output
    if isinstance(value, (dict, UserDict)):
        return {key: to_numpy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)) and any(isinstance(item, (ms.Tensor, tuple, list, dict)) for item in value):
        return type(value)(to_numpy(item) for item in value)
    return value


class MindSporePipelineMixin:
    """Put first in the bases of a transformers pipeline class: `class P(MindSporePipelineMixin, transformers.P)`.

    Replaces the torch parts of `transformers.Pipeline` (device handling, `forward`, the DataLoader iterator) and
    keeps the rest: `__call__` with single inputs, lists and generators, `_sanitize_parameters`, the parameters given
    at construction and overridden per call, `ChunkPipeline`'s chunked inputs, `save_pretrained`.

    Inputs run one at a time: `batch_size` is accepted (and kept) but each input is its own model call, which on
    MindSpore also avoids padding every input of a batch to one length (and, in GRAPH_MODE, compiling graphs for
    padded shapes).
    """

    # The mindone_ft Auto table (`model_type -> class name`) whose classes suit the task, for `check_model_type`.
    _model_mapping_names = None

    def __init__(self, model, tokenizer=None, task: str = "", device=None, binary_output: bool = False, **kwargs):
        for name in ("args_parser", "torch_dtype", "dtype", "framework"):
            kwargs.pop(name, None)
        for name in ("feature_extractor", "image_processor", "video_processor", "processor"):
            if kwargs.pop(name, None) is not None:
                raise ValueError(f"mindone_ft pipelines are text pipelines: `{name}` is not supported.")
        self.task = task
        self.model = model
        self.tokenizer = tokenizer
        self.feature_extractor = None
        self.image_processor = None
        self.video_processor = None
        self.processor = None
        self.device = resolve_device(device)
        self.binary_output = binary_output
        if hasattr(model, "set_train"):
            model.set_train(False)  # inference: dropout off (transformers' pipelines run models in eval mode)
        if getattr(self, "_pipeline_calls_generate", False) and model.can_generate():
            self._set_aside_generation_kwargs(kwargs)
        self.call_count = 0
        self._batch_size = kwargs.pop("batch_size", None)
        self._num_workers = kwargs.pop("num_workers", None)
        self._preprocess_params, self._forward_params, self._postprocess_params = self._sanitize_parameters(**kwargs)
        if self._model_mapping_names is not None:
            self.check_model_type(dict(self._model_mapping_names))

    def _set_aside_generation_kwargs(self, kwargs: dict) -> None:
        """transformers' `Pipeline.__init__` for generation pipelines: generation settings given at construction
        apply to every call, on top of the pipeline's `_default_generation_config` (see `_prepare_generate_kwargs`).
        """
        from transformers import GenerationConfig

        if kwargs.pop("assistant_model", None) is not None:
            raise NotImplementedError("assistant_model: assisted decoding is not implemented by mindone_ft.")
        kwargs.pop("assistant_tokenizer", None)
        self.assistant_model, self.assistant_tokenizer = None, None
        self.prefix = getattr(self.model.config, "prefix", None)
        generation_keys = {key for key in vars(GenerationConfig()) if not key.startswith("_")}
        generation_keys.difference_update(self._non_generation_params)
        generation_keys.add("generation_config")
        self._generate_kwargs = {key: kwargs.pop(key) for key in generation_keys & kwargs.keys()}
        defaults = self._default_generation_config
        self._generation_defaults = {} if defaults is None else defaults.to_diff_dict()
        self._generation_defaults.pop("transformers_version", None)
        if self.tokenizer is not None and self.tokenizer.pad_token_id is not None:
            self._generation_defaults["pad_token_id"] = self.tokenizer.pad_token_id

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(task={self.task!r}, model={type(self.model).__name__}, "
                f"device={str(self.device)!r}, dtype={self.dtype})")

    @contextlib.contextmanager
    def device_placement(self):
        """A no-op: MindSpore runs on the process's device (see `resolve_device`)."""
        yield

    def get_inference_context(self):
        """No autograd context is needed: MindSpore computes gradients only when asked (`value_and_grad`)."""
        return contextlib.nullcontext

    def ensure_tensor_on_device(self, **inputs):
        return inputs

    def forward(self, model_inputs, **forward_params):
        """Runs `_forward` (the model on numpy inputs; mindone_ft models convert them to Tensors) and returns its
        outputs with every MindSpore Tensor as a numpy array, for transformers' numpy post-processing."""
        return to_numpy(self._forward(model_inputs, **forward_params))

    def get_iterator(self, inputs, num_workers: int, batch_size: int, preprocess_params, forward_params,
                     postprocess_params):
        """Lazily yields one result per input (a chunked input's chunks are gathered first, as in transformers)."""
        return (self.run_single(item, preprocess_params, forward_params, postprocess_params) for item in inputs)
