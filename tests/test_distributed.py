"""Data-parallel training with msrun on 2 CPU workers, checked against one process with the double batch.

One msrun job (`tests/_dp_trainer_worker.py`: a tiny random BERT, 3 Trainer steps, a checkpoint, a sharded
evaluation) and one single-process run of the same script are shared by all tests of this file; they run side
by side and take about 1.5 min on 2 cores. Each is killed, failing the tests, if it runs past its bound.
"""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from _msrun import ACROSS_REDUCTIONS_ATOL, ROOT, parameters_compared_across_reductions, run_msrun, worker_logs

WORKER = ROOT / "tests" / "_dp_trainer_worker.py"
PER_RANK_BATCH, WORLD_SIZE = 4, 2
TIMEOUT_S = 240


def load_results(out) -> list:
    """Per-rank `(json results, parameters)` written by the worker script, in rank order."""
    results = []
    for rank in range(len(list(out.glob("rank*.json")))):
        params = np.load(out / f"rank{rank}.npz")
        results.append((json.loads((out / f"rank{rank}.json").read_text()), {k: params[k] for k in params.files}))
    return results


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """`(ranks, single, log_dir)`: results of 2 msrun ranks x batch 4 and of 1 process x batch 8."""
    base = tmp_path_factory.mktemp("distributed")
    single_out, dp_out, log_dir = base / "single", base / "dp", base / "msrun_logs"
    single_out.mkdir()
    dp_out.mkdir()
    single = subprocess.Popen(
        [sys.executable, str(WORKER), str(single_out), "--batch_size", str(PER_RANK_BATCH * WORLD_SIZE)],
        cwd=base, env=dict(os.environ, GLOG_v="3"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        job = run_msrun(WORKER, [dp_out, "--batch_size", PER_RANK_BATCH], log_dir=log_dir, timeout=TIMEOUT_S)
        single_output, _ = single.communicate(timeout=TIMEOUT_S)
    finally:
        single.kill()  # no-op when it has finished
    assert single.returncode == 0, single_output[-3000:]
    assert job.returncode == 0, job.stdout[-3000:] + "\n".join(t[-3000:] for t in worker_logs(log_dir).values())
    ranks = load_results(dp_out)
    assert [r["rank"] for r, _ in ranks] == [0, 1] and all(r["world_size"] == WORLD_SIZE for r, _ in ranks)
    return ranks, load_results(single_out)[0], log_dir


def test_two_ranks_match_one_process_with_double_batch(runs):
    """2 ranks x batch 4 give the parameters of 1 process x batch 8 after 3 AdamW steps (dropout off)."""
    ranks, (_, single_params), _ = runs
    rank0_params = ranks[0][1]
    assert rank0_params.keys() == single_params.keys()
    compared = parameters_compared_across_reductions(single_params)
    for name in compared:
        np.testing.assert_allclose(rank0_params[name], single_params[name], rtol=0, atol=ACROSS_REDUCTIONS_ATOL,
                                   err_msg=name)


def test_parameters_identical_on_every_rank(runs):
    ranks, _, _ = runs
    (_, params0), (_, params1) = ranks
    for name in params0:
        np.testing.assert_array_equal(params0[name], params1[name], err_msg=name)


def test_ranks_train_on_disjoint_shards_covering_the_data(runs):
    ranks, (single, _), _ = runs
    rows0, rows1 = (set(r["trained_rows"]) for r, _ in ranks)
    assert not rows0 & rows1 and sorted(rows0 | rows1) == sorted(single["trained_rows"])


def test_logged_loss_is_the_mean_over_ranks(runs):
    ranks, (single, _), _ = runs
    (rank0, _), (rank1, _) = ranks
    assert max(abs(a - b) for a, b in zip(rank0["local_losses"], rank1["local_losses"])) > 1e-2  # ranks differ
    for step, logged in enumerate(rank0["logged_losses"]):
        assert logged == round((rank0["local_losses"][step] + rank1["local_losses"][step]) / 2, 4)
        assert logged == pytest.approx(single["local_losses"][step], abs=1e-4)  # the global batch's loss
    assert rank1["logged_losses"] == rank0["logged_losses"]
    assert len(rank0["logged_losses"]) == 3


def test_sharded_evaluation_equals_single_process_evaluation(runs):
    """13 eval rows over 2 ranks (7 + 6, batches of 4): gathered outputs equal an unsharded evaluation."""
    ranks, (single, _), _ = runs
    for result, _ in ranks:
        direct = result["direct"]  # one forward pass over all 13 rows in this process, same parameters
        np.testing.assert_allclose(result["predictions"], direct["logits"], atol=1e-5)
        assert result["label_ids"] == single["label_ids"]
        assert result["metrics"]["eval_accuracy"] == direct["eval_accuracy"] == single["metrics"]["eval_accuracy"]
        assert result["metrics"]["eval_loss"] == pytest.approx(direct["eval_loss"], abs=1e-5)
        assert result["metrics"]["eval_loss"] == pytest.approx(single["metrics"]["eval_loss"], abs=1e-5)


def test_only_rank_zero_writes_checkpoints_and_logs(runs):
    ranks, _, log_dir = runs
    out = log_dir.parent / "dp"
    assert (out / "run" / "checkpoint-3" / "model.safetensors").is_file()
    assert not (out / "run_rank1").exists()  # rank 1's output_dir: nothing may be written there
    logs = worker_logs(log_dir)
    assert "'loss'" in logs[0] and "'eval_loss'" in logs[0]
    assert "'loss'" not in logs[1] and "'eval_loss'" not in logs[1]


@pytest.mark.slow
def test_dying_worker_fails_the_job_with_a_clear_message(tmp_path):
    """Rank 1 exits at step 1: msrun must fail with its error message instead of waiting on rank 0 forever."""
    start = time.monotonic()
    job = run_msrun(WORKER, [tmp_path, "--batch_size", 4, "--die_at_step", 1], log_dir=tmp_path / "logs",
                    timeout=TIMEOUT_S)
    elapsed = time.monotonic() - start
    assert job.returncode != 0
    assert "Distributed job exited with exception" in job.stdout, job.stdout[-3000:]
    assert elapsed < 180, elapsed


@pytest.mark.slow
def test_native_example_under_msrun(tmp_path):
    """The native MindSpore example trains data-parallel on the real offline BERT and reviews."""
    job = run_msrun(ROOT / "examples" / "bert" / "finetune_in_native_mindspore.py",
                    ["--max_train_samples", 64, "--max_eval_samples", 64, "--per_device_train_batch_size", 8],
                    log_dir=tmp_path / "logs", timeout=500)
    logs = worker_logs(tmp_path / "logs")
    assert job.returncode == 0, job.stdout[-3000:] + logs.get(0, "")[-3000:]
    metrics = json.loads([line for line in logs[0].splitlines() if line.startswith("{")][-1])
    assert metrics["train_samples"] == 64 and 0.0 <= metrics["eval_accuracy"] <= 1.0
    assert not any(line.startswith('{"epoch"') for line in logs[1].splitlines())  # only rank 0 prints
