"""The package imports without torch and without printing anything."""

import os
import subprocess
import sys

# Blocking torch in sys.modules makes `import torch` raise ImportError, as on a machine without torch
# (transformers then takes its torch-free paths instead of importing the installed torch).
_IMPORT_WITHOUT_TORCH = """
import sys
sys.modules["torch"] = None
import mindone_ft
from mindone_ft import AutoModelForSequenceClassification, Trainer, TrainingArguments
from mindone_ft.mindspore_adapter import MindSporeArguments, init_environment, HF2MSDataset, TrainOneStepWrapper
assert "torch" not in [m for m in sys.modules if sys.modules[m] is not None and m.split(".")[0] == "torch"]
"""


def test_import_needs_no_torch_and_is_silent():
    env = {k: v for k, v in os.environ.items() if k not in ("GLOG_v", "TRANSFORMERS_NO_ADVISORY_WARNINGS")}
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_WITHOUT_TORCH], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == "", (result.stdout, result.stderr)


_TORCH_ADVICE = "PyTorch was not found"
# An example importing transformers itself (after mindone_ft), as users' scripts do, up to its argument parsing.
_EXAMPLE_WITHOUT_TORCH = """
import runpy, sys
sys.modules["torch"] = None
sys.argv = [{script!r}, "--help"]
runpy.run_path({script!r}, run_name="__main__")
"""


def test_examples_started_without_torch_do_not_claim_pytorch_is_missing():
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "bert",
                          "finetune_with_mindspore_trainer.py")
    env = {k: v for k, v in os.environ.items() if k != "TRANSFORMERS_NO_ADVISORY_WARNINGS"}
    result = subprocess.run([sys.executable, "-c", _EXAMPLE_WITHOUT_TORCH.format(script=script)], capture_output=True,
                            text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "--model_name_or_path" in result.stdout  # it got as far as printing its options
    assert _TORCH_ADVICE not in result.stdout + result.stderr
