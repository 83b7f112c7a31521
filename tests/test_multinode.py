"""One msrun job as two nodes on loopback, checked against the same job on one node.

The Trainer example (`examples/bert/finetune_with_mindspore_trainer.py`, the real offline MiniLM BERT and
reviews) trains 3 steps on 2 workers twice: once as one node (`--local_worker_num 2`) and once as two nodes
(two msrun launches with `--worker_num 2 --local_worker_num 1 --node_rank 0/1` and the same master address and
port, as on a cluster). The two-node job also shards the optimizer (`--fsdp shard_grad_op`, ZeRO-2), whose
numbers are those of plain data parallelism. Both must end with the same evaluation metrics and weights.

Node 1 is launched with `--join False`: in MindSpore 2.10 its msrun also tries to start the scheduler, fails to
bind the master port (node 0's scheduler holds it) and, with `--join True`, exits 1 although the job succeeds
(see ../shared/MINDSPORE_NOTES.md); its worker runs on and is waited for through its process group.
"""

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from _msrun import ROOT, free_port, kill_group, launch_msrun, run_msrun, worker_logs
from mindone_ft.utils import DEFAULT_MODEL
from mindone_ft.utils.offline import resolve_model_name

EXAMPLE = ROOT / "examples" / "bert" / "finetune_with_mindspore_trainer.py"
TIMEOUT_S = 480
ARGS = ["--max_train_samples", 32, "--max_eval_samples", 16, "--max_seq_length", 16, "--max_steps", 3,
        "--per_device_train_batch_size", 4, "--per_device_eval_batch_size", 8, "--logging_steps", 1, "--learning_rate", 1e-3,
        "--save_strategy", "no", "--disable_tqdm", "True", "--device_target", "CPU", "--seed", 42]


def final_metrics(log: str) -> dict:
    return json.loads([line for line in log.splitlines() if line.startswith("{")][-1])


def load_weights(folder) -> dict:
    from safetensors.numpy import load_file

    return load_file(str(folder / "model.safetensors"))


def wait_for_group(process, deadline: float) -> None:
    """Waits until every process of `process`'s group (msrun and the workers it started) has exited."""
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(1)
    raise AssertionError("node 1's worker still runs after the job ended on node 0")


@pytest.mark.slow
def test_two_nodes_on_loopback_match_one_node(tmp_path):
    one_node = run_msrun(EXAMPLE, [*ARGS, "--output_dir", tmp_path / "one_node"], log_dir=tmp_path / "one_logs",
                         timeout=TIMEOUT_S)
    one_logs = worker_logs(tmp_path / "one_logs")
    assert one_node.returncode == 0, one_node.stdout[-3000:] + one_logs.get(0, "")[-3000:]

    port = free_port()
    common = dict(workers=2, local_workers=1, master_port=port)
    two_args = [*ARGS, "--output_dir", tmp_path / "two_nodes", "--fsdp", "shard_grad_op"]
    node0 = launch_msrun(EXAMPLE, two_args, log_dir=tmp_path / "node0_logs", node_rank=0, join=True, **common)
    node1 = launch_msrun(EXAMPLE, two_args, log_dir=tmp_path / "node1_logs", node_rank=1, join=False, **common)
    deadline = time.monotonic() + TIMEOUT_S
    try:
        output0, _ = node0.communicate(timeout=TIMEOUT_S)
        node1.communicate(timeout=60)
        wait_for_group(node1, deadline)
    finally:
        kill_group(node0)
        kill_group(node1)
    logs0, logs1 = worker_logs(tmp_path / "node0_logs"), worker_logs(tmp_path / "node1_logs")
    assert node0.returncode == 0, output0[-3000:] + logs0.get(0, "")[-3000:] + logs1.get(1, "")[-3000:]
    assert list(logs0) == [0] and list(logs1) == [1]  # one worker per node: global ranks 0 and 1
    assert "Traceback" not in logs1[1], logs1[1][-3000:]

    one, two = final_metrics(one_logs[0]), final_metrics(logs0[0])
    assert one["epoch"] == two["epoch"] and 0.0 <= two["eval_accuracy"] <= 1.0
    assert two["eval_accuracy"] == one["eval_accuracy"]
    assert two["eval_loss"] == pytest.approx(one["eval_loss"], abs=1e-5)
    assert not any(line.startswith("{") for line in logs1[1].splitlines())  # only global rank 0 prints
    expected, got = load_weights(tmp_path / "one_node"), load_weights(tmp_path / "two_nodes")
    assert got.keys() == expected.keys()
    pretrained = load_weights(Path(resolve_model_name(DEFAULT_MODEL)))
    name = "encoder.layer.0.attention.self.query.weight"
    assert np.abs(expected[f"bert.{name}"] - pretrained[name]).max() > 5e-4  # training moved the weights
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=1e-5, err_msg=name)
