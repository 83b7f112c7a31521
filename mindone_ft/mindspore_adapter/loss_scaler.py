"""Loss scalers whose state lives in Parameters of a Cell.

`mindspore.amp.DynamicLossScaler` keeps `scale_value` and its counter outside any Cell, so they are lost by
`ms.save_checkpoint(train_step)`. These scalers are Cells: their state is saved with the train step, and
`state_dict()`/`load_state_dict()` give it as numpy for other checkpoint formats.
"""

from typing import Any, Dict, Optional

import numpy as np

import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops

# HyperMap over the gradient tuple, not a comprehension: with ~100 gradients, comprehensions in the train step
# (unscaling, global norm, clipping) tripled its compile time, paid again for every new input shape (CPU,
# MindSpore 2.10, 6-layer BERT: ~18 s -> ~7 s per sequence length).
_hyper_map = ops.HyperMap()
_multiply = ops.MultitypeFuncGraph("multiply")


@_multiply.register("Tensor", "Tensor")
def _multiply_tensor(factor: Tensor, grad: Tensor) -> Tensor:
    return grad * factor.astype(grad.dtype)


def scale_all(grads: tuple, factor: Tensor) -> tuple:
    """Every gradient multiplied by the scalar tensor `factor`."""
    return _hyper_map(ops.partial(_multiply, factor), grads)


class LossScaler(nn.Cell):
    """Static loss scale: multiplies the loss by `scale_value` and divides the gradients by it.

    A power of two keeps scaling exact in floating point. `adjust` does nothing; subclasses change the scale.

    Args:
        scale_value (`float`, *optional*, defaults to 1.0): the loss scale.
    """

    def __init__(self, scale_value: float = 1.0):
        super().__init__()
        if scale_value <= 0:
            raise ValueError(f"`scale_value` must be > 0, got {scale_value}.")
        self.scale_value = Parameter(Tensor(scale_value, ms.float32), name="scale_value", requires_grad=False)
        self.counter = Parameter(Tensor(0, ms.int32), name="counter", requires_grad=False)

    def scale(self, loss: Tensor) -> Tensor:
        return loss * self.scale_value.astype(loss.dtype)

    def unscale(self, grads: tuple) -> tuple:
        return scale_all(grads, 1.0 / self.scale_value)

    def adjust(self, finite: Tensor) -> Tensor:
        return finite

    def state_dict(self) -> Dict[str, np.ndarray]:
        """Scaler state as numpy: `{"scale_value": float32 scalar, "counter": int32 scalar}`."""
        return {"scale_value": self.scale_value.asnumpy(), "counter": self.counter.asnumpy()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.scale_value.set_data(Tensor(np.asarray(state["scale_value"], np.float32)))
        self.counter.set_data(Tensor(np.asarray(state["counter"], np.int32)))


class NoLossScaler(LossScaler):
    """Scale 1 without the arithmetic: fp32 training should not pay a pass over every gradient for it."""

    def __init__(self):
        super().__init__(1.0)

    def scale(self, loss: Tensor) -> Tensor:
        return loss

    def unscale(self, grads: tuple) -> tuple:
        return grads


class DynamicLossScaler(LossScaler):
    """Dynamic loss scale: divided by `scale_factor` on every overflow, multiplied by it after
    `scale_window` consecutive finite steps (never below 1, never to infinity).

    Args:
        scale_value (`float`, *optional*, defaults to 2**16): the initial loss scale.
        scale_factor (`float`, *optional*, defaults to 2).
        scale_window (`int`, *optional*, defaults to 1000).
    """

    def __init__(self, scale_value: float = 2.0**16, scale_factor: float = 2.0, scale_window: int = 1000):
        super().__init__(scale_value)
        if scale_factor <= 1 or scale_window < 1:
            raise ValueError(f"Need scale_factor > 1 and scale_window >= 1, got {scale_factor}, {scale_window}.")
        self.scale_factor = float(scale_factor)
        self.scale_window = int(scale_window)

    def adjust(self, finite: Tensor) -> Tensor:
        grown_counter = self.counter + 1
        grow = ops.logical_and(finite, grown_counter >= self.scale_window)
        grown = self.scale_value * self.scale_factor
        grown = ops.select(ops.isfinite(grown), grown, self.scale_value)
        shrunk = ops.maximum(self.scale_value / self.scale_factor, ops.ones((), ms.float32))
        new_scale = ops.select(finite, ops.select(grow, grown, self.scale_value), shrunk)
        new_counter = ops.select(ops.logical_and(finite, ops.logical_not(grow)), grown_counter, ops.zeros((), ms.int32))
        ops.assign(self.scale_value, new_scale)
        ops.assign(self.counter, new_counter)
        return finite


def create_loss_scaler(scaler: str = "default", scaler_config: Optional[Dict[str, Any]] = None) -> LossScaler:
    """Builds a scaler from a name.

    Args:
        scaler (`str`): `"none"` (scale 1), `"default"` or `"static"` (fixed scale, default 1024), or
            `"dynamic"`/`"auto"` (`DynamicLossScaler`, default scale 2**16, factor 2, window 1000).
        scaler_config (`dict`, *optional*): keyword arguments of the scaler class.
    """
    config = dict(scaler_config or {})
    name = scaler.lower()
    if name == "none":
        return NoLossScaler()
    if name in ("default", "static"):
        return LossScaler(**{"scale_value": 1024.0, **config})
    if name in ("dynamic", "auto"):
        return DynamicLossScaler(**config)
    raise ValueError(f"`scaler` must be 'default', 'static', 'dynamic' or 'none', got {scaler!r}.")
