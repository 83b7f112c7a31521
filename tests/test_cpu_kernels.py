"""mindone_ft's fused CPU kernels against PyTorch autograd in float64: values, gradients, NaN, threads, building."""

import logging

import mindspore as ms
import numpy as np
import pytest
import torch
from mindspore import nn, ops

from mindone_ft.kernels import cpu
from mindone_ft.modeling_layers import Dropout, LayerNorm, Linear, Softmax, get_activation
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
