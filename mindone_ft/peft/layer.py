"""LoRA layers as MindSpore Cells, shaped like PEFT's `peft/tuners/lora/layer.py`.

A LoRA layer wraps the layer kit's `Linear` or `Embedding` as `base_layer` and keeps, per adapter name, `lora_A` /
`lora_B` (`lora_embedding_A` / `lora_embedding_B` for embeddings), `lora_dropout` and a scaling, so that parameter
names are PEFT's (`...query.lora_A.default.weight`) and PEFT's files map onto them by dropping the adapter name.
`ModulesToSaveWrapper` keeps a trained copy of a whole module (a classification head) beside the original.

Graph mode: `construct` reads which adapters to add (`forward_adapters`, a tuple of names, empty when the adapters
are disabled or merged) as a Python constant, so MindSpore compiles it into the graph. Everything that changes it
(`set_adapter`, disabling, merging, unloading; see `LoraModel`) clears MindSpore's compiled graphs afterwards
(`mindspore.ms_memory_recycle()`, as `resize_token_embeddings` does), so the next call recompiles instead of
running a stale graph.
"""

import copy
import logging
import math
from typing import Dict, List, Optional, Sequence, Union

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import Normal, Uniform, initializer

from ..modeling_layers import RNG_STATE_NAME, Conv1D, Dropout, Embedding, Linear

logger = logging.getLogger(__name__)


def recompile_graphs() -> None:
    """Drops every compiled MindSpore graph, so that the next GRAPH_MODE call compiles the model as it is now.

    A compiled graph is keyed by the inputs of the Cell that was called, not by the Python attributes `construct`
    read (which adapters run, their scaling) nor by the sub-Cells it contains; after the adapters change, a cached
    graph would keep running the old computation. Clearing costs a recompile at the next call of every Cell.
    """
    ms.ms_memory_recycle()


def _set_data(param: Parameter, array: np.ndarray) -> None:
    """Writes `array` into `param` in place, in the parameter's dtype."""
    if param.dtype == ms.bfloat16:
        param.set_data(Tensor(array.astype(np.float32), ms.bfloat16))
    else:
        param.set_data(Tensor(np.ascontiguousarray(array, dtype=ms.dtype_to_nptype(param.dtype))))


def _as_float32(param: Parameter) -> np.ndarray:
    return param.astype(ms.float32).asnumpy() if param.dtype == ms.bfloat16 else param.asnumpy().astype(np.float32)


class ForwardsAttributes:
    """Put before `nn.Cell` in the bases of a wrapper Cell: attributes the wrapper lacks are looked up on its child
    `_forward_to`, as PEFT's wrappers do (a LoRA layer answers for its base layer's `weight`, a `PeftModel` for its
    model's `config`, `generate`, ...)."""

    _forward_to = ""

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            cells = self.__dict__.get("_cells", {})
            if name == self._forward_to or self._forward_to not in cells:
                raise
            return getattr(cells[self._forward_to], name)


class _ParameterDict(nn.Cell):
    """Parameters keyed by adapter name, so that their names end in `.<adapter>` like PEFT's `ParameterDict`
    (`lora_embedding_A.default`). `construct` reads them with `getattr(self, name)`, which compiles in graph mode."""

    def __init__(self):
        super().__init__(auto_prefix=False)

    def keys(self) -> List[str]:
        return list(self._params)

    def __contains__(self, name: str) -> bool:
        return name in self._params

    def __getitem__(self, name: str) -> Parameter:
        return self._params[name]

    def add(self, name: str, param: Parameter) -> None:
        self.insert_param_to_cell(name, param, check_name_contain_dot=False)

    def remove(self, name: str) -> None:
        del self._params[name]


class LoraLayer(ForwardsAttributes, nn.Cell):
    """What PEFT's `LoraLayer` keeps per adapter (rank, alpha, scaling, dropout) and the adapter state: active
    adapters, disabled, merged. Subclasses add the weights and `construct`.

    Attributes:
        base_layer: the wrapped kit layer (its parameters keep their names).
        forward_adapters (`tuple[str]`): the adapters `construct` adds, in order; empty when disabled or merged.
    """

    adapter_layer_names: tuple = ()
    _forward_to = "base_layer"  # like PEFT's layers: `weight`, `bias`, `in_channels`, ... are the base layer's

    def __init__(self, base_layer: nn.Cell):
        # No automatic prefix: the wrapped layer's parameters keep the names they had in the model, and the new
        # ones are named explicitly (in `update_layer`), so that every name stays unique in the model.
        super().__init__(auto_prefix=False)
        self.base_layer = base_layer
        self.lora_dropout = nn.CellDict()
        self.r: Dict[str, int] = {}
        self.lora_alpha: Dict[str, float] = {}
        self.scaling: Dict[str, float] = {}
        self.use_rslora: Dict[str, bool] = {}
        self.merged_adapters: List[str] = []
        self._active_adapters: tuple = ()
        self._disable_adapters = False
        self.forward_adapters: tuple = ()
        self.path = ""  # module path in the model, for parameter names

    # --- adapter state ------------------------------------------------------------------------------------------

    def adapter_names(self) -> List[str]:
        return list(self.r)

    @property
    def active_adapters(self) -> List[str]:
        return list(self._active_adapters)

    @property
    def active_adapter(self) -> Union[str, List[str]]:
        adapters = self.active_adapters
        return adapters[0] if len(adapters) == 1 else adapters

    @property
    def disable_adapters(self) -> bool:
        return self._disable_adapters

    @property
    def merged(self) -> bool:
        return bool(self.merged_adapters)

    def _refresh_forward(self) -> None:
        if self._disable_adapters or self.merged:
            self.forward_adapters = ()
        else:
            self.forward_adapters = tuple(name for name in self._active_adapters if name in self.r)

    def set_adapter(self, adapter_names: Union[str, Sequence[str]], inference_mode: bool = False) -> None:
        """Makes `adapter_names` the active adapters; they require gradients unless `inference_mode`, every other
        adapter of the layer is frozen (PEFT's `LoraLayer.set_adapter`)."""
        names = [adapter_names] if isinstance(adapter_names, str) else list(adapter_names)
        for layer_name in self.adapter_layer_names:
            for name, param in self._adapter_parameters(layer_name):
                param.requires_grad = name in names and not inference_mode
        self._active_adapters = tuple(names)
        self._refresh_forward()

    def enable_adapters(self, enabled: bool) -> None:
        """Turns the LoRA path on or off; a merged layer is unmerged first (its base weights come back)."""
        if not enabled and self.merged:
            self.unmerge()
        self._disable_adapters = not enabled
        self._refresh_forward()

    def _adapter_parameters(self, layer_name: str):
        """`(adapter name, Parameter)` of one per-adapter container (`lora_A`, `lora_embedding_A`, ...)."""
        container = getattr(self, layer_name)
        if isinstance(container, _ParameterDict):
            return [(name, container[name]) for name in container.keys()]
        return [(name, param) for name, cell in container.items() for param in cell.get_parameters()
                if param.name.rsplit(".", 1)[-1] != RNG_STATE_NAME]

    def _add_dropout(self, adapter_name: str, lora_dropout: float) -> None:
        # The layer kit's reproducible Dropout (an identity at p=0, like PEFT's nn.Identity).
        dropout = Dropout(p=lora_dropout)
        self.lora_dropout[adapter_name] = dropout
        for param in dropout.get_parameters():
            param.name = f"{self.path}.lora_dropout.{adapter_name}.{RNG_STATE_NAME}"

    def _set_scaling(self, adapter_name: str, r: int, lora_alpha: float, use_rslora: bool) -> None:
        if r <= 0:
            raise ValueError(f"`r` should be a positive integer value but the value passed is {r}")
        self.r[adapter_name] = r
        self.lora_alpha[adapter_name] = lora_alpha
        self.use_rslora[adapter_name] = use_rslora
        self.scaling[adapter_name] = lora_alpha / math.sqrt(r) if use_rslora else lora_alpha / r

    def set_scale(self, adapter: str, scale: float) -> None:
        """PEFT's `set_scale`: scaling = scale * alpha / r (or / sqrt(r) with rsLoRA); graphs recompile."""
        if adapter in self.scaling:
            base = self.lora_alpha[adapter] / (math.sqrt(self.r[adapter]) if self.use_rslora[adapter]
                                               else self.r[adapter])
            self.scaling[adapter] = scale * base
            recompile_graphs()

    # --- merging ------------------------------------------------------------------------------------------------

    def get_delta_weight(self, adapter: str) -> np.ndarray:
        """The adapter's update of the base weight, float32 numpy in the base weight's layout."""
        raise NotImplementedError

    def merge(self, safe_merge: bool = False, adapter_names: Optional[List[str]] = None) -> None:
        """Adds the adapters' updates to the base weight (default: the active adapters not merged yet).

        Args:
            safe_merge (`bool`): check that the merged weights are finite before writing them.
            adapter_names (`list[str]`, *optional*): which adapters to merge.
        """
        if adapter_names is None:
            adapter_names = self.active_adapters
        for name in adapter_names:
            if name not in self.r or name in self.merged_adapters:
                continue
            weight = self.base_layer.weight
            merged = _as_float32(weight) + self.get_delta_weight(name)
            if safe_merge and not np.isfinite(merged).all():
                raise ValueError(f"NaNs detected in the merged weights. The adapter {name} seems to be broken")
            _set_data(weight, merged)
            self.merged_adapters.append(name)
        self._refresh_forward()

    def unmerge(self) -> None:
        """Subtracts every merged adapter's update from the base weight again."""
        if not self.merged:
            logger.warning("Already unmerged. Nothing to do.")
            return
        while self.merged_adapters:
            name = self.merged_adapters.pop()
            weight = self.base_layer.weight
            _set_data(weight, _as_float32(weight) - self.get_delta_weight(name))
        self._refresh_forward()

    def delete_adapter(self, adapter_name: str) -> None:
        for layer_name in self.adapter_layer_names:
            container = getattr(self, layer_name)
            if isinstance(container, _ParameterDict):
                if adapter_name in container:
                    container.remove(adapter_name)
            elif adapter_name in container:
                del container[adapter_name]
        if adapter_name in self.lora_dropout:
            del self.lora_dropout[adapter_name]
        for attribute in (self.r, self.lora_alpha, self.scaling, self.use_rslora):
            attribute.pop(adapter_name, None)
        self._active_adapters = tuple(n for n in self._active_adapters if n != adapter_name)
        self._refresh_forward()


class LoraLinear(LoraLayer):
    """LoRA on the kit's `Linear` or `Conv1D` (PEFT's `lora.Linear`): `base_layer(x) + lora_B(lora_A(dropout(x))) *
    scaling`, `lora_A` `(r, in)` and `lora_B` `(out, r)`, both bias-free kit `Linear`s. `fan_in_fan_out` (True for
    `Conv1D`, whose weight is stored `(in, out)`) only transposes the update when merging, as in PEFT."""

    adapter_layer_names = ("lora_A", "lora_B")

    def __init__(self, base_layer: nn.Cell, path: str = "", fan_in_fan_out: bool = False):
        super().__init__(base_layer)
        self.path = path
        self.fan_in_fan_out = fan_in_fan_out
        if isinstance(base_layer, Conv1D):
            self.in_features, self.out_features = base_layer.weight.shape
        else:
            self.in_features, self.out_features = base_layer.in_channels, base_layer.out_channels
        self.lora_A = nn.CellDict()
        self.lora_B = nn.CellDict()

    def update_layer(self, adapter_name: str, r: int, lora_alpha: float, lora_dropout: float,
                     init_lora_weights: Union[bool, str], use_rslora: bool) -> None:
        """Adds (or re-creates) adapter `adapter_name` with rank `r` (PEFT's `update_layer`)."""
        self._set_scaling(adapter_name, r, lora_alpha, use_rslora)
        self._add_dropout(adapter_name, lora_dropout)
        lora_a = Linear(self.in_features, r, has_bias=False)
        lora_b = Linear(r, self.out_features, has_bias=False)
        self.lora_A[adapter_name] = lora_a
        self.lora_B[adapter_name] = lora_b
        lora_a.weight.name = f"{self.path}.lora_A.{adapter_name}.weight"
        lora_b.weight.name = f"{self.path}.lora_B.{adapter_name}.weight"
        # torch.nn.Linear's default init: kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        lora_a.weight.set_data(initializer(Uniform(1 / math.sqrt(self.in_features)), lora_a.weight.shape))
        if init_lora_weights == "gaussian":
            lora_a.weight.set_data(initializer(Normal(1 / r, 0.0), lora_a.weight.shape))
        if init_lora_weights is False:  # random B too: the adapter changes the outputs from the start (tests)
            lora_b.weight.set_data(initializer(Uniform(1 / math.sqrt(r)), lora_b.weight.shape))
        else:  # True / "gaussian": B = 0, the adapter starts as a no-op
            lora_b.weight.set_data(initializer("zeros", lora_b.weight.shape))
        self._refresh_forward()

    def get_delta_weight(self, adapter: str) -> np.ndarray:
        weight_a = _as_float32(self.lora_A[adapter].weight)
        weight_b = _as_float32(self.lora_B[adapter].weight)
        delta = (weight_b @ weight_a) * np.float32(self.scaling[adapter])
        return delta.T if self.fan_in_fan_out else delta

    def construct(self, x):
        result = self.base_layer(x)
        for name in self.forward_adapters:
            lora_out = self.lora_B[name](self.lora_A[name](self.lora_dropout[name](x)))
            result = result + lora_out * self.scaling[name]
        return result


class LoraEmbedding(LoraLayer):
    """LoRA on the kit's `Embedding` (PEFT's `lora.Embedding`): `base_layer(ids) + A.T[ids] @ B.T * scaling`, with
    `lora_embedding_A` `(r, num_embeddings)` and `lora_embedding_B` `(embedding_dim, r)` Parameters. As in PEFT's
    lookup, the padding row of `A.T` gets no gradient."""

    adapter_layer_names = ("lora_embedding_A", "lora_embedding_B")

    def __init__(self, base_layer: Embedding, path: str = ""):
        super().__init__(base_layer)
        self.path = path
        self.in_features = base_layer.num_embeddings
        self.out_features = base_layer.embedding_dim
        self.lora_embedding_A = _ParameterDict()
        self.lora_embedding_B = _ParameterDict()

    def update_layer(self, adapter_name: str, r: int, lora_alpha: float, lora_dropout: float,
                     init_lora_weights: Union[bool, str], use_rslora: bool) -> None:
        self._set_scaling(adapter_name, r, lora_alpha, use_rslora)
        self._add_dropout(adapter_name, lora_dropout)  # kept for PEFT's structure; PEFT's embedding ignores it too
        # PEFT: A zero and B standard normal with init_lora_weights=True (reversed from Linear), both normal with
        # False.
        fill_a = "zeros" if init_lora_weights is not False else Normal(1.0, 0.0)
        weight_a = initializer(fill_a, (r, self.in_features), ms.float32).init_data()
        weight_b = initializer(Normal(1.0, 0.0), (self.out_features, r), ms.float32).init_data()
        for layer_name, weight in (("lora_embedding_A", weight_a), ("lora_embedding_B", weight_b)):
            name = f"{self.path}.{layer_name}.{adapter_name}"
            getattr(self, layer_name).add(adapter_name, Parameter(weight, name=name))
        self._refresh_forward()

    def get_delta_weight(self, adapter: str) -> np.ndarray:
        weight_a = _as_float32(self.lora_embedding_A[adapter])
        weight_b = _as_float32(self.lora_embedding_B[adapter])
        return (weight_b @ weight_a).T * np.float32(self.scaling[adapter])

    def construct(self, ids):
        result = self.base_layer(ids)
        padding_idx = self.base_layer.padding_idx
        for name in self.forward_adapters:
            after_a = ops.gather(getattr(self.lora_embedding_A, name).T, ids, 0)
            if padding_idx is not None:
                is_padding = (ids == padding_idx).expand_dims(-1)
                after_a = ops.where(is_padding, ops.stop_gradient(after_a), after_a)
            result = result + ops.matmul(after_a, getattr(self.lora_embedding_B, name).T) * self.scaling[name]
        return result


def _copy_cell(cell: nn.Cell) -> nn.Cell:
    """A deep copy of a Cell with new Parameters. Primitives are shared, not copied: mindone_ft's custom CPU
    kernels cannot be deep-copied, and primitives hold no state."""
    memo = {}
    for _, sub in cell.cells_and_names():
        for primitive in sub._primitives.values():
            if primitive is not None:
                memo[id(primitive)] = primitive
    return copy.deepcopy(cell, memo)


class ModulesToSaveWrapper(ForwardsAttributes, nn.Cell):
    """PEFT's `ModulesToSaveWrapper`: a module trained in full beside the adapters (a new classification head).

    `original_module` is the model's module, frozen; `modules_to_save[<adapter>]` a copy per adapter, trained and
    saved with the adapter. `construct` runs the copy of the active adapter, or the original when the adapters are
    disabled or the active adapter has no copy.
    """

    _forward_to = "original_module"

    def __init__(self, module_to_save: nn.Cell, adapter_name: str, path: str = ""):
        super().__init__(auto_prefix=False)
        self.original_module = module_to_save
        self.modules_to_save = nn.CellDict()
        self.path = path
        self._active_adapter: Optional[str] = None
        self._disable_adapters = False
        self.forward_adapter: Optional[str] = None
        self.update(adapter_name)

    def update(self, adapter_name: str) -> None:
        """Adds a copy of the original module for `adapter_name` (frozen until `set_adapter`)."""
        module = _copy_cell(self.original_module)
        self.modules_to_save[adapter_name] = module
        for name, param in module.parameters_and_names():
            param.name = f"{self.path}.modules_to_save.{adapter_name}.{name}"
            param.requires_grad = False

    def adapter_names(self) -> List[str]:
        return list(self.modules_to_save.keys())

    @property
    def active_adapter(self) -> Optional[str]:
        return self._active_adapter

    @property
    def disable_adapters(self) -> bool:
        return self._disable_adapters

    def _refresh_forward(self) -> None:
        active = self._active_adapter
        self.forward_adapter = None if self._disable_adapters or active not in self.modules_to_save else active

    def set_adapter(self, adapter_names: Union[str, Sequence[str], None], inference_mode: bool = False) -> None:
        """Activates the copy of one adapter (PEFT allows only one here); it requires gradients unless
        `inference_mode`, the original and the other copies are frozen."""
        names = [adapter_names] if isinstance(adapter_names, str) else list(adapter_names or [])
        if len(names) > 1:
            raise ValueError(f"Attempted to set multiple ({names}) adapters at once for modules_to_save, which is "
                             "not allowed.")
        active = names[0] if names else None
        for param in self.original_module.get_parameters():
            param.requires_grad = False
        for name, module in self.modules_to_save.items():
            for param in module.get_parameters():
                param.requires_grad = name == active and not inference_mode and \
                    param.name.rsplit(".", 1)[-1] != RNG_STATE_NAME
        self._active_adapter = active
        self._refresh_forward()

    def enable_adapters(self, enabled: bool) -> None:
        self._disable_adapters = not enabled
        self._refresh_forward()

    def delete_adapter(self, adapter_name: str) -> None:
        if adapter_name in self.modules_to_save:
            del self.modules_to_save[adapter_name]
        if self._active_adapter == adapter_name:
            self._active_adapter = None
        self._refresh_forward()

    def construct(self, *args, **kwargs):
        if self.forward_adapter is None:
            return self.original_module(*args, **kwargs)
        return self.modules_to_save[self.forward_adapter](*args, **kwargs)
