"""A training step Cell: forward, backward, loss scaling, overflow skip, accumulation, clipping, update.

Overflow is detected from the global gradient norm on every backend (`nn.TrainOneStepWithLossScaleCell`
needs an Ascend-only status op). A step with non-finite gradients changes neither the parameters nor the
optimizer state, because the optimizer is only called in the finite branch.
"""

from typing import Any, Dict, Optional, Union

import numpy as np

import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops

from ..kernels import cpu
from ..utils import compat
from .cell_mode import TrainEvalModeMixin
from .environment import get_rank_info
from .loss_scaler import create_loss_scaler, scale_all

_CLIP_MODES = ("none", "norm", "value")


class ReturnLoss(nn.Cell):
    """Wraps a model so that calling it returns only the loss (the first output).

    The model must have been given labels, so that its first output is the loss. Works with tuple outputs
    (inside graphs), `ModelOutput`s and dicts with a `"loss"` key.
    """

    def __init__(self, model: nn.Cell):
        super().__init__(auto_prefix=False)
        self.model = model

    def construct(self, *args, **kwargs):
        outputs = self.model(*args, **kwargs)
        if isinstance(outputs, dict):  # a plain dict cannot be indexed by position (ModelOutput can)
            return outputs["loss"]
        return outputs[0]


def global_norm(grads: tuple, sum_of_squares: Optional[ops.Primitive] = None) -> Tensor:
    """L2 norm of all gradients together, as one float32 scalar.

    `sum_of_squares` (`mindone_ft.kernels.cpu.sum_of_squares_op()`) computes it in one kernel call; without it,
    MindSpore ops compute one partial sum per gradient.
    """
    return ops.sqrt(global_sum_of_squares(grads, sum_of_squares))


def global_sum_of_squares(grads: tuple, sum_of_squares: Optional[ops.Primitive] = None) -> Tensor:
    """Sum of the squares of all gradients' elements, as one float32 scalar (see `global_norm`)."""
    if sum_of_squares is not None:
        return sum_of_squares(*grads).reshape(())
    return ops.addn(_hyper_map(_sum_of_squares, grads))


# Per-gradient functions are mapped with HyperMap, not written as comprehensions over the gradient tuple: with
# ~100 gradients the comprehensions tripled the train step's compile time (see `scale_all`).
_hyper_map = ops.HyperMap()
_sum_of_squares = ops.MultitypeFuncGraph("sum_of_squares")
_clamp = ops.MultitypeFuncGraph("clamp")


@_sum_of_squares.register("Tensor")
def _sum_of_squares_tensor(x: Tensor) -> Tensor:
    x = x.astype(ms.float32)
    # Row sums first: MindSpore's CPU kernel reduces along an axis in parallel but a whole tensor on one
    # thread, ~6x slower on a 30522x384 embedding gradient (measured, MindSpore 2.10).
    if x.ndim >= 2:
        return ops.square(x.reshape(-1, x.shape[-1])).sum(-1).sum()
    return ops.square(x).sum()


@_clamp.register("Number", "Tensor")
def _clamp_tensor(limit: float, grad: Tensor) -> Tensor:
    return ops.clamp(grad, -limit, limit)


class TrainOneStepWrapper(TrainEvalModeMixin, nn.Cell):
    """One optimizer step per call (or one micro-step with gradient accumulation).

    Calling it with the network's positional inputs (`None` allowed) returns `(loss, None, overflow)`:
    the unscaled loss of this (micro-)batch and whether its gradients were non-finite.

    Args:
        network (`nn.Cell`): returns a scalar loss, e.g. `ReturnLoss(model)`.
        optimizer (`nn.Cell`): called with a tuple of gradients; must expose `parameters` (as MindSpore
            optimizers and `AdamW` do). An optimizer with `accepts_grad_scale = True` (`AdamW`) is given the
            clipping coefficient as `optimizer(grads, grad_scale)` instead of clipped gradients.
        scaler (`str`, *optional*, defaults to `"default"`): `"default"`/`"static"` (fixed 1024),
            `"dynamic"`, or `"none"`. See `create_loss_scaler`.
        scaler_config (`dict`, *optional*): arguments of the scaler, e.g. `{"scale_value": 2**12}`.
        drop_overflow_step (`bool`, *optional*, defaults to `True`): skip the update when gradients overflow.
        gradient_accumulation_steps (`int`, *optional*, defaults to 1): micro-steps per update; the update uses
            the mean of their gradients, so N micro-batches of size b equal one batch of N*b.
        clip_grad (`str`, *optional*, defaults to `"none"`): `"norm"` clips the global norm to `clip_value`,
            `"value"` clips each element to `[-clip_value, clip_value]`.
        clip_value (`float`, *optional*, defaults to 1.0).
        distributed (`bool`, *optional*): average gradients over data-parallel ranks; default: when
            `init_environment` found more than one rank.

    ZeRO: give a `ZeroAdamW` (`mindone_ft.mindspore_adapter.zero`) as the optimizer. With stage 1 the step is the
    data-parallel one and the optimizer updates this rank's slices; with stage 2 the reduced gradients, their
    accumulation buffers and the clipping norm are this rank's slices too. After each call the updated slices
    are all-gathered into the parameters (also on micro-steps and skipped steps, whose slices still equal the
    parameters, so the gather changes nothing).

    `train()` / `eval()` switch the wrapped model's mode like `torch.nn.Module.train()` / `.eval()` (MindSpore's
    `set_train(mode)`), and return the wrapper.

    Attributes:
        last_grad_norm (`Parameter`): global gradient norm (unscaled, before clipping) of the last update.
        micro_step (`Parameter`): micro-steps done, counting all calls.
    """

    def __init__(
        self,
        network: nn.Cell,
        optimizer: nn.Cell,
        scaler: str = "default",
        scaler_config: Optional[Dict[str, Any]] = None,
        drop_overflow_step: bool = True,
        gradient_accumulation_steps: int = 1,
        clip_grad: str = "none",
        clip_value: float = 1.0,
        distributed: Optional[bool] = None,
    ):
        super().__init__(auto_prefix=False)
        if gradient_accumulation_steps < 1:
            raise ValueError(f"`gradient_accumulation_steps` must be >= 1, got {gradient_accumulation_steps}.")
        clip_grad = (clip_grad or "none").lower()
        if clip_grad not in _CLIP_MODES:
            raise ValueError(f"`clip_grad` must be one of {_CLIP_MODES}, got {clip_grad!r}.")
        self.network = network
        self.optimizer = optimizer
        self.weights = optimizer.parameters
        self.loss_scaler = create_loss_scaler(scaler, scaler_config)
        self.drop_overflow_step = drop_overflow_step
        self.accumulation_steps = int(gradient_accumulation_steps)
        self.clip_grad = clip_grad
        self.clip_value = float(clip_value)
        self.grad_fn = ops.value_and_grad(self._scaled_loss, grad_position=None, weights=self.weights)
        self.optimizer_scales_grads = bool(getattr(optimizer, "accepts_grad_scale", False))
        all_float32 = all(weight.dtype == ms.float32 for weight in self.weights)
        self.sum_of_squares = cpu.sum_of_squares_op() if all_float32 and compat.use_cpu_kernels() else None

        world_size = get_rank_info().world_size
        self.distributed = world_size > 1 if distributed is None else distributed
        self.zero_stage = int(getattr(optimizer, "zero_stage", 0))
        if self.zero_stage and not self.distributed:
            raise ValueError("A ZeRO optimizer shards over data-parallel ranks: the train step must be distributed.")
        self.shard_grads = self.zero_stage >= 2
        if self.distributed:
            self.grad_reducer = nn.DistributedGradReducer(self.weights, mean=True, degree=world_size)
        # SUM of overflow flags, not MAX: the CPU AllReduce kernel only sums (float types only).
        self.all_reduce_sum = compat.all_reduce_sum_op() if self.distributed else None

        self.micro_step = Parameter(Tensor(0, ms.int32), name="train_step.micro_step", requires_grad=False)
        self.last_grad_norm = Parameter(Tensor(0.0, ms.float32), name="train_step.last_grad_norm", requires_grad=False)
        if self.accumulation_steps > 1:  # stage 2 accumulates this rank's gradient slices only
            accumulated = optimizer.shard_parameters if self.shard_grads else self.weights
            self.accumulated_grads = accumulated.clone(prefix="accumulated_grads", init="zeros")
        self.hyper_map = ops.HyperMap()

    def __call__(self, *inputs):
        # The graph returns `(loss, overflow)`: a `None` output compiles to a Python-executed node, which MindSpore's
        # compile cache cannot export (see `mindone_ft.mindspore_adapter.compile_cache`).
        loss, overflow = super().__call__(*inputs)
        return loss, None, overflow

    def _scaled_loss(self, *inputs):
        return self.loss_scaler.scale(self.network(*inputs))

    def construct(self, *inputs):
        scaled_loss, grads = self.grad_fn(*inputs)
        if self.shard_grads:
            grads = self.optimizer.reduce_gradients(grads, self.grad_reducer)
        elif self.distributed:
            grads = self.grad_reducer(grads)
        grads = self.loss_scaler.unscale(grads)
        loss = scaled_loss / self.loss_scaler.scale_value.astype(scaled_loss.dtype)
        # The global norm is needed for clipping and logging anyway, and it is non-finite exactly when some
        # gradient is (or when |g| > 1e19, an overflow too): one reduction instead of a second all_finite pass.
        norm = self._global_norm(grads)
        finite = self._all_ranks_finite(ops.isfinite(norm))
        self.loss_scaler.adjust(finite)
        ops.assign_add(self.micro_step, ops.ones((), ms.int32))

        if self.accumulation_steps == 1:
            self._apply(grads, finite, norm)
        else:
            self._accumulate(grads)
            if self.micro_step % self.accumulation_steps == 0:
                mean_grads = scale_all(self.accumulated_grads, ops.scalar_to_tensor(1.0 / self.accumulation_steps))
                # A non-finite micro-batch leaves inf/nan in the sum, so the whole window is dropped.
                mean_norm = self._global_norm(mean_grads)
                self._apply(mean_grads, ops.isfinite(mean_norm), mean_norm)
                self._reset_accumulation()
        if self.zero_stage:
            self.optimizer.gather_parameters()
        return loss, ops.logical_not(finite)

    def _global_norm(self, grads: tuple) -> Tensor:
        if self.shard_grads:  # each rank holds a slice of every gradient: sum the squares over ranks
            return ops.sqrt(self.optimizer.sharded_sum_of_squares(global_sum_of_squares(grads, self.sum_of_squares)))
        return global_norm(grads, self.sum_of_squares)

    def _all_ranks_finite(self, finite: Tensor) -> Tensor:
        if self.distributed:  # a rank that overflowed makes every rank skip, so weights stay identical
            overflowed_ranks = self.all_reduce_sum(ops.logical_not(finite).astype(ms.float32))
            finite = overflowed_ranks == 0
        return finite

    def _accumulate(self, grads: tuple) -> None:
        self.hyper_map(ops.assign_add, self.accumulated_grads, grads)

    def _reset_accumulation(self) -> None:
        self.hyper_map(ops.assign, self.accumulated_grads, self.hyper_map(ops.zeros_like, self.accumulated_grads))

    def _apply(self, grads: tuple, finite: Tensor, norm: Tensor) -> Tensor:
        ops.assign(self.last_grad_norm, norm)
        if self.clip_grad == "norm":  # same coefficient as torch.nn.utils.clip_grad_norm_
            coefficient = ops.minimum(self.clip_value / (norm + 1e-6), 1.0)
            if self.optimizer_scales_grads:
                return self._update(finite, grads, coefficient)
            grads = scale_all(grads, coefficient)
        elif self.clip_grad == "value":
            grads = _hyper_map(ops.partial(_clamp, self.clip_value), grads)
        return self._update(finite, grads)

    # The methods holding an `if finite:` branch return a Tensor, and no `*optimizer_args`: an implicit `None` return
    # of such a method, or a starred call, compiles to a Python-executed node, which MindSpore's compile cache cannot
    # export (see `mindone_ft.mindspore_adapter.compile_cache`).
    def _update(self, finite: Tensor, grads: tuple, grad_scale: Union[Tensor, float] = 1.0) -> Tensor:
        if not self.drop_overflow_step:
            self._call_optimizer(grads, grad_scale)
        elif finite:
            self._call_optimizer(grads, grad_scale)
        return finite

    def _call_optimizer(self, grads: tuple, grad_scale: Union[Tensor, float]) -> None:
        if self.optimizer_scales_grads and self.clip_grad == "norm":  # `_apply` passes the clipping coefficient
            self.optimizer(grads, grad_scale)
        else:
            self.optimizer(grads)

    def state_dict(self) -> Dict[str, np.ndarray]:
        """Step state outside the optimizer, as numpy: loss scale, its counter and the micro-step count."""
        state = {f"loss_scaler.{k}": v for k, v in self.loss_scaler.state_dict().items()}
        state["micro_step"] = self.micro_step.asnumpy()
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        prefix = "loss_scaler."
        self.loss_scaler.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        if "micro_step" in state:
            self.micro_step.set_data(Tensor(np.asarray(state["micro_step"], np.int32)))
