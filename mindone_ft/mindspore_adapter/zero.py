"""ZeRO optimizer sharding over data-parallel ranks (stages 1 and 2), for `TrainOneStepWrapper`.

Every parameter is flattened and cut into `world_size` equal slices (the last one padded with zeros); rank `r`
owns slice `r` of every parameter. Each rank keeps AdamW moments for its slices only, so optimizer state is
`1/world_size` of the whole.

- Stage 1 (optimizer state): gradients are averaged over ranks in full (as plain data parallelism), each rank
  updates its slices, and the updated slices are all-gathered back into the full parameters.
- Stage 2 (plus gradients): the averaged gradient each rank keeps is only its slices, as are the gradient
  accumulation buffers; the global gradient norm (clipping, overflow check) is summed over ranks' slices.
  Ascend and GPU reduce-scatter the gradients; MindSpore 2.10's CPU collectives have no ReduceScatter, so CPU
  all-reduces them and keeps its slice (same numbers, full-size communication). The choice is
  `compat.supports_reduce_scatter()`.

Stage 3 (parameters sharded between steps) would need an all-gather in the forward pass whose gradient is a
reduce-scatter, which CPU lacks; it is not implemented.

The update is elementwise, so a sharded run updates every element exactly as plain data parallelism does: ZeRO
changes memory, not numbers (only stage 2's norm is summed in a different order).
"""

import math
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

import mindspore as ms
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops

from ..utils import compat
from .adamw import AdamW

_take_slice = ops.MultitypeFuncGraph("zero_take_slice")


@_take_slice.register("Number", "Number", "Number", "Tensor")
def _take_slice_tensor(start: int, stop: int, length: int, full: Tensor) -> Tensor:
    """This rank's slice `[start, stop)` of `full` flattened, zero-padded to `length` elements."""
    flat = full.reshape((-1,))
    if start >= stop:  # a parameter smaller than the world: this rank's slice is all padding
        return ops.zeros((length,), flat.dtype)
    piece = flat[start:stop]
    if stop - start < length:
        piece = ops.concat((piece, ops.zeros((length - (stop - start),), flat.dtype)))
    return piece


_copy_slice = ops.MultitypeFuncGraph("zero_copy_slice")


@_copy_slice.register("Number", "Number", "Number", "Tensor", "Tensor")
def _copy_slice_tensor(start: int, stop: int, length: int, shard: Tensor, full: Tensor) -> bool:
    ops.assign(shard, _take_slice_tensor(start, stop, length, full).astype(shard.dtype))
    return True


_gather_into = ops.MultitypeFuncGraph("zero_gather_into")


@_gather_into.register("Function", "Tensor", "Tensor")
def _gather_into_tensor(all_gather: ops.Primitive, shard: Tensor, full: Tensor) -> bool:
    """All ranks' slices, concatenated, written back into the full parameter."""
    flat = all_gather(shard)[: full.size]
    ops.assign(full, flat.reshape(full.shape).astype(full.dtype))
    return True


_reduce_scatter_mean = ops.MultitypeFuncGraph("zero_reduce_scatter_mean")


@_reduce_scatter_mean.register("Function", "Number", "Number", "Tensor")
def _reduce_scatter_mean_tensor(reduce_scatter: ops.Primitive, world_size: int, length: int, grad: Tensor) -> Tensor:
    """This rank's slice of `grad` averaged over ranks: `grad` flattened and zero-padded to `world_size * length`
    elements, whose r-th `length` elements go to rank r."""
    flat = grad.reshape((-1,))
    padded = world_size * length
    if padded > flat.size:
        flat = ops.concat((flat, ops.zeros((padded - flat.size,), flat.dtype)))
    return reduce_scatter(flat) / world_size


def shard_bounds(size: int, rank: int, world_size: int) -> Tuple[int, int, int]:
    """`(start, stop, length)`: the elements `[start, stop)` of a flattened parameter of `size` elements that
    `rank` owns, and its slice length `ceil(size / world_size)` (the same on every rank; the tail is padding)."""
    length = math.ceil(size / world_size)
    start = min(rank * length, size)
    return start, min(start + length, size), length


class ZeroAdamW(nn.Cell):
    """An `AdamW` whose state is sharded over the data-parallel ranks (ZeRO stage 1 or 2).

    Built from a plain `AdamW` over the full parameters (its learning-rate schedule, betas, epsilon, per-parameter
    weight decay and fused setting are kept); the moments live in an inner `AdamW` over this rank's slices.
    `TrainOneStepWrapper` recognises it by `zero_stage`: it reduces gradients with `reduce_gradients` and calls
    `gather_parameters` after every step.

    Args:
        optimizer (`AdamW`): the optimizer to shard (its own moments are not used and not kept).
        stage (`int`): 1 (optimizer state) or 2 (plus gradients).
        rank (`int`), world_size (`int`): this process's data-parallel position.

    Calling it with a tuple of gradients (full ones for stage 1, this rank's slices for stage 2) and optionally
    the clipping coefficient updates this rank's slices; `state_dict()` holds `exp_avg.<name>` /
    `exp_avg_sq.<name>` slices (flat, `ceil(size / world_size)` elements) and `global_step`.
    """

    accepts_grad_scale = True

    def __init__(self, optimizer: AdamW, stage: int, rank: int, world_size: int):
        super().__init__(auto_prefix=False)
        if not isinstance(optimizer, AdamW):
            raise TypeError(f"ZeRO shards mindone_ft's `AdamW`; got {type(optimizer).__name__}.")
        if stage not in (1, 2):
            raise ValueError(f"ZeRO stage must be 1 or 2 (stage 3 is not supported), got {stage}.")
        self.zero_stage = int(stage)
        self.rank, self.world_size = int(rank), int(world_size)
        self.parameters = optimizer.parameters
        bounds = [shard_bounds(p.size, self.rank, self.world_size) for p in self.parameters]
        self.starts = tuple(b[0] for b in bounds)
        self.stops = tuple(b[1] for b in bounds)
        self.lengths = tuple(b[2] for b in bounds)
        self.shard_parameters = ParameterTuple([
            Parameter(Tensor(np.zeros(length, ms.dtype_to_nptype(p.dtype))), name=f"zero_shard.{p.name}",
                      requires_grad=False)
            for p, length in zip(self.parameters, self.lengths)
        ])
        groups = [{"params": [shard], "weight_decay": decay}
                  for shard, decay in zip(self.shard_parameters, optimizer.weight_decays)]
        self.inner = AdamW(groups, learning_rate=optimizer.learning_rates.asnumpy(),
                           betas=(optimizer.beta1, optimizer.beta2), eps=optimizer.eps, fused=optimizer.fused)
        self.global_step = self.inner.global_step
        self.learning_rates = self.inner.learning_rates
        self.hyper_map = ops.HyperMap()
        self.all_gather = compat.all_gather_op()
        self.reduce_scatter = compat.reduce_scatter_sum_op() if compat.supports_reduce_scatter() else None
        self.all_reduce = compat.all_reduce_sum_op()
        self.sync_slices()

    def get_lr(self) -> Tensor:
        """Learning rate of the next update."""
        return self.inner.get_lr()

    def take_slices(self, tensors: tuple) -> tuple:
        """This rank's slice of each full-size tensor (parameters or gradients, in `parameters` order)."""
        return self.hyper_map(_take_slice, self.starts, self.stops, self.lengths, tensors)

    def reduce_gradients(self, grads: tuple, all_reduce_mean: nn.Cell) -> tuple:
        """Stage 2: this rank's slices of the gradients averaged over ranks. Ascend/GPU reduce-scatter; CPU
        averages in full with `all_reduce_mean` (the wrapper's `DistributedGradReducer`, so the values are those
        of plain data parallelism) and keeps its slices."""
        if self.reduce_scatter is None:
            return self.take_slices(all_reduce_mean(grads))
        update = ops.partial(_reduce_scatter_mean, self.reduce_scatter, self.world_size)
        return self.hyper_map(update, self.lengths, grads)

    def sharded_sum_of_squares(self, local: Tensor) -> Tensor:
        """Sum over ranks of each rank's sum of squared gradient slices (padding is zero)."""
        return self.all_reduce(local.astype(ms.float32))

    def sync_slices(self) -> None:
        """Copies this rank's slices of the full parameters into its shards, on the host. Needed whenever the
        parameters change outside the train step (done at construction; the Trainer calls it after loading a
        checkpoint): the train step all-gathers the shards on every call, also on micro-steps and skipped steps
        that do not run the update."""
        for shard, param, start, stop in zip(self.shard_parameters, self.parameters, self.starts, self.stops):
            flat = np.zeros(shard.shape, ms.dtype_to_nptype(shard.dtype))
            flat[: stop - start] = param.asnumpy().reshape(-1)[start:stop]
            shard.set_data(Tensor(flat))

    def construct(self, grads: Tuple[Tensor, ...], grad_scale: Optional[Tensor] = None) -> bool:
        # The update starts from the full parameters' slices, so it is right even if `sync_slices` was not
        # called after the parameters changed (1/world of the parameters copied per update). Copying them at
        # the start of every train-step call instead made the step's graph compile for minutes (MindSpore 2.10).
        self.hyper_map(_copy_slice, self.starts, self.stops, self.lengths, self.shard_parameters, self.parameters)
        if self.zero_stage == 1:
            grads = self.take_slices(grads)
        return self.inner(grads, grad_scale)

    def gather_parameters(self) -> bool:
        """Writes every rank's updated slices into the full parameters (one all-gather per parameter)."""
        return self.hyper_map(ops.partial(_gather_into, self.all_gather), self.shard_parameters, self.parameters)

    def state_dict(self) -> Dict[str, np.ndarray]:
        """This rank's optimizer state: `global_step`, `exp_avg.<param>`, `exp_avg_sq.<param>` (flat slices)."""
        prefix = "zero_shard."
        state = {"global_step": self.global_step.asnumpy()}
        for moment in self.inner.exp_avg + self.inner.exp_avg_sq:
            kind, name = moment.name.split(".", 1)
            state[f"{kind}.{name[len(prefix):]}"] = moment.asnumpy()
        return state

    def load_state_dict(self, state: Dict[str, Any], strict: bool = True) -> List[str]:
        """Loads this rank's `state_dict()` output; returns missing names (an error if `strict`)."""
        renamed = {}
        for key, value in state.items():
            kind, _, name = key.partition(".")
            renamed[f"{kind}.zero_shard.{name}" if name else key] = value
        expected = {p.name: p.shape for p in self.inner.exp_avg + self.inner.exp_avg_sq}
        for name, shape in expected.items():
            if name in renamed and tuple(np.shape(renamed[name])) != tuple(shape):
                raise ValueError(f"Optimizer shard {name[len('exp_avg.'):]} has shape {np.shape(renamed[name])}, "
                                 f"expected {tuple(shape)} (a shard of another world size or model).")
        return self.inner.load_state_dict(renamed, strict=strict)

    def load_full_state_dict(self, state: Dict[str, Any]) -> None:
        """Loads an unsharded `AdamW.state_dict()` (e.g. from a checkpoint of plain data parallelism), keeping
        this rank's slices."""
        sliced = {"global_step": state["global_step"]}
        for param, start, stop, length in zip(self.parameters, self.starts, self.stops, self.lengths):
            for kind in ("exp_avg", "exp_avg_sq"):
                flat = np.asarray(state[f"{kind}.{param.name}"]).reshape(-1)[start:stop]
                sliced[f"{kind}.{param.name}"] = np.pad(flat, (0, length - flat.size))
        self.load_state_dict(sliced)


def optimizer_state_size(optimizer: nn.Cell) -> int:
    """Number of elements of the optimizer's moments on this rank (`exp_avg` + `exp_avg_sq`)."""
    inner = optimizer.inner if isinstance(optimizer, ZeroAdamW) else optimizer
    return int(sum(m.size for m in inner.exp_avg + inner.exp_avg_sq))
