"""Host-side collectives for data-parallel bookkeeping: logged loss, gathered evaluation outputs, barriers.

The collective primitives come from `utils.compat`, which picks ones that run on Ascend, GPU and CPU alike.
Every rank must call the same collectives in the same order, or the job hangs until msrun's timeout.
"""

import numpy as np

import mindspore as ms

from ..utils import compat


def all_reduce_sum(array) -> np.ndarray:
    """Element-wise sum over all ranks, computed in float32 (the only float type CPU AllReduce and every other
    backend share)."""
    return compat.all_reduce_sum_op()(ms.Tensor(np.asarray(array, np.float32))).asnumpy()


def all_gather(array: np.ndarray) -> np.ndarray:
    """Every rank's `array` stacked on a new first axis: shape `(world_size, *array.shape)`.

    The shape and dtype must be the same on every rank. Booleans travel as int32 (no bool kernel on CPU).
    """
    array = np.asarray(array)
    dtype = array.dtype
    if dtype == np.bool_:
        array = array.astype(np.int32)
    # AllGather concatenates along axis 0, which must not be empty: gather one "row" per rank.
    gathered = compat.all_gather_op()(ms.Tensor(np.ascontiguousarray(array)[None]))
    return gathered.asnumpy().astype(dtype, copy=False)


def barrier() -> None:
    """Returns once every rank has reached it (a tiny AllReduce: CPU has no Barrier kernel)."""
    all_reduce_sum(np.zeros(1, np.float32))
