"""MindSpore version and backend quirks, kept in one place.

Everything that depends on *which* MindSpore build or *which* backend we run on lives here, so the model
and training code can stay backend-agnostic. Measured facts behind each choice are in
`../shared/MINDSPORE_NOTES.md` (MindSpore 2.10).
"""

import contextlib
import functools
import gc
import os

# transformers prints "PyTorch was not found..." as an advisory warning when torch is absent, which is the
# normal case for users of this library. It is advice for PyTorch users, not for us.
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import mindspore as ms  # noqa: E402
import numpy as np  # noqa: E402

ASCEND, GPU, CPU = "Ascend", "GPU", "CPU"


def device_target() -> str:
    """The backend MindSpore currently runs on: "Ascend", "GPU" or "CPU"."""
    return ms.get_context("device_target")


def is_device_available(target: str) -> bool:
    """Whether the MindSpore build and the machine can run on `target` ("Ascend", "GPU", "CPU")."""
    if target == CPU:
        return True
    module = {ASCEND: ms.device_context.ascend, GPU: ms.device_context.gpu}[target]
    try:
        return bool(module.is_available())
    except Exception:  # plugin missing or driver not loadable
        return False


def use_ascend_kernels() -> bool:
    """Ascend-only fused kernels (`mint` LayerNormExt/GeluExt, flash attention) fail on CPU and GPU."""
    return device_target() == ASCEND


def use_cpu_kernels() -> bool:
    """mindone_ft's own fused float32 CPU kernels (`mindone_ft.kernels.cpu`): on CPU, when they could be built.

    MindSpore 2.10's CPU GELU, LayerNorm gradient, softmax gradient and bias gradient are slow, and a clipped
    AdamW update takes several passes over every parameter (measured).
    """
    if device_target() != CPU:
        return False
    from ..kernels import cpu

    return cpu.available()


def random_seed() -> int:
    """A seed for one random cell, drawn like MindSpore seeds its random ops: from the global seed
    (`mindspore.set_seed`) and a per-op counter that `set_seed` resets, so the same model built after the same
    `set_seed` gets the same seeds. Without a global seed, a fresh random one."""
    from mindspore.common.seed import _get_graph_seed  # private in MindSpore 2.10; what nn.Dropout uses

    entropy = None if ms.get_seed() is None else list(_get_graph_seed(0, "mindone_ft_random"))
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0]) >> 1  # fits int64


def supports_bf16_matmul() -> bool:
    """bf16 MatMul is not implemented on MindSpore's CPU backend."""
    return device_target() != CPU


def supports_hardware_overflow_status() -> bool:
    """`nn.TrainOneStepWithLossScaleCell` needs NPUGetFloatStatusV2, which only Ascend has; we use
    `mindspore.amp.all_finite` everywhere instead, which works on every backend."""
    return device_target() == ASCEND


def accurate_tanh(x):
    """tanh accurate to ~2e-7 like PyTorch's, on every backend.

    MindSpore 2.10's CPU `ops.tanh` is off by up to 1e-4 around |x| = 5 (measured against torch), which shows up
    in BERT's pooler. Its error is below 2e-7 for |x| < 2, so large inputs use the exact identity
    tanh(x) = 2 * sigmoid(2x) - 1 instead (no cancellation there).
    """
    return ms.ops.where(ms.ops.abs(x) < 2.0, ms.ops.tanh(x), 2.0 * ms.ops.sigmoid(2.0 * x) - 1.0)


def accurate_log_softmax(x, axis: int = -1):
    """log_softmax accurate like PyTorch's, on every backend, written out as `s - log(sum(exp(s)))`, `s = x - max`.

    MindSpore 2.10's CPU `ops.log_softmax` is off by ~3e-6 (forward and backward) where torch's is below 1e-7
    (measured on classifier logits): most of our loss differences from transformers, and multiple-choice
    gradients, which cancel across choices, magnify it to ~1e-4 relative. The max is a constant for the
    gradient: log-sum-exp does not depend on the shift.
    """
    shifted = x - ms.ops.stop_gradient(x.max(axis=axis, keepdims=True))
    return shifted - ms.ops.log(ms.ops.exp(shifted).sum(axis=axis, keepdims=True))


def set_device(target: str) -> None:
    """`ms.set_device(target)`, tolerating a runtime that already started on the same backend.

    MindSpore 2.10 refuses `set_device` once any kernel has run (e.g. a model was built before
    `init_environment`), even when the backend would not change; the implicit default is CPU.
    """
    from mindspore.device_manager import DeviceContextManager

    current = device_target()
    context = DeviceContextManager.get_instance().get_device_context(current)
    if context is not None and context.initialized():
        if current != target:
            raise RuntimeError(
                f"MindSpore already runs on {current} (ops ran before `init_environment`), so it cannot "
                f"switch to {target}. Call `init_environment` before building models or running ops."
            )
        return
    ms.set_device(target)


def set_cpu_threads(num: int) -> None:
    """Sets the CPU kernel thread count; MindSpore 2.10 only allows this once per process."""
    from mindspore._c_expression import RuntimeConf

    from ..kernels import cpu

    if not RuntimeConf.get_instance().is_op_threads_num_configured():
        ms.device_context.cpu.op_tuning.threads_num(num)
        cpu.set_num_threads(num)


# Seconds a CPU collective waits for the other ranks. MindSpore 2.10's default, 30 s, fails a job whenever one
# rank compiles its graph more than 30 s later than another (a busy host, a large model). A dead worker still
# ends the job quickly: msrun stops all workers when one exits with an error.
CPU_COMM_TIMEOUT_S = 600


def extend_cpu_collective_timeout() -> None:
    """Raises the CPU collectives' timeout to `CPU_COMM_TIMEOUT_S` unless the user set
    `MS_CPU_COMM_OP_TIMEOUT`; must run before `mindspore.communication.init()`."""
    os.environ.setdefault("MS_CPU_COMM_OP_TIMEOUT", str(CPU_COMM_TIMEOUT_S))


def all_reduce_sum_op():
    """A summing all-reduce that runs on every backend.

    In MindSpore 2.10 the functional `mindspore.communication.comm_func` collectives (`all_reduce`,
    `all_gather_into_tensor`, `barrier`) have no CPU kernels; the `ops` primitives do.
    """
    return ms.ops.AllReduce(ms.ops.ReduceOp.SUM)


def all_gather_op():
    """An all-gather (concatenating along axis 0) that runs on every backend; see `all_reduce_sum_op`."""
    return ms.ops.AllGather()


def supports_reduce_scatter() -> bool:
    """Whether `ops.ReduceScatter` has a kernel: HCCL (Ascend) and NCCL (GPU) do; MindSpore 2.10's CPU
    collectives (mccl) do not ("Unsupported op [ReduceScatter] on CPU", measured), so ZeRO on CPU all-reduces
    the gradients and keeps this rank's slice instead (same values, full-size communication)."""
    return device_target() != CPU


def reduce_scatter_sum_op():
    """A summing reduce-scatter along axis 0 (Ascend/GPU only: see `supports_reduce_scatter`)."""
    return ms.ops.ReduceScatter(ms.ops.ReduceOp.SUM)


# --- graph compiles (MindSpore 2.10 internals: `mindspore.graph.api`) ----------------------------------------------
# `_CellGraphExecutor.compile(obj, *args, phase=..., **kwargs)` compiles a Cell in GRAPH_MODE and returns
# `(phase, compiled)`, `compiled` False when the graph existed; `_set_compile_cache_dep_files` is called inside it only
# for a real compile, right before the C++ compile, and hands MindSpore's compile cache the files whose hash keys it.
# `_JitExecutor` compiles `ms.jit` functions (PYNATIVE) and calls its own `_set_compile_cache_dep_files()`.


# MindSpore 2.10 runs a full `gc.collect()` right before every real Cell graph compile. With transformers, datasets
# and a model loaded, that scans 0.27-0.55 million long-lived objects: 0.2-0.4 s a compile on CPU, measured (a
# re-run's compile, loaded from the cache, takes about 1 s). So the objects older than the compile are frozen
# (`gc.freeze()`) from just before that collection to the compile's end, and the collection scans only the rest.
# Frozen objects are only skipped, never lost: they return to the oldest generation afterwards. Calls that find
# their graph compiled do not freeze anything, and a process that froze objects itself (e.g. before forking
# workers) is left as it is. One entry per compile running now (innermost last): whether it froze.
_compiles_froze_gc: list = []


def _freeze_before_compile_collect() -> None:
    if _compiles_froze_gc and not _compiles_froze_gc[-1] and not gc.get_freeze_count():
        gc.freeze()
        _compiles_froze_gc[-1] = True


def patch_graph_compile(wrapper) -> None:
    """Routes every Cell graph compile through `wrapper(compile, obj, args, kwargs)`, which must call
    `compile(obj, *args, **kwargs)` and return its result. A real compile's own `gc.collect()` only scans the
    objects made since it started (see `_compiles_froze_gc`)."""
    from mindspore.graph import api

    original = api._CellGraphExecutor.compile
    if getattr(original, "__mindone_ft_wrapped__", False):
        return

    def compile(self, obj, *args, **kwargs):
        _compiles_froze_gc.append(False)
        try:
            return wrapper(functools.partial(original, self), obj, args, kwargs)
        finally:
            if _compiles_froze_gc.pop():
                gc.unfreeze()

    compile.__mindone_ft_wrapped__ = True
    api._CellGraphExecutor.compile = compile


_original_dependency_files = None


def patch_compile_cache_dependencies(before_cell_compile, before_jit_compile, extra_dependency_files) -> None:
    """Calls `before_cell_compile()` / `before_jit_compile()` right before each real compile (before MindSpore reads
    its compile-cache settings), and adds `extra_dependency_files()` to the files MindSpore's compile cache hashes."""
    from mindspore.graph import api

    cell_original = api._CellGraphExecutor._set_compile_cache_dep_files
    if getattr(cell_original, "__mindone_ft_wrapped__", False):
        return
    global _original_dependency_files
    jit_original = api._JitExecutor._set_compile_cache_dep_files
    _original_dependency_files = dependency_files = api._get_compile_cache_dep_files

    def set_cell_dependencies(self, phase):
        before_cell_compile()
        _freeze_before_compile_collect()  # MindSpore's gc.collect() follows
        return cell_original(self, phase)

    def set_jit_dependencies(self):
        before_jit_compile()
        return jit_original(self)

    set_cell_dependencies.__mindone_ft_wrapped__ = True
    api._CellGraphExecutor._set_compile_cache_dep_files = set_cell_dependencies
    api._JitExecutor._set_compile_cache_dep_files = set_jit_dependencies
    api._get_compile_cache_dep_files = lambda: dependency_files() + extra_dependency_files()


def compile_cache_dependency_files() -> list:
    """The files MindSpore's compile cache hashes by itself: the entry script and the local (not installed) modules
    it imports, recursively."""
    from mindspore.graph import api

    return (_original_dependency_files or api._get_compile_cache_dep_files)()


# Raised by MindSpore's compile cache for a graph holding Python-executed nodes (JIT fallback: a `None` crossing
# a Tensor-conditioned branch, a starred call, ...), which it cannot save as MindIR.
COMPILE_CACHE_EXPORT_ERROR = "Cannot export a PyExecute CNode in MindIR"
COMPILE_CACHE_ENV = ("MS_COMPILER_CACHE_ENABLE", "MS_COMPILER_CACHE_PATH")


# MindSpore's `Cell.__call__` in GRAPH_MODE re-derives the compile key and re-labels every sub-cell's
# `compile_phase` on each call (~100 `Cell.__setattr__` for a 6-layer decoder: ~3-4 ms of host time per decoding
# step, measured, MindSpore 2.10 CPU) even when the graph exists. Its own shortcut for LLM inference
# (`Cell._predict`) skips that for a cell whose `phase` is "increment" once `phase_cache["increment"]` is set by
# one normal call; it does not check that the arguments still fit that graph, so it may only serve calls of one
# shape, and the phase must be restored afterwards.
REPEATED_CALL_PHASE = "increment"


@contextlib.contextmanager
def repeated_graph_calls(cell):
    """Within the block, GRAPH_MODE calls of `cell` after the first run the first call's compiled graph directly,
    without MindSpore's per-call compile check: every call must have the first call's shapes and structure (a
    decoding step on a static cache). The cell's phase is restored on exit, also on error. PYNATIVE: no change."""
    previous = getattr(cell, "phase", None)
    if ms.get_context("mode") != ms.GRAPH_MODE or previous is None or not hasattr(cell, "phase_cache"):
        yield
        return
    cell.phase_cache.pop(REPEATED_CALL_PHASE, None)  # the first call compiles, or finds, the graph of its shapes
    cell.phase = REPEATED_CALL_PHASE
    try:
        yield
    finally:
        cell.phase = previous
        cell.phase_cache.pop(REPEATED_CALL_PHASE, None)
