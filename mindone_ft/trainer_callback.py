"""Callbacks that customise the `Trainer` loop: the same API as `transformers.trainer_callback` (5.23).

Re-implemented because `transformers.trainer_callback` imports torch when torch is installed. A callback
written for Hugging Face's `Trainer` (subclassing `TrainerCallback`, reading `state`, setting `control`
flags) works unchanged after switching its import to `mindone_ft`. `trainer_state.json` has the same fields
and layout as Hugging Face's, so tools that read it keep working.
"""

import dataclasses
import json
import logging
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
from tqdm.auto import tqdm

from .trainer_utils import IntervalStrategy, SaveStrategy, has_length

logger = logging.getLogger(__name__)


@dataclass
class TrainerState:
    """The `Trainer`'s inner state, saved as `trainer_state.json` in every checkpoint and given to callbacks.

    One step is one update step: with `gradient_accumulation_steps=n` it covers `n` batches.

    Args:
        epoch (`float`): epochs done so far, the fraction being the part of the current epoch completed.
        global_step (`int`): update steps done.
        max_steps (`int`): update steps of the whole run.
        logging_steps, eval_steps, save_steps (`int`): absolute intervals (ratios in the arguments resolved).
        train_batch_size (`int`, *optional*): per-device train batch size.
        num_train_epochs (`int`): epochs of the whole run.
        num_input_tokens_seen (`int`): not tracked, kept for file compatibility.
        total_flos (`float`): not tracked, kept for file compatibility.
        log_history (`list[dict]`): every log entry of the run.
        best_metric (`float`, *optional*): best value of `metric_for_best_model` so far.
        best_global_step (`int`, *optional*): step at which `best_metric` was reached.
        best_model_checkpoint (`str`, *optional*): checkpoint folder of the best model.
        is_local_process_zero, is_world_process_zero (`bool`): whether this process is the (local/global) main one.
        stateful_callbacks (`dict`): states of callbacks that implement `ExportableState`.
    """

    epoch: float = 0
    global_step: int = 0
    max_steps: int = 0
    logging_steps: int = 500
    eval_steps: int = 500
    save_steps: int = 500
    train_batch_size: Optional[int] = None
    num_train_epochs: int = 0
    num_input_tokens_seen: int = 0
    total_flos: float = 0
    log_history: list = None
    best_metric: Optional[float] = None
    best_global_step: Optional[int] = None
    best_model_checkpoint: Optional[str] = None
    is_local_process_zero: bool = True
    is_world_process_zero: bool = True
    is_hyper_param_search: bool = False
    trial_name: Optional[str] = None
    trial_params: Optional[dict] = None
    stateful_callbacks: Optional[dict] = None

    def __post_init__(self):
        if self.log_history is None:
            self.log_history = []
        if self.stateful_callbacks is None:
            self.stateful_callbacks = {}
        elif not isinstance(self.stateful_callbacks, dict):
            states = {}
            for callback in self.stateful_callbacks:
                if not isinstance(callback, ExportableState):
                    raise TypeError(f"Stateful callbacks must inherit `ExportableState`, got {type(callback)}")
                name = callback.__class__.__name__
                if name in states:
                    states[name] = (states[name] if isinstance(states[name], list) else [states[name]]) + [
                        callback.state()
                    ]
                else:
                    states[name] = callback.state()
            self.stateful_callbacks = states

    def save_to_json(self, json_path: str) -> None:
        """Writes the state as JSON (same layout as transformers: indent 2, sorted keys)."""
        json_string = json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"
        with open(json_path, "w", encoding="utf-8") as f:
            f.write(json_string)

    @classmethod
    def load_from_json(cls, json_path: str) -> "TrainerState":
        """Reads a state written by `save_to_json` (or by Hugging Face's Trainer)."""
        with open(json_path, encoding="utf-8") as f:
            data = json.load(f)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def compute_steps(self, args, max_steps: int) -> None:
        """Resolves `logging_steps`/`eval_steps`/`save_steps` given as a ratio (< 1) of `max_steps`."""
        for kind in ("logging", "eval", "save"):
            num_steps = getattr(args, f"{kind}_steps")
            if num_steps is not None:
                if num_steps < 1:
                    num_steps = math.ceil(max_steps * num_steps)
                setattr(self, f"{kind}_steps", int(num_steps))


class ExportableState:
    """Mixin for callbacks whose state is saved in checkpoints and restored on resume.

    Implement `state()` returning `{"args": {...constructor kwargs}, "attributes": {...}}`.
    """

    def state(self) -> dict:
        raise NotImplementedError("You must implement a `state` function to utilize this class.")

    @classmethod
    def from_state(cls, state):
        instance = cls(**state["args"])
        for k, v in state["attributes"].items():
            setattr(instance, k, v)
        return instance


@dataclass
class TrainerControl(ExportableState):
    """Switches callbacks flip to steer the training loop.

    Args:
        should_training_stop (`bool`): stop training (never reset).
        should_epoch_stop (`bool`): end the current epoch (reset at the next epoch).
        should_save (`bool`): save a checkpoint at this step (reset at the next step).
        should_evaluate (`bool`): evaluate at this step (reset at the next step).
        should_log (`bool`): log at this step (reset at the next step).
    """

    should_training_stop: bool = False
    should_epoch_stop: bool = False
    should_save: bool = False
    should_evaluate: bool = False
    should_log: bool = False

    def _new_training(self):
        self.should_training_stop = False

    def _new_epoch(self):
        self.should_epoch_stop = False

    def _new_step(self):
        self.should_save = False
        self.should_evaluate = False
        self.should_log = False

    def state(self) -> dict:
        return {"args": dataclasses.asdict(self), "attributes": {}}


class TrainerCallback:
    """Base class of callbacks: override the events you need. Every event receives `args`
    (`TrainingArguments`), `state` (`TrainerState`), `control` (`TrainerControl`) and keyword arguments
    `model`, `processing_class`, `optimizer`, `lr_scheduler`, `train_dataloader`, `eval_dataloader`, and
    `metrics` (on_evaluate/on_predict) or `logs` (on_log).

    An event may return a `TrainerControl` (or modify the one it receives) to steer the loop.

    Example:

    ```python
    class PrinterCallback(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_local_process_zero:
                print(logs)
    ```
    """

    def on_init_end(self, args, state, control, **kwargs):
        """At the end of `Trainer.__init__`."""

    def on_train_begin(self, args, state, control, **kwargs):
        """At the beginning of training."""

    def on_train_end(self, args, state, control, **kwargs):
        """At the end of training."""

    def on_epoch_begin(self, args, state, control, **kwargs):
        """At the beginning of an epoch."""

    def on_epoch_end(self, args, state, control, **kwargs):
        """At the end of an epoch."""

    def on_step_begin(self, args, state, control, **kwargs):
        """At the beginning of an update step (before its first accumulated batch)."""

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        """Before the optimizer step (the train step runs forward, backward and update in one graph here, so
        this fires right before that graph's last accumulated batch)."""

    def on_optimizer_step(self, args, state, control, **kwargs):
        """After the optimizer step."""

    def on_substep_end(self, args, state, control, **kwargs):
        """At the end of an accumulated batch that did not update the parameters."""

    def on_step_end(self, args, state, control, **kwargs):
        """At the end of an update step."""

    def on_evaluate(self, args, state, control, **kwargs):
        """After an evaluation (`metrics` keyword)."""

    def on_predict(self, args, state, control, metrics, **kwargs):
        """After a successful prediction."""

    def on_save(self, args, state, control, **kwargs):
        """After a checkpoint save."""

    def on_log(self, args, state, control, **kwargs):
        """After logging (`logs` keyword)."""

    def on_prediction_step(self, args, state, control, **kwargs):
        """After each evaluation/prediction batch."""

    def on_push_begin(self, args, state, control, **kwargs):
        """Before `Trainer.push_to_hub` uploads."""


class CallbackHandler(TrainerCallback):
    """Calls every registered callback in order for each event."""

    def __init__(self, callbacks, model, processing_class, optimizer, lr_scheduler):
        self.callbacks = []
        for cb in callbacks:
            self.add_callback(cb)
        self.model = model
        self.processing_class = processing_class
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.train_dataloader = None
        self.eval_dataloader = None

    def add_callback(self, callback):
        cb = callback() if isinstance(callback, type) else callback
        cb_class = callback if isinstance(callback, type) else callback.__class__
        if cb_class in [c.__class__ for c in self.callbacks]:
            logger.warning(f"You are adding a {cb_class} to the callbacks of this Trainer, but there is already one.")
        self.callbacks.append(cb)

    def pop_callback(self, callback):
        for cb in self.callbacks:
            if (isinstance(callback, type) and isinstance(cb, callback)) or cb == callback:
                self.callbacks.remove(cb)
                return cb

    def remove_callback(self, callback):
        self.pop_callback(callback)

    @property
    def callback_list(self) -> str:
        return "\n".join(cb.__class__.__name__ for cb in self.callbacks)

    def on_init_end(self, args, state, control):
        return self.call_event("on_init_end", args, state, control)

    def on_train_begin(self, args, state, control):
        control.should_training_stop = False
        return self.call_event("on_train_begin", args, state, control)

    def on_train_end(self, args, state, control):
        return self.call_event("on_train_end", args, state, control)

    def on_epoch_begin(self, args, state, control):
        control.should_epoch_stop = False
        return self.call_event("on_epoch_begin", args, state, control)

    def on_epoch_end(self, args, state, control):
        return self.call_event("on_epoch_end", args, state, control)

    def on_step_begin(self, args, state, control):
        control.should_log = False
        control.should_evaluate = False
        control.should_save = False
        return self.call_event("on_step_begin", args, state, control)

    def on_pre_optimizer_step(self, args, state, control):
        return self.call_event("on_pre_optimizer_step", args, state, control)

    def on_optimizer_step(self, args, state, control):
        return self.call_event("on_optimizer_step", args, state, control)

    def on_substep_end(self, args, state, control):
        return self.call_event("on_substep_end", args, state, control)

    def on_step_end(self, args, state, control):
        return self.call_event("on_step_end", args, state, control)

    def on_evaluate(self, args, state, control, metrics):
        control.should_evaluate = False
        return self.call_event("on_evaluate", args, state, control, metrics=metrics)

    def on_predict(self, args, state, control, metrics):
        return self.call_event("on_predict", args, state, control, metrics=metrics)

    def on_save(self, args, state, control):
        control.should_save = False
        return self.call_event("on_save", args, state, control)

    def on_log(self, args, state, control, logs):
        control.should_log = False
        return self.call_event("on_log", args, state, control, logs=logs)

    def on_prediction_step(self, args, state, control):
        return self.call_event("on_prediction_step", args, state, control)

    def on_push_begin(self, args, state, control):
        return self.call_event("on_push_begin", args, state, control)

    def call_event(self, event, args, state, control, **kwargs):
        for callback in self.callbacks:
            result = getattr(callback, event)(
                args,
                state,
                control,
                model=self.model,
                processing_class=self.processing_class,
                optimizer=self.optimizer,
                lr_scheduler=self.lr_scheduler,
                train_dataloader=self.train_dataloader,
                eval_dataloader=self.eval_dataloader,
                **kwargs,
            )
            # A callback may return a new control object instead of modifying the one it was given.
            if result is not None:
                control = result
        return control


class DefaultFlowCallback(TrainerCallback):
    """Decides when to log, evaluate and save from the `*_strategy`/`*_steps` arguments (always installed)."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 1 and args.logging_first_step:
            control.should_log = True
        if args.logging_strategy == IntervalStrategy.STEPS and state.global_step % state.logging_steps == 0:
            control.should_log = True
        if (
            args.eval_strategy == IntervalStrategy.STEPS
            and state.global_step % state.eval_steps == 0
            and args.eval_delay <= state.global_step
        ):
            control.should_evaluate = True
        if (
            args.save_strategy == SaveStrategy.STEPS
            and state.save_steps > 0
            and state.global_step % state.save_steps == 0
        ):
            control.should_save = True
        if state.global_step >= state.max_steps:
            control.should_training_stop = True
            # A step-based run evaluates and saves at its last step even when it is off the interval.
            if (
                args.eval_strategy == IntervalStrategy.STEPS
                and state.global_step % state.eval_steps != 0
                and args.eval_delay <= state.global_step
            ):
                control.should_evaluate = True
            if args.save_strategy == SaveStrategy.STEPS:
                control.should_save = True
        return control

    def on_epoch_end(self, args, state, control, **kwargs):
        if args.logging_strategy == IntervalStrategy.EPOCH:
            control.should_log = True
        if args.eval_strategy == IntervalStrategy.EPOCH and args.eval_delay <= state.epoch:
            control.should_evaluate = True
        if args.save_strategy == SaveStrategy.EPOCH:
            control.should_save = True
        return control


class ProgressCallback(TrainerCallback):
    """tqdm bars for training and evaluation, on the main process only; logs are written above the bar."""

    def __init__(self, max_str_len: int = 100):
        self.training_bar = None
        self.prediction_bar = None
        self.max_str_len = max_str_len
        self.current_step = 0

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.training_bar = tqdm(total=state.max_steps, initial=state.global_step, dynamic_ncols=True)
        self.current_step = state.global_step

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None:
            self.training_bar.update(state.global_step - self.current_step)
            self.current_step = state.global_step

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        if state.is_world_process_zero and has_length(eval_dataloader):
            if self.prediction_bar is None:
                self.prediction_bar = tqdm(
                    total=len(eval_dataloader), leave=self.training_bar is None, dynamic_ncols=True
                )
            self.prediction_bar.update(1)

    def _close_prediction_bar(self, state):
        if state.is_world_process_zero and self.prediction_bar is not None:
            self.prediction_bar.close()
        self.prediction_bar = None

    def on_evaluate(self, args, state, control, **kwargs):
        self._close_prediction_bar(state)

    def on_predict(self, args, state, control, **kwargs):
        self._close_prediction_bar(state)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None:
            shown = {}
            for k, v in logs.items():
                if k == "total_flos":
                    continue
                if isinstance(v, str) and len(v) > self.max_str_len:
                    v = f"[String too long to display, length: {len(v)} > {self.max_str_len}.]"
                shown[k] = f"{v:.4g}" if isinstance(v, float) else v
            self.training_bar.write(str(shown))

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None:
            self.training_bar.close()
        self.training_bar = None


class PrinterCallback(TrainerCallback):
    """Prints the logs (used instead of `ProgressCallback` when `disable_tqdm=True`)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_local_process_zero and logs is not None:
            print({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in logs.items() if k != "total_flos"})


class EarlyStoppingCallback(TrainerCallback, ExportableState):
    """Stops training when `metric_for_best_model` has not improved for `early_stopping_patience` evaluations.

    Args:
        early_stopping_patience (`int`): evaluations without improvement before stopping.
        early_stopping_threshold (`float`, *optional*): how much the metric must improve to count as improving.

    Needs `metric_for_best_model` and an evaluation strategy; the best value is tracked by the `Trainer` in
    `state.best_metric` when a checkpoint is saved, as in transformers.
    """

    def __init__(self, early_stopping_patience: int = 1, early_stopping_threshold: Optional[float] = 0.0):
        self.early_stopping_patience = early_stopping_patience
        self.early_stopping_threshold = early_stopping_threshold
        self.early_stopping_patience_counter = 0

    def check_metric_value(self, args, state, control, metric_value):
        operator = np.greater if args.greater_is_better else np.less
        if state.best_metric is None or (
            operator(metric_value, state.best_metric)
            and abs(metric_value - state.best_metric) > self.early_stopping_threshold
        ):
            self.early_stopping_patience_counter = 0
        else:
            self.early_stopping_patience_counter += 1

    def on_train_begin(self, args, state, control, **kwargs):
        if not args.load_best_model_at_end:
            logger.warning(
                "Using EarlyStoppingCallback without load_best_model_at_end=True. "
                "Once training is finished, the best model will not be loaded automatically."
            )
        if args.metric_for_best_model is None:
            raise ValueError("EarlyStoppingCallback requires metric_for_best_model to be defined")
        if args.eval_strategy == IntervalStrategy.NO:
            raise ValueError("EarlyStoppingCallback requires IntervalStrategy of steps or epoch")

    def on_evaluate(self, args, state, control, metrics, **kwargs):
        metric_to_check = args.metric_for_best_model
        if not metric_to_check.startswith("eval_"):
            metric_to_check = f"eval_{metric_to_check}"
        metric_value = metrics.get(metric_to_check)
        if metric_value is None:
            logger.warning(f"early stopping required metric_for_best_model, but did not find {metric_to_check}")
            return
        self.check_metric_value(args, state, control, metric_value)
        if self.early_stopping_patience_counter >= self.early_stopping_patience:
            control.should_training_stop = True

    def state(self) -> dict:
        return {
            "args": {
                "early_stopping_patience": self.early_stopping_patience,
                "early_stopping_threshold": self.early_stopping_threshold,
            },
            "attributes": {"early_stopping_patience_counter": self.early_stopping_patience_counter},
        }


class TensorBoardCallback(TrainerCallback):
    """Writes logged scalars to TensorBoard event files in `<output_dir>/runs/` with `tensorboardX`.

    Installed by `report_to="tensorboard"`. `tensorboardX` is the only writer used because the other
    maintained one (`torch.utils.tensorboard`) needs torch.
    """

    def __init__(self, tb_writer=None):
        self.tb_writer = tb_writer

    @staticmethod
    def writer_class():
        try:
            from tensorboardX import SummaryWriter
        except ImportError as e:
            raise ImportError(
                "report_to='tensorboard' needs the `tensorboardX` package: `pip install tensorboardX`."
            ) from e
        return SummaryWriter

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.tb_writer is None:
            self.tb_writer = self.writer_class()(log_dir=args.logging_dir)
            self.tb_writer.add_text("args", args.to_json_string())

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero:
            return
        if self.tb_writer is None:
            self.tb_writer = self.writer_class()(log_dir=args.logging_dir)
        for k, v in (logs or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                # Same tags as transformers: training values under train/, eval values keep their eval/ prefix.
                tag = k.replace("eval_", "eval/", 1) if k.startswith("eval_") else f"train/{k}"
                self.tb_writer.add_scalar(tag, v, state.global_step)
        self.tb_writer.flush()

    def on_train_end(self, args, state, control, **kwargs):
        if self.tb_writer is not None:
            self.tb_writer.close()
            self.tb_writer = None

