"""MindSpore runtime setup: execution mode, device, determinism and data-parallel communication.

`init_environment` is the one place that touches MindSpore's global context, so scripts, the Trainer and
tests all configure MindSpore the same way. It records the rank and world size it found; later calls return
the recorded values because MindSpore refuses to switch device or re-create the communication group once
set.
"""

import logging
import os
from dataclasses import InitVar, dataclass, field
from typing import NamedTuple, Optional, Union

import mindspore as ms

from ..utils import compat

logger = logging.getLogger(__name__)

_MODES = {"graph": ms.GRAPH_MODE, "pynative": ms.PYNATIVE_MODE}
_JIT_LEVELS = ("O0", "O1", "O2")
_DEVICE_TARGETS = ("auto", compat.ASCEND, compat.GPU, compat.CPU)


class RankInfo(NamedTuple):
    """Where this process sits in a data-parallel job."""

    rank: int = 0
    world_size: int = 1


_rank_info: Optional[RankInfo] = None


def parse_mode(mode: Union[int, str]) -> int:
    """Maps `0`/`1`/`"0"`/`"1"`/`"graph"`/`"pynative"` to MindSpore's `GRAPH_MODE`/`PYNATIVE_MODE`."""
    if isinstance(mode, str):
        key = mode.strip().lower().replace("_mode", "")
        if key in _MODES:
            return _MODES[key]
        if key.isdigit():
            mode = int(key)
    if mode in (ms.GRAPH_MODE, ms.PYNATIVE_MODE):
        return int(mode)
    raise ValueError(f"`mode` must be 0/'graph' (GRAPH_MODE) or 1/'pynative' (PYNATIVE_MODE), got {mode!r}.")


@dataclass
class MindSporeArguments:
    """MindSpore runtime options, parsable with `transformers.HfArgumentParser`.

    Args:
        mode (`int` or `str`, *optional*, defaults to `"graph"`):
            Execution mode: `0`/`"graph"` (compiled, fast) or `1`/`"pynative"` (eager, easier to debug).
            Stored as MindSpore's integer constant after construction.
        device_target (`str`, *optional*, defaults to `"auto"`):
            `"Ascend"`, `"GPU"`, `"CPU"`, or `"auto"` for the first available in that order.
        jit_level (`str`, *optional*):
            Graph compile optimisation level `"O0"`, `"O1"` or `"O2"`; `None` keeps MindSpore's default.
        max_device_memory (`str`, *optional*):
            Upper bound of the device memory pool, e.g. `"30GB"`; `None` keeps MindSpore's default.
        deterministic (`bool`, *optional*, defaults to `False`):
            Use deterministic kernels. On CPU without mindone_ft's CPU kernels, also one CPU thread: MindSpore's
            own CPU dropout is reproducible only on one thread (mindone_ft's `Dropout` kernel is on any number).
        seed (`int`, *optional*):
            Global seed set with `mindspore.set_seed`. A constructor argument only, not a command-line flag:
            on the command line `--seed` belongs to `TrainingArguments`, so that one `HfArgumentParser` can
            hold both dataclasses.
        distributed (`bool`, *optional*):
            Data-parallel training over all workers. `None` turns it on when the process was started by
            `msrun` with more than one worker.
        cpu_threads (`int`, *optional*):
            Number of CPU threads for MindSpore's CPU kernels.
    """

    mode: str = field(
        default="graph",
        metadata={"help": "Execution mode: 0/'graph' (GRAPH_MODE, compiled) or 1/'pynative' (PYNATIVE_MODE)."},
    )
    device_target: str = field(
        default="auto",
        metadata={"help": "'Ascend', 'GPU', 'CPU', or 'auto' to take the first available in that order."},
    )
    jit_level: Optional[str] = field(
        default=None, metadata={"help": "Graph compile level 'O0', 'O1' or 'O2'. Default: MindSpore's choice."}
    )
    max_device_memory: Optional[str] = field(
        default=None, metadata={"help": "Upper bound of the device memory pool, e.g. '30GB'."}
    )
    deterministic: bool = field(
        default=False,
        metadata={"help": "Deterministic kernels (and one CPU thread on CPU, for reproducible dropout)."},
    )
    # InitVar keeps `seed` out of `dataclasses.fields`, so HfArgumentParser does not define a second `--seed`
    # next to TrainingArguments' (argparse refuses duplicate flags).
    seed: InitVar[Optional[int]] = None
    distributed: Optional[bool] = field(
        default=None,
        metadata={"help": "Data-parallel training. Default: on when launched by msrun with several workers."},
    )
    cpu_threads: Optional[int] = field(default=None, metadata={"help": "Number of threads for CPU kernels."})

    def __post_init__(self, seed: Optional[int]):
        self.seed = seed
        self.mode = parse_mode(self.mode)
        targets = {t.lower(): t for t in _DEVICE_TARGETS}
        if str(self.device_target).lower() not in targets:
            raise ValueError(f"`device_target` must be one of {_DEVICE_TARGETS}, got {self.device_target!r}.")
        self.device_target = targets[str(self.device_target).lower()]
        if self.jit_level is not None and self.jit_level not in _JIT_LEVELS:
            raise ValueError(f"`jit_level` must be one of {_JIT_LEVELS} or None, got {self.jit_level!r}.")


def launched_by_msrun() -> bool:
    """Whether this process was started by `msrun` for a job with more than one worker.

    `msrun` exports `MS_WORKER_NUM` and `MS_ROLE` to every process it starts: `MS_WORKER` for workers and
    `MS_SCHED` for the scheduler, which runs the same script and must call `init()` too, or workers hang.
    """
    role = os.environ.get("MS_ROLE")
    return role in ("MS_WORKER", "MS_SCHED") and int(os.environ.get("MS_WORKER_NUM", "1")) > 1


def resolve_device_target(device_target: str = "auto") -> str:
    """`"auto"` becomes the first available of Ascend, GPU, CPU; other values are returned unchanged."""
    if device_target != "auto":
        return device_target
    for target in (compat.ASCEND, compat.GPU):
        if compat.is_device_available(target):
            return target
    return compat.CPU


def init_environment(args: Optional[MindSporeArguments] = None) -> RankInfo:
    """Configures MindSpore's global context once and returns `(rank, world_size)`.

    Calling it again returns the values recorded by the first call and changes nothing, because MindSpore
    cannot switch device or re-initialise communication in a running process.

    Args:
        args (`MindSporeArguments`, *optional*): runtime options; defaults to `MindSporeArguments()`.

    Returns:
        `RankInfo`: a named tuple `(rank, world_size)`.
    """
    global _rank_info
    if _rank_info is not None:
        return _rank_info
    args = args if args is not None else MindSporeArguments()

    target = resolve_device_target(args.device_target)
    logger.info("MindSpore runs on %s (device_target=%r).", target, args.device_target)
    ms.set_context(mode=args.mode)
    compat.set_device(target)
    if args.jit_level is not None:
        ms.set_context(jit_config={"jit_level": args.jit_level})
    if args.max_device_memory is not None:
        ms.runtime.set_memory(max_size=args.max_device_memory)
    if args.deterministic:
        ms.set_deterministic(True)
    cpu_threads = args.cpu_threads
    if cpu_threads is None and args.deterministic and target == compat.CPU and not compat.use_cpu_kernels():
        cpu_threads = 1
    if target == compat.CPU and cpu_threads is not None:
        compat.set_cpu_threads(cpu_threads)
    if args.seed is not None:
        ms.set_seed(args.seed)

    distributed = launched_by_msrun() if args.distributed is None else args.distributed
    _rank_info = _init_data_parallel() if distributed else RankInfo(0, 1)
    return _rank_info


def _init_data_parallel() -> RankInfo:
    from mindspore.communication import get_group_size, get_rank, init

    compat.extend_cpu_collective_timeout()
    init()
    info = RankInfo(get_rank(), get_group_size())
    ms.set_auto_parallel_context(
        parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True, device_num=info.world_size
    )
    logger.info("Data parallel: rank %d of %d.", info.rank, info.world_size)
    return info


def get_rank_info() -> RankInfo:
    """`(rank, world_size)` recorded by `init_environment`; `(0, 1)` if it was not called."""
    return _rank_info if _rank_info is not None else RankInfo(0, 1)


def is_main_process() -> bool:
    """Whether this process is rank 0 (the one that logs and saves)."""
    return get_rank_info().rank == 0
