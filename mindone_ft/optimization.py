"""Learning-rate schedules with transformers' semantics, as numpy arrays.

transformers builds a `torch.optim.lr_scheduler.LambdaLR` whose multiplier at update step `k` is
`lr_lambda(k)`; the optimizer's k-th update (0-based) uses `learning_rate * lr_lambda(k)`. MindSpore
optimizers take the whole schedule up front as a 1-D array indexed by their `global_step`, so
`get_scheduler` returns `learning_rate * lr_lambda(k)` for `k = 0 .. num_training_steps - 1`.
`get_schedule_fn` returns the multiplier itself, for values past the array's end (what transformers logs as
`learning_rate` after the last step).
"""

import math
from functools import partial
from typing import Callable, Optional, Union

import numpy as np

from .trainer_utils import SchedulerType


def _warmup(step: int, num_warmup_steps: int) -> float:
    return float(step) / float(max(1, num_warmup_steps))


def _constant(step: int) -> float:
    return 1.0


def _constant_with_warmup(step: int, *, num_warmup_steps: int) -> float:
    return _warmup(step, num_warmup_steps) if step < num_warmup_steps else 1.0


def _linear(step: int, *, num_warmup_steps: int, num_training_steps: int) -> float:
    if step < num_warmup_steps:
        return _warmup(step, num_warmup_steps)
    return max(0.0, float(num_training_steps - step) / float(max(1, num_training_steps - num_warmup_steps)))


def _cosine(
    step: int, *, num_warmup_steps: int, num_training_steps: int, num_cycles: float = 0.5, min_lr_rate: float = 0.0
) -> float:
    if step < num_warmup_steps:
        return _warmup(step, num_warmup_steps)
    progress = float(step - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
    factor = 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress))
    return max(0.0, factor * (1 - min_lr_rate) + min_lr_rate)


def _cosine_with_restarts(step: int, *, num_warmup_steps: int, num_training_steps: int, num_cycles: int = 1) -> float:
    if step < num_warmup_steps:
        return _warmup(step, num_warmup_steps)
    progress = float(step - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
    if progress >= 1.0:
        return 0.0
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((float(num_cycles) * progress) % 1.0))))


def _polynomial(
    step: int, *, num_warmup_steps: int, num_training_steps: int, lr_init: float, lr_end: float = 1e-7, power=1.0
) -> float:
    if step < num_warmup_steps:
        return _warmup(step, num_warmup_steps)
    if step > num_training_steps:
        return lr_end / lr_init
    pct_remaining = 1 - (step - num_warmup_steps) / (num_training_steps - num_warmup_steps)
    return ((lr_init - lr_end) * pct_remaining**power + lr_end) / lr_init


def _inverse_sqrt(step: int, *, num_warmup_steps: int, timescale: Optional[int] = None) -> float:
    if timescale is None:
        timescale = num_warmup_steps or 10_000
    if step < num_warmup_steps:
        return _warmup(step, num_warmup_steps)
    return 1.0 / math.sqrt((step + timescale - num_warmup_steps) / timescale)


def get_schedule_fn(
    name: Union[str, SchedulerType],
    learning_rate: float,
    num_warmup_steps: int = 0,
    num_training_steps: Optional[int] = None,
    scheduler_specific_kwargs: Optional[dict] = None,
) -> Callable[[int], float]:
    """The multiplier `lr_lambda(step)` of schedule `name`, as in `transformers.get_scheduler`.

    Args:
        name (`str` or `SchedulerType`): one of `linear`, `cosine`, `cosine_with_restarts`, `polynomial`,
            `constant`, `constant_with_warmup`, `inverse_sqrt`, `cosine_with_min_lr`.
        learning_rate (`float`): the peak learning rate (needed by `polynomial` and `cosine_with_min_lr`'s `min_lr`).
        num_warmup_steps (`int`): steps of linear warmup from 0.
        num_training_steps (`int`, *optional*): total number of update steps (required by decaying schedules).
        scheduler_specific_kwargs (`dict`, *optional*): e.g. `num_cycles`, `power`, `lr_end`, `min_lr`, `min_lr_rate`.

    Returns:
        `Callable[[int], float]`: the multiplier applied to `learning_rate` at a 0-based update step.
    """
    name = SchedulerType(name)
    kwargs = dict(scheduler_specific_kwargs or {})
    if name == SchedulerType.CONSTANT:
        return _constant
    if name in (SchedulerType.CONSTANT_WITH_WARMUP, SchedulerType.INVERSE_SQRT):
        fn = _constant_with_warmup if name == SchedulerType.CONSTANT_WITH_WARMUP else _inverse_sqrt
        return partial(fn, num_warmup_steps=num_warmup_steps, **kwargs)
    if num_training_steps is None:
        raise ValueError(f"{name.value} requires `num_training_steps`, please provide that argument.")
    common = {"num_warmup_steps": num_warmup_steps, "num_training_steps": num_training_steps}
    if name == SchedulerType.LINEAR:
        return partial(_linear, **common)
    if name == SchedulerType.COSINE:
        return partial(_cosine, **common, **kwargs)
    if name == SchedulerType.COSINE_WITH_RESTARTS:
        return partial(_cosine_with_restarts, **common, **kwargs)
    if name == SchedulerType.POLYNOMIAL:
        if not learning_rate > kwargs.get("lr_end", 1e-7):
            raise ValueError(f"lr_end ({kwargs.get('lr_end', 1e-7)}) must be smaller than initial lr ({learning_rate})")
        return partial(_polynomial, **common, lr_init=learning_rate, **kwargs)
    if name == SchedulerType.COSINE_WITH_MIN_LR:
        min_lr, min_lr_rate = kwargs.pop("min_lr", None), kwargs.pop("min_lr_rate", None)
        if min_lr is not None and min_lr_rate is not None:
            raise ValueError("Only one of min_lr or min_lr_rate should be set")
        if min_lr is None and min_lr_rate is None:
            raise ValueError("One of min_lr or min_lr_rate should be set through the `lr_scheduler_kwargs`")
        min_lr_rate = min_lr / learning_rate if min_lr is not None else min_lr_rate
        return partial(_cosine, **common, min_lr_rate=min_lr_rate, **kwargs)
    raise ValueError(f"Unsupported scheduler {name.value!r}.")  # unreachable: every SchedulerType is handled


def get_scheduler(
    name: Union[str, SchedulerType],
    learning_rate: float,
    num_warmup_steps: int = 0,
    num_training_steps: Optional[int] = None,
    scheduler_specific_kwargs: Optional[dict] = None,
) -> np.ndarray:
    """The learning rate of every update step, for a MindSpore optimizer's `learning_rate`.

    Same schedules and arguments as `transformers.get_scheduler`, but instead of wrapping an optimizer it returns
    `learning_rate * lr_lambda(k)` for `k = 0 .. num_training_steps - 1` as a float32 array: entry `k` is the
    learning rate transformers' optimizer uses at its k-th update.

    Example:

    ```python
    >>> from mindone_ft.optimization import get_scheduler
    >>> get_scheduler("linear", 1e-3, num_warmup_steps=2, num_training_steps=6).round(6).tolist()
    [0.0, 0.0005, 0.001, 0.00075, 0.0005, 0.00025]
    ```
    """
    if num_training_steps is None or num_training_steps < 1:
        raise ValueError(f"`num_training_steps` must be a positive integer, got {num_training_steps!r}.")
    fn = get_schedule_fn(name, learning_rate, num_warmup_steps, num_training_steps, scheduler_specific_kwargs)
    return np.array([learning_rate * fn(k) for k in range(num_training_steps)], dtype=np.float32)
