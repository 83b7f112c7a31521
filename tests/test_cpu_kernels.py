"""mindone_ft's fused CPU kernels against PyTorch autograd in float64: values, gradients, NaN, threads, building."""

import logging
from pathlib import Path

import mindspore as ms
import numpy as np
import pytest
import torch
from mindspore import nn, ops

from mindone_ft.kernels import cpu
from mindone_ft.modeling_layers import (
    FEW_ROWS,
    CachedAttention,
    Conv1D,
    Dropout,
    FusedAttention,
    LayerNorm,
    Linear,
    Softmax,
    dtype_min,
    eager_attention,
    fused_attention,
    get_activation,
    repeat_kv,
)
from mindone_ft.utils import compat

# Odd sizes on purpose: rows that do not split evenly over threads, columns that are not a SIMD width multiple.
# Big enough that every row kernel splits over 3 threads (GELU, element-wise, splits from 2 * 65,536 values).
SHAPE = (4, 67, 45)
GELU_SHAPE = (3, 300, 301)
pytestmark = [
    pytest.mark.skipif(not compat.use_cpu_kernels(), reason="fused CPU kernels unavailable"),
    pytest.mark.usefixtures("graph_mode"),
]


@pytest.fixture(params=[1, 3], ids=["1thread", "3threads"])
def threads(request):
    previous = cpu.num_threads()
    cpu.set_num_threads(request.param)
    yield request.param
    cpu.set_num_threads(previous)


class WeightedSum(nn.Cell):
    """sum(cell(x) * w): its gradient sends an arbitrary upstream gradient `w` into the cell."""

    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def construct(self, x, w):
        return (self.cell(x) * w).sum()


def run_fused(cell, x, w):
    """Output, input gradient and parameter gradients of `cell` with upstream gradient `w`."""
    net = WeightedSum(cell)
    grad_fn = ms.grad(net, grad_position=0, weights=cell.trainable_params())
    dx, dparams = grad_fn(ms.Tensor(x), ms.Tensor(w))
    return cell(ms.Tensor(x)).asnumpy(), dx.asnumpy(), [g.asnumpy() for g in dparams]


def run_torch(fn, x, w, params=()):
    x = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params]
    y = fn(x, *params)
    (y * torch.tensor(w, dtype=torch.float64)).sum().backward()
    return y.detach().numpy(), x.grad.numpy(), [p.grad.numpy() for p in params]


def assert_close(actual, expected, rtol=2e-6, name=""):
    error = np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-12)
    assert error < rtol, f"{name}: max error {error:.2e} of the largest value"


def random_inputs(seed=0, scale=3.0, shape=SHAPE):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * scale).astype(np.float32), rng.standard_normal(shape).astype(np.float32)


def test_gelu_matches_torch(threads):
    cell = get_activation("gelu")
    assert cell.use_cpu_kernel
    x, w = random_inputs(shape=GELU_SHAPE)
    y, dx, _ = run_fused(cell, x, w)
    ty, tdx, _ = run_torch(lambda t: torch.nn.functional.gelu(t), x, w)
    assert_close(y, ty, name="gelu")
    assert_close(dx, tdx, name="gelu grad")


def test_softmax_matches_torch(threads):
    cell = Softmax()
    assert cell.use_cpu_kernel
    x, w = random_inputs(1)
    x[0, 0, :5] = -3.4028234663852886e38  # masked positions, as BERT's additive mask makes them
    y, dx, _ = run_fused(cell, x, w)
    ty, tdx, _ = run_torch(lambda t: torch.softmax(t, -1), x.astype(np.float64), w)
    assert_close(y, ty, name="softmax")
    assert_close(dx, tdx, name="softmax grad")


def test_layer_norm_matches_torch(threads):
    cell = LayerNorm(SHAPE[-1], eps=1e-12)
    assert cell.use_cpu_kernel
    rng = np.random.default_rng(2)
    gamma, beta = rng.standard_normal(SHAPE[-1]).astype(np.float32), rng.standard_normal(SHAPE[-1]).astype(np.float32)
    cell.weight.set_data(ms.Tensor(gamma))
    cell.bias.set_data(ms.Tensor(beta))
    x, w = random_inputs(3)
    x += 5.0  # a large mean, where a one-pass variance would lose digits
    y, dx, (dgamma, dbeta) = run_fused(cell, x, w)
    ty, tdx, (tdgamma, tdbeta) = run_torch(
        lambda t, g, b: torch.nn.functional.layer_norm(t, (SHAPE[-1],), g, b, 1e-12), x, w, (gamma, beta)
    )
    assert_close(y, ty, name="layer norm")
    assert_close(dx, tdx, rtol=1e-5, name="layer norm grad")
    assert_close(dgamma, tdgamma, rtol=1e-5, name="weight grad")
    assert_close(dbeta, tdbeta, rtol=1e-5, name="bias grad")


def test_linear_bias_gradient_matches_torch(threads):
    cell = Linear(SHAPE[-1], 7)
    assert cell.use_cpu_kernel
    weight, bias = cell.weight.asnumpy(), np.linspace(-1, 1, 7).astype(np.float32)
    cell.bias.set_data(ms.Tensor(bias))
    x, _ = random_inputs(4)
    w = np.random.default_rng(5).standard_normal(SHAPE[:-1] + (7,)).astype(np.float32)
    y, dx, (dweight, dbias) = run_fused(cell, x, w)
    ty, tdx, (tdweight, tdbias) = run_torch(
        lambda t, a, b: torch.nn.functional.linear(t, a, b), x, w, (weight, bias)
    )
    assert_close(y, ty, rtol=1e-5, name="linear")
    assert_close(dx, tdx, rtol=1e-5, name="linear input grad")
    assert_close(dweight, tdweight, rtol=1e-5, name="linear weight grad")
    assert_close(dbias, tdbias, rtol=1e-5, name="linear bias grad")


@pytest.mark.parametrize("layer", ["linear", "linear_no_bias", "conv1d"])
def test_few_rows_projections_match_float64_at_inference(threads, mode, layer):
    """A decoding step's projections (<= FEW_ROWS rows, eval) take the few-rows kernel; more rows, or training, keep
    MatMul. Both agree with float64. 1031 outputs: split over threads, not a multiple of the kernel's 4 rows."""
    in_features, out_features = 257, 1031
    rng = np.random.default_rng(11)
    if layer == "conv1d":
        cell = Conv1D(out_features, in_features)
        weight = rng.standard_normal((in_features, out_features)).astype(np.float32)
    else:
        cell = Linear(in_features, out_features, has_bias=layer == "linear")
        weight = rng.standard_normal((out_features, in_features)).astype(np.float32)
    cell.weight.set_data(ms.Tensor(weight))
    bias = None
    if layer != "linear_no_bias":
        bias = rng.standard_normal(out_features).astype(np.float32)
        cell.bias.set_data(ms.Tensor(bias))
    matrix = weight.astype(np.float64) if layer == "conv1d" else weight.T.astype(np.float64)
    for training in (False, True):
        cell.set_train(training)
        for shape in [(1, 1, in_features), (2, 2, in_features), (1, FEW_ROWS + 1, in_features), (3, in_features)]:
            x = rng.standard_normal(shape).astype(np.float32)
            expected = x.astype(np.float64) @ matrix + (0.0 if bias is None else bias)
            actual = cell(ms.Tensor(x)).asnumpy()
            assert actual.shape == expected.shape
            assert_close(actual, expected, rtol=1e-6, name=f"{layer} {shape} training={training}")
    # gradients taken in eval mode (no dropout) go through the kernel's bprop: MatMul's
    cell.set_train(False)
    x = rng.standard_normal((1, 2, in_features)).astype(np.float32)
    w = rng.standard_normal((1, 2, out_features)).astype(np.float32)
    _, dx, dparams = run_fused(cell, x, w)
    params = (weight,) if bias is None else (weight, bias)
    linear = (lambda t, a, b=None: t @ a + b) if layer == "conv1d" else torch.nn.functional.linear
    _, tdx, tdparams = run_torch(linear, x, w, params)
    assert_close(dx, tdx, rtol=1e-5, name=f"{layer} input grad")
    for actual, expected in zip(dparams, tdparams):
        assert_close(actual, expected, rtol=1e-5, name=f"{layer} parameter grad")


@pytest.mark.parametrize("seq,mask_batch", [(1, 2), (3, 2), (1, 1)])
def test_cached_attention_matches_eager_attention_in_float64(threads, mode, seq, mask_batch):
    """Grouped key/value heads read in place (6 query heads on 3 key/value heads), masked cache slots (dtype
    minimum, as `causal_attention_mask` makes them), a mask shared by the batch or per row."""
    batch, heads, kv_heads, capacity, dim = 2, 6, 3, 11, 17
    rng = np.random.default_rng(seq + mask_batch)
    query = rng.standard_normal((batch, heads, seq, dim)).astype(np.float32)
    key = rng.standard_normal((batch, kv_heads, capacity, dim)).astype(np.float32)
    value = rng.standard_normal((batch, kv_heads, capacity, dim)).astype(np.float32)
    allowed = rng.random((mask_batch, 1, seq, capacity)) > 0.4
    allowed[..., 0] = True  # every query sees at least one key
    mask = np.where(allowed, 0.0, dtype_min(ms.float32)).astype(np.float32)
    scaling = dim**-0.5
    cell = CachedAttention()
    cell.set_train(False)
    assert cell.applies(ms.Tensor(query), ms.Tensor(value), ms.Tensor(mask))
    context, probs = cell(ms.Tensor(query), ms.Tensor(key), ms.Tensor(value), ms.Tensor(mask), scaling)

    group = heads // kv_heads
    k64, v64 = np.repeat(key, group, axis=1).astype(np.float64), np.repeat(value, group, axis=1).astype(np.float64)
    scores = query.astype(np.float64) @ k64.swapaxes(-1, -2) * scaling + np.where(allowed, 0.0, -np.inf)
    expected_probs = np.exp(scores - scores.max(-1, keepdims=True))
    expected_probs /= expected_probs.sum(-1, keepdims=True)
    expected_context = (expected_probs @ v64).swapaxes(1, 2)
    assert context.shape == (batch, seq, heads, dim) and probs.shape == (batch, heads, seq, capacity)
    assert_close(probs.asnumpy(), expected_probs, rtol=1e-6, name="probabilities")
    assert_close(context.asnumpy(), expected_context, rtol=1e-6, name="context")
    # a gradient taken in eval mode goes through the kernel's bprop (eager attention's)
    weights = [rng.standard_normal(context.shape).astype(np.float32), rng.standard_normal(probs.shape).astype(np.float32)]

    def weighted(q, k, v):
        out_context, out_probs = cell(q, k, v, ms.Tensor(mask), scaling)
        return (out_context * ms.Tensor(weights[0])).sum() + (out_probs * ms.Tensor(weights[1])).sum()

    grads = ms.grad(weighted, grad_position=(0, 1, 2))(ms.Tensor(query), ms.Tensor(key), ms.Tensor(value))
    tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (query, key, value)]
    t_key, t_value = (t.repeat_interleave(group, dim=1) for t in tensors[1:])
    t_scores = tensors[0] @ t_key.transpose(-1, -2) * scaling + torch.tensor(np.where(allowed, 0.0, -np.inf))
    t_probs = torch.softmax(t_scores, -1)
    t_context = (t_probs @ t_value).transpose(1, 2)
    ((t_context * torch.tensor(weights[0], dtype=torch.float64)).sum()
     + (t_probs * torch.tensor(weights[1], dtype=torch.float64)).sum()).backward()
    for name, actual, expected in zip(("query", "key", "value"), grads, tensors):
        assert_close(actual.asnumpy(), expected.grad.numpy(), rtol=1e-5, name=f"{name} grad")
    cell.set_train(True)
    assert not cell.applies(ms.Tensor(query), ms.Tensor(value), ms.Tensor(mask))


class AttentionOfOneLayer(nn.Cell):
    """A layer's attention with its dropout: `FusedAttention`'s kernels, or `eager_attention` (the reference).
    Inputs in `eager_attention`'s layout; the "BSHD" kernels get them transposed (and give the gradients back
    through the transposes)."""

    def __init__(self, rate: float, groups: int, fused: bool, layout: str = "BHSD"):
        super().__init__()
        self.dropout, self.softmax = Dropout(rate), Softmax()
        self.fused_attention = FusedAttention(layout=layout)
        self.groups, self.fused = groups, fused

    def construct(self, query, key, value, mask):
        scaling = query.shape[-1] ** -0.5
        if self.fused:
            if self.fused_attention.layout == "BSHD":
                query, key, value = query.swapaxes(1, 2), key.swapaxes(1, 2), value.swapaxes(1, 2)
            return fused_attention(self.fused_attention, query, key, value, mask, scaling, self.dropout)
        return eager_attention(query, repeat_kv(key, self.groups), repeat_kv(value, self.groups), mask, scaling,
                               self.softmax, self.dropout)[0]


@pytest.mark.skipif(not cpu.has_fused_attention(), reason="kernels built without MindSpore's oneDNN")
@pytest.mark.parametrize("mode", ["GRAPH_MODE", "PYNATIVE_MODE"])
@pytest.mark.parametrize("mask_shape", ["padding", "per_head", "causal", "none"])
@pytest.mark.parametrize("layout", ["BHSD", "BSHD"])
def test_fused_attention_matches_eager_attention_with_the_same_dropout_masks(threads, mode, mask_shape, layout):
    """Context and query/key/value gradients of the fused kernels against eager attention on the same dropout
    stream: 6 query heads on 3 key/value heads, 200 keys (three blocks of query rows in the kernels), odd head size,
    masks as BERT (per row), MPNet (bias per head) and decoders (causal) make them; the stream advances once a call.
    Both layouts: heads first (decoders, after rotary and the cache) and sequence first (the encoders' projections
    viewed per head)."""
    ms.set_context(mode=getattr(ms, mode))
    batch, heads, kv_heads, seq, dim, rate = 2, 6, 3, 200, 17, 0.2
    rng = np.random.default_rng(len(mask_shape))
    query = rng.standard_normal((batch, heads, seq, dim)).astype(np.float32)
    key, value = (rng.standard_normal((batch, kv_heads, seq, dim)).astype(np.float32) for _ in range(2))
    mask = {
        "padding": np.where(rng.random((batch, 1, 1, seq)) > 0.3, 0.0, dtype_min(ms.float32)),
        "per_head": rng.standard_normal((1, heads, seq, seq)),
        "causal": np.triu(np.full((seq, seq), dtype_min(ms.float32)), 1)[None, None].repeat(batch, 0),
        "none": None,
    }[mask_shape]
    if mask is not None:
        mask[..., 0] = 0.0  # every query sees a key
        mask = ms.Tensor(mask.astype(np.float32))
    upstream = ms.Tensor(rng.standard_normal((batch, seq, heads, dim)).astype(np.float32))
    results = {}
    for fused in (True, False):
        layer = AttentionOfOneLayer(rate, heads // kv_heads, fused, layout)
        layer.set_train(True)
        layer.dropout.reseed(1234)
        as_given = (lambda x: x.swapaxes(1, 2)) if layout == "BSHD" else (lambda x: x)
        assert layer.fused_attention.applies(ms.Tensor(as_given(query)), ms.Tensor(as_given(value)), mask,
                                             layer.dropout)

        def weighted(q, k, v):
            context = layer(q, k, v, mask)
            return (context * upstream).sum(), context

        (_, context), grads = ms.value_and_grad(weighted, grad_position=(0, 1, 2), has_aux=True)(
            ms.Tensor(query), ms.Tensor(key), ms.Tensor(value))
        results[fused] = [context.asnumpy()] + [g.asnumpy() for g in grads] + [layer.dropout.rng_state.asnumpy()]
    for name, actual, expected in zip(("context", "query grad", "key grad", "value grad"), results[True],
                                      results[False]):
        assert_close(actual, expected, rtol=2e-6, name=name)
    np.testing.assert_array_equal(results[True][-1], [1234, 1])
    np.testing.assert_array_equal(results[False][-1], [1234, 1])


@pytest.mark.skipif(not cpu.has_fused_attention(), reason="kernels built without MindSpore's oneDNN")
def test_fused_attention_in_eval_mode_is_softmax_attention_in_float64(threads):
    """No dropout at inference (the stream stays put); the context against float64 softmax attention."""
    batch, heads, seq, keys, dim = 3, 4, 5, 33, 8
    rng = np.random.default_rng(3)
    query = rng.standard_normal((batch, heads, seq, dim)).astype(np.float32)
    key, value = (rng.standard_normal((batch, heads, keys, dim)).astype(np.float32) for _ in range(2))
    mask = rng.standard_normal((batch, 1, seq, keys)).astype(np.float32)
    layer = AttentionOfOneLayer(0.5, 1, fused=True)
    layer.set_train(False)
    context = layer(ms.Tensor(query), ms.Tensor(key), ms.Tensor(value), ms.Tensor(mask)).asnumpy()
    scores = query.astype(np.float64) @ key.astype(np.float64).swapaxes(-1, -2) * dim**-0.5 + mask
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    expected = ((probs / probs.sum(-1, keepdims=True)) @ value).swapaxes(1, 2)
    assert_close(context, expected, rtol=1e-6, name="context")
    assert layer.dropout.rng_state.asnumpy()[1] == 0
    # what the kernels do not take: another dtype, probabilities asked for, a head mask, a mask of another shape
    fused, dropout = layer.fused_attention, layer.dropout
    assert not fused.applies(ms.Tensor(query).astype(ms.float16), ms.Tensor(value), ms.Tensor(mask), dropout)
    assert not fused.applies(ms.Tensor(query), ms.Tensor(value), ms.Tensor(mask), dropout, output_attentions=True)
    assert not fused.applies(ms.Tensor(query), ms.Tensor(value), ms.Tensor(mask), dropout,
                             head_mask=ms.Tensor(np.ones((1, heads, 1, 1), np.float32)))
    assert not fused.applies(ms.Tensor(query), ms.Tensor(value), ms.Tensor(mask[:, :, :, :-1]), dropout)


def test_sum_of_squares_over_many_tensors_matches_float64(threads):
    """One call over every gradient: chunks cross tensor boundaries, so sizes straddle the 65,536-value split."""
    rng = np.random.default_rng(9)
    shapes = [(70_001,), (3, 5), (0,), (300, 301), (1,)]
    tensors = [(rng.standard_normal(shape) * 10 ** rng.uniform(-3, 3)).astype(np.float32) for shape in shapes]
    total = cpu.sum_of_squares_op()(*[ms.Tensor(t) for t in tensors]).asnumpy()
    expected = sum(np.square(t.astype(np.float64)).sum() for t in tensors)
    assert total.shape == (1,) and total.dtype == np.float32
    assert abs(float(total[0]) - expected) <= 1e-6 * expected


class InPlaceUpdate(nn.Cell):
    """Reads a parameter, updates it with the AdamW kernel, reads it again, in one graph."""

    def __init__(self, value):
        super().__init__()
        self.param = ms.Parameter(ms.Tensor(value), name="param")
        self.exp_avg = ms.Parameter(ms.Tensor(np.zeros_like(value)), name="exp_avg")
        self.exp_avg_sq = ms.Parameter(ms.Tensor(np.zeros_like(value)), name="exp_avg_sq")
        self.step = cpu.AdamWStepOp()

    def construct(self, grad, hyper):
        before = self.param * 1.0
        self.step(self.param, self.exp_avg, self.exp_avg_sq, grad, hyper)
        return before, self.param * 1.0


@pytest.mark.parametrize("mode", ["GRAPH_MODE", "PYNATIVE_MODE"])
def test_adamw_step_writes_parameters_in_place_in_order(mode):
    ms.set_context(mode=getattr(ms, mode))
    value = np.full((3, 70_000), 2.0, np.float32)  # splits over threads
    net = InPlaceUpdate(value)
    hyper = ms.Tensor([0.1, 1, 0.5, 0.9, 0.999, 1e-8, 0.01], ms.float64)  # lr, step, grad_scale, betas, eps, wd
    before, after = net(ms.Tensor(np.full_like(value, 4.0)), hyper)
    # step 1: the bias-corrected update is lr * sign(g), after decay p * (1 - lr * wd)
    expected = np.float32(2.0) * np.float32(1 - 0.1 * 0.01) - np.float32(0.1)
    np.testing.assert_array_equal(before.asnumpy(), value)
    np.testing.assert_allclose(after.asnumpy(), expected, rtol=1e-6)
    np.testing.assert_array_equal(net.param.asnumpy(), after.asnumpy())
    np.testing.assert_allclose(net.exp_avg.asnumpy(), 0.1 * 4.0 * 0.5, rtol=1e-6)
    np.testing.assert_allclose(net.exp_avg_sq.asnumpy(), 0.001 * 2.0**2, rtol=1e-5)
    # other custom ops still run after it, in PyNative too (no signature shared between "Custom" ops)
    assert get_activation("gelu")(ms.Tensor(value)).shape == value.shape


def dropout_masks(cell, x, calls):
    """The kept-element masks of `calls` consecutive training calls, and each call's input gradient."""
    grad_fn = ms.grad(WeightedSum(cell), grad_position=0)
    ones = ms.Tensor(np.ones(x.shape, np.float32))
    masks, grads = [], []
    for _ in range(calls):
        state = cell.rng_state.asnumpy().copy()
        y = cell(ms.Tensor(x)).asnumpy()
        ops.assign(cell.rng_state, ms.Tensor(state))  # the gradient call replays the same mask
        grads.append(grad_fn(ms.Tensor(x), ones).asnumpy())
        masks.append(y != 0)
    return masks, grads


@pytest.mark.parametrize("mode", ["GRAPH_MODE", "PYNATIVE_MODE"])
def test_dropout_masks_are_reproducible_on_any_thread_count(mode):
    ms.set_context(mode=getattr(ms, mode))
    x = np.random.default_rng(9).uniform(1.0, 2.0, (4, 250, 500)).astype(np.float32)  # no zeros: y == 0 <=> dropped
    p, n = 0.1, x.size
    runs, previous = [], cpu.num_threads()
    for threads in (1, 3):
        cpu.set_num_threads(threads)
        cell = Dropout(p)
        cell.set_train(True)
        cell.reseed(1234)
        runs.append(dropout_masks(cell, x, 3))
    cpu.set_num_threads(previous)
    (masks, grads), (masks_3threads, _) = runs
    for mask, mask_3threads, grad in zip(masks, masks_3threads, grads):
        np.testing.assert_array_equal(mask, mask_3threads)
        assert abs(1 - mask.mean() - p) < 5 * np.sqrt(p * (1 - p) / n)  # 5 standard errors (0.0013 here)
        np.testing.assert_array_equal(grad, np.where(mask, np.float32(1 / (1 - p)), 0))  # dx = mask / (1 - p)
    # Each call draws a new mask, independent of the previous one: both-dropped pairs occur at rate p^2.
    assert not np.array_equal(masks[0], masks[1])
    both = (~masks[0] & ~masks[1]).mean()
    assert abs(both - p * p) < 5 * np.sqrt(p * p * (1 - p * p) / n)
    # Neighbouring elements are independent too.
    flat = masks[0].ravel()
    assert abs((~flat[1:] & ~flat[:-1]).mean() - p * p) < 5 * np.sqrt(p * p / n)


def test_dropout_output_scales_kept_values_and_respects_eval_mode():
    cell = Dropout(0.25)
    x = np.random.default_rng(10).standard_normal((8, 1000)).astype(np.float32)
    cell.set_train(True)
    y = cell(ms.Tensor(x)).asnumpy()
    kept = y != 0
    np.testing.assert_array_equal(y[kept], x[kept] * np.float32(1 / 0.75))
    # float16 (amp O2) goes through the same kernel and random stream
    cell.reseed(11)
    half = cell(ms.Tensor(x, ms.float16))
    cell.reseed(11)
    assert half.dtype == ms.float16
    np.testing.assert_array_equal(half.asnumpy() != 0, cell(ms.Tensor(x)).asnumpy() != 0)
    cell.set_train(False)
    np.testing.assert_array_equal(cell(ms.Tensor(x)).asnumpy(), x)
    with pytest.raises(ValueError, match=r"Dropout probability must be in \[0, 1\)"):
        Dropout(1.0)


def test_dropout_seeds_follow_the_global_seed():
    """Like MindSpore's own random ops: the same model built after the same `set_seed` gets the same seeds."""
    def seeds():
        ms.set_seed(5)
        return [Dropout(0.1).rng_state.asnumpy()[0] for _ in range(3)]

    first, second = seeds(), seeds()
    assert first == second and len(set(first)) == 3


def test_non_finite_values_propagate():
    """Overflow detection depends on NaN/inf reaching the gradients, so the kernels must not swallow them."""
    x, w = random_inputs(6)
    x[1, 2, 3] = np.nan
    for cell in (get_activation("gelu"), Softmax(), LayerNorm(SHAPE[-1])):
        y, dx, _ = run_fused(cell, x, w)
        assert np.isnan(y[1, 2]).any() and not np.isnan(y[0]).any(), type(cell).__name__
        assert np.isnan(dx[1, 2]).any(), type(cell).__name__
    x, w = random_inputs(7)
    w[0, 0, 0] = np.inf
    _, _, (dgamma, dbeta) = run_fused(LayerNorm(SHAPE[-1]), x, w)
    assert not np.isfinite(dbeta[0]) and not np.isfinite(dgamma).all()
    grads = [ms.Tensor(np.ones(5, np.float32)), ms.Tensor(np.array([1.0, np.inf], np.float32))]
    assert np.isinf(cpu.sum_of_squares_op()(*grads).asnumpy()).all()
    grads[1] = ms.Tensor(np.array([np.nan, 1.0], np.float32))
    assert np.isnan(cpu.sum_of_squares_op()(*grads).asnumpy()).all()


def test_other_dtypes_use_mindspore_ops():
    """The kernels take float32 only; float16 inputs take MindSpore's own ops instead of failing."""
    x = ms.Tensor(np.random.default_rng(8).standard_normal(SHAPE), ms.float16)
    out = get_activation("gelu")(x)
    assert out.dtype == ms.float16 and np.isfinite(out.asnumpy()).all()
    out = Softmax()(x)
    assert out.dtype == ms.float16 and np.allclose(out.asnumpy().astype(np.float32).sum(-1), 1.0, atol=1e-2)


def test_disabled_by_environment(monkeypatch):
    monkeypatch.setenv(cpu.DISABLE_ENV, "0")
    assert not cpu.available() and not compat.use_cpu_kernels()
    assert not LayerNorm(8).use_cpu_kernel and not get_activation("gelu").use_cpu_kernel


def test_build_is_cached_and_leaves_no_partial_files(tmp_path, monkeypatch):
    monkeypatch.setenv(cpu.CACHE_ENV, str(tmp_path))
    path = cpu.library_path.__wrapped__()
    assert path is not None and path.startswith(str(tmp_path))
    files = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["cpu_kernels.so"]
    assert cpu.library_path.__wrapped__() == path  # found in the cache, not rebuilt


def test_build_is_shared_when_mindspore_is_imported_through_links(tmp_path, monkeypatch):
    """A venv or a folder of links to site-packages (benchmarks/torch_free_site) must not key another build: the
    oneDNN link flags name MindSpore's real folder."""
    real = Path(cpu.ms.__file__).resolve()
    (tmp_path / "mindspore").symlink_to(real.parent, target_is_directory=True)
    flags = cpu._onednn_link_flags()
    monkeypatch.setattr(cpu.ms, "__file__", str(tmp_path / "mindspore" / real.name))
    assert cpu._onednn_link_flags() == flags


def test_build_failure_falls_back_with_a_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(cpu.CACHE_ENV, str(tmp_path))
    monkeypatch.setenv("CXX", "false")  # a "compiler" that always fails
    with caplog.at_level(logging.WARNING, logger=cpu.__name__):
        assert cpu.library_path.__wrapped__() is None
    assert "portable ops" in caplog.text
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_unwritable_cache_falls_back_with_a_warning(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    monkeypatch.setenv(cpu.CACHE_ENV, str(blocker / "cache"))  # a folder cannot be made inside a file
    with caplog.at_level(logging.WARNING, logger=cpu.__name__):
        assert cpu.library_path.__wrapped__() is None
    assert cpu.CACHE_ENV in caplog.text
