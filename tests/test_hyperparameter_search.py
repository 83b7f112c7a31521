"""`Trainer.hyperparameter_search` with optuna, on a tiny random BERT in PYNATIVE mode (no graph compile per trial).

One module-scoped search (3 trials, accuracy maximised, evaluation every epoch) is shared by most tests; pruning,
several objectives and the errors have their own small runs.
"""

import logging
import os
import subprocess
import sys

import numpy as np
import optuna
import pytest

import mindspore as ms

from mindone_ft import BertForSequenceClassification, Trainer, TrainerCallback, TrainingArguments

VOCAB, TRAIN_ROWS, EVAL_ROWS = 64, 16, 8
LEARNING_RATES = [1e-4, 3e-2, 1e-1]


def tiny_dataset(num_rows: int, seed: int):
    from datasets import Dataset

    rng = np.random.default_rng(seed)
    rows = [rng.integers(1, VOCAB, size=rng.integers(4, 15)).tolist() for _ in range(num_rows)]
    return Dataset.from_dict({
        "input_ids": rows,
        "attention_mask": [[1] * len(r) for r in rows],
        "label": [int(np.mean(r) > VOCAB / 2) for r in rows],
    })


def tiny_bert() -> BertForSequenceClassification:
    from transformers import BertConfig

    config = BertConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32, num_labels=2, pad_token_id=0,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertForSequenceClassification(config)


def accuracy(pred) -> dict:
    predictions, labels = pred
    return {"accuracy": float((predictions.argmax(-1) == labels).mean())}


class TrialRecorder(TrainerCallback):
    """What each trial trained with: its arguments, state fields, model and first weight before training."""

    def __init__(self):
        self.trials, self.train_ends = [], []

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.trials.append({
            "learning_rate": args.learning_rate, "batch_size": args.per_device_train_batch_size,
            "num_train_epochs": args.num_train_epochs, "output_dir": args.output_dir,
            "is_hyper_param_search": state.is_hyper_param_search, "trial_params": state.trial_params,
            "model_id": id(model), "first_weight": model.trainable_params()[0].asnumpy().copy(),
        })

    def on_train_end(self, args, state, control, **kwargs):
        self.train_ends.append(state.global_step)


@pytest.fixture(scope="module")
def pynative():
    from mindone_ft.mindspore_adapter import MindSporeArguments, init_environment

    init_environment(MindSporeArguments(deterministic=True, cpu_threads=1))
    previous = ms.get_context("mode")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    yield
    ms.set_context(mode=previous)


@pytest.fixture(scope="module")
def data():
    return tiny_dataset(TRAIN_ROWS, seed=1), tiny_dataset(EVAL_ROWS, seed=2)


def make_trainer(output_dir, data, callbacks=(), model_init=tiny_bert, **kwargs):
    train, evaluation = data
    defaults = dict(per_device_train_batch_size=8, per_device_eval_batch_size=EVAL_ROWS, num_train_epochs=1.0,
                    learning_rate=5e-5, seed=3, disable_tqdm=True, save_strategy="no", report_to="none")
    args = TrainingArguments(output_dir=str(output_dir), **{**defaults, **kwargs})
    return Trainer(model_init=model_init, args=args, train_dataset=train, eval_dataset=evaluation,
                   compute_metrics=accuracy, callbacks=list(callbacks))


def hp_space(trial) -> dict:
    return {
        "learning_rate": trial.suggest_categorical("learning_rate", LEARNING_RATES),
        "per_device_train_batch_size": trial.suggest_categorical("per_device_train_batch_size", [4, 8]),
        "num_train_epochs": trial.suggest_int("num_train_epochs", 1, 2),
    }


@pytest.fixture(scope="module")
def search(tmp_path_factory, pynative, data):
    recorder = TrialRecorder()
    objectives = []

    def compute_objective(metrics):
        objectives.append(metrics["eval_accuracy"])
        return metrics["eval_accuracy"]

    output_dir = tmp_path_factory.mktemp("hp_search")
    trainer = make_trainer(output_dir, data, callbacks=[recorder], eval_strategy="epoch")
    original_args = trainer.args
    storage = optuna.storages.InMemoryStorage()
    best = trainer.hyperparameter_search(
        hp_space=hp_space, compute_objective=compute_objective, n_trials=3, direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0), study_name="tiny", storage=storage,
    )
    study = optuna.load_study(study_name="tiny", storage=storage)
    return trainer, original_args, best, study, recorder, str(output_dir)


def test_best_run_fields(search):
    _, _, best, study, _, _ = search
    assert type(best).__name__ == "BestRun" and best._fields == ("run_id", "objective", "hyperparameters",
                                                                 "run_summary")
    assert len(study.trials) == 3
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    values = [t.value for t in study.trials]
    assert best.objective == max(values)
    best_trial = study.trials[int(best.run_id)]
    assert best.run_id == str(best_trial.number) and best_trial.value == best.objective
    assert best.hyperparameters == best_trial.params
    assert set(best.hyperparameters) == {"learning_rate", "per_device_train_batch_size", "num_train_epochs"}
    assert best.run_summary is None


def test_each_trial_trains_with_its_hyperparameters(search):
    trainer, _, _, study, recorder, output_dir = search
    assert len(recorder.trials) == 3
    assert len({t.params["learning_rate"] for t in study.trials}) > 1  # the trials differ
    for trial, seen in zip(study.trials, recorder.trials):
        assert seen["learning_rate"] == trial.params["learning_rate"]
        assert seen["batch_size"] == trial.params["per_device_train_batch_size"]
        assert seen["num_train_epochs"] == float(trial.params["num_train_epochs"])  # cast to the field's type
        assert isinstance(seen["num_train_epochs"], float)
        assert seen["output_dir"] == os.path.join(output_dir, f"run-{trial.number}")
        assert seen["is_hyper_param_search"] and seen["trial_params"] == trial.params
    # The number of update steps follows each trial's batch size and epochs.
    steps = [TRAIN_ROWS // t.params["per_device_train_batch_size"] * t.params["num_train_epochs"]
             for t in study.trials]
    assert recorder.train_ends == steps


def test_each_trial_starts_from_a_fresh_model(search):
    trainer, _, _, _, recorder, _ = search
    assert len({seen["model_id"] for seen in recorder.trials}) == 3
    # model_init is seeded with args.seed before each trial: every trial starts from the same weights.
    for seen in recorder.trials[1:]:
        np.testing.assert_array_equal(seen["first_weight"], recorder.trials[0]["first_weight"])
    assert id(trainer.model) == recorder.trials[-1]["model_id"]


def test_objective_is_the_last_evaluation_of_each_trial(search):
    _, _, _, study, _, _ = search
    # Evaluated every epoch during training (reported to optuna at each), no extra evaluation afterwards.
    for trial in study.trials:
        assert sorted(trial.intermediate_values) == [
            TRAIN_ROWS // trial.params["per_device_train_batch_size"] * (epoch + 1)
            for epoch in range(trial.params["num_train_epochs"])
        ]
        assert trial.value == trial.intermediate_values[max(trial.intermediate_values)]


def test_trainer_arguments_are_restored(search):
    trainer, original_args, _, _, _, output_dir = search
    assert trainer.args is original_args
    assert trainer.args.learning_rate == 5e-5 and trainer.args.output_dir == output_dir
    assert trainer.hp_search_backend is None
    names = [type(cb).__name__ for cb in trainer.callback_handler.callbacks]
    assert names == ["DefaultFlowCallback", "PrinterCallback", "TrialRecorder"]  # the search's callbacks are gone
    metrics = trainer.evaluate()  # the Trainer still works after the search
    assert "eval_accuracy" in metrics


class PruneFirstTrial(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return trial.number == 0


def test_pruner_stops_a_trial_at_its_first_evaluation(tmp_path, pynative, data, caplog):
    recorder = TrialRecorder()
    trainer = make_trainer(tmp_path, data, callbacks=[recorder], eval_strategy="steps", eval_steps=1, max_steps=2)
    storage = optuna.storages.InMemoryStorage()

    def space(trial):
        return {"learning_rate": trial.suggest_float("learning_rate", 1e-3, 1e-2, log=True), "not_a_field": 1}

    with caplog.at_level(logging.WARNING, logger="mindone_ft.hyperparameter_search"):
        best = trainer.hyperparameter_search(hp_space=space, n_trials=2, pruner=PruneFirstTrial(),
                                             study_name="prune", storage=storage, hp_name=lambda t: f"t{t.number}")
    study = optuna.load_study(study_name="prune", storage=storage)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.COMPLETE]
    assert recorder.train_ends == [1, 2]  # the pruned trial ended (on_train_end) after its first step
    assert [seen["output_dir"] for seen in recorder.trials] == [os.path.join(str(tmp_path), n) for n in ("t0", "t1")]
    # Default objective with metrics: the sum of the metrics other than the loss, epoch and speed.
    assert best.run_id == "1" and best.objective == study.trials[1].value
    assert "not_a_field" in caplog.text and "no corresponding field" in caplog.text


def test_several_directions_return_the_pareto_front(tmp_path, pynative, data):
    given = []

    def model_init(trial):  # a one-argument model_init gets the trial
        given.append(trial)
        return tiny_bert()

    # No evaluation during training: the objective comes from one evaluate() after it.
    trainer = make_trainer(tmp_path, data, model_init=model_init, max_steps=1)
    given.clear()  # the Trainer's own model (built with trial=None)
    best = trainer.hyperparameter_search(
        hp_space=lambda trial: {"learning_rate": trial.suggest_float("learning_rate", 1e-3, 1e-1, log=True)},
        compute_objective=lambda m: (m["eval_accuracy"], m["eval_loss"]), n_trials=2,
        direction=["maximize", "minimize"],
    )
    assert [trial.number for trial in given] == [0, 1]
    assert isinstance(best, list) and 1 <= len(best) <= 2
    for run in best:
        assert type(run).__name__ == "BestRun" and len(run.objective) == 2
        assert set(run.hyperparameters) == {"learning_rate"}


@pytest.mark.parametrize("backend", ["ray", "sigopt", "wandb"])
def test_other_backends_are_rejected(tmp_path, pynative, data, backend):
    trainer = make_trainer(tmp_path, data)
    with pytest.raises(ValueError, match="optuna") as error:
        trainer.hyperparameter_search(backend=backend, n_trials=1)
    assert backend in str(error.value)


def test_needs_model_init(tmp_path, pynative, data):
    train, evaluation = data
    trainer = Trainer(model=tiny_bert(), args=TrainingArguments(str(tmp_path), report_to="none"),
                      train_dataset=train, eval_dataset=evaluation)
    with pytest.raises(RuntimeError, match="model_init"):
        trainer.hyperparameter_search(n_trials=1)


def test_without_optuna_the_error_says_how_to_install(tmp_path, pynative, data, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` raises ImportError
    trainer = make_trainer(tmp_path, data)
    with pytest.raises(ImportError, match="pip install optuna=="):
        trainer.hyperparameter_search(n_trials=1)


def test_default_helpers_match_transformers():
    from transformers import trainer_utils as hf  # imports torch: the library re-implements these without it

    from mindone_ft.hyperparameter_search import BestRun, default_compute_objective, default_hp_space_optuna

    metrics = {"eval_loss": 0.5, "eval_accuracy": 0.75, "eval_f1": 0.25, "epoch": 2.0, "eval_runtime": 1.0,
               "eval_samples_per_second": 3.0}
    for case in (metrics, {"eval_loss": 0.5, "epoch": 1.0}):
        assert default_compute_objective(case) == hf.default_compute_objective(case)
    assert default_compute_objective(metrics) == 1.0
    assert BestRun._fields == hf.BestRun._fields and BestRun("0", 1.0, {}).run_summary is None
    params = {"learning_rate": 1e-5, "num_train_epochs": 2, "seed": 7, "per_device_train_batch_size": 16}
    space = default_hp_space_optuna(optuna.trial.FixedTrial(params))
    assert space == hf.default_hp_space_optuna(optuna.trial.FixedTrial(params)) == params


@pytest.mark.slow  # a fresh interpreter per backend import
def test_library_does_not_import_optuna():
    code = ("import sys; import mindone_ft; from mindone_ft import hyperparameter_search, trainer; "
            "assert 'optuna' not in sys.modules, 'optuna imported'")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "GLOG_v": "3"},
                   cwd=os.path.join(os.path.dirname(__file__), ".."))
