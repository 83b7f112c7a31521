"""Smoke test: the native MindSpore fine-tuning example runs offline on a small slice and prints its metrics."""

import json
import math
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "bert", "finetune_in_native_mindspore.py")


def test_example_trains_evaluates_and_saves(tmp_path):
    output_dir = tmp_path / "model"
    env = dict(os.environ, GLOG_v="3", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    command = [
        sys.executable, EXAMPLE, "--max_train_samples", "64", "--max_eval_samples", "64",
        "--max_seq_length", "32", "--output_dir", str(output_dir),
    ]
    # cwd=tmp_path: MindSpore writes compile diagnostics (rank_0/) into the working directory.
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0
    assert math.isfinite(metrics["train_loss"]) and 0.3 < metrics["train_loss"] < 1.0  # ~ln 2 at the start
    assert metrics["train_samples_per_second"] > 0
    assert metrics["train_samples"] == 64 and metrics["eval_samples"] == 64
    assert (output_dir / "config.json").exists() and (output_dir / "model.safetensors").exists()
