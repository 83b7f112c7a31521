"""Trainer features on a tiny random BERT (hidden 32, 2 layers) and real reviews.

Every graph compile costs ~10 s on CPU, so a few module-scoped training runs are shared by many tests:

- `run_epoch`: 2 epochs, eval/save per epoch, eval_on_start, logging every 2 steps, best model kept and loaded
  at the end, save_total_limit=1, a recording callback;
- `run_steps` and `run_accum`: the same data and seed with logging every step, once with batch 8 and once with
  batch 4 x 2 accumulation steps; `run_steps` also evaluates every 4 steps and never saves;
- `run_fp16`: fp16 with a loss scale forced too high, so that the first steps overflow and are skipped.
"""

import json
import os
import shutil

import numpy as np
import pytest

import mindspore as ms

from mindone_ft import (
    BertForSequenceClassification,
    EarlyStoppingCallback,
    EvalPrediction,
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)
from mindone_ft.trainer_utils import get_last_checkpoint

ROWS_TRAIN, ROWS_EVAL, BATCH = 40, 16, 8  # 5 batches per epoch


@pytest.fixture(scope="module")
def data():
    from transformers import AutoTokenizer

    from mindone_ft.mindspore_adapter import MindSporeArguments, init_environment
    from mindone_ft.utils import default_model_path, load_rotten_tomatoes

    init_environment(MindSporeArguments(deterministic=True, cpu_threads=1))
    tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    reviews = load_rotten_tomatoes()
    tokenize = lambda batch: tokenizer(batch["text"], truncation=True, max_length=32)  # noqa: E731
    train = reviews["train"].select(range(ROWS_TRAIN)).map(tokenize, batched=True)
    test = reviews["test"].select(range(ROWS_EVAL)).map(tokenize, batched=True)
    return tokenizer, train, test


def tiny_model(tokenizer, dropout: float = 0.0):
    from transformers import BertConfig

    ms.set_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=2, hidden_dropout_prob=dropout,
                        attention_probs_dropout_prob=dropout)
    return BertForSequenceClassification(config)


def accuracy(pred: EvalPrediction) -> dict:
    predictions, labels = pred
    return {"accuracy": float((predictions.argmax(-1) == labels).mean())}


class Recorder(TrainerCallback):
    def __init__(self):
        self.events = []

    def __getattribute__(self, name):
        if name.startswith("on_"):
            def record(args, state, control, **kwargs):
                self.events.append((name, state.global_step))
            return record
        return object.__getattribute__(self, name)


def _train(tmp_path_factory, data, name, **kwargs):
    tokenizer, train, test = data
    callbacks = kwargs.pop("callbacks", None)
    defaults = dict(per_device_train_batch_size=BATCH, per_device_eval_batch_size=ROWS_EVAL, num_train_epochs=2,
                    learning_rate=2e-3, weight_decay=0.01, seed=11, disable_tqdm=True, save_strategy="no")
    args = TrainingArguments(output_dir=str(tmp_path_factory.mktemp(name)), **{**defaults, **kwargs})
    trainer = Trainer(model=tiny_model(tokenizer), args=args, train_dataset=train, eval_dataset=test,
                      processing_class=tokenizer, compute_metrics=accuracy, callbacks=callbacks)
    output = trainer.train()
    return trainer, output


@pytest.fixture(scope="module")
def run_epoch(tmp_path_factory, data):
    recorder = Recorder()
    trainer, output = _train(
        tmp_path_factory, data, "epoch", eval_strategy="epoch", save_strategy="epoch", logging_steps=2,
        eval_on_start=True, load_best_model_at_end=True, metric_for_best_model="accuracy", save_total_limit=1,
        disable_tqdm=False, callbacks=[recorder],
    )
    return trainer, output, recorder


@pytest.fixture(scope="module")
def run_steps(tmp_path_factory, data):
    return _train(tmp_path_factory, data, "steps", logging_steps=1, eval_strategy="steps", eval_steps=4)


@pytest.fixture(scope="module")
def run_accum(tmp_path_factory, data):
    return _train(tmp_path_factory, data, "accum", logging_steps=1, per_device_train_batch_size=BATCH // 2,
                  gradient_accumulation_steps=2)


def _train_logs(trainer):
    return [e for e in trainer.log_history if "loss" in e]


# ---------------------------------------------------------------------------------------------- logging & eval
def test_log_history_per_epoch_run(run_epoch):
    trainer, output, _ = run_epoch
    train_logs = _train_logs(trainer)
    assert [e["step"] for e in train_logs] == [2, 4, 6, 8, 10]
    for entry in train_logs:
        assert set(entry) == {"loss", "grad_norm", "learning_rate", "epoch", "step"}
        assert np.isfinite(entry["loss"]) and entry["grad_norm"] > 0
    evals = [e for e in trainer.log_history if "eval_loss" in e]
    assert [e["step"] for e in evals] == [0, 5, 10]  # eval_on_start, then every epoch
    assert all({"eval_accuracy", "eval_runtime", "eval_samples_per_second"} <= set(e) for e in evals)
    assert [e["epoch"] for e in evals[1:]] == [1.0, 2.0]
    final = trainer.log_history[-1]
    assert final["step"] == 10 and {"train_runtime", "train_loss", "train_samples_per_second"} <= set(final)
    assert output.global_step == 10 and output.training_loss == pytest.approx(final["train_loss"])


def test_a_logged_loss_is_the_mean_of_the_step_losses_it_covers(run_epoch, run_steps):
    """The step losses are kept until the log reads them: each must keep its own value (a graph output buffer
    reused by the next step would make a window's mean its last loss). The two runs train alike up to the first
    checkpoint (step 5), which reseeds the dropout in the run that saves."""
    per_step = [e["loss"] for e in _train_logs(run_steps[0])][:4]
    windows = [e["loss"] for e in _train_logs(run_epoch[0])][:2]
    assert len(set(per_step)) == 4
    assert windows == pytest.approx([(per_step[0] + per_step[1]) / 2, (per_step[2] + per_step[3]) / 2], abs=1e-4)


def test_compiles_are_counted_per_graph(run_epoch):
    trainer, _, _ = run_epoch
    final = trainer.log_history[-1]
    # One bucket: the train step compiles once, evaluation once (the first evaluation, at step 0), no cache here.
    assert final["train_compiles"] == 1 and final["train_compile_seconds"] > 0
    assert final["train_compile_cache_loads"] == 0
    evals = [e for e in trainer.log_history if "eval_loss" in e]
    assert [e["eval_compiles"] for e in evals] == [1, 0, 0] and evals[0]["eval_compile_seconds"] > 0


def test_learning_rate_follows_linear_schedule(run_steps):
    trainer, _ = run_steps
    # Logged rate is the one the step used: lr * (1 - k / 10) for the k-th update (0-based).
    lrs = [e["learning_rate"] for e in _train_logs(trainer)]
    np.testing.assert_allclose(lrs, [2e-3 * (1 - k / 10) for k in range(10)], rtol=1e-6)


def test_logged_loss_is_mean_since_last_log(run_epoch, run_steps):
    every_step = [e["loss"] for e in _train_logs(run_steps[0])]
    every_two = [e["loss"] for e in _train_logs(run_epoch[0])]
    # Same data, seed and schedule: the 2-step log is the mean of the two single-step logs (not a cumulative
    # mean); logged values are rounded to 4 decimals.
    expected = [(a + b) / 2 for a, b in zip(every_step[::2], every_step[1::2])]
    np.testing.assert_allclose(every_two, expected, atol=1.5e-4)
    assert every_two[-1] < every_step[0]


def test_eval_steps_strategy_and_final_eval(run_steps):
    trainer, _ = run_steps
    assert [e["step"] for e in trainer.log_history if "eval_loss" in e] == [4, 8, 10]
    assert not os.path.exists(trainer.args.output_dir) or not os.listdir(trainer.args.output_dir)  # save "no"


def test_gradient_accumulation_is_exact(run_steps, run_accum):
    plain, accum = run_steps[0], run_accum[0]
    plain_logs, accum_logs = _train_logs(plain), _train_logs(accum)
    assert len(accum_logs) == 10
    for a, b in zip(plain_logs, accum_logs):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-4)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)
    for (name, p), q in zip(plain.model.parameters_and_names(), accum.model.get_parameters()):
        np.testing.assert_allclose(p.asnumpy(), q.asnumpy(), atol=2e-5, err_msg=name)


def test_callback_events(run_epoch):
    events = [e for e, _ in run_epoch[2].events]
    assert events[:2] == ["on_init_end", "on_train_begin"] and events[-1] == "on_train_end"
    assert events.count("on_epoch_begin") == 2 and events.count("on_step_end") == 10
    assert events.count("on_step_begin") == 10 and events.count("on_evaluate") == 3
    assert events.count("on_pre_optimizer_step") == events.count("on_optimizer_step") == 10
    assert events.count("on_save") == 2 and events.count("on_prediction_step") == 3
    assert events.count("on_log") == len(run_epoch[0].log_history)


def test_callback_can_stop_training(data, tmp_path):
    class StopAt3(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            control.should_training_stop = state.global_step >= 3

    tokenizer, train, _ = data
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=BATCH, save_strategy="no",
                             disable_tqdm=True, logging_steps=1, num_train_epochs=1.5)
    # No tokenizer: the default collator pads with the model config's pad id.
    trainer = Trainer(model=tiny_model(tokenizer), args=args, train_dataset=train, callbacks=[StopAt3])
    assert trainer.train().global_step == 3 and trainer.state.max_steps == 8


def test_number_of_steps(data, tmp_path):
    tokenizer, train, _ = data

    def steps(num_batches, **kwargs):
        args = TrainingArguments(output_dir=str(tmp_path), **kwargs)
        return Trainer(model=tiny_model(tokenizer), args=args).compute_num_steps(num_batches)

    assert steps(5, num_train_epochs=1.5) == (5, 8, 2)  # fractional epochs stop part-way
    assert steps(5, num_train_epochs=3, max_steps=7) == (5, 7, 2)  # max_steps wins
    assert steps(10, num_train_epochs=1, gradient_accumulation_steps=3) == (3, 3, 1)  # 1 batch left over
    with pytest.raises(ValueError, match="fewer than gradient_accumulation_steps"):
        steps(2, gradient_accumulation_steps=4)


# ---------------------------------------------------------------------------------------------- checkpoints
def test_checkpoints_rotation_keeps_best_and_best_is_loaded(run_epoch):
    from safetensors.numpy import load_file

    trainer = run_epoch[0]
    out = trainer.args.output_dir
    best = trainer.state.best_model_checkpoint
    evals = [e["eval_accuracy"] for e in trainer.log_history if "eval_accuracy" in e][1:]
    assert trainer.state.best_metric == max(evals)
    names = sorted(n for n in os.listdir(out) if n.startswith("checkpoint-"))
    assert os.path.basename(best) in names and "checkpoint-10" in names and len(names) <= 2
    assert not [n for n in os.listdir(out) if n.startswith(".tmp")]
    weights = load_file(os.path.join(best, "model.safetensors"))
    for name, value in trainer.model.state_dict_numpy().items():
        np.testing.assert_array_equal(value, weights[name])


def test_checkpoint_contents_and_state_format(run_epoch):
    import dataclasses

    import transformers

    trainer = run_epoch[0]
    ckpt = os.path.join(trainer.args.output_dir, "checkpoint-10")
    files = set(os.listdir(ckpt))
    assert {"config.json", "model.safetensors", "optimizer.safetensors", "scheduler.json", "train_step.safetensors",
            "rng_state.json", "trainer_state.json", "training_args.json", "tokenizer.json"} <= files
    state = json.load(open(os.path.join(ckpt, "trainer_state.json")))
    hf_fields = {f.name for f in dataclasses.fields(transformers.TrainerState)}
    assert set(state) == hf_fields
    assert state["global_step"] == 10 and state["log_history"][-1]["step"] == 10
    # Hugging Face reads our trainer_state.json.
    assert transformers.TrainerState.load_from_json(os.path.join(ckpt, "trainer_state.json")).global_step == 10
    assert json.load(open(os.path.join(ckpt, "scheduler.json")))["last_epoch"] == 10
    assert json.load(open(os.path.join(ckpt, "training_args.json")))["eval_strategy"] == "epoch"
    # The config loads in transformers (PyTorch side) unchanged.
    assert transformers.AutoConfig.from_pretrained(ckpt).num_labels == 2


def test_crash_while_saving_leaves_previous_checkpoints_intact(run_epoch, monkeypatch):
    trainer = run_epoch[0]
    out = trainer.args.output_dir
    before = {n: sorted(os.listdir(os.path.join(out, n))) for n in os.listdir(out)}

    def crash(directory, *args):
        trainer.model.save_pretrained(directory)  # half of the files are written...
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(trainer, "_write_checkpoint", crash)
    trainer.state.global_step = 12
    with pytest.raises(KeyboardInterrupt):
        trainer._save_checkpoint()
    trainer.state.global_step = 10
    after = {n: sorted(os.listdir(os.path.join(out, n))) for n in os.listdir(out)}
    assert after == before  # no checkpoint-12, no temporary folder, nothing else touched
    assert get_last_checkpoint(out).endswith("checkpoint-10")


def test_resume_from_final_checkpoint_trains_no_further(run_epoch, data):
    trainer = run_epoch[0]
    tokenizer, train, test = data
    resumed = Trainer(model=tiny_model(tokenizer), args=trainer.args, train_dataset=train, eval_dataset=test,
                      processing_class=tokenizer, compute_metrics=accuracy)
    output = resumed.train(resume_from_checkpoint=True)
    assert output.global_step == 10
    # The history saved at step 10, then only the new final train metrics.
    assert resumed.log_history[:-1] == trainer.log_history[:-1] and "train_runtime" in resumed.log_history[-1]
    for name, value in resumed.model.state_dict_numpy().items():  # the best checkpoint, loaded at the end
        np.testing.assert_array_equal(value, trainer.model.state_dict_numpy()[name])


def test_incomplete_or_corrupt_checkpoint_is_a_clear_error(run_epoch, data, tmp_path):
    trainer = run_epoch[0]
    tokenizer, train, _ = data
    source = os.path.join(trainer.args.output_dir, "checkpoint-10")
    incomplete = tmp_path / "checkpoint-10"
    shutil.copytree(source, incomplete)
    os.remove(incomplete / "optimizer.safetensors")
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=BATCH, disable_tqdm=True)
    fresh = Trainer(model=tiny_model(tokenizer), args=args, train_dataset=train)
    with pytest.raises(ValueError, match=r"incomplete: missing \['optimizer.safetensors'\]"):
        fresh.train(resume_from_checkpoint=True)
    shutil.copy(os.path.join(source, "optimizer.safetensors"), incomplete / "optimizer.safetensors")
    with open(incomplete / "model.safetensors", "r+b") as f:
        f.truncate(100)
    with pytest.raises(ValueError, match="corrupt"):
        fresh.train(resume_from_checkpoint=str(incomplete))
    with pytest.raises(ValueError, match="No valid checkpoint"):
        Trainer(model=tiny_model(tokenizer), args=TrainingArguments(output_dir=str(tmp_path / "empty")),
                train_dataset=train).train(resume_from_checkpoint=True)


# ---------------------------------------------------------------------------------------------- predict & data
def test_predict_and_evaluate(run_epoch, data):
    trainer = run_epoch[0]
    test = data[2]
    output = trainer.predict(test)
    assert output.predictions.shape == (ROWS_EVAL, 2)
    np.testing.assert_array_equal(output.label_ids, np.array(test["label"]))
    assert output.metrics["test_accuracy"] == pytest.approx(accuracy(EvalPrediction(output.predictions,
                                                                                    output.label_ids))["accuracy"])
    metrics = trainer.evaluate(metric_key_prefix="dev")
    assert metrics["dev_accuracy"] == output.metrics["test_accuracy"]
    assert metrics["dev_loss"] == pytest.approx(output.metrics["test_loss"], rel=1e-6)
    unlabeled = trainer.predict(test.remove_columns("label"))
    np.testing.assert_allclose(unlabeled.predictions, output.predictions, atol=1e-6)
    assert unlabeled.label_ids is None


def test_unused_columns_removed_and_weight_decay_groups(run_epoch):
    trainer = run_epoch[0]
    loader = trainer.get_train_dataloader()
    assert set(loader.dataset.column_names) == {"input_ids", "token_type_ids", "attention_mask", "label"}
    decays = dict(zip([p.name for p in trainer.optimizer.parameters], trainer.optimizer.weight_decays))
    assert decays["classifier.weight"] == 0.01 and decays["bert.encoder.layer.0.attention.self.query.weight"] == 0.01
    assert all(v == 0.0 for k, v in decays.items() if k.endswith("bias") or "LayerNorm" in k)


def test_group_by_length_bounds_batch_shapes(data, tmp_path):
    tokenizer, train, _ = data
    long = train.map(lambda b: tokenizer(b["text"], truncation=True, max_length=128), batched=True)
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4,
                             train_sampling_strategy="group_by_length")
    trainer = Trainer(model=tiny_model(tokenizer), args=args, train_dataset=long, processing_class=tokenizer)
    loader = trainer.get_train_dataloader()
    widths = set()
    for epoch in range(3):
        loader.set_epoch(epoch)
        widths |= {batch["input_ids"].shape[1] for batch in loader}
    from mindone_ft.mindspore_adapter import fitted_length_buckets

    lengths = [len(ids) for ids in long["input_ids"]]
    assert widths <= set(fitted_length_buckets(lengths, 4, "grouped")) and len(widths) <= 8
    plain = Trainer(model=trainer.model, args=TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4),
                    train_dataset=long, eval_dataset=long, processing_class=tokenizer)
    padding = lambda ld: sum(int((b["attention_mask"] == 0).sum()) for b in ld)  # noqa: E731
    assert padding(loader) < padding(plain.get_train_dataloader())
    # Shuffled training and in-order evaluation batches are padded to buckets fitted to their own batching.
    assert {b["input_ids"].shape[1] for b in plain.get_train_dataloader()} <= set(
        fitted_length_buckets(lengths, 4, "random"))
    in_order = [max(lengths[i:i + 8]) for i in range(0, len(lengths), 8)]
    buckets = fitted_length_buckets(lengths, 8, "sequential")
    assert [b["input_ids"].shape[1] for b in plain.get_eval_dataloader()] == [
        min(b for b in buckets if b >= m) for m in in_order]


def test_data_seed_changes_order_only(data, tmp_path):
    tokenizer, train, _ = data

    def order(**kwargs):
        args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=BATCH, **kwargs)
        return Trainer(model=tiny_model(tokenizer), args=args, train_dataset=train).get_train_dataloader().shard_indices()

    assert (order(seed=1) == order(seed=1)).all()
    assert (order(seed=1) == order(seed=5, data_seed=1)).all()
    assert not (order(seed=1) == order(seed=1, data_seed=2)).all()


def test_label_smoothing_matches_transformers():
    torch = pytest.importorskip("torch")
    from transformers.trainer_pt_utils import LabelSmoother

    from mindone_ft.trainer import smoothed_cross_entropy

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 5, 7)).astype(np.float32)
    labels = rng.integers(0, 7, size=(6, 5))
    labels[0, :2] = -100
    expected = LabelSmoother(epsilon=0.1)({"logits": torch.tensor(logits)}, torch.tensor(labels)).item()
    ours = smoothed_cross_entropy(ms.Tensor(logits), ms.Tensor(labels.astype(np.int32)), 0.1).asnumpy()
    assert float(ours) == pytest.approx(expected, rel=1e-5)


def test_bf16_on_cpu_is_a_clear_error(data, tmp_path):
    tokenizer = data[0]
    with pytest.raises(ValueError, match="bf16.*CPU"):
        Trainer(model=tiny_model(tokenizer), args=TrainingArguments(output_dir=str(tmp_path), bf16=True))


# ---------------------------------------------------------------------------------------------- fp16
def test_fp16_skips_overflow_steps_and_counts_them(data, tmp_path):
    class HugeScale(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            trainer._train_step.loss_scaler.scale_value.set_data(ms.Tensor(2.0**40, ms.float32))

    tokenizer, train, _ = data
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=BATCH, fp16=True, logging_steps=1,
                             max_steps=4, save_strategy="no", disable_tqdm=True, learning_rate=2e-3)
    trainer = Trainer(model=tiny_model(tokenizer), args=args, train_dataset=train, callbacks=[HugeScale])
    before = {k: v.copy() for k, v in trainer.model.state_dict_numpy().items()}
    trainer.train()
    logs = _train_logs(trainer)
    skipped = [e["skipped_steps"] for e in logs]
    assert skipped[0] == 1 and skipped == sorted(skipped)  # cumulative count of skipped updates
    assert logs[-1]["loss_scale"] < 2.0**40
    assert all(np.isfinite(e["loss"]) for e in logs)
    changed = any(not np.array_equal(before[k], v) for k, v in trainer.model.state_dict_numpy().items())
    assert changed == (skipped[-1] < 4)


# ---------------------------------------------------------------------------------------------- callbacks
def test_early_stopping_callback_logic():
    args = TrainingArguments(output_dir="unused", eval_strategy="steps", eval_steps=1, metric_for_best_model="loss",
                             load_best_model_at_end=True, save_steps=1)
    state, control = TrainerState(), TrainerControl()
    callback = EarlyStoppingCallback(early_stopping_patience=2, early_stopping_threshold=0.01)
    callback.on_train_begin(args, state, control)
    for loss, best in [(1.0, None), (0.9, 1.0), (0.895, 0.9), (0.893, 0.9)]:
        state.best_metric = best
        callback.on_evaluate(args, state, control, metrics={"eval_loss": loss})
    assert callback.early_stopping_patience_counter == 2 and control.should_training_stop
    assert EarlyStoppingCallback.from_state(callback.state()).early_stopping_patience_counter == 2
    with pytest.raises(ValueError, match="IntervalStrategy"):
        callback.on_train_begin(TrainingArguments(output_dir="unused", metric_for_best_model="loss"), state, control)


def _read_scalars(log_dir: str) -> dict:
    """`{tag: [(step, value), ...]}` from TensorBoard event files (TFRecord framing, tensorboardX protos)."""
    import struct

    from tensorboardX.proto import event_pb2

    scalars = {}
    for name in sorted(os.listdir(log_dir)):
        with open(os.path.join(log_dir, name), "rb") as f:
            data = f.read()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset: offset + 8])
            event = event_pb2.Event.FromString(data[offset + 12: offset + 12 + length])
            offset += 12 + length + 4
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


def test_tensorboard_callback_writes_scalars(tmp_path):
    pytest.importorskip("tensorboardX")
    from mindone_ft import TensorBoardCallback

    args = TrainingArguments(output_dir=str(tmp_path), report_to="tensorboard")
    state, control = TrainerState(), TrainerControl()
    callback = TensorBoardCallback()
    callback.on_train_begin(args, state, control)
    for step, loss in [(1, 0.75), (2, 0.5)]:
        state.global_step = step
        callback.on_log(args, state, control, logs={"loss": loss, "eval_accuracy": 0.25, "note": "text"})
    callback.on_train_end(args, state, control)
    scalars = _read_scalars(args.logging_dir)
    assert scalars["train/loss"] == [(1, 0.75), (2, 0.5)]
    assert scalars["eval/accuracy"] == [(1, 0.25), (2, 0.25)]
