"""Fused float32 CPU kernels (GELU, LayerNorm, softmax, bias add, dropout, global norm, AdamW) as MindSpore AOT
custom ops.

MindSpore 2.10's CPU kernels for exact GELU, LayerNorm's gradient, softmax's gradient and the bias gradient are
slow (composed from element-wise kernels, or single-threaded), and a clipped AdamW update takes several passes
over every parameter; `cpu_kernels.cc` does each in one pass (see its header for the profile). Its dropout
draws reproducible masks, which MindSpore's CPU dropout does not on more than one thread. The library is
compiled once per machine with the system C++ compiler into a cache folder and loaded by `ops.Custom`.

Without a compiler, or with `MINDONE_FT_CPU_KERNELS=0`, `available()` is False and the models keep the portable
MindSpore ops: same numbers (dropout masks aside), slower. The models, `AdamW` and `TrainOneStepWrapper` ask
through `mindone_ft.utils.compat.use_cpu_kernels()`, once, when they are built.
"""

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

import mindspore as ms
from mindspore import ops

from ..utils.user_cache import CACHE_ENV, cache_root

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("cpu_kernels.cc")
DISABLE_ENV = "MINDONE_FT_CPU_KERNELS"
# -march=native: the library is built on the machine that runs it (the cache key includes the CPU's flags).
# No -ffast-math: NaN/inf must propagate for overflow detection.
# -ffp-contract=off: a multiply-add is fused only where the source says so (AdamWStep repeats torch's roundings).
CXX_FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fopenmp-simd", "-ffp-contract=off", "-std=c++17",
             "-shared", "-fPIC", "-pthread"]


def _cache_dir() -> Path:
    return cache_root() / "kernels"


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            return next((line for line in cpuinfo if line.startswith("flags")), "")
    except OSError:
        return platform.processor()


def _compiler() -> Optional[str]:
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")


def _onednn_link_flags() -> list:
    """Flags that link MindSpore's own oneDNN (the fused attention's matrix products), placed after the source;
    [] where the wheel has none (the library is then built without `AttentionForward`/`AttentionBackward`).
    The folder is resolved: MindSpore imported through a folder of links (a venv, `benchmarks/torch_free_site`)
    shares the build, and the library's rpath does not depend on the links."""
    lib_dir = Path(ms.__file__).resolve().parent / "lib"
    found = sorted(lib_dir.glob("libdnnl.so.*"))
    if not found:
        return []
    return ["-DMINDONE_FT_DNNL", f"-L{lib_dir}", f"-l:{found[-1].name}", f"-Wl,-rpath,{lib_dir}"]


@functools.lru_cache(maxsize=None)
def library_path() -> Optional[str]:
    """Path of the compiled kernel library, building it on first use; None when it cannot be built."""
    compiler = _compiler()
    if platform.system() != "Linux" or compiler is None:
        logger.warning("No C++ compiler found: mindone_ft uses MindSpore's slower portable ops on CPU.")
        return None
    link_flags = _onednn_link_flags()
    key = hashlib.sha256(
        "\0".join([SOURCE.read_text(), compiler, *CXX_FLAGS, *link_flags, _cpu_flags()]).encode()
    ).hexdigest()[:16]
    target = _cache_dir() / key / "cpu_kernels.so"
    if target.exists():
        return str(target)
    partial = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Built under a temporary name and renamed: concurrent ranks never load a half-written library.
        fd, partial = tempfile.mkstemp(suffix=".so", dir=target.parent)
        os.close(fd)
        subprocess.run([compiler, *CXX_FLAGS, "-o", partial, str(SOURCE), *link_flags], check=True,
                       capture_output=True, text=True)
        os.replace(partial, target)
    except (OSError, subprocess.CalledProcessError) as err:
        detail = getattr(err, "stderr", "") or str(err)
        logger.warning(
            "Building mindone_ft's CPU kernels in %s failed; using MindSpore's portable ops (set %s to a writable "
            "folder, or %s=0 to skip the build).\n%s", target.parent, CACHE_ENV, DISABLE_ENV, detail,
        )
        return None
    finally:
        if partial is not None and os.path.exists(partial):
            os.remove(partial)
    return str(target)


def available() -> bool:
    """Whether the fused CPU kernels can be used (not disabled by `MINDONE_FT_CPU_KERNELS=0`, and built)."""
    return os.environ.get(DISABLE_ENV, "1") != "0" and library_path() is not None


_threads: Optional[int] = None  # None: every core this process may use


def num_threads() -> int:
    """Threads each kernel call splits its rows over."""
    if _threads is not None:
        return _threads
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def set_num_threads(num: int) -> None:
    """Sets `num_threads()`; `compat.set_cpu_threads` passes MindSpore's CPU thread setting on here."""
    global _threads
    _threads = int(num)
    if _loaded_library.cache_info().currsize:
        ctypes.CDLL(_loaded_library()).SetNumThreads(_threads)


@functools.lru_cache(maxsize=None)
def _loaded_library() -> str:
    path = library_path()
    if path is None:
        raise RuntimeError("mindone_ft's CPU kernels are not available; check `available()` before using them.")
    ctypes.CDLL(path).SetNumThreads(num_threads())
    return path


@functools.lru_cache(maxsize=None)
def has_fused_attention() -> bool:
    """Whether the library has the fused attention kernels (it was linked with MindSpore's oneDNN)."""
    return available() and hasattr(ctypes.CDLL(_loaded_library()), "HasFusedAttention")


def _custom(name: str, out_shape, out_dtype, bprop=None):
    return ops.Custom(f"{_loaded_library()}:{name}", out_shape=out_shape, out_dtype=out_dtype, func_type="aot",
                      bprop=bprop)


def gelu_op():
    """Exact (erf) GELU, `x * 0.5 * (1 + erf(x / sqrt(2)))`, with its gradient."""
    backward = _custom("GeluBackward", lambda x, dy: x, lambda x, dy: x)

    def bprop(x, out, dout):
        return (backward(x, dout),)

    return _custom("GeluForward", lambda x: x, lambda x: x, bprop)


def softmax_op():
    """Softmax over the last axis, with its gradient computed from the output."""
    backward = _custom("SoftmaxBackward", lambda y, dy: y, lambda y, dy: y)

    def bprop(x, out, dout):
        return (backward(out, dout),)

    return _custom("SoftmaxForward", lambda x: x, lambda x: x, bprop)


def layer_norm_op():
    """LayerNorm over the last axis: `op(x, weight, bias, eps)` with `eps` a float32 tensor of shape (1,).

    Returns `(y, mean, rstd)`; mean and rstd (one per row) are kept for the backward pass.
    """
    backward = _custom(
        "LayerNormBackward",
        lambda x, w, mean, rstd, dy: (x, w, w),
        lambda x, w, mean, rstd, dy: (x, w, w),
    )

    def bprop(x, weight, bias, eps, out, dout):
        dx, dweight, dbias = backward(x, weight, out[1], out[2], dout[0])
        return dx, dweight, dbias, ops.zeros_like(eps)

    return _custom(
        "LayerNormForward",
        lambda x, w, b, eps: (x, x[:-1], x[:-1]),
        lambda x, w, b, eps: (x, x, x),
        bprop,
    )


def layer_norm_eps(eps: float) -> ms.Tensor:
    """The `eps` input of `layer_norm_op` (kernels take it as a tensor)."""
    return ms.Tensor([eps], ms.float32)


def bias_add_op():
    """`x + bias` over the last axis; the bias gradient is one pass over the incoming gradient."""
    bias_grad = _custom("SumToLastAxis", lambda dy: dy[-1:], lambda dy: dy)

    def bprop(x, bias, out, dout):
        return dout, bias_grad(dout)

    return _custom("BiasAddForward", lambda x, b: x, lambda x, b: x, bprop)


def dropout_mask_op():
    """`op(x, state, p)` -> `mask`: a uint8 dropout mask shaped as `x` (1 = kept), a function of `state` (int64
    `[seed, offset]`), `p` (float32 `(1,)`) and the element index only, whatever the thread count. The kernel
    adds one to `offset` in place, unseen by MindSpore (see `mindone_ft.modeling_layers.Dropout`).

    The primitive is never recomputed (`recompute(False)`): under gradient checkpointing, MindSpore keeps the
    mask of the first pass instead of drawing the next one."""

    def bprop(x, state, p, out, dout):
        return ops.zeros_like(x), ops.zeros_like(state), ops.zeros_like(p)

    op = _custom("DropoutMask", lambda x, state, p: x, lambda x, state, p: ms.uint8, bprop)
    op.recompute(False)
    return op


def dropout_state_op():
    """`op(state)` -> this call's `[seed, offset]` (int64, a copy of `state`), adding one to `state`'s offset in place:
    the stream state of a kernel that draws its dropout mask itself (`attention_op`), element for element the mask
    `dropout_mask_op` would draw for a tensor of the same shape. Never recomputed, like `dropout_mask_op`."""

    def bprop(state, out, dout):
        return (ops.zeros_like(state),)

    op = _custom("DropoutState", lambda state: state, lambda state: state, bprop)
    op.recompute(False)
    return op


def dropout_apply_op():
    """`op(x, mask, p)` -> `x * mask / (1 - p)` (float32), whose gradient is the same function of the incoming
    gradient."""
    backward = _custom("DropoutApply", lambda dy, mask, p: dy, lambda dy, mask, p: dy)

    def bprop(x, mask, p, out, dout):
        return backward(dout, mask, p), ops.zeros_like(mask), ops.zeros_like(p)

    return _custom("DropoutApply", lambda x, mask, p: x, lambda x, mask, p: x, bprop)


def sum_of_squares_op():
    """`op(*tensors)`: the sum of squares of every element of every float32 input, as a float32 tensor of shape
    (1,) — the squared global gradient norm in one call instead of three kernels per gradient."""
    return _custom("SumOfSquares", lambda *shapes: [1], lambda *dtypes: ms.float32)


def few_rows_linear_op(has_bias: bool, weight_in_out: bool = False):
    """`op(x, weight[, bias])` -> `x @ weight.T (+ bias)` on a few rows (a decoding step's tokens): each weight row
    read once, in `Linear`'s `(out, in)` layout, or with `weight_in_out` in GPT-2's `Conv1D` `(in, out)` layout
    (`x @ weight + bias`, always with a bias). Its gradient is MatMul's (a gradient taken in eval mode)."""

    def gradients(x, weight, dout):
        rows_in, rows_out = x.reshape(-1, x.shape[-1]), dout.reshape(-1, dout.shape[-1])
        if weight_in_out:
            return (ops.matmul(rows_out, weight.T).reshape(x.shape), ops.matmul(rows_in.T, rows_out),
                    rows_out.sum(0))
        return ops.matmul(rows_out, weight).reshape(x.shape), ops.matmul(rows_out.T, rows_in), rows_out.sum(0)

    if weight_in_out or has_bias:
        def bprop(x, weight, bias, out, dout):
            return gradients(x, weight, dout)

        name, out_shape = ("FewRowsConv1D", lambda x, w, b: x[:-1] + [w[1]]) if weight_in_out else (
            "FewRowsLinearBias", lambda x, w, b: x[:-1] + [w[0]])
        return _custom(name, out_shape, lambda x, w, b: x, bprop)

    def bprop_no_bias(x, weight, out, dout):
        return gradients(x, weight, dout)[:2]

    return _custom("FewRowsLinear", lambda x, w: x[:-1] + [w[0]], lambda x, w: x, bprop_no_bias)


def _summed_over_groups(x, groups: int):
    """The gradient of `repeat_kv`: `(batch, kv_heads * groups, n, d)` summed back to `(batch, kv_heads, n, d)`."""
    if groups == 1:
        return x
    batch, heads, n, d = x.shape
    return x.reshape(batch, heads // groups, groups, n, d).sum(2)


def cached_attention_op():
    """`op(query, key, value, mask, scaling)` -> `(context, probs)`: softmax(query . key * scaling + mask) @ value
    for a few query tokens over a key/value cache, key/value heads shared by groups of query heads (no repeat_kv).
    query `(B, H, S, D)`, key/value `(B, Hkv, C, D)`, additive mask `(1 or B, 1, 1 or S, C)`, scaling float32
    `(1,)`; context `(B, S, H, D)`, probs `(B, H, S, C)`. Its gradient is eager attention's (BatchMatMuls; the
    mask gets none, as masks never need one)."""
    from ..modeling_layers import repeat_kv  # the layer kit's; it builds this op, so it is loaded by now

    matmul, matmul_transpose_a = ops.BatchMatMul(), ops.BatchMatMul(transpose_a=True)
    matmul_transpose_b = ops.BatchMatMul(transpose_b=True)

    def bprop(query, key, value, mask, scaling, out, dout):
        groups = query.shape[1] // key.shape[1]
        probs = out[1]
        dcontext = dout[0].swapaxes(1, 2)  # (B, H, S, D)
        dvalue = _summed_over_groups(matmul_transpose_a(probs, dcontext), groups)
        dprobs = matmul_transpose_b(dcontext, repeat_kv(value, groups)) + dout[1]
        dscores = probs * (dprobs - (dprobs * probs).sum(-1, keepdims=True)) * scaling
        dquery = matmul(dscores, repeat_kv(key, groups))
        dkey = _summed_over_groups(matmul_transpose_a(dscores, query), groups)
        return dquery, dkey, dvalue, ops.zeros_like(mask), ops.zeros_like(scaling)

    return _custom(
        "CachedAttention",
        lambda q, k, v, m, s: ([q[0], q[2], q[1], q[3]], [q[0], q[1], q[2], k[2]]),
        lambda q, k, v, m, s: (q, q),
        bprop,
    )


def attention_op(layout: str = "BHSD"):
    """`op(query, key, value, mask, dropout_state, scaling_and_p)` -> `(context, stats)`:
    `dropout(softmax(query . key * scaling + mask)) @ value` without the `(B, H, S, K)` probabilities in memory, for
    training and full-sequence inference. With `layout` "BHSD", query `(B, H, S, D)` and key/value `(B, Hkv, K, D)`;
    with "BSHD", query `(B, S, H, D)` and key/value `(B, K, Hkv, D)`, the projections' outputs viewed per head (no
    transposed copies); the gradients come in the inputs' layout. Key/value heads are shared by groups of query heads
    (no repeat_kv). Additive mask `(1 or B, 1 or H, 1 or S, K)`, `dropout_state` int64 `[seed, offset]` from
    `dropout_state_op` (the mask is the one `Dropout` would draw over the `(B, H, S, K)` probabilities), float32
    `[scaling, p]`; context `(B, S, H, D)`, stats `(B, H, S, 2)` (each row's softmax max and 1 / sum, which the
    gradient recomputes the probabilities from). The mask, the state and the scalars get zero gradients."""
    if layout not in ("BHSD", "BSHD"):
        raise ValueError(f"attention_op's layout is 'BHSD' or 'BSHD', got {layout!r}")
    suffix = "BSHD" if layout == "BSHD" else ""
    backward = _custom(
        "AttentionBackward" + suffix,
        lambda q, k, v, m, st, sp, stats, dc: (q, k, v),
        lambda q, k, v, m, st, sp, stats, dc: (q, k, v),
    )

    def bprop(query, key, value, mask, state, scaling_and_p, out, dout):
        dquery, dkey, dvalue = backward(query, key, value, mask, state, scaling_and_p, out[1], dout[0])
        return dquery, dkey, dvalue, ops.zeros_like(mask), ops.zeros_like(state), ops.zeros_like(scaling_and_p)

    def shapes(q, k, v, m, st, sp):  # (context, stats)
        if layout == "BSHD":
            return q, [q[0], q[2], q[1], 2]
        return [q[0], q[2], q[1], q[3]], [q[0], q[1], q[2], 2]

    return _custom("AttentionForward" + suffix, shapes, lambda q, k, v, m, st, sp: (q, q), bprop)


class AdamWStepOp(ops.Custom):
    """`op(param, exp_avg, exp_avg_sq, grad, hyper)`: one `torch.optim.AdamW` step on one float32 parameter,
    written in place into the three Parameters (one pass over memory; see `AdamWStep` in cpu_kernels.cc).

    `hyper` is float64 `[lr, step, grad_scale, beta1, beta2, eps, weight_decay]`; the gradient is multiplied by
    `grad_scale` first (gradient clipping without a separate pass). MindSpore hands the kernel the Parameters'
    own memory, and `side_effect_mem` orders the write after the graph's earlier reads of them and before its
    later ones. There is no read-write `__mindspore_signature__` (as MindSpore's `AdamWeightDecay` has):
    MindSpore 2.10's PyNative runner keeps one signature for every op named "Custom", so it would break the
    other kernels.
    """

    def __init__(self):
        super().__init__(f"{_loaded_library()}:AdamWStep", out_shape=lambda *shapes: [1],
                         out_dtype=lambda *dtypes: ms.float32, func_type="aot")
        self.add_prim_attr("side_effect_mem", True)
