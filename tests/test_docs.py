"""Every ```python block of docs/tutorial.md and docs/training_args.md runs, in order, on a small slice.

Sizes are shrunk by exact text substitutions (each must match, so the docs and this test cannot drift apart).
The default run swaps the 6-layer pretrained BERT for a 2-layer random one to keep compile time low; the slow
run (`--runslow`) executes the tutorial with the real pretrained model.
"""

import importlib.util
import os
import re
import sys

import numpy as np
import pytest

DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs")

SMALL = [
    ("select(range(2000))", "select(range(48))"),
    ("select(range(1000))", "select(range(40))"),
    ("max_length=128", "max_length=32"),
    ("length_buckets(128)", "length_buckets(32)"),
    ("num_train_epochs=2,", "num_train_epochs=1, logging_steps=2, disable_tqdm=True,"),
]
TINY_MODEL = [
    ("AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)", "tiny_model()"),
    ("BertForSequenceClassification.from_pretrained(model_path, num_labels=2)", "tiny_model()"),
]


def python_blocks(name: str) -> list:
    with open(os.path.join(DOCS, name), encoding="utf-8") as f:
        return re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)


def _substitute(code: str, substitutions) -> str:
    for old, new in substitutions:
        assert old in code, f"docs changed: {old!r} not found (update tests/test_docs.py)"
        code = code.replace(old, new)
    return code


def _tiny_model():
    from transformers import BertConfig

    import mindspore as ms
    from mindone_ft import BertForSequenceClassification

    ms.set_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=2)
    return BertForSequenceClassification(config)


def _run_tutorial(tmp_path, monkeypatch, substitutions):
    """Runs the tutorial's code as a module file: MindSpore compiles a Cell defined in it (the seed loop's
    `ReturnLoss`) from its source, so the code needs a real file and an importable module name."""
    monkeypatch.chdir(tmp_path)
    code = _substitute("\n".join(python_blocks("tutorial.md")), substitutions)
    path = tmp_path / "tutorial.py"
    path.write_text(code, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("tutorial", path)
    module = importlib.util.module_from_spec(spec)
    module.tiny_model = _tiny_model
    monkeypatch.setitem(sys.modules, "tutorial", module)
    spec.loader.exec_module(module)
    return vars(module)


def test_tutorial_runs(tmp_path, monkeypatch):
    ns = _run_tutorial(tmp_path, monkeypatch, SMALL + TINY_MODEL)
    assert ns["train_output"].global_step == 6  # 48 reviews / batch 8, one epoch
    assert 0.0 <= ns["metrics"]["eval_accuracy"] <= 1.0
    assert ns["predictions"].predictions.shape == (40, 2)
    assert (tmp_path / "output" / "tutorial_model" / "model.safetensors").exists()
    assert (tmp_path / "output" / "tutorial_trainer" / "checkpoint-6").is_dir()
    # The seed tutorial's native loop trains every epoch: 40 reviews, batch 1, 3 epochs.
    assert ns["step"] == ns["num_training_steps"] == 120 and np.isfinite(float(ns["loss"].asnumpy()))


@pytest.mark.slow
def test_tutorial_runs_with_the_pretrained_model(tmp_path, monkeypatch):
    ns = _run_tutorial(tmp_path, monkeypatch, SMALL)
    assert ns["metrics"]["eval_accuracy"] > 0.0


def test_training_args_doc_snippet_runs():
    code = "\n".join(python_blocks("training_args.md"))
    namespace = {}
    exec(compile(code, "docs/training_args.md", "exec"), namespace)
    assert namespace["training_args"].output_dir == "out" and namespace["ms_args"].mode == 0
