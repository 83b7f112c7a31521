"""ZeRO optimizer sharding (stages 1 and 2): configuration, the sharded update, and 2 CPU workers under msrun.

The msrun tests share one launch (`tests/_zero_worker.py`: plain data parallelism, ZeRO-1, ZeRO-2, a resumed
ZeRO-2 run and accumulated ZeRO-2, one after the other; 2.5-4 min on 2 shared cores). Like
`test_distributed.py` they are the CI proof of the feature and are not marked slow.
"""

import json

import numpy as np
import pytest

import mindspore as ms

from _msrun import ACROSS_REDUCTIONS_ATOL, ROOT, parameters_compared_across_reductions, run_msrun, worker_logs
from mindone_ft import TrainingArguments
from mindone_ft.mindspore_adapter import AdamW, ZeroAdamW
from mindone_ft.mindspore_adapter.zero import optimizer_state_size, shard_bounds

WORKER = ROOT / "tests" / "_zero_worker.py"
WORLD_SIZE = 2
TIMEOUT_S = 420


# ---------------------------------------------------------------------- configuration (no msrun)
def test_deepspeed_and_fsdp_select_the_zero_stage(tmp_path):
    config = {"zero_optimization": {"stage": 2, "overlap_comm": True, "reduce_bucket_size": 5e8},
              "train_micro_batch_size_per_gpu": "auto", "fp16": {"enabled": "auto"}}
    path = tmp_path / "ds_config.json"
    path.write_text(json.dumps(config))
    assert TrainingArguments("o").zero_stage == 0
    assert TrainingArguments("o", deepspeed=config).zero_stage == 2
    assert TrainingArguments("o", deepspeed=str(path)).zero_stage == 2
    assert TrainingArguments("o", deepspeed='{"zero_optimization": {"stage": 1}}').zero_stage == 1
    assert TrainingArguments("o", fsdp="shard_grad_op").zero_stage == 2
    assert TrainingArguments("o", fsdp=["shard_grad_op"]).zero_stage == 2


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"fsdp": "full_shard"}, r"fsdp=.*full_shard.*stage 2.*shard_grad_op.*stage.*1 or 2"),
        ({"fsdp": "shard_grad_op offload"}, "fsdp"),
        ({"deepspeed": {"zero_optimization": {"stage": 3}}}, r"stage=3.*stage 1.*or 2"),
        ({"deepspeed": {"zero_optimization": {"stage": 2, "offload_optimizer": {"device": "cpu"}}}},
         r"deepspeed.*zero_optimization.offload_optimizer"),
        ({"deepspeed": {"zero_optimization": {"stage": 1}, "optimizer": {"type": "Adam"}}}, r"deepspeed.*'optimizer'"),
        ({"deepspeed": {"train_batch_size": 8}}, r"deepspeed.*zero_optimization.stage"),
        ({"deepspeed": "missing.json"}, "deepspeed"),
        ({"deepspeed": {"zero_optimization": {"stage": 1}}, "fsdp": "shard_grad_op"}, "not both"),
        ({"fsdp": "shard_grad_op", "fsdp_config": {"min_num_params": 1}}, "fsdp_config"),
    ],
)
def test_other_deepspeed_and_fsdp_content_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainingArguments("o", **kwargs)


def test_shard_bounds_cover_every_element_once():
    for size in (1, 2, 7, 64, 1001):
        for world in (1, 2, 3, 8):
            covered = []
            for rank in range(world):
                start, stop, length = shard_bounds(size, rank, world)
                assert length == -(-size // world) and stop - start <= length
                covered += range(start, stop)
            assert covered == list(range(size))


# ---------------------------------------------------------------------- the sharded update (one process)
def test_each_rank_updates_its_slice_exactly_as_full_adamw():
    """Both ranks' slices after 3 steps, put together, equal the unsharded AdamW's parameters and moments."""
    rng = np.random.default_rng(0)
    shapes = {"dense.weight": (5, 3), "dense.bias": (5,), "scalar_norm.weight": (1,)}  # 15, 5, 1 elements
    init = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}
    grads = [[rng.standard_normal(shape).astype(np.float32) for shape in shapes.values()] for _ in range(3)]

    def parameters():
        return [ms.Parameter(ms.Tensor(value), name=name) for name, value in init.items()]

    full = AdamW(parameters(), learning_rate=[1e-2, 5e-3, 1e-3], weight_decay=0.1)
    for step in grads:
        full(tuple(ms.Tensor(g) for g in step), ms.Tensor(0.5, ms.float32))
    expected = full.state_dict()
    got = {}
    for rank in range(WORLD_SIZE):
        zero = ZeroAdamW(AdamW(parameters(), learning_rate=[1e-2, 5e-3, 1e-3], weight_decay=0.1), 1, rank,
                         WORLD_SIZE)
        for step in grads:
            zero(tuple(ms.Tensor(g) for g in step), ms.Tensor(0.5, ms.float32))
            for shard, param, start, stop in zip(zero.shard_parameters, zero.parameters, zero.starts, zero.stops):
                flat = param.asnumpy().reshape(-1)  # the all-gather, for this rank's elements
                flat[start:stop] = shard.asnumpy()[: stop - start]
                param.set_data(ms.Tensor(flat.reshape(param.shape)))
        state = zero.state_dict()
        assert optimizer_state_size(zero) == 2 * (8 + 3 + 1)  # ceil(15/2) + ceil(5/2) + ceil(1/2), twice
        for key, value in state.items():
            got.setdefault(key, []).append(value)
        for name, param in zip(init, zero.parameters):
            got.setdefault(f"param.{name}.rank{rank}", param.asnumpy())
    assert int(got["global_step"][0]) == int(expected["global_step"]) == 3
    for key in expected:
        if key == "global_step":
            continue
        joined = np.concatenate(got[key])[: expected[key].size]
        np.testing.assert_allclose(joined, expected[key].reshape(-1), rtol=0, atol=1e-7, err_msg=key)
    for name, param in zip(init, full.parameters):
        start, stop, _ = shard_bounds(param.size, 0, WORLD_SIZE)
        np.testing.assert_allclose(got[f"param.{name}.rank0"].reshape(-1)[start:stop],
                                   param.asnumpy().reshape(-1)[start:stop], rtol=0, atol=1e-7, err_msg=name)


def test_unsharded_state_loads_into_each_rank_slice():
    params = [ms.Parameter(ms.Tensor(np.zeros((3, 3), np.float32)), name="w")]
    state = {"global_step": np.array(4, np.int32), "exp_avg.w": np.arange(9, dtype=np.float32).reshape(3, 3),
             "exp_avg_sq.w": np.arange(9, 18, dtype=np.float32).reshape(3, 3)}
    rank1 = ZeroAdamW(AdamW(params), 2, 1, WORLD_SIZE)
    rank1.load_full_state_dict(state)
    np.testing.assert_array_equal(rank1.state_dict()["exp_avg.w"], [5, 6, 7, 8, 0])  # elements 5..8 + padding
    with pytest.raises(ValueError, match="another world size"):
        ZeroAdamW(AdamW(params), 2, 0, 3).load_state_dict(rank1.state_dict())  # a 5-element slice, not 3


# ---------------------------------------------------------------------- 2 CPU workers under msrun
@pytest.fixture(scope="module")
def zero_job(tmp_path_factory):
    """`(out, results)`: `results[run][rank] = (json, parameters)` from one msrun job of `_zero_worker.py`."""
    base = tmp_path_factory.mktemp("zero")
    out, log_dir = base / "out", base / "msrun_logs"
    out.mkdir()
    job = run_msrun(WORKER, [out], log_dir=log_dir, timeout=TIMEOUT_S)
    assert job.returncode == 0, job.stdout[-3000:] + "\n".join(t[-3000:] for t in worker_logs(log_dir).values())
    results = {}
    for path in sorted(out.glob("*_rank*.json")):
        run, rank = path.stem.rsplit("_rank", 1)
        params = np.load(path.with_suffix(".npz"))
        results.setdefault(run, {})[int(rank)] = (json.loads(path.read_text()), {k: params[k] for k in params.files})
    return out, results


@pytest.mark.parametrize("run,baseline", [("zero1", "dp"), ("zero2", "dp"), ("zero2_gas2", "dp_gas2")])
def test_zero_ends_on_the_weights_of_plain_data_parallel(zero_job, run, baseline):
    _, results = zero_job
    (info, _), (base_info, base_params) = results[run][0], results[baseline][0]
    assert info["optimizer"] == "ZeroAdamW" and base_info["optimizer"] == "AdamW"
    assert info["logged_losses"] == base_info["logged_losses"]
    np.testing.assert_allclose(info["grad_norms"], base_info["grad_norms"], rtol=1e-5)  # clipping is on
    compared = parameters_compared_across_reductions(base_params)
    for rank in range(WORLD_SIZE):
        params = results[run][rank][1]
        assert params.keys() == base_params.keys()
        for name in compared:
            np.testing.assert_allclose(params[name], base_params[name], rtol=0, atol=ACROSS_REDUCTIONS_ATOL,
                                       err_msg=f"{rank}:{name}")
    moved = max(np.abs(base_params[k] - results["dp"][0][1][k]).max() for k in base_params)
    assert baseline == "dp" or moved > 1e-3  # the accumulated run trained differently from the plain one


def test_optimizer_state_per_rank_is_one_over_world(zero_job):
    out, results = zero_job
    from safetensors.numpy import load_file

    full = results["dp"][0][0]
    assert full["optimizer_state_size"] == full["full_state_size"]
    params = results["dp"][0][1]
    expected = 2 * sum(-(-v.size // WORLD_SIZE) for v in params.values())  # ceil(size / world) per parameter
    assert expected - full["full_state_size"] / WORLD_SIZE < len(params)  # padding: under one element each
    for run in ("zero1", "zero2", "zero2_resumed", "zero2_gas2"):
        for rank in range(WORLD_SIZE):
            assert results[run][rank][0]["optimizer_state_size"] == expected, (run, rank)
    checkpoint = out / "zero2" / "checkpoint-2"
    assert not (checkpoint / "optimizer.safetensors").exists()
    for rank in range(WORLD_SIZE):
        shard = load_file(str(checkpoint / f"optimizer-rank{rank:05d}-of-{WORLD_SIZE:05d}.safetensors"))
        assert sum(v.size for k, v in shard.items() if k != "global_step") == expected
        assert int(shard["global_step"]) == 2
    assert not list((out / "zero2").glob(".tmp-*"))  # staging folders are gone


def test_zero_resume_is_exact(zero_job):
    _, results = zero_job
    for rank in range(WORLD_SIZE):
        (info, params), (resumed_info, resumed) = results["zero2"][rank], results["zero2_resumed"][rank]
        assert resumed_info["logged_losses"] == info["logged_losses"]
        for name in params:
            np.testing.assert_array_equal(resumed[name], params[name], err_msg=f"{rank}:{name}")


def test_zero_checkpoint_refuses_another_world_size(zero_job):
    """One process (world size 1) cannot resume shards written by 2 ranks: a clear error, before training."""
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from _dp_trainer_worker import TRAIN_ROWS, tiny_bert, tiny_dataset

    from mindone_ft import Trainer

    out, _ = zero_job
    args = TrainingArguments(output_dir=str(out / "single"), per_device_train_batch_size=4, max_steps=4,
                             fsdp="shard_grad_op", disable_tqdm=True, report_to="none")
    trainer = Trainer(model_init=tiny_bert, args=args, train_dataset=tiny_dataset(TRAIN_ROWS, seed=1))
    with pytest.raises(ValueError, match=r"written by 2 ranks.*no ZeRO \(1 rank\).*--worker_num=2"):
        trainer.train(resume_from_checkpoint=str(out / "zero2" / "checkpoint-2"))
