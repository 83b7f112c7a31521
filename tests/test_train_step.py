"""TrainOneStepWrapper on CPU: overflow skip, loss scaling, accumulation, clipping, state, None inputs."""

import numpy as np
import pytest

import mindspore as ms
from mindspore import Tensor, nn, ops

from mindone_ft.mindspore_adapter import AdamW, ReturnLoss, TrainOneStepWrapper

RNG = np.random.default_rng(0)
X = RNG.normal(size=(8, 4)).astype(np.float32)
Y = RNG.normal(size=(8, 2)).astype(np.float32)
W0 = RNG.normal(size=(2, 4)).astype(np.float32)


class TinyModel(nn.Cell):
    """Linear regression with an optional mask, returning `(loss, logits)` like a Transformers model."""

    def __init__(self):
        super().__init__()
        self.dense = nn.Dense(4, 2)
        self.dense.weight.set_data(Tensor(W0))
        self.dense.bias.set_data(Tensor(np.zeros(2, np.float32)))

    def construct(self, x, mask=None, extra=None, labels=None):
        logits = self.dense(x)
        if mask is not None:
            logits = logits * mask
        loss = ops.mean(ops.square(logits - labels))
        return loss, logits


@pytest.fixture(params=[ms.GRAPH_MODE])
def mode(request):
    ms.set_context(mode=request.param)
    yield request.param
    ms.set_context(mode=ms.GRAPH_MODE)


def make_step(lr=0.1, **kwargs):
    model = TinyModel()
    optimizer = AdamW(model.trainable_params(), learning_rate=lr, weight_decay=0.01)
    return model, optimizer, TrainOneStepWrapper(ReturnLoss(model), optimizer, **kwargs)


def run(step, x, y, mask=None):
    loss, grads, overflow = step(Tensor(x), None if mask is None else Tensor(mask), None, Tensor(y))
    return float(loss.asnumpy()), grads, bool(overflow.asnumpy())


def params_of(cell):
    return {p.name: p.asnumpy().copy() for p in cell.get_parameters()}


def test_return_loss_takes_first_output_of_tuple_and_dict():
    class DictModel(nn.Cell):
        def construct(self, x):
            return {"loss": x.sum(), "logits": x}

    x = Tensor(np.ones((2, 2), np.float32))
    assert float(ReturnLoss(DictModel())(x).asnumpy()) == 4.0
    assert float(ReturnLoss(TinyModel())(Tensor(X), None, None, Tensor(Y)).asnumpy()) == pytest.approx(
        float(np.mean((X @ W0.T - Y) ** 2)), rel=1e-5
    )


def test_loss_is_unscaled_and_update_matches_unscaled_step(mode):
    expected_loss = float(np.mean((X @ W0.T - Y) ** 2))
    results = []
    for scaler in ("none", "static", "dynamic"):
        model, _, step = make_step(scaler=scaler)
        loss, grads, overflow = run(step, X, Y)
        assert loss == pytest.approx(expected_loss, rel=1e-5)
        assert grads is None and overflow is False
        results.append(model.dense.weight.asnumpy())
    # Power-of-two scales are exact, so every scaler gives the same update.
    np.testing.assert_allclose(results[1], results[0], atol=1e-7)
    np.testing.assert_allclose(results[2], results[0], atol=1e-7)


def test_none_inputs_and_mask_in_graph_mode(mode):
    model, _, step = make_step(scaler="none")
    mask = np.zeros((8, 2), np.float32)
    loss, _, overflow = run(step, X, Y, mask=mask)
    assert loss == pytest.approx(float(np.mean(Y**2)), rel=1e-5)
    assert not overflow


@pytest.mark.parametrize("mode", [ms.GRAPH_MODE, ms.PYNATIVE_MODE], indirect=True)
def test_overflow_skips_update_and_keeps_optimizer_state(mode):
    model, optimizer, step = make_step(scaler="dynamic", scaler_config={"scale_value": 2.0**10, "scale_window": 2})
    run(step, X, Y)  # one good step so the moments are non-zero
    before = params_of(step)
    bad_x = X.copy()
    bad_x[0, 0] = np.inf
    _, _, overflow = run(step, bad_x, Y)
    assert overflow is True
    after = params_of(step)
    bookkeeping = {"scale_value", "counter", "train_step.micro_step", "train_step.last_grad_norm"}
    assert set(before) - bookkeeping >= {"dense.weight", "exp_avg.dense.weight", "exp_avg_sq.dense.bias", "global_step"}
    for name in set(before) - bookkeeping:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    assert not np.isfinite(after["train_step.last_grad_norm"])  # reported, like Hugging Face's grad_norm
    assert int(optimizer.global_step.asnumpy()) == 1
    assert float(step.loss_scaler.scale_value.asnumpy()) == 2.0**9  # backed off
    run(step, X, Y)
    run(step, X, Y)
    assert float(step.loss_scaler.scale_value.asnumpy()) == 2.0**10  # grew after scale_window good steps
    assert int(optimizer.global_step.asnumpy()) == 3


def test_overflow_can_be_applied_when_drop_overflow_step_is_false(mode):
    model, optimizer, step = make_step(scaler="none", drop_overflow_step=False)
    bad_x = X.copy()
    bad_x[0, 0] = np.nan
    _, _, overflow = run(step, bad_x, Y)
    assert overflow is True and int(optimizer.global_step.asnumpy()) == 1
    assert not np.isfinite(model.dense.weight.asnumpy()).all()


def test_gradient_accumulation_equals_one_big_batch(mode):
    lrs = np.array([0.1, 0.05, 0.01], np.float32)
    big_model, big_opt, big_step = make_step(lr=lrs, scaler="none")
    acc_model, acc_opt, acc_step = make_step(lr=lrs, scaler="dynamic", gradient_accumulation_steps=4)
    for _ in range(2):
        big_loss = run(big_step, X, Y)[0]
        micro_losses = [run(acc_step, X[i: i + 2], Y[i: i + 2])[0] for i in range(0, 8, 2)]
        assert np.mean(micro_losses) == pytest.approx(big_loss, rel=1e-5)  # true per-micro-batch losses
    diff = np.abs(acc_model.dense.weight.asnumpy() - big_model.dense.weight.asnumpy()).max()
    assert diff < 1e-6, diff
    np.testing.assert_allclose(acc_model.dense.bias.asnumpy(), big_model.dense.bias.asnumpy(), atol=1e-6)
    assert int(acc_opt.global_step.asnumpy()) == 2  # optimizer updates, not micro-steps
    assert int(acc_step.micro_step.asnumpy()) == 8
    assert float(acc_opt.get_lr().asnumpy()) == pytest.approx(0.01)
    assert float(acc_step.last_grad_norm.asnumpy()) == pytest.approx(float(big_step.last_grad_norm.asnumpy()), rel=1e-5)


def test_overflowing_micro_batch_drops_the_whole_window(mode):
    model, optimizer, step = make_step(scaler="none", gradient_accumulation_steps=2)
    before = model.dense.weight.asnumpy().copy()
    bad_x = X[:4].copy()
    bad_x[0, 0] = np.inf
    assert run(step, bad_x, Y[:4])[2] is True
    assert run(step, X[4:], Y[4:])[2] is False
    np.testing.assert_array_equal(model.dense.weight.asnumpy(), before)
    assert int(optimizer.global_step.asnumpy()) == 0
    run(step, X[:4], Y[:4])
    run(step, X[4:], Y[4:])  # the buffer was reset: next window updates normally
    assert int(optimizer.global_step.asnumpy()) == 1


def _reference_grads():
    err = X @ W0.T - Y
    grad_w = 2 * err.T @ X / err.size
    grad_b = 2 * err.sum(0) / err.size
    return grad_w, grad_b


@pytest.mark.parametrize("clip_grad", ["none", "norm", "value"])
def test_grad_norm_and_clipping_with_native_sgd(mode, clip_grad):
    model = TinyModel()
    optimizer = nn.SGD(model.trainable_params(), learning_rate=1.0)
    step = TrainOneStepWrapper(ReturnLoss(model), optimizer, clip_grad=clip_grad, clip_value=0.5)
    run(step, X, Y)
    grad_w, grad_b = _reference_grads()
    norm = np.sqrt((grad_w**2).sum() + (grad_b**2).sum())
    assert float(step.last_grad_norm.asnumpy()) == pytest.approx(norm, rel=1e-5)  # pre-clip
    if clip_grad == "norm":
        grad_w = grad_w * 0.5 / (norm + 1e-6)
    elif clip_grad == "value":
        grad_w = np.clip(grad_w, -0.5, 0.5)
    np.testing.assert_allclose(model.dense.weight.asnumpy(), W0 - grad_w, atol=1e-5)


def test_scaler_state_dict_round_trip_and_checkpoint(mode, tmp_path):
    _, _, step = make_step(scaler="dynamic", scaler_config={"scale_value": 2.0**8, "scale_window": 3})
    run(step, X, Y)
    state = step.state_dict()
    assert float(state["loss_scaler.scale_value"]) == 2.0**8 and int(state["loss_scaler.counter"]) == 1
    _, _, fresh = make_step(scaler="dynamic", scaler_config={"scale_value": 2.0**8, "scale_window": 3})
    fresh.load_state_dict(state)
    assert fresh.state_dict()["loss_scaler.counter"] == 1 and fresh.state_dict()["micro_step"] == 1
    path = str(tmp_path / "step.ckpt")
    ms.save_checkpoint(step, path)
    names = set(ms.load_checkpoint(path))
    assert {"scale_value", "counter", "global_step", "exp_avg.dense.weight", "exp_avg_sq.dense.weight"} <= names


def test_tutorial_usage_with_mindspore_adamweightdecay(mode):
    model = TinyModel()
    optimizer = nn.AdamWeightDecay(model.trainable_params(), learning_rate=5e-3)
    train_model = TrainOneStepWrapper(ReturnLoss(model), optimizer)
    train_model.set_train()
    tuple_inputs = (Tensor(X), None, None, Tensor(Y))
    losses = [float(train_model(*tuple_inputs)[0].asnumpy()) for _ in range(3)]
    assert losses[2] < losses[0]


def test_bad_arguments_are_rejected():
    model = TinyModel()
    optimizer = AdamW(model.trainable_params())
    with pytest.raises(ValueError, match="clip_grad"):
        TrainOneStepWrapper(ReturnLoss(model), optimizer, clip_grad="global")
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        TrainOneStepWrapper(ReturnLoss(model), optimizer, gradient_accumulation_steps=0)
    with pytest.raises(ValueError, match="scaler"):
        TrainOneStepWrapper(ReturnLoss(model), optimizer, scaler="bf16")


DISTRIBUTED_SCRIPT = '''
import json, os, sys
import numpy as np
import mindspore as ms
from mindspore import Tensor, nn
sys.path.insert(0, os.environ["TEST_DIR"])
from test_train_step import TinyModel, X, Y
from mindone_ft.mindspore_adapter import MindSporeArguments, ReturnLoss, TrainOneStepWrapper, init_environment

rank, world_size = init_environment(MindSporeArguments(device_target="CPU"))
model = TinyModel()
step = TrainOneStepWrapper(ReturnLoss(model), nn.SGD(model.trainable_params(), learning_rate=1.0), scaler="none")
x, y = X[rank * 4: rank * 4 + 4], Y[rank * 4: rank * 4 + 4]
_, _, first = step(Tensor(x), None, None, Tensor(y))
weight_after_good = model.dense.weight.asnumpy().tolist()
bad = x.copy()
if rank == 1:
    bad[0, 0] = np.inf
_, _, second = step(Tensor(bad), None, None, Tensor(y))
print("RESULT " + json.dumps({"rank": rank, "world_size": world_size, "weight": weight_after_good,
                              "overflow": [bool(first.asnumpy()), bool(second.asnumpy())],
                              "unchanged": model.dense.weight.asnumpy().tolist() == weight_after_good}))
'''


@pytest.mark.slow
def test_data_parallel_averages_grads_and_agrees_on_overflow_with_msrun(tmp_path):
    """Two msrun workers on CPU: grads are averaged over ranks, and one rank's overflow skips the step on both."""
    import json
    import os

    from _msrun import run_msrun, worker_logs

    script = tmp_path / "dp_step.py"
    script.write_text(DISTRIBUTED_SCRIPT)
    job = run_msrun(script, log_dir=tmp_path / "logs", timeout=300,
                    env={"TEST_DIR": os.path.dirname(os.path.abspath(__file__))})
    results = []
    for log in worker_logs(tmp_path / "logs").values():
        lines = [ln for ln in log.splitlines() if ln.startswith("RESULT ")]
        assert lines, job.stdout[-2000:] + log[-3000:]
        results.append(json.loads(lines[-1][len("RESULT "):]))
    assert sorted(r["rank"] for r in results) == [0, 1] and all(r["world_size"] == 2 for r in results)
    grad_w, _ = _reference_grads()  # the full batch's gradient = mean of the two equal halves' gradients
    for r in results:
        np.testing.assert_allclose(np.array(r["weight"]), W0 - grad_w, atol=1e-5)
        assert r["overflow"] == [False, True] and r["unchanged"]
