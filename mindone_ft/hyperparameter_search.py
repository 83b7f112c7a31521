"""`Trainer.hyperparameter_search` on optuna, as in transformers 5.23.

transformers' own helpers (`transformers.trainer_utils.BestRun`, `default_compute_objective`,
`default_hp_space_optuna`) live in a module that imports torch whenever torch is installed, so they are
re-implemented here with the same names, fields and behaviour; optuna itself is imported only when a search runs.

One search runs `n_trials` trials of an optuna study (`optuna.create_study(direction=..., **kwargs)`); each trial:

1. seeds with `args.seed` and re-creates the model with `model_init()` (or `model_init(trial)`), with a fresh
   optimizer and scheduler, as transformers' `train()` does when the Trainer has a `model_init`;
2. applies `hp_space(trial)` to a copy of the `TrainingArguments` (fields only: an unknown name is logged and
   skipped, as in transformers; values are cast to the field's type), whose `output_dir` is
   `<output_dir>/run-<trial number>` (or `<output_dir>/<hp_name(trial)>`), where transformers writes a trial's
   checkpoints;
3. trains; every evaluation during training sets `trainer.objective = compute_objective(metrics)` and, for a
   single objective, reports it to optuna (`trial.report(objective, global_step)`), so a `pruner` stops a poor
   trial (`optuna.TrialPruned`, after `on_train_end`);
4. returns the objective of the last evaluation, or of one `evaluate()` after training when none ran.

The Trainer's own `args` are restored when the search ends; `trainer.model` is the last trial's model.
"""

import copy
import dataclasses
import enum
import functools
import inspect
import logging
import os
from typing import Any, Callable, NamedTuple, Optional, Union

from .trainer_callback import TrainerCallback
from .trainer_utils import find_labels, set_seed

logger = logging.getLogger(__name__)

OPTUNA_VERSION = "5.0.0"
OPTUNA_INSTALL = f'pip install optuna=={OPTUNA_VERSION}  (or: pip install "mindone_ft[optuna]")'


class HPSearchBackend(str, enum.Enum):
    """transformers' hyperparameter-search backends; mindone_ft runs `optuna` only."""

    OPTUNA = "optuna"
    RAY = "ray"
    WANDB = "wandb"


class BestRun(NamedTuple):
    """The best run found by a hyperparameter search (see `Trainer.hyperparameter_search`), as
    `transformers.trainer_utils.BestRun`.

    Parameters:
        run_id (`str`): the optuna trial number; checkpoints of that trial are in `<output_dir>/run-<run_id>`.
        objective (`float` or `list[float]`): the objective of this run (a list for several objectives).
        hyperparameters (`dict[str, Any]`): the hyperparameters of this run (`trial.params`).
        run_summary (`Any`, *optional*): `None` with optuna (transformers fills it for Ray only).
    """

    run_id: str
    objective: Union[float, list]
    hyperparameters: dict
    run_summary: Optional[Any] = None


def default_compute_objective(metrics: dict) -> float:
    """The evaluation loss if `metrics` holds no other metric, else the sum of the other metrics (without `epoch`
    and the speed metrics), as `transformers.trainer_utils.default_compute_objective`.

    Args:
        metrics (`dict[str, float]`): the metrics returned by `Trainer.evaluate`.
    """
    metrics = copy.deepcopy(metrics)
    loss = metrics.pop("eval_loss", None)
    metrics.pop("epoch", None)
    for name in [m for m in metrics if m.endswith("_runtime") or m.endswith("_per_second")]:
        metrics.pop(name, None)
    return loss if len(metrics) == 0 else sum(metrics.values())


def default_hp_space_optuna(trial) -> dict:
    """transformers' default optuna search space: learning rate, epochs, seed and train batch size."""
    _import_optuna()
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-6, 1e-4, log=True),
        "num_train_epochs": trial.suggest_int("num_train_epochs", 1, 5),
        "seed": trial.suggest_int("seed", 1, 40),
        "per_device_train_batch_size": trial.suggest_categorical("per_device_train_batch_size", [4, 8, 16, 32, 64]),
    }


def is_optuna_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("optuna") is not None


def _import_optuna():
    try:
        import optuna
    except ImportError as error:
        raise ImportError(
            f"Trainer.hyperparameter_search needs optuna, which is not installed: {OPTUNA_INSTALL}"
        ) from error
    return optuna


def check_backend(backend) -> HPSearchBackend:
    """`HPSearchBackend.OPTUNA` for `None`, `"optuna"` or transformers' `HPSearchBackend.OPTUNA`; a ValueError
    naming optuna for any other backend."""
    if backend is None:  # transformers picks optuna when it is installed
        return HPSearchBackend.OPTUNA
    name = getattr(backend, "value", backend)
    if isinstance(name, str) and name.strip().lower() == HPSearchBackend.OPTUNA.value:
        return HPSearchBackend.OPTUNA
    raise ValueError(
        f"hyperparameter_search backend {name!r} is not supported: mindone_ft runs hyperparameter search with "
        f"optuna only (transformers' default backend; ray, sigopt and wandb are not available). Use "
        f"backend='optuna' or leave backend=None, with optuna installed: {OPTUNA_INSTALL}"
    )


def _number_of_arguments(func: Callable) -> int:
    if isinstance(func, functools.partial):
        return len(inspect.signature(func.func).parameters) - len(func.args) - len(func.keywords)
    return len(inspect.signature(func).parameters)


def call_model_init(trainer, trial=None):
    """A fresh model from `trainer.model_init`, called with the trial when it takes one argument."""
    count = _number_of_arguments(trainer.model_init)
    if count == 0:
        model = trainer.model_init()
    elif count == 1:
        model = trainer.model_init(trial)
    else:
        raise RuntimeError("model_init should have 0 or 1 argument.")
    if model is None:
        raise RuntimeError("model_init should not return None.")
    return model


def use_model(trainer, model) -> None:
    """Makes `model` the Trainer's model with a new optimizer, scheduler and compiled steps, deriving the same
    attributes from it (and from `trainer.args`) as `Trainer.__init__` does."""
    trainer.model = model
    trainer.optimizer, trainer.lr_scheduler = None, None  # as transformers: model_init re-creates them
    signature_model = model.get_base_model() if hasattr(model, "get_base_model") else model  # a PeftModel's model
    trainer._input_names = list(inspect.signature(signature_model.construct).parameters)
    args = trainer.args
    trainer.label_names = find_labels(signature_model) if args.label_names is None else list(args.label_names)
    trainer._loss_names = tuple(getattr(model, "loss_input_names", ()) or
                                [name for name in trainer.label_names if name in trainer._input_names])
    trainer._smoothing_index = trainer._label_smoothing_index()
    trainer._train_step = None
    trainer._resumed_step_state = None
    trainer._eval_step = None
    trainer._mixed_precision_applied = False
    handler = trainer.callback_handler
    handler.model, handler.optimizer, handler.lr_scheduler = model, None, None


def trial_arguments(base_args, params: dict, output_dir: str):
    """A copy of `base_args` with `output_dir` and the trial's `params` set, as transformers'
    `_hp_search_setup` sets them (unknown names are logged and skipped; values cast to the field's type)."""
    args = copy.deepcopy(base_args)
    args.output_dir = output_dir
    fields = {f.name for f in dataclasses.fields(args)}
    for key, value in params.items():
        if key not in fields:
            logger.warning(f"Trying to set {key} in the hyperparameter search but there is no corresponding field in "
                           "`TrainingArguments`.")
            continue
        old = getattr(args, key, None)
        if old is not None:
            value = type(old)(value)
        setattr(args, key, value)
    return args


def _evaluate(trainer) -> dict:
    if isinstance(trainer.eval_dataset, dict):
        metrics = {}
        for name, dataset in trainer.eval_dataset.items():
            metrics.update(trainer.evaluate(dataset, metric_key_prefix=f"eval_{name}"))
        return metrics
    return trainer.evaluate()


class _TrialStateCallback(TrainerCallback):
    """Fills the trial fields of `TrainerState` at the start of training. It goes first in the callback list, so
    that every callback's `on_train_begin` sees them (transformers sets them before that event)."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.trial = None

    def on_train_begin(self, args, state, control, **kwargs):
        trainer, trial = self.trainer, self.trial
        state.is_hyper_param_search = True
        state.trial_name = trainer.hp_name(trial) if trainer.hp_name is not None else None
        state.trial_params = dict(trial.params)


class _OptunaReportCallback(TrainerCallback):
    """Reports every evaluation during training to the trial. It goes last in the callback list: transformers
    reports after `evaluate()`, whose `on_evaluate` every other callback has seen."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.trial = None
        self.training = False
        self._pending, self._pending_count = {}, 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.training = True
        self._pending, self._pending_count = {}, 0

    def on_train_end(self, args, state, control, **kwargs):
        self.training = False

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not self.training or metrics is None:
            return
        evals = self.trainer.eval_dataset
        if isinstance(evals, dict) and len(evals) > 1:  # one report per evaluation of all the eval sets
            self._pending.update(metrics)
            self._pending_count += 1
            if self._pending_count < len(evals):
                return
            metrics, self._pending, self._pending_count = self._pending, {}, 0
        self._report(args, state, control, metrics)

    def _report(self, args, state, control, metrics: dict) -> None:
        trainer, trial = self.trainer, self.trial
        trainer.objective = trainer.compute_objective(dict(metrics))
        if len(trial.study.directions) > 1:  # optuna prunes single-objective studies only
            return
        trial.report(trainer.objective, state.global_step)
        if trial.should_prune():
            optuna = _import_optuna()
            self.training = False
            trainer.callback_handler.on_train_end(args, state, control)
            raise optuna.TrialPruned()


def run_hp_search_optuna(trainer, n_trials: int, direction: Union[str, list], **kwargs):
    """The optuna search loop of transformers' `run_hp_search_optuna`; `BestRun` (a list of them, the Pareto
    front, for several directions)."""
    optuna = _import_optuna()
    if trainer.world_size > 1:
        raise NotImplementedError("hyperparameter_search runs in one process: data-parallel trials (msrun) are not "
                                  "supported yet. Run the search without msrun.")
    timeout = kwargs.pop("timeout", None)
    n_jobs = kwargs.pop("n_jobs", 1)
    gc_after_trial = kwargs.pop("gc_after_trial", False)
    catch = kwargs.pop("catch", ())
    if n_jobs != 1:
        raise ValueError(f"n_jobs={n_jobs} is not supported: the trials share one Trainer and run one at a time.")
    directions = list(direction) if isinstance(direction, (list, tuple)) else None
    direction = None if directions is not None else direction
    base_args = trainer.args
    state_setter, reporter = _TrialStateCallback(trainer), _OptunaReportCallback(trainer)

    def objective(trial):
        trainer.objective = None
        state_setter.trial = reporter.trial = trial
        trainer.args = base_args
        set_seed(base_args.seed)  # as transformers: the seed before the trial's, then model_init, then hp_space
        model = call_model_init(trainer, trial)
        params = trainer.hp_space(trial)
        run_name = trainer.hp_name(trial) if trainer.hp_name is not None else f"run-{trial.number}"
        trainer.args = trial_arguments(base_args, params, os.path.join(base_args.output_dir, run_name))
        use_model(trainer, model)
        logger.info(f"Trial: {trial.params}")
        trainer.train()
        if trainer.objective is None:  # no evaluation during training
            trainer.objective = trainer.compute_objective(_evaluate(trainer))
        return trainer.objective

    study = optuna.create_study(direction=direction, directions=directions, **kwargs)
    trainer.callback_handler.callbacks.insert(0, state_setter)
    trainer.add_callback(reporter)
    try:
        study.optimize(objective, n_trials=n_trials, timeout=timeout, n_jobs=n_jobs, gc_after_trial=gc_after_trial,
                       catch=catch)
    finally:
        trainer.remove_callback(reporter)
        trainer.remove_callback(state_setter)
        trainer.args = base_args
        if trainer.model is not None:
            use_model(trainer, trainer.model)  # derived attributes back on the Trainer's own arguments
    if len(study.directions) == 1:
        best = study.best_trial
        return BestRun(str(best.number), best.value, best.params)
    return [BestRun(str(best.number), best.values, best.params) for best in study.best_trials]


def hyperparameter_search(
    trainer,
    hp_space: Optional[Callable] = None,
    compute_objective: Optional[Callable[[dict], float]] = None,
    n_trials: int = 20,
    direction: Union[str, list] = "minimize",
    backend=None,
    hp_name: Optional[Callable] = None,
    **kwargs,
):
    """See `Trainer.hyperparameter_search`."""
    backend = check_backend(backend)
    _import_optuna()
    if trainer.model_init is None:
        raise RuntimeError("To use hyperparameter search, you need to pass your model through a model_init function.")
    trainer.hp_search_backend = backend
    trainer.hp_space = default_hp_space_optuna if hp_space is None else hp_space
    trainer.hp_name = hp_name
    trainer.compute_objective = default_compute_objective if compute_objective is None else compute_objective
    try:
        return run_hp_search_optuna(trainer, n_trials, direction, **kwargs)
    finally:
        trainer.hp_search_backend = None
