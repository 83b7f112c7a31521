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
