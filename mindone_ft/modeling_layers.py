"""The layer kit every mindone_ft model is built from, with PyTorch parameter names so checkpoints map 1:1.

Linear, Embedding, LayerNorm, RMSNorm, reproducible Dropout, activations (`ACT2FN`), softmax, eager attention with
its mask helpers, rotary position embeddings, losses with PyTorch semantics, and the loss/output helpers of the
standard task heads. Backend choices (mindone_ft's fused CPU kernels, Ascend `mint` kernels, MindSpore's portable
ops) are made here, once per cell at construction, through `mindone_ft.utils.compat`; model files never branch on
the backend themselves.
"""

from typing import Callable, Dict, Optional

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import Normal, initializer

from .kernels import cpu as cpu_kernels
from .utils import compat

RNG_STATE_NAME = "rng_state"  # `Dropout`'s random-stream state: a Parameter, but not a weight


def dtype_min(dtype) -> float:
    """Most negative finite value of a float dtype, for additive attention masks (transformers: finfo.min).

    Written as comparisons rather than a dict lookup: a dict indexed by dtype inside a graph-compiled
    `construct` broke graph execution in MindSpore 2.10.
    """
    if dtype == ms.float16:
        return -65504.0
    if dtype == ms.bfloat16:
        return -3.3895313892515355e38
    return -3.4028234663852886e38  # float32


# ----------------------------------------------------------------------------------------------------------------
# Building blocks. Parameters are named like PyTorch's (`weight`, `bias`) so that names map 1:1 to checkpoints.
# ----------------------------------------------------------------------------------------------------------------


class LayerNorm(nn.Cell):
    """Layer normalization over the last axis with PyTorch parameter names (`weight`, `bias`).

    `nn.LayerNorm` names its parameters gamma/beta; this cell keeps checkpoint names identical instead of renaming
    keys. On Ascend it uses the fused `mint` kernel, which fails on CPU (see MINDSPORE_NOTES.md); on CPU, float32
    inputs use mindone_ft's fused kernel (MindSpore's LayerNormGrad is ~7x slower than PyTorch's there).
    """

    def __init__(self, normalized_shape: int, eps: float = 1e-5, bias: bool = True):
        super().__init__()
        self.normalized_shape = (normalized_shape,)
        self.eps = eps
        self.weight = Parameter(initializer("ones", (normalized_shape,), ms.float32), name="weight")
        if bias:
            self.bias = Parameter(initializer("zeros", (normalized_shape,), ms.float32), name="bias")
        else:  # torch's `bias=False` (ModernBERT): no parameter, the kernels get a constant zero shift
            self.bias = None
            self.zero_bias = Tensor(np.zeros((normalized_shape,), np.float32))
        self.use_fused = compat.use_ascend_kernels()
        self.use_cpu_kernel = compat.use_cpu_kernels()
        if self.use_cpu_kernel:
            self.cpu_layer_norm = cpu_kernels.layer_norm_op()
            self.eps_tensor = cpu_kernels.layer_norm_eps(eps)
        self.layer_norm = ops.LayerNorm(begin_norm_axis=-1, begin_params_axis=-1, epsilon=eps)

    def construct(self, x):
        bias = self.bias if self.bias is not None else self.zero_bias.astype(self.weight.dtype)
        if self.use_fused:
            return ms.mint.nn.functional.layer_norm(x, self.normalized_shape, self.weight, bias, self.eps)
        if self.use_cpu_kernel and x.dtype == ms.float32 and self.weight.dtype == ms.float32:
            return self.cpu_layer_norm(x, self.weight, bias, self.eps_tensor)[0]
        return self.layer_norm(x, self.weight, bias)[0]


# Inference calls on at most this many rows (tokens) use mindone_ft's few-rows CPU kernels instead of MatMul: a
# decoding step's projections (see `FewRowsLinear` in kernels/cpu_kernels.cc for the profile).
FEW_ROWS = 4


def _rows(shape) -> int:
    """Rows of a tensor viewed as rows of its last axis (a graph constant: shapes are static)."""
    rows = 1
    for size in shape[:-1]:
        rows *= size
    return rows


class Linear(nn.Dense):
    """`nn.Dense` (whose parameters already have PyTorch's names, `weight` and `bias`).

    On CPU, float32 inputs add the bias with mindone_ft's kernel: MindSpore's BiasAddGrad is ~6x slower than
    PyTorch's bias gradient there (profiled). At inference, up to `FEW_ROWS` rows (a decoding step) go through
    mindone_ft's few-rows kernel, which reads the weight once: MindSpore's MatMul costs ~2.5x PyTorch's time there.
    """

    def __init__(self, in_features: int, out_features: int, has_bias: bool = True):
        super().__init__(in_features, out_features, has_bias=has_bias)
        self.use_cpu_kernel = compat.use_cpu_kernels()
        if self.use_cpu_kernel:
            self.cpu_bias_add = cpu_kernels.bias_add_op() if has_bias else None
            self.few_rows_linear = cpu_kernels.few_rows_linear_op(has_bias)

    def construct(self, x):
        if not (self.use_cpu_kernel and x.dtype == ms.float32 and self.weight.dtype == ms.float32):
            return super().construct(x)
        if not self.training and _rows(x.shape) <= FEW_ROWS:
            if self.has_bias:
                return self.few_rows_linear(x, self.weight, self.bias)
            return self.few_rows_linear(x, self.weight)
        if not self.has_bias:
            return super().construct(x)
        shape = x.shape
        y = self.cpu_bias_add(self.matmul(x.reshape(-1, shape[-1]), self.weight), self.bias)
        return y.reshape(shape[:-1] + (y.shape[-1],))


class Conv1D(nn.Cell):
    """transformers' `Conv1D` (GPT-2's projections): a linear layer whose `weight` is stored as `(in_features,
    out_features)`, the transpose of `Linear`'s, so `y = x @ weight + bias`. Kept in that layout (not transposed at
    load/save) so that checkpoint names, shapes and bytes stay those transformers writes.

    Args:
        nf (`int`): output features (transformers' argument order: output first).
        nx (`int`): input features.
    """

    def __init__(self, nf: int, nx: int):
        super().__init__()
        self.nf = nf
        self.weight = Parameter(initializer(Normal(0.02, 0.0), (nx, nf), ms.float32), name="weight")
        self.bias = Parameter(initializer("zeros", (nf,), ms.float32), name="bias")
        self.matmul = ops.MatMul()
        self.bias_add = ops.BiasAdd()
        # Like `Linear`: MindSpore's BiasAddGrad is slow on CPU, mindone_ft's kernel adds float32 biases there.
        self.use_cpu_kernel = compat.use_cpu_kernels()
        if self.use_cpu_kernel:
            self.cpu_bias_add = cpu_kernels.bias_add_op()
            self.few_rows_linear = cpu_kernels.few_rows_linear_op(True, weight_in_out=True)

    def construct(self, x):
        shape = x.shape
        if (self.use_cpu_kernel and not self.training and x.dtype == ms.float32 and self.weight.dtype == ms.float32
                and _rows(shape) <= FEW_ROWS):
            return self.few_rows_linear(x, self.weight, self.bias)  # as in `Linear`
        y = self.matmul(x.reshape(-1, shape[-1]), self.weight)
        if self.use_cpu_kernel and y.dtype == ms.float32 and self.bias.dtype == ms.float32:
            y = self.cpu_bias_add(y, self.bias)
        else:
            y = self.bias_add(y, self.bias)
        return y.reshape(shape[:-1] + (self.nf,))


class Embedding(nn.Cell):
    """Lookup table with PyTorch's parameter name (`weight`; `nn.Embedding` calls it `embedding_table`)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: Optional[int] = None):
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx
        self.weight = Parameter(initializer("zeros", (num_embeddings, embedding_dim), ms.float32), name="weight")

    def construct(self, ids):
        embeddings = ops.gather(self.weight, ids, 0)
        if self.padding_idx is not None:
            # Like torch's `padding_idx`: the padding row receives no gradient from the lookup.
            is_padding = (ids == self.padding_idx).expand_dims(-1)
            embeddings = ops.where(is_padding, ops.stop_gradient(embeddings), embeddings)
        return embeddings


def _gelu(x):
    """transformers' "gelu", the exact erf form, written as torch computes it: x * 0.5 * (1 + erf(x / sqrt(2))).

    `ops.gelu(approximate="none")` divides by sqrt(2); on CPU that Div and its gradient (two more Divs) cost
    ~3% of a BERT train step (profiled), a multiplication by the constant 1/sqrt(2) almost nothing.
    """
    return x * 0.5 * (1.0 + ops.erf(x * _SQRT1_2))


_SQRT1_2 = 0.7071067811865476


def _gelu_tanh(x):
    return ops.gelu(x, approximate="tanh")


def _quick_gelu(x):
    return x * ops.sigmoid(1.702 * x)


def _identity(x):
    return x


# transformers activation names (`config.hidden_act`) -> MindSpore functions with the same formula.
ACT2FN: Dict[str, Callable] = {
    "gelu": _gelu,
    "gelu_new": _gelu_tanh,
    "gelu_pytorch_tanh": _gelu_tanh,
    "gelu_fast": _gelu_tanh,
    "quick_gelu": _quick_gelu,
    "relu": ops.relu,
    "silu": ops.silu,
    "swish": ops.silu,
    "tanh": compat.accurate_tanh,
    "sigmoid": ops.sigmoid,
    "linear": _identity,
}
# Where a backend has a fused kernel that is accurate there, it replaces the portable formula.
_ASCEND_ACT2FN: Dict[str, Callable] = {"tanh": ops.tanh}


class Activation(nn.Cell):
    """Element-wise activation chosen by its transformers name (see `ACT2FN`)."""

    def __init__(self, name: str):
        super().__init__()
        if name not in ACT2FN:
            raise KeyError(f"Activation function {name!r} not found in ACT2FN; supported: {sorted(ACT2FN)}")
        self.name = name
        # Chosen here, once: backend queries cannot run inside a graph-compiled construct.
        fused = _ASCEND_ACT2FN if compat.use_ascend_kernels() else {}
        self.fn = fused.get(name, ACT2FN[name])
        self.use_cpu_kernel = name == "gelu" and compat.use_cpu_kernels()
        if self.use_cpu_kernel:
            self.cpu_fn = cpu_kernels.gelu_op()

    def construct(self, x):
        if self.use_cpu_kernel and x.dtype == ms.float32:
            return self.cpu_fn(x)
        return self.fn(x)


def get_activation(name: str) -> Activation:
    """Activation cell for a transformers activation name (`config.hidden_act`)."""
    return Activation(name)


class Softmax(nn.Cell):
    """Softmax over the last axis; on CPU, float32 inputs use mindone_ft's fused kernel (MindSpore composes the
    gradient from four slow element-wise kernels there)."""

    def __init__(self):
        super().__init__()
        self.use_cpu_kernel = compat.use_cpu_kernels()
        if self.use_cpu_kernel:
            self.cpu_softmax = cpu_kernels.softmax_op()

    def construct(self, x):
        if self.use_cpu_kernel and x.dtype == ms.float32:
            return self.cpu_softmax(x)
        return ops.softmax(x, axis=-1)


class Dropout(nn.Cell):
    """`nn.Dropout(p)` with reproducible masks: on CPU, mindone_ft's counter-based kernel draws them.

    MindSpore 2.10's CPU Dropout kernel draws from one random generator on all its threads at once, so with
    more than one thread its masks (and a fine-tuning run's results) change from run to run under the same seed.
    The kernel here derives each element's draw from `rng_state = [seed, offset]` and the element's index, and
    advances `offset` by one per call: masks depend only on the seed and the number of calls, on any number of
    threads, and `reseed` restarts the stream without recompiling the graph. `rng_state` is runtime state, not a
    weight: `save_pretrained` and `state_dict_numpy` leave it out. Elsewhere this is MindSpore's dropout kernel.

    The kernel advances `offset` itself rather than through an `ops.assign_add` in the graph: twelve such side
    effects in a BERT train step tripled its compile time (6 s to 16-20 s on CPU, measured). MindSpore therefore
    sees the draw as pure, so call each `Dropout` cell once per forward (as transformers' models do): two calls
    of one cell on the same tensor in one graph could be merged into one mask.

    Gradient checkpointing recomputes a layer's forward in the backward pass; a second draw would give another
    mask, and gradients that do not match the loss. So the mask is drawn by its own primitive, which MindSpore
    never recomputes (GRAPH_MODE keeps its output), and applied by another, which it does; in PYNATIVE_MODE
    `DropoutReplay` gives the recomputation the stream state of the first pass. MindSpore's own dropout (other
    backends) is never recomputed either, at the cost of keeping its output.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout probability must be in [0, 1), got {p}.")
        self.p = float(p)
        self.use_cpu_kernel = self.p > 0 and compat.use_cpu_kernels()
        if self.use_cpu_kernel:
            self.draw_mask = cpu_kernels.dropout_mask_op()
            self.draw_state = cpu_kernels.dropout_state_op()
            self.apply_mask = cpu_kernels.dropout_apply_op()
            self.p_tensor = Tensor([self.p], ms.float32)
            self.rng_state = Parameter(Tensor([compat.random_seed(), 0], ms.int64), name=RNG_STATE_NAME,
                                       requires_grad=False)
        elif self.p > 0:
            self.mindspore_dropout = mindspore_dropout_op(self.p, compat.random_seed())
        # Set only while a checkpointed layer runs in PYNATIVE_MODE (a `_DropoutReplayPhase`); None in graphs.
        self.replay_phase = None

    def reseed(self, seed: int) -> bool:
        """Restarts the masks from `seed`. Returns whether the train graph must be recompiled to see it (MindSpore's
        own kernel keeps its generator inside the compiled graph; mindone_ft's reads `rng_state`)."""
        if self.p == 0:
            return False
        if self.use_cpu_kernel:
            # Written in place: a graph that already ran and updated `rng_state` may not see `set_data`'s new
            # tensor (measured with MindSpore 2.10 on two graphs sharing it).
            ops.assign(self.rng_state, Tensor([seed, 0], ms.int64))
            return False
        self.mindspore_dropout = mindspore_dropout_op(self.p, seed)
        return True

    def construct(self, x):
        if not self.training or self.p == 0:
            return x
        if not self.use_cpu_kernel:
            return self.mindspore_dropout(x)[0]
        if self.replay_phase is None:
            mask = self.draw_mask(x, self.rng_state, self.p_tensor)
        else:
            mask = self.replay_phase.draw(self, x)
        if x.dtype == ms.float32:
            return self.apply_mask(x, mask, self.p_tensor)
        # float16 too (amp O2), so that every mask on CPU comes from `rng_state`
        return self.apply_mask(x.astype(ms.float32), mask, self.p_tensor).astype(x.dtype)


    def stream_state(self):
        """This call's `[seed, offset]` for a kernel that applies this dropout itself (`FusedAttention`), advancing
        the stream as a `construct` call does: the kernel's mask is the one `construct` would draw (CPU kernel
        only)."""
        if self.replay_phase is None:
            return self.draw_state(self.rng_state)
        return self.replay_phase.stream_state(self)


def mindspore_dropout_op(rate: float, seed: int) -> ops.Dropout:
    """MindSpore's dropout primitive with kernel seeds derived from `seed`. The kernel keeps its generator inside
    the compiled graph: a graph sees new seeds only when recompiled. It is never recomputed under gradient
    checkpointing (see `Dropout`)."""
    seed0, seed1 = (int(x) for x in np.random.default_rng(seed).integers(1, 2**31 - 1, size=2))
    return ops.Dropout(1.0 - rate, seed0, seed1).recompute(False)


class _DropoutReplayPhase:
    """One pass of a checkpointed layer in PYNATIVE_MODE, as a context manager over the layer's dropouts: the first
    pass records the stream state each `Dropout` drew from; the recomputation draws again from that state (a copy:
    the live stream is not advanced twice)."""

    def __init__(self, dropouts: list, states: Dict[int, list], recording: bool):
        self.dropouts = dropouts
        self.states = states
        self.recording = recording

    def draw(self, dropout: Dropout, x):
        if self.recording:
            self.states.setdefault(id(dropout), []).append(dropout.rng_state.copy())
            return dropout.draw_mask(x, dropout.rng_state, dropout.p_tensor)
        return dropout.draw_mask(x, self.states[id(dropout)].pop(0), dropout.p_tensor)

    def stream_state(self, dropout: Dropout):
        if self.recording:
            self.states.setdefault(id(dropout), []).append(dropout.rng_state.copy())
            return dropout.draw_state(dropout.rng_state)
        return self.states[id(dropout)].pop(0)

    def __enter__(self):
        for dropout in self.dropouts:
            dropout.replay_phase = self
        return self

    def __exit__(self, *exc):
        for dropout in self.dropouts:
            dropout.replay_phase = None
        return False


class DropoutReplay:
    """`context_fn` of MindSpore's PYNATIVE_MODE recompute for one checkpointed layer: returns the (first pass,
    recomputation) context managers that make the recomputed dropout masks equal the first ones (MindSpore
    restores its global generator, which mindone_ft's `Dropout` does not use). GRAPH_MODE ignores it."""

    def __init__(self, layer: nn.Cell):
        self.layer = layer

    def __call__(self):
        # Listed at each recomputed call, not when checkpointing is enabled: adapters (LoRA's dropout) may be added
        # to the layer afterwards.
        dropouts = [cell for _, cell in self.layer.cells_and_names() if isinstance(cell, Dropout) and cell.p > 0]
        for dropout in dropouts:
            if not dropout.use_cpu_kernel:
                raise ValueError(
                    "Gradient checkpointing with dropout in PYNATIVE_MODE needs mindone_ft's CPU dropout kernel, "
                    "which replays the masks when a layer is recomputed (it is disabled by MINDONE_FT_CPU_KERNELS=0 "
                    "or missing on this backend). Use GRAPH_MODE, or set the model's dropout probabilities to 0."
                )
        states: Dict[int, list] = {}
        return (_DropoutReplayPhase(dropouts, states, recording=True),
                _DropoutReplayPhase(dropouts, states, recording=False))


class GradientCheckpointingLayer(nn.Cell):
    """Base of the layers a model repeats (transformers' `GradientCheckpointingLayer`): the cells that
    `gradient_checkpointing_enable()` recomputes in the backward pass instead of keeping their activations.

    Models call them through `checkpointed_call(layer, ...)`, which decides in Python, so each compiled graph
    either recomputes the layer or not.
    """

    # Class defaults (subclasses may skip this __init__, as MPNetLayer skips BertLayer's); set per instance by
    # `gradient_checkpointing_enable`, which builds `dropout_replay` once the layer's cells exist.
    gradient_checkpointing = False
    dropout_replay = None


def checkpointed_call(layer: GradientCheckpointingLayer, *args, **kwargs):
    """`layer(*args, **kwargs)`; while training with gradient checkpointing enabled, recomputed by MindSpore
    (`mindspore.recompute`): only the layer's inputs are kept for the backward pass, plus its dropout masks."""
    if layer.gradient_checkpointing and layer.training:
        # use_reentrant=False: PYNATIVE_MODE's saved-tensor recompute, the one that takes a context_fn.
        # early_stop=False: stopping the recomputation early raises through nested Cell calls and leaves
        # MindSpore 2.10's PyNative argument stack unbalanced ("Stack input_args_info_stack_ is empty").
        return ms.recompute(layer, *args, use_reentrant=False, early_stop=False, context_fn=layer.dropout_replay,
                            **kwargs)
    return layer(*args, **kwargs)


def reseed_nn_dropout(cell: nn.Dropout, seed: int) -> bool:
    """Gives MindSpore's `nn.Dropout` new kernel seeds derived from `seed`; returns whether the graph must be
    recompiled (not for a rate of 0)."""
    rate = cell.p if cell.p is not None else 1.0 - cell.keep_prob  # older cells are built with keep_prob
    if rate == 0:
        return False
    cell.dropout = mindspore_dropout_op(rate, seed)
    return True


def eager_attention(
    query, key, value, attention_mask, scaling: float, softmax: nn.Cell, dropout: nn.Cell, head_mask=None
):
    """Scaled dot-product attention in the same operation order as transformers' `eager_attention_forward`.

    Shapes: query/key/value `(batch, heads, seq, head_dim)`; `attention_mask` is additive, broadcastable to
    `(batch, heads, seq_q, seq_k)`. Returns `(context (batch, seq, heads, head_dim), probabilities)`.
    Probabilities of another dtype than `value` (scores upcast to float32, GPT-2's `reorder_and_upcast_attn`) are
    cast to `value`'s dtype before the dropout, as transformers does.

    This is the reference, and the implementation on every backend but CPU, where `FusedAttention`'s kernels
    replace it whenever they apply (`fused_or_eager_attention`). Ascend's fused `ops.flash_attention_score` would
    plug in beside them behind `compat.use_ascend_kernels()`, but it is not wired in because it cannot be verified
    on our CPU-only machines.
    """
    scores = _matmul_transpose_b(query, key) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    probs = softmax(scores)
    if probs.dtype != value.dtype:
        probs = probs.astype(value.dtype)
    probs = dropout(probs)
    if head_mask is not None:
        probs = probs * head_mask
    context = _matmul(probs, value).swapaxes(1, 2)
    return context, probs


class CachedAttention(nn.Cell):
    """Inference attention of a few query tokens (a decoding step) over a key/value cache in one mindone_ft CPU
    kernel: `eager_attention`'s numbers, with grouped key/value heads read in place (no `repeat_kv` copy). MindSpore's
    two BatchMatMuls and the broadcast cost ~0.7 ms per layer of a decoding step there (profiled), more than the
    layer's projections.

    `applies(query, value, attention_mask)` says when to call it: on CPU with the kernels, not training, float32, at
    most `FEW_ROWS` query tokens per row, and a mask of the kernel's shape, `(batch or 1, 1, seq or 1, keys)` (what
    `causal_attention_mask` makes); otherwise the caller runs `eager_attention`.
    """

    def __init__(self):
        super().__init__()
        self.use_cpu_kernel = compat.use_cpu_kernels()
        if self.use_cpu_kernel:
            self.attend = cpu_kernels.cached_attention_op()

    def applies(self, query, value, attention_mask) -> bool:
        if not (self.use_cpu_kernel and not self.training and attention_mask is not None):
            return False
        dtypes_ok = query.dtype == ms.float32 and value.dtype == ms.float32 and attention_mask.dtype == ms.float32
        mask_batch, mask_heads, mask_seq, mask_keys = attention_mask.shape
        return (dtypes_ok and query.shape[2] <= FEW_ROWS and mask_heads == 1 and mask_keys == value.shape[2]
                and mask_batch in (1, query.shape[0]) and mask_seq in (1, query.shape[2]))

    def construct(self, query, key, value, attention_mask, scaling: float):
        """query `(batch, heads, seq, head_dim)`, key/value `(batch, kv_heads, keys, head_dim)` (unrepeated),
        additive mask `(batch or 1, 1, seq or 1, keys)`. Returns `(context (batch, seq, heads, head_dim),
        probabilities)` like `eager_attention`."""
        return self.attend(query, key, value, attention_mask, Tensor([scaling], ms.float32))


class FusedAttention(nn.Cell):
    """`eager_attention`'s context in two mindone_ft CPU kernels (forward and backward) that never hold the
    `(batch, heads, seq, keys)` scores, probabilities or dropout mask in memory: MindSpore 2.10's CPU graphs keep
    every intermediate of a train step until it ends, and eager attention's nine such tensors per layer were a
    third of a BERT train step's peak memory (measured; docs/performance_notes.md). The backward kernel recomputes
    the probabilities from two numbers per row and redraws the dropout mask from the `Dropout` cell's stream, so
    the masks are the ones `eager_attention` draws, also under gradient checkpointing.

    `applies(...)` says when to call it: on CPU with the kernels (linked with MindSpore's oneDNN), float32, no
    `head_mask`, the probabilities not asked for (`output_attentions`), a mask of shape `(batch or 1, heads or 1,
    seq or 1, keys)` or none, and a dropout that is off or mindone_ft's CPU kernel; otherwise the caller runs
    `eager_attention`.

    Args:
        mask_needs_gradient (`bool`): the additive mask carries learned values (MPNet's relative position bias),
            so it needs a gradient, which the kernels do not compute: always `eager_attention`.
        layout (`str`): "BHSD": query `(batch, heads, seq, head_dim)`, key/value `(batch, kv_heads, keys,
            head_dim)`, as `eager_attention` takes them; "BSHD": query `(batch, seq, heads, head_dim)`, key/value
            `(batch, keys, kv_heads, head_dim)`, the projections' outputs viewed per head. The kernels read either
            in place; "BSHD" spares the transposed copies of query, key and value and of their gradients, which a
            CPU graph keeps until the step ends (6 `(batch, seq, hidden)` tensors per layer).
    """

    def __init__(self, mask_needs_gradient: bool = False, layout: str = "BHSD"):
        super().__init__()
        if layout not in ("BHSD", "BSHD"):
            raise ValueError(f"FusedAttention's layout is 'BHSD' or 'BSHD', got {layout!r}")
        self.layout = layout
        self.use_cpu_kernel = (not mask_needs_gradient and compat.use_cpu_kernels()
                               and cpu_kernels.has_fused_attention())
        if self.use_cpu_kernel:
            self.attend = cpu_kernels.attention_op(layout)
            self.unused_dropout_state = Tensor([0, 0], ms.int64)

    def heads_axis(self) -> int:
        return 2 if self.layout == "BSHD" else 1

    def to_eager_layout(self, x):
        """`x` in `eager_attention`'s `(batch, heads, seq, head_dim)` layout."""
        return x.swapaxes(1, 2) if self.layout == "BSHD" else x

    def applies(self, query, value, attention_mask, dropout: Dropout, head_mask=None,
                output_attentions: bool = False) -> bool:
        if not self.use_cpu_kernel or output_attentions or head_mask is not None:
            return False
        if query.dtype != ms.float32 or value.dtype != ms.float32:
            return False
        if dropout.training and dropout.p > 0 and not dropout.use_cpu_kernel:
            return False
        if attention_mask is None:
            return True
        heads, seq = self.heads_axis(), 3 - self.heads_axis()
        mask_batch, mask_heads, mask_seq, mask_keys = attention_mask.shape
        return (attention_mask.dtype == ms.float32 and mask_keys == value.shape[seq] and
                mask_batch in (1, query.shape[0]) and mask_heads in (1, query.shape[heads]) and
                mask_seq in (1, query.shape[seq]))

    def construct(self, query, key, value, attention_mask, dropout_state, scaling_and_rate):
        """query, key/value (unrepeated) in this cell's `layout`, additive mask, the dropout's `stream_state()` and
        float32 `[scaling, dropout rate]` (see `fused_attention`, which builds them). Returns the context
        `(batch, seq, heads, head_dim)`."""
        return self.attend(query, key, value, attention_mask, dropout_state, scaling_and_rate)[0]


def fused_attention(fused: FusedAttention, query, key, value, attention_mask, scaling: float, dropout: Dropout):
    """`fused`'s context of `query`, `key`, `value` (where `fused.applies`), with `dropout`'s mask when it is on:
    `(batch, seq, heads, head_dim)`, as `eager_attention`'s."""
    if attention_mask is None:
        attention_mask = ops.zeros((1, 1, 1, key.shape[3 - fused.heads_axis()]), ms.float32)
    if dropout.training and dropout.p > 0:
        state, rate = dropout.stream_state(), dropout.p
    else:
        state, rate = fused.unused_dropout_state, 0.0
    return fused(query, key, value, attention_mask, state, Tensor([scaling, rate], ms.float32))


def fused_or_eager_attention(fused: FusedAttention, query, key, value, attention_mask, scaling: float,
                             softmax: nn.Cell, dropout: Dropout, head_mask=None, output_attentions: bool = False,
                             kv_groups: int = 1):
    """`fused`'s attention where it applies (`FusedAttention.applies`), else `eager_attention` (with each key/value
    head repeated for the `kv_groups` query heads of its group). `query`, `key`, `value` are in `fused.layout`.
    Returns `(context (batch, seq, heads, head_dim), probabilities)`; the probabilities are None from the fused
    kernels, which `output_attentions` or a `head_mask` rules out."""
    if fused.applies(query, value, attention_mask, dropout, head_mask, output_attentions):
        return fused_attention(fused, query, key, value, attention_mask, scaling, dropout), None
    query, key, value = fused.to_eager_layout(query), fused.to_eager_layout(key), fused.to_eager_layout(value)
    return eager_attention(query, repeat_kv(key, kv_groups), repeat_kv(value, kv_groups), attention_mask, scaling,
                           softmax, dropout, head_mask)


def decoder_attention(cached_attention: CachedAttention, fused: FusedAttention, query, key, value, attention_mask,
                      scaling: float, softmax: nn.Cell, dropout: Dropout, kv_groups: int = 1,
                      output_attentions: bool = False):
    """A decoder's attention over its unrepeated key/value heads: `cached_attention`'s kernel where it applies (a
    decoding step on CPU, `CachedAttention.applies`), else `fused`'s (training and prefill on CPU, the probabilities
    not asked for), else `eager_attention` with each key/value head repeated for the `kv_groups` query heads of
    its group. Returns `(context (batch, seq, heads, head_dim), probabilities or None)`."""
    if cached_attention.applies(query, value, attention_mask):
        return cached_attention(query, key, value, attention_mask, scaling)
    return fused_or_eager_attention(fused, query, key, value, attention_mask, scaling, softmax, dropout,
                                    output_attentions=output_attentions, kv_groups=kv_groups)


# The BatchMatMul primitive, not `ops.matmul`: its gradient is two BatchMatMuls with transpose flags, where
# `ops.matmul`'s (MatMulExt) materialises each transposed operand first (~5% of a CPU train step, profiled).
_matmul = ops.BatchMatMul()
_matmul_transpose_b = ops.BatchMatMul(transpose_b=True)


class MultiHeadSelfAttention(nn.Cell):
    """What the eager self-attention cells of BERT-like families share: the head sizes, the softmax, the dropout on
    the probabilities, and `attend`. Subclasses add their projections under their checkpoint names (BERT's
    `query`/`key`/`value`, MPNet's `q`/`k`/`v`, DistilBERT's `q_lin`/`k_lin`/`v_lin`) and call `attend`.

    Args:
        hidden_size (`int`): width of the hidden states, split evenly between the heads.
        num_attention_heads (`int`): number of heads.
        dropout_rate (`float`): dropout on the attention probabilities.
        mask_needs_gradient (`bool`): the additive mask carries learned values (see `FusedAttention`).
        layout (`str`): the heads' layout `_split_heads` gives and the fused attention reads (see `FusedAttention`):
            "BSHD", the projections viewed per head, unless the heads go into a key/value cache ("BHSD", GPT-2).
    """

    def __init__(self, hidden_size: int, num_attention_heads: int, dropout_rate: float,
                 mask_needs_gradient: bool = False, layout: str = "BSHD"):
        super().__init__()
        if hidden_size % num_attention_heads != 0:
            raise ValueError(
                f"The hidden size ({hidden_size}) is not a multiple of the number of attention "
                f"heads ({num_attention_heads})"
            )
        self.num_attention_heads = num_attention_heads
        self.attention_head_size = hidden_size // num_attention_heads
        self.all_head_size = self.num_attention_heads * self.attention_head_size
        self.scaling = self.attention_head_size**-0.5
        self.softmax = Softmax()
        self.dropout = Dropout(p=dropout_rate)
        self.fused_attention = FusedAttention(mask_needs_gradient, layout)

    def _split_heads(self, x):
        """`(batch, seq, all_head_size)` viewed as `(batch, seq, heads, head_dim)`, then transposed to `(batch,
        heads, seq, head_dim)` for the "BHSD" layout."""
        batch_size, seq_length = x.shape[0], x.shape[1]
        heads = x.view(batch_size, seq_length, self.num_attention_heads, self.attention_head_size)
        return heads.swapaxes(1, 2) if self.fused_attention.layout == "BHSD" else heads

    def attend(self, query, key, value, attention_mask=None, head_mask=None, output_attentions: bool = False):
        """Attention of the projected `query`, `key`, `value` `(batch, seq, all_head_size)`; `attention_mask` is
        additive (see `eager_attention`). Returns `(context (batch, seq, all_head_size), probabilities)`; the
        probabilities are None unless `output_attentions` (or `head_mask`) makes it run `eager_attention` rather
        than `FusedAttention`."""
        context, probs = fused_or_eager_attention(
            self.fused_attention, self._split_heads(query), self._split_heads(key), self._split_heads(value),
            attention_mask, self.scaling, self.softmax, self.dropout, head_mask, output_attentions,
        )
        context = context.reshape(context.shape[0], context.shape[1], self.all_head_size)
        return context, probs


# ----------------------------------------------------------------------------------------------------------------
# Losses with PyTorch semantics (mean reduction, `ignore_index` for cross-entropy).
# ----------------------------------------------------------------------------------------------------------------


def cross_entropy(logits, labels, ignore_index: int = -100):
    """`torch.nn.CrossEntropyLoss(ignore_index=...)` on `(N, C)` logits and `(N,)` integer labels of any int dtype."""
    labels = labels.astype(ms.int32)
    log_probs = compat.accurate_log_softmax(logits.astype(ms.float32), axis=-1)
    valid = labels != ignore_index
    safe_labels = ops.where(valid, labels, ops.zeros_like(labels))
    nll = -ops.gather_elements(log_probs, 1, safe_labels.expand_dims(-1)).squeeze(-1)
    valid = valid.astype(ms.float32)
    # Same as torch: the mean over non-ignored targets (NaN when every target is ignored).
    return (nll * valid).sum() / valid.sum()


def mse_loss(predictions, targets):
    """`torch.nn.MSELoss()` (mean reduction)."""
    diff = predictions.astype(ms.float32) - targets.astype(ms.float32)
    return (diff * diff).mean()


def bce_with_logits(logits, targets, mask=None):
    """`torch.nn.BCEWithLogitsLoss()` (mean reduction), in the numerically stable form.

    With `mask` (same shape, bool or 0/1), the mean over the elements where it is true: torch's loss of
    `logits[mask]` and `targets[mask]`, written as a masked sum so that shapes stay static inside a graph.
    """
    x = logits.astype(ms.float32)
    y = targets.astype(ms.float32)
    losses = ops.relu(x) - x * y + ops.log1p(ops.exp(-ops.abs(x)))
    if mask is None:
        return losses.mean()
    mask = mask.astype(ms.float32)
    return (losses * mask).sum() / mask.sum()



class RMSNorm(nn.Cell):
    """Root-mean-square normalization (Llama's `LlamaRMSNorm`): `weight * x / sqrt(mean(x^2) + eps)`, computed in
    float32 and cast back to the input dtype like transformers.

    Args:
        hidden_size (`int`): size of the normalized last axis.
        eps (`float`): added to the mean square.
        unit_offset (`bool`): scale by `(1 + weight)` with `weight` initialised to zeros (Gemma's convention).
    """

    def __init__(self, hidden_size: int, eps: float = 1e-6, unit_offset: bool = False):
        super().__init__()
        self.eps = eps
        self.unit_offset = unit_offset
        self.weight = Parameter(initializer("zeros" if unit_offset else "ones", (hidden_size,), ms.float32),
                                name="weight")

    def construct(self, x):
        input_dtype = x.dtype
        x = x.astype(ms.float32)
        x = x * ops.rsqrt((x * x).mean(-1, keep_dims=True) + self.eps)
        if self.unit_offset:  # Gemma multiplies in float32 before casting back
            return (x * (1.0 + self.weight.astype(ms.float32))).astype(input_dtype)
        return self.weight * x.astype(input_dtype)


# ----------------------------------------------------------------------------------------------------------------
# Attention masks and rotary position embeddings.
# ----------------------------------------------------------------------------------------------------------------


def extended_attention_mask(attention_mask, dtype):
    """An additive mask from a 0/1 (or bool) mask: 0 where attending, the dtype's most negative value elsewhere.

    `(batch, key)` becomes `(batch, 1, 1, key)` and `(batch, query, key)` becomes `(batch, 1, query, key)`, ready to
    be added to `(batch, heads, query, key)` attention scores (transformers' `get_extended_attention_mask`). None (no
    padding) stays None.
    """
    if attention_mask is None:
        return None
    if attention_mask.ndim == 2:
        attention_mask = attention_mask.expand_dims(1).expand_dims(1)
    elif attention_mask.ndim == 3:
        attention_mask = attention_mask.expand_dims(1)
    return (1.0 - attention_mask.astype(dtype)) * dtype_min(dtype)


def expand_head_mask(head_mask, num_hidden_layers: int, num_attention_heads: int, dtype):
    """`(heads,)` or `(layers, heads)` -> `(layers, 1, heads, 1, 1)`, multiplied into the attention probabilities."""
    if head_mask.ndim == 1:
        head_mask = ops.broadcast_to(head_mask[None, :], (num_hidden_layers, num_attention_heads))
    return head_mask[:, None, :, None, None].astype(dtype)


def rotary_inv_freq(dim: int, base: float) -> np.ndarray:
    """Inverse frequencies of the default RoPE, `1 / base^(2i/dim)`, computed in float32 like transformers."""
    return (1.0 / (base ** (np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / dim))).astype(np.float32)


def rotary_cos_sin(position_ids, inv_freq: Tensor, dtype, attention_scaling: float = 1.0):
    """`(cos, sin)` of shape `(batch, seq, dim)` for integer `position_ids` `(batch, seq)`, as transformers'
    `RotaryEmbedding.forward` (angles in float32, both halves repeated)."""
    freqs = position_ids.astype(ms.float32).expand_dims(-1) * inv_freq.reshape(1, 1, -1)
    emb = ops.cat((freqs, freqs), axis=-1)
    cos = ops.cos(emb) * attention_scaling
    sin = ops.sin(emb) * attention_scaling
    return cos.astype(dtype), sin.astype(dtype)


def rotate_half(x):
    """Rotates half the hidden dims: `(x1, x2) -> (-x2, x1)`."""
    half = x.shape[-1] // 2
    return ops.cat((-x[..., half:], x[..., :half]), axis=-1)


def apply_rotary_pos_emb(query, key, cos, sin, unsqueeze_dim: int = 1):
    """Rotates `query` and `key` `(batch, heads, seq, head_dim)` by the position angles (`cos`/`sin` are
    `(batch, seq, head_dim)` and get a heads axis at `unsqueeze_dim`)."""
    cos = cos.expand_dims(unsqueeze_dim)
    sin = sin.expand_dims(unsqueeze_dim)
    return query * cos + rotate_half(query) * sin, key * cos + rotate_half(key) * sin


# ----------------------------------------------------------------------------------------------------------------
# The standard task heads' losses and tuple outputs, shared by every family (transformers' generic heads).
# ----------------------------------------------------------------------------------------------------------------


def infer_problem_type(num_labels: int, labels) -> str:
    """transformers' rule: one label -> regression, integer labels -> single label, else multi-label."""
    if num_labels == 1:
        return "regression"
    if labels.dtype in (ms.int32, ms.int64):
        return "single_label_classification"
    return "multi_label_classification"


def sequence_classification_loss(logits, labels, num_labels: int, problem_type: Optional[str]):
    """The loss of transformers' `...ForSequenceClassification` heads for `config.problem_type` (inferred from the
    labels when None: inside a graph the config cannot be updated, so it is inferred without being stored)."""
    if problem_type is None:
        problem_type = infer_problem_type(num_labels, labels)
    if problem_type == "regression":
        if num_labels == 1:
            return mse_loss(logits.squeeze(), labels.squeeze())
        return mse_loss(logits, labels)
    if problem_type == "single_label_classification":
        return cross_entropy(logits.view(-1, num_labels), labels.view(-1))
    return bce_with_logits(logits, labels)


def question_answering_loss(start_logits, end_logits, start_positions, end_positions):
    """Mean of the start and end cross-entropies; positions outside the sequence are clamped to an index the loss
    ignores, like transformers."""
    if start_positions.ndim > 1:
        start_positions = start_positions.squeeze(-1)
    if end_positions.ndim > 1:
        end_positions = end_positions.squeeze(-1)
    ignored_index = start_logits.shape[1]
    start_positions = ops.clamp(start_positions.astype(ms.int32), 0, ignored_index)
    end_positions = ops.clamp(end_positions.astype(ms.int32), 0, ignored_index)
    start_loss = cross_entropy(start_logits, start_positions, ignore_index=ignored_index)
    end_loss = cross_entropy(end_logits, end_positions, ignore_index=ignored_index)
    return (start_loss + end_loss) / 2


def with_extras(outputs: tuple, loss, hidden_states: tuple, attentions: tuple) -> tuple:
    """transformers' tuple layout: `(loss?, *outputs, hidden_states?, attentions?)`, absent entries dropped."""
    if loss is not None:
        outputs = (loss,) + outputs
    if hidden_states:
        outputs = outputs + (hidden_states,)
    if attentions:
        outputs = outputs + (attentions,)
    return outputs


def base_model_outputs(sequence_output, pooled_output, hidden_states, attentions) -> tuple:
    """`(last_hidden_state, pooler_output?, hidden_states?, attentions?)` of a bare encoder; `pooled_output` is None
    for encoders without a pooler (or built with `add_pooling_layer=False`)."""
    outputs = (sequence_output,) if pooled_output is None else (sequence_output, pooled_output)
    return with_extras(outputs, None, hidden_states, attentions)


def classifier_dropout_rate(config, attribute: str = "classifier_dropout") -> float:
    """The task heads' dropout rate: `config.<attribute>` (BERT's `classifier_dropout`, ALBERT's
    `classifier_dropout_prob`, DeBERTa's `cls_dropout`), or `hidden_dropout_prob` when that is None or absent."""
    rate = getattr(config, attribute, None)
    return config.hidden_dropout_prob if rate is None else rate


def with_cache(outputs: tuple, cache) -> tuple:
    """transformers' decoder layout: the key/value cache (when returned) right after the first outputs (logits or
    last hidden state)."""
    return outputs if cache is None else outputs + (cache,)


def sequence_classification_outputs(logits, labels, problem_type: Optional[str], hidden_states, attentions,
                                    cache=None):
    """`(loss?, logits, cache?, ...)` of a `...ForSequenceClassification` head: `logits` `(batch, num_labels)`, the
    loss of `config.problem_type` (see `sequence_classification_loss`) when `labels` are given; decoders' heads pass
    their key/value cache."""
    loss = None
    if labels is not None:
        loss = sequence_classification_loss(logits, labels, logits.shape[-1], problem_type)
    return with_extras(with_cache((logits,), cache), loss, hidden_states, attentions)


def token_classification_outputs(logits, labels, hidden_states, attentions):
    """`(loss?, logits, ...)` of a per-token classifier: `logits` `(batch, seq, num_labels)`, the cross-entropy over
    the tokens whose label is not -100 when `labels` `(batch, seq)` are given."""
    loss = None
    if labels is not None:
        loss = cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1))
    return with_extras((logits,), loss, hidden_states, attentions)


# A masked LM head is a per-token classifier over the vocabulary whose unmasked positions are labelled -100.
masked_lm_outputs = token_classification_outputs


def pretraining_outputs(prediction_scores, sentence_scores, labels, sentence_labels, hidden_states, attentions):
    """`(loss?, prediction_scores, sentence_scores, ...)` of the masked LM + sentence pair pretraining heads (BERT's
    next sentence prediction, ALBERT's sentence order). The loss, the sum of both cross-entropies, needs both
    `labels` and `sentence_labels`."""
    total_loss = None
    if labels is not None and sentence_labels is not None:
        masked_lm_loss = cross_entropy(prediction_scores.view(-1, prediction_scores.shape[-1]), labels.view(-1))
        sentence_loss = cross_entropy(sentence_scores.view(-1, 2), sentence_labels.view(-1))
        total_loss = masked_lm_loss + sentence_loss
    return with_extras((prediction_scores, sentence_scores), total_loss, hidden_states, attentions)


def span_outputs(logits, start_positions, end_positions, hidden_states, attentions):
    """`(loss?, start_logits, end_logits, ...)` of a question answering head: `logits` `(batch, seq, 2)` split into
    the start and end logits, and `question_answering_loss` when both positions are given."""
    start_logits = logits[:, :, 0]
    end_logits = logits[:, :, 1]
    total_loss = None
    if start_positions is not None and end_positions is not None:
        total_loss = question_answering_loss(start_logits, end_logits, start_positions, end_positions)
    return with_extras((start_logits, end_logits), total_loss, hidden_states, attentions)


def flatten_choices(*inputs) -> tuple:
    """`(num_choices, *inputs)` with each multiple-choice input `(batch, num_choices, seq[, hidden])` flattened to
    `(batch * num_choices, seq[, hidden])` for the encoder; None stays None. `num_choices` is axis 1 of the first
    input given.

    A loop rather than a comprehension: graph-compiled constructs call this, and MindSpore 2.10 compiles loops
    over a tuple but not generators.
    """
    num_choices = None
    flattened = ()
    for tensor in inputs:
        if tensor is None:
            flattened = flattened + (None,)
        else:
            if num_choices is None:
                num_choices = tensor.shape[1]
            flattened = flattened + (tensor.reshape((-1,) + tensor.shape[2:]),)
    return (num_choices,) + flattened


def multiple_choice_outputs(logits, num_choices: int, labels, hidden_states, attentions):
    """`(loss?, reshaped_logits, ...)` of a multiple choice head: one score per flattened choice `(batch *
    num_choices, 1)` reshaped to `(batch, num_choices)`, and the cross-entropy over choices when `labels` (the
    index of the correct choice) are given."""
    reshaped_logits = logits.view(-1, num_choices)
    loss = None
    if labels is not None:
        loss = cross_entropy(reshaped_logits, labels.view(-1))
    return with_extras((reshaped_logits,), loss, hidden_states, attentions)


class ClassificationHead(nn.Cell):
    """Sentence classification on the first token: dropout, `dense`, activation, dropout, `out_proj`
    (transformers' `RobertaClassificationHead` and its copies, which differ in the activation and dropout rate).

    Args:
        config: a config with `hidden_size` and `num_labels`.
        activation (`str`): the activation's transformers name (RoBERTa and MPNet: "tanh", ELECTRA: "gelu").
        dropout_rate (`float`): the rate of both dropouts.
    """

    def __init__(self, config, activation: str, dropout_rate: float):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)
        self.activation = get_activation(activation)
        self.dropout = Dropout(p=dropout_rate)
        self.out_proj = Linear(config.hidden_size, config.num_labels)

    def construct(self, features):
        # One dropout cell applied twice, like transformers. The second input depends on the first output, so the
        # second call runs after the first has advanced the cell's random offset: two different masks (checked in
        # GRAPH and PYNATIVE mode; see `Dropout`).
        x = self.activation(self.dense(self.dropout(features[:, 0])))
        return self.out_proj(self.dropout(x))


def bidirectional_attention_mask(attention_mask, seq_length: int, dtype, sliding_window: Optional[int] = None):
    """transformers' `create_bidirectional_mask` / `create_bidirectional_sliding_window_mask` for eager attention.

    An additive mask, 0 where a query may attend a key and the dtype's most negative value elsewhere (both
    conditions at once are still that value, not twice it, as in transformers' `eager_mask`). A key is attended
    when it is not padding (`attention_mask` `(batch, seq)`, 0/1 or bool; None = no padding) and, with
    `sliding_window`, when `|query - key| <= sliding_window` (ModernBERT: `local_attention // 2` on each side).
    Returns `(batch or 1, 1, seq, seq)`, `(batch, 1, 1, seq)` without a window, or None when nothing is masked.
    """
    allowed = None
    if attention_mask is not None:
        allowed = attention_mask.astype(ms.bool_).expand_dims(1).expand_dims(1)
    if sliding_window is not None:
        positions = ops.arange(0, seq_length, dtype=ms.int32)
        window = ops.abs(positions.expand_dims(1) - positions.expand_dims(0)) <= sliding_window
        window = window.expand_dims(0).expand_dims(0)
        allowed = window if allowed is None else ops.logical_and(allowed, window)
    if allowed is None:
        return None
    return extended_attention_mask(allowed, dtype)


class SequenceSummary(nn.Cell):
    """One vector per sequence from its hidden states, configured by the `summary_*` attributes of the config like
    transformers' `SequenceSummary` (ELECTRA, XLM, XLNet, ... each have a copy named `<Family>SequenceSummary`).

    `summary_type` picks the vector: "first" token, "last" token, "mean" over tokens, or "cls_index" (the last token:
    the heads that use this never pass an index); then `first_dropout` (`summary_first_dropout`), the projection
    `summary` when `summary_use_proj` (to `num_labels` with `summary_proj_to_labels`, else `hidden_size`), the
    `summary_activation`, and `last_dropout` (`summary_last_dropout`). Absent pieces are identities.
    """

    def __init__(self, config):
        super().__init__()
        self.summary_type = getattr(config, "summary_type", "last")
        if self.summary_type not in ("first", "last", "mean", "cls_index"):
            raise NotImplementedError(
                f"summary_type={self.summary_type!r} is not implemented (transformers does not implement 'attn' "
                "either); use 'first', 'last', 'mean' or 'cls_index'."
            )
        self.summary = None
        if getattr(config, "summary_use_proj", False):
            to_labels = getattr(config, "summary_proj_to_labels", False) and config.num_labels > 0
            self.summary = Linear(config.hidden_size, config.num_labels if to_labels else config.hidden_size)
        activation = getattr(config, "summary_activation", None)
        self.activation = get_activation(activation) if activation else None
        self.first_dropout = Dropout(p=getattr(config, "summary_first_dropout", 0.0) or 0.0)
        self.last_dropout = Dropout(p=getattr(config, "summary_last_dropout", 0.0) or 0.0)

    def construct(self, hidden_states):
        if self.summary_type == "first":
            output = hidden_states[:, 0]
        elif self.summary_type == "mean":
            output = hidden_states.mean(axis=1)
        else:  # "last", and "cls_index" without an index
            output = hidden_states[:, -1]
        output = self.first_dropout(output)
        if self.summary is not None:
            output = self.summary(output)
        if self.activation is not None:
            output = self.activation(output)
        return self.last_dropout(output)


def position_ids_from_input_ids(input_ids, padding_idx: int):
    """fairseq-style position ids (RoBERTa and its descendants): real tokens count from `padding_idx + 1` in order,
    padding tokens get `padding_idx` (wherever they are in the row), as transformers'
    `create_position_ids_from_input_ids` (int32, as its mask; the ids only index the position embeddings)."""
    mask = (input_ids != padding_idx).astype(ms.int32)
    return ops.cumsum(mask, axis=1) * mask + padding_idx


def position_ids_from_inputs_embeds(inputs_embeds, padding_idx: int):
    """Sequential position ids `padding_idx + 1 ...` `(batch, seq)` for `inputs_embeds` `(batch, seq, hidden)`, whose
    padding cannot be seen (transformers' `create_position_ids_from_inputs_embeds`)."""
    batch_size, seq_length = inputs_embeds.shape[0], inputs_embeds.shape[1]
    positions = ops.arange(padding_idx + 1, seq_length + padding_idx + 1, dtype=ms.int32)
    return ops.broadcast_to(positions.expand_dims(0), (batch_size, seq_length))


def relative_position_bucket(relative_position, bidirectional: bool = True, num_buckets: int = 32,
                             max_distance: int = 128) -> np.ndarray:
    """T5-style buckets of relative positions (`key position - query position`), as transformers' T5 and MPNet
    `relative_position_bucket`: with `bidirectional`, half the buckets per direction (keys after the query in the
    upper half); distances below half of those get one bucket each, longer ones logarithmically wider buckets up
    to `max_distance`, beyond which they share the last bucket.

    In numpy, float32 like torch (checked equal to transformers' for distances up to 2048): models build a lookup
    table once at construction, so no backend's float32 `log` can round differently in a graph at distances that
    sit exactly on a bucket edge (16, 32, 64 with the defaults).
    """
    relative_position = np.asarray(relative_position, np.int64)
    buckets = np.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets += (relative_position > 0).astype(np.int64) * num_buckets
        distance = np.abs(relative_position)
    else:
        distance = -np.minimum(relative_position, 0)
    max_exact = num_buckets // 2
    # max(distance, 1): log(0) is never selected (distance 0 is exact) but would warn.
    log_ratio = np.log(np.maximum(distance, 1).astype(np.float32) / np.float32(max_exact))
    scale = np.float32(np.log(max_distance / max_exact))
    if_large = max_exact + (log_ratio / scale * np.float32(num_buckets - max_exact)).astype(np.int64)
    if_large = np.minimum(if_large, num_buckets - 1)
    return buckets + np.where(distance < max_exact, distance, if_large)


# ----------------------------------------------------------------------------------------------------------------
# Decoder language models: grouped-query attention, causal masks, the causal-LM loss and last-token pooling.
# ----------------------------------------------------------------------------------------------------------------


def repeat_kv(hidden_states, n_rep: int):
    """transformers' `repeat_kv`: `(batch, kv_heads, seq, head_dim)` -> `(batch, kv_heads * n_rep, seq, head_dim)`,
    each key/value head repeated for the `n_rep` query heads of its group (grouped-query attention)."""
    if n_rep == 1:
        return hidden_states
    batch, num_key_value_heads, seq_length, head_dim = hidden_states.shape
    expanded = ops.broadcast_to(hidden_states.expand_dims(2), (batch, num_key_value_heads, n_rep, seq_length, head_dim))
    return expanded.reshape(batch, num_key_value_heads * n_rep, seq_length, head_dim)


def packed_sequence_ids(position_ids):
    """transformers' `find_packed_sequence_indices`: for several sequences packed in one row (position ids that
    restart, e.g. `[0, 1, 2, 0, 1]`), the index of the sequence each token belongs to (`[0, 0, 0, 1, 1]`); a new
    sequence starts wherever a position is not the previous one plus 1."""
    starts = (position_ids[:, 1:] - position_ids[:, :-1]) != 1
    starts = ops.cat((ops.zeros_like(position_ids[:, :1]).astype(ms.bool_), starts), axis=1)
    return ops.cumsum(starts.astype(ms.int32), axis=1)


def causal_attention_mask(attention_mask, seq_length: int, dtype, sliding_window: Optional[int] = None,
                          position_ids=None, cache_position=None, key_length: Optional[int] = None):
    """transformers' `create_causal_mask` / `create_sliding_window_causal_mask` for eager attention.

    An additive mask, 0 where a query may attend a key and the dtype's most negative value elsewhere (a row with no
    allowed key, a left-padding query, gets that value everywhere, as in transformers, so its softmax is uniform). A
    key is attended when it is not after the query, with `sliding_window` when it is one of the `sliding_window`
    latest tokens (`query - sliding_window < key <= query`, Mistral's window), and when it is not padding
    (`attention_mask` `(batch, key_length)`, 0/1 or bool). Without an attention mask, `position_ids` `(batch or 1, seq)`
    that restart mark packed sequences, which do not attend to each other (transformers does the same, for
    padding-free batches).

    Without a cache the queries and keys are the same `seq_length` tokens. With a key/value cache, the queries are the
    tokens written at `cache_position` `(seq_length,)` (their indices among the keys) and there are `key_length` keys:
    the cached ones, then the new ones (a growing cache), or every slot of a fixed-capacity cache, where the slots not
    written yet come after every query and are masked by causality. Returns `(batch or 1, 1, seq_length, keys)`.
    """
    if cache_position is None:
        query_positions = ops.arange(0, seq_length, dtype=ms.int32)
        key_length = seq_length
    else:
        query_positions = cache_position.astype(ms.int32)
    query = query_positions.expand_dims(1)
    key = ops.arange(0, key_length, dtype=ms.int32).expand_dims(0)
    allowed = key <= query
    if sliding_window is not None:
        allowed = ops.logical_and(allowed, key > query - sliding_window)
    allowed = allowed.expand_dims(0).expand_dims(0)
    if attention_mask is not None:
        allowed = ops.logical_and(allowed, attention_mask.astype(ms.bool_).expand_dims(1).expand_dims(1))
    elif position_ids is not None:
        sequence_ids = packed_sequence_ids(position_ids)
        same_sequence = sequence_ids.expand_dims(2) == sequence_ids.expand_dims(1)
        allowed = ops.logical_and(allowed, same_sequence.expand_dims(1))
    return extended_attention_mask(allowed, dtype)


def update_key_value_cache(past_key_value, key, value, cache_position=None):
    """One attention layer's key/value cache: `(key, value)` for the attention to use, which are also the layer's
    cache after this step.

    `key` and `value` `(batch, kv_heads, seq, head_dim)` are the new tokens' (after the rotary embedding). Without a
    cache they are returned as they are (the prompt's cache). A growing cache (`cache_position` None) appends them
    to `past_key_value`'s. A fixed-capacity cache `(batch, kv_heads, capacity, head_dim)` gets them written at the
    slots `cache_position` `(seq,)`: shapes never change, so a compiled decoding step serves every token. The write
    copies values (a gather of the new tokens into slot order, then a select against the old cache), so it is exact.
    A gather and a select, not a one-hot matrix product: MindSpore's CPU BatchMatMul on these thin shapes cost ~1 ms
    per layer and tensor in a decoding step, more than the layer's projections (profiled, MindSpore 2.10).
    """
    if past_key_value is None:
        return key, value
    past_key, past_value = past_key_value
    if cache_position is None:
        return ops.cat((past_key, key), axis=2), ops.cat((past_value, value), axis=2)
    capacity, seq_length = past_key.shape[2], key.shape[2]
    slots = ops.arange(0, capacity, dtype=ms.int32)
    one_hot = cache_position.astype(ms.int32).expand_dims(0) == slots.expand_dims(1)  # (capacity, seq)
    written = one_hot.any(1).reshape(1, 1, capacity, 1)
    # for each slot, the new token written there (0 where none is: the select keeps the old value)
    source = (one_hot.astype(ms.int32) * ops.arange(0, seq_length, dtype=ms.int32).expand_dims(0)).sum(1)
    return (ops.select(written, ops.gather(key, source, 2), past_key),
            ops.select(written, ops.gather(value, source, 2), past_value))


def causal_lm_loss(logits, labels, vocab_size: int, ignore_index: int = -100):
    """transformers' `ForCausalLMLoss`: the logits at token t predict label t + 1 (labels are shifted left and
    padded with `ignore_index`), cross-entropy averaged over the labels that are not `ignore_index`."""
    labels = labels.astype(ms.int32)
    padding = ops.ones(labels.shape[:-1] + (1,), ms.int32) * ignore_index
    shift_labels = ops.cat((labels[..., 1:], padding), axis=-1)
    return cross_entropy(logits.view(-1, vocab_size), shift_labels.view(-1), ignore_index)


def causal_lm_outputs(logits, labels, vocab_size: int, hidden_states, attentions, cache=None):
    """`(loss?, logits, cache?, ...)` of a causal-LM head: `causal_lm_loss` (labels shifted inside) when `labels`
    are given, and the key/value cache when the model returns one."""
    loss = None
    if labels is not None:
        loss = causal_lm_loss(logits, labels, vocab_size)
    return with_extras(with_cache((logits,), cache), loss, hidden_states, attentions)


def soft_cap(x, cap: float):
    """Gemma's tanh soft-capping of the logits, `cap * tanh(x / cap)`, in transformers' operation order: values
    stay within `(-cap, cap)`. `compat.accurate_tanh`: MindSpore's CPU tanh is off by 1e-4 near |x| = 5."""
    return compat.accurate_tanh(x / cap) * cap


def last_non_pad_token_logits(logits, input_ids, pad_token_id: Optional[int]):
    """Pooling of transformers' decoder `ForSequenceClassification` heads: per row, the logits `(batch, seq, labels)`
    at the rightmost token that is not `pad_token_id` (left or right padding alike); at the last position when there
    are no `input_ids` or no pad token (which, as in transformers, is an error for batches of more than one row)."""
    if pad_token_id is None and logits.shape[0] != 1:
        raise ValueError("Cannot handle batch sizes > 1 if no padding token is defined.")
    if pad_token_id is None or input_ids is None:
        return logits[:, -1]
    non_pad_mask = (input_ids != pad_token_id).astype(ms.int32)
    token_indices = ops.arange(0, input_ids.shape[-1], dtype=ms.int32)
    last_non_pad_token = ops.argmax(token_indices * non_pad_mask, -1)
    index = last_non_pad_token.reshape(-1, 1, 1).broadcast_to((logits.shape[0], 1, logits.shape[2]))
    return ops.gather_elements(logits, 1, index).squeeze(1)


def slice_logits_to_keep(hidden_states, logits_to_keep):
    """transformers' `slice_logits_to_keep`, before the LM head: an int keeps the last `logits_to_keep` positions
    (0 keeps all), a 1-D integer tensor these positions in every row, a 2-D integer tensor `(batch, n)` these
    positions per row. A boolean mask (outputs whose size depends on the data) cannot be compiled: index the
    logits afterwards instead."""
    if isinstance(logits_to_keep, int):
        return hidden_states if logits_to_keep == 0 else hidden_states[:, -logits_to_keep:]
    if logits_to_keep.dtype == ms.bool_:
        raise ValueError("logits_to_keep as a boolean mask is not supported; pass positions, or index the logits.")
    if logits_to_keep.ndim == 1:
        return ops.gather(hidden_states, logits_to_keep.astype(ms.int32), 1)
    index = logits_to_keep.astype(ms.int32).expand_dims(-1)
    index = index.broadcast_to(index.shape[:2] + (hidden_states.shape[-1],))
    return ops.gather_elements(hidden_states, 1, index)
