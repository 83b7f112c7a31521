"""AdamW against torch.optim.AdamW, parameter grouping, per-step learning rates and exact resume."""

import numpy as np
import pytest
import torch

import mindspore as ms
from mindspore import Parameter, Tensor

from mindone_ft.mindspore_adapter import AdamW, is_no_decay_parameter
from mindone_ft.utils import compat

RNG = np.random.default_rng(0)
INIT = {"dense.weight": (4, 3), "dense.bias": (3,), "LayerNorm.weight": (3,)}
INIT = {k: RNG.normal(size=shape) for k, shape in INIT.items()}
INIT = {k: v.astype(np.float32) for k, v in INIT.items()}
GRADS = [{k: RNG.normal(size=v.shape).astype(np.float32) for k, v in INIT.items()} for _ in range(10)]
LRS = np.linspace(1e-2, 1e-3, 10).astype(np.float32)


@pytest.fixture
def pynative():
    """Most tests call the optimizer directly, where PyNative skips a compile per optimizer instance."""
    ms.set_context(mode=ms.PYNATIVE_MODE)
    yield
    ms.set_context(mode=ms.GRAPH_MODE)


def ms_params():
    return [Parameter(Tensor(v.copy()), name=k) for k, v in INIT.items()]


def step_all(optimizer, params, grads):
    for g in grads:
        optimizer(tuple(Tensor(g[p.name]) for p in params))


def torch_reference(weight_decay, lrs, steps=10, grad_scale=1.0):
    params = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in INIT.items()}
    groups = [
        {"params": [params["dense.weight"]], "weight_decay": weight_decay},
        {"params": [params["dense.bias"], params["LayerNorm.weight"]], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=float(lrs[0]), betas=(0.9, 0.999), eps=1e-8)
    for step, g in enumerate(GRADS[:steps]):
        for group in opt.param_groups:  # the schedule's float32 values exactly (a LambdaLR product rounds)
            group["lr"] = float(lrs[min(step, len(lrs) - 1)])
        for k, p in params.items():
            p.grad = torch.tensor(g[k])
        if grad_scale != 1.0:  # as torch.nn.utils.clip_grad_norm_ applies its coefficient
            for p in params.values():
                p.grad.mul_(torch.tensor(grad_scale, dtype=torch.float32))
        opt.step()
    return {k: p.detach().numpy() for k, p in params.items()}


# The same update three ways: mindone_ft's CPU kernel, MindSpore's AdamWeightDecay kernel, composed ops.
IMPLEMENTATIONS = ["cpu_kernel", "mindspore_kernel", "composed"]


def make_adamw(implementation, monkeypatch, params, **kwargs):
    if implementation == "cpu_kernel" and not compat.use_cpu_kernels():
        pytest.skip("fused CPU kernels unavailable")
    if implementation != "cpu_kernel":
        monkeypatch.setattr(compat, "use_cpu_kernels", lambda: False)
    optimizer = AdamW(params, fused=implementation != "composed", **kwargs)
    assert (optimizer.kernel_step is not None) == (implementation == "cpu_kernel")
    return optimizer


def assert_matches_torch(params, expected, implementation):
    for p in params:
        if implementation == "cpu_kernel":  # it repeats torch's float32 operations: bit for bit
            np.testing.assert_array_equal(p.asnumpy(), expected[p.name], err_msg=p.name)
        else:
            np.testing.assert_allclose(p.asnumpy(), expected[p.name], atol=1e-6, err_msg=p.name)
    moved = max(np.abs(p.asnumpy() - INIT[p.name]).max() for p in params)
    assert moved > 1e-2  # the comparison is about real updates, not untouched parameters


@pytest.mark.parametrize("mode", [ms.GRAPH_MODE, ms.PYNATIVE_MODE])
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_matches_torch_adamw_over_10_steps_with_schedule_and_decay(mode, implementation, monkeypatch):
    ms.set_context(mode=mode)
    try:
        params = ms_params()
        optimizer = make_adamw(implementation, monkeypatch, params, learning_rate=LRS, weight_decay=0.1)
        step_all(optimizer, params, GRADS)
    finally:
        ms.set_context(mode=ms.GRAPH_MODE)
    assert_matches_torch(params, torch_reference(0.1, LRS), implementation)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_grad_scale_matches_torch_clipping(pynative, implementation, monkeypatch):
    """`optimizer(grads, grad_scale)` multiplies the gradients first, as clip_grad_norm_'s coefficient does."""
    params = ms_params()
    optimizer = make_adamw(implementation, monkeypatch, params, learning_rate=LRS, weight_decay=0.1)
    for g in GRADS:
        optimizer(tuple(Tensor(g[p.name]) for p in params), Tensor(np.float32(0.37)))
    assert_matches_torch(params, torch_reference(0.1, LRS, grad_scale=0.37), implementation)


@pytest.mark.parametrize("fused", [True, False])
def test_constant_learning_rate_matches_torch(pynative, fused):
    params = ms_params()
    optimizer = AdamW(params, learning_rate=3e-3, weight_decay=0.0, fused=fused)
    step_all(optimizer, params, GRADS)
    expected = torch_reference(0.0, np.array([3e-3], np.float32))
    for p in params:
        np.testing.assert_allclose(p.asnumpy(), expected[p.name], atol=1e-6)


def test_default_grouping_skips_bias_and_norm_weights():
    optimizer = AdamW(ms_params(), weight_decay=0.01)
    assert optimizer.fused  # float32 parameters take a fused kernel by default
    assert (optimizer.kernel_step is not None) == compat.use_cpu_kernels()
    assert optimizer.weight_decays == (0.01, 0.0, 0.0)
    assert is_no_decay_parameter("encoder.layer.0.output.LayerNorm.gamma")
    assert is_no_decay_parameter("final_norm.weight") and is_no_decay_parameter("classifier.bias")
    assert not is_no_decay_parameter("classifier.weight")


def test_torch_style_groups_set_their_own_weight_decay():
    params = ms_params()
    optimizer = AdamW([{"params": params[:1], "weight_decay": 0.5}, {"params": params[1:]}], weight_decay=0.2)
    assert optimizer.weight_decays == (0.5, 0.2, 0.2)


def test_learning_rate_schedule_counts_updates_and_clamps_to_last(pynative):
    params = ms_params()
    optimizer = AdamW(params, learning_rate=[1.0, 0.5, 0.25])
    seen = []
    for g in GRADS[:5]:
        seen.append(float(optimizer.get_lr().asnumpy()))
        optimizer(tuple(Tensor(g[p.name]) for p in params))
    assert seen == [1.0, 0.5, 0.25, 0.25, 0.25]
    assert int(optimizer.global_step.asnumpy()) == 5


def test_state_dict_resume_is_exact(pynative, tmp_path):
    params = ms_params()
    uninterrupted = AdamW(params, learning_rate=LRS, weight_decay=0.1)
    step_all(uninterrupted, params, GRADS)

    first_params = ms_params()
    first = AdamW(first_params, learning_rate=LRS, weight_decay=0.1)
    step_all(first, first_params, GRADS[:5])
    state, weights = first.state_dict(), {p.name: p.asnumpy() for p in first_params}
    ckpt = str(tmp_path / "optimizer.ckpt")
    ms.save_checkpoint(first, ckpt)
    assert {"global_step", "exp_avg.dense.weight", "exp_avg_sq.LayerNorm.weight"} <= set(ms.load_checkpoint(ckpt))

    resumed_params = [Parameter(Tensor(weights[k]), name=k) for k in INIT]
    resumed = AdamW(resumed_params, learning_rate=LRS, weight_decay=0.1)
    assert resumed.load_state_dict(state) == []
    step_all(resumed, resumed_params, GRADS[5:])
    for p, q in zip(params, resumed_params):
        np.testing.assert_array_equal(q.asnumpy(), p.asnumpy())


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="empty parameter list"):
        AdamW([])
    with pytest.raises(ValueError, match="learning_rate"):
        AdamW(ms_params(), learning_rate=np.ones((2, 2)))
    half = [Parameter(Tensor(np.ones(2, np.float16)), name="half")]
    with pytest.raises(ValueError, match="fused=True.*float32"):
        AdamW(half, fused=True)
    assert not AdamW(half).fused
    with pytest.raises(KeyError, match="missing"):
        AdamW(ms_params()).load_state_dict({"global_step": np.int32(3)})
