"""Small helpers and result types shared by `Trainer`, `TrainingArguments` and callbacks.

Names, fields and values mirror `transformers.trainer_utils` (5.23). They are re-implemented here because
`transformers.trainer_utils` imports torch whenever torch is installed, and this library never imports torch.
"""

import inspect
import os
import random
import re
import time
from enum import Enum
from typing import Any, NamedTuple, Optional, Union

import numpy as np

PREFIX_CHECKPOINT_DIR = "checkpoint"
_re_checkpoint = re.compile(r"^" + PREFIX_CHECKPOINT_DIR + r"\-(\d+)$")


class ExplicitEnum(str, Enum):
    """An `Enum` whose error message lists the valid values (like transformers' `ExplicitEnum`)."""

    @classmethod
    def _missing_(cls, value):
        raise ValueError(
            f"{value!r} is not a valid {cls.__name__}, please select one of {list(cls._value2member_map_.keys())}"
        )


class IntervalStrategy(ExplicitEnum):
    NO = "no"
    STEPS = "steps"
    EPOCH = "epoch"


class SaveStrategy(ExplicitEnum):
    NO = "no"
    STEPS = "steps"
    EPOCH = "epoch"
    BEST = "best"


class SchedulerType(ExplicitEnum):
    """The learning-rate schedules `optimization.get_scheduler` implements (a subset of transformers')."""

    LINEAR = "linear"
    COSINE = "cosine"
    COSINE_WITH_RESTARTS = "cosine_with_restarts"
    POLYNOMIAL = "polynomial"
    CONSTANT = "constant"
    CONSTANT_WITH_WARMUP = "constant_with_warmup"
    INVERSE_SQRT = "inverse_sqrt"
    COSINE_WITH_MIN_LR = "cosine_with_min_lr"


class EvalPrediction:
    """Evaluation output passed to `compute_metrics`: `predictions` and `label_ids` as numpy arrays.

    Unpacks like a tuple, `predictions, labels = eval_pred`, as in transformers.

    Args:
        predictions (`np.ndarray` or tuple of `np.ndarray`): model outputs (logits) on the whole eval set.
        label_ids (`np.ndarray` or tuple of `np.ndarray`, *optional*): targets, when the dataset has labels; a tuple
            in `label_names` order when there are several (question answering: start and end positions).
        inputs (`np.ndarray`, *optional*): input ids, when `include_for_metrics` asks for them.
        losses (`np.ndarray`, *optional*): per-batch losses, when `include_for_metrics` asks for them.
    """

    def __init__(self, predictions, label_ids=None, inputs=None, losses=None):
        self.predictions = predictions
        self.label_ids = label_ids
        self.inputs = inputs
        self.losses = losses
        self.elements = (predictions, label_ids)
        if inputs is not None:
            self.elements += (inputs,)
        if losses is not None:
            self.elements += (losses,)

    def __iter__(self):
        return iter(self.elements)

    def __getitem__(self, idx):
        return self.elements[idx]

    def __len__(self):
        return len(self.elements)


class EvalLoopOutput(NamedTuple):
    predictions: Union[np.ndarray, tuple]
    label_ids: Optional[Union[np.ndarray, tuple]]
    metrics: Optional[dict[str, float]]
    num_samples: Optional[int]


class PredictionOutput(NamedTuple):
    predictions: Union[np.ndarray, tuple]
    label_ids: Optional[Union[np.ndarray, tuple]]
    metrics: Optional[dict[str, float]]


class TrainOutput(NamedTuple):
    global_step: int
    training_loss: float
    metrics: dict[str, float]


def find_labels(model: Any) -> list[str]:
    """The label arguments of a model (class or instance), by transformers' `find_labels` rule on `construct`:
    arguments whose name contains "label", plus `start_positions` and `end_positions` for question answering
    models (class name containing "QuestionAnswering").

    Example: `["labels"]` for `BertForSequenceClassification`, `["labels", "next_sentence_label"]` for
    `BertForPreTraining`, `["start_positions", "end_positions"]` for `BertForQuestionAnswering`.
    """
    model_class = model if isinstance(model, type) else type(model)
    names = [name for name in inspect.signature(model_class.construct).parameters if name != "self"]
    if "QuestionAnswering" in model_class.__name__:
        return [name for name in names if "label" in name or name in ("start_positions", "end_positions")]
    return [name for name in names if "label" in name]


def set_seed(seed: int) -> None:
    """Seeds python's `random`, numpy and MindSpore (parameter init, dropout).

    Args:
        seed (`int`): the seed.
    """
    import mindspore as ms

    random.seed(seed)
    np.random.seed(seed)
    ms.set_seed(seed)


def get_last_checkpoint(folder: str) -> Optional[str]:
    """The `checkpoint-N` sub-folder of `folder` with the largest N, or `None` if there is none.

    Only complete checkpoints count: the atomic writer renames a folder to `checkpoint-N` once every file is in.
    """
    if not os.path.isdir(folder):
        return None
    checkpoints = [
        path
        for path in os.listdir(folder)
        if _re_checkpoint.search(path) is not None and os.path.isdir(os.path.join(folder, path))
    ]
    if not checkpoints:
        return None
    return os.path.join(folder, max(checkpoints, key=lambda x: int(_re_checkpoint.search(x).groups()[0])))


def sorted_checkpoints(folder: str) -> list[str]:
    """Paths of the `checkpoint-N` folders in `folder`, oldest (smallest N) first."""
    if not os.path.isdir(folder):
        return []
    found = []
    for name in os.listdir(folder):
        match = _re_checkpoint.search(name)
        if match is not None and os.path.isdir(os.path.join(folder, name)):
            found.append((int(match.groups()[0]), os.path.join(folder, name)))
    return [path for _, path in sorted(found)]


def speed_metrics(split: str, start_time: float, num_samples: Optional[int] = None, num_steps=None) -> dict:
    """`{split}_runtime`, `{split}_samples_per_second` and `{split}_steps_per_second`, as transformers logs them."""
    runtime = time.time() - start_time
    result = {f"{split}_runtime": round(runtime, 4)}
    if runtime == 0:
        return result
    if num_samples is not None:
        result[f"{split}_samples_per_second"] = round(num_samples / runtime, 3)
    if num_steps is not None:
        result[f"{split}_steps_per_second"] = round(num_steps / runtime, 3)
    return result


def denumpify_detensorize(metrics: Any) -> Any:
    """Turns numpy scalars/arrays (and MindSpore tensors) in `metrics` into python numbers, so they are JSON-able."""
    if isinstance(metrics, (list, tuple)):
        return type(metrics)(denumpify_detensorize(m) for m in metrics)
    if isinstance(metrics, dict):
        return type(metrics)({k: denumpify_detensorize(v) for k, v in metrics.items()})
    if isinstance(metrics, np.generic):
        return metrics.item()
    if hasattr(metrics, "asnumpy") and getattr(metrics, "size", 2) == 1:
        return metrics.asnumpy().item()
    return metrics


def has_length(dataset: Any) -> bool:
    """Whether `len(dataset)` works."""
    try:
        return len(dataset) is not None
    except TypeError:
        return False
