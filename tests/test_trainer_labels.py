"""Trainer label handling as in transformers: label names from the model's signature (question answering trains on
start/end positions), `label_names`, label tuples for `compute_metrics`, label smoothing only for `labels`,
`config.problem_type` inferred during training, and a clear error for an untokenized dataset.

Tiny random BERTs (hidden 32, 2 layers) on real reviews, so every graph compiles in a few seconds.
"""

import json
import os

import numpy as np
import pytest

import mindspore as ms

from mindone_ft import (
    BertForMaskedLM,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertModel,
    EvalPrediction,
    Trainer,
    TrainingArguments,
)
from mindone_ft.trainer_utils import find_labels

ROWS_TRAIN, ROWS_EVAL, BATCH, MAX_LENGTH = 40, 16, 8, 32


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from mindone_ft.mindspore_adapter import MindSporeArguments, init_environment
    from mindone_ft.utils import default_model_path

    init_environment(MindSporeArguments(deterministic=True, cpu_threads=1))
    return AutoTokenizer.from_pretrained(default_model_path())


@pytest.fixture(scope="module")
def reviews():
    from mindone_ft.utils import load_rotten_tomatoes

    data = load_rotten_tomatoes()
    return data["train"].select(range(ROWS_TRAIN)), data["test"].select(range(ROWS_EVAL))


@pytest.fixture(scope="module")
def qa_data(tokenizer, reviews):
    """Reviews with a learnable span: from the first word piece to the last one before [SEP]."""

    def tokenize(batch):
        encoded = tokenizer(batch["text"], truncation=True, max_length=MAX_LENGTH)
        encoded["start_positions"] = [1] * len(batch["text"])
        encoded["end_positions"] = [len(ids) - 2 for ids in encoded["input_ids"]]
        return encoded

    train, test = reviews
    return train.map(tokenize, batched=True), test.map(tokenize, batched=True)


def tiny_config(tokenizer, **kwargs):
    from transformers import BertConfig

    ms.set_seed(0)
    defaults = dict(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertConfig(**{**defaults, **kwargs})


def training_args(tmp_path, **kwargs):
    defaults = dict(per_device_train_batch_size=BATCH, per_device_eval_batch_size=ROWS_EVAL, num_train_epochs=3,
                    learning_rate=3e-3, seed=11, disable_tqdm=True, save_strategy="no", logging_steps=1)
    return TrainingArguments(output_dir=str(tmp_path), **{**defaults, **kwargs})


def span_exact_match(pred: EvalPrediction) -> dict:
    (start_logits, end_logits), (start, end) = pred.predictions, pred.label_ids
    return {"exact_match": float(((start_logits.argmax(-1) == start) & (end_logits.argmax(-1) == end)).mean())}


@pytest.fixture(scope="module")
def qa_run(tmp_path_factory, tokenizer, qa_data):
    train, test = qa_data
    received = []

    def metrics(pred):
        received.append(pred)
        return span_exact_match(pred)

    trainer = Trainer(model=BertForQuestionAnswering(tiny_config(tokenizer)),
                      args=training_args(tmp_path_factory.mktemp("qa"), eval_strategy="epoch"),
                      train_dataset=train, eval_dataset=test, processing_class=tokenizer, compute_metrics=metrics)
    before = trainer.evaluate()
    trainer.train()
    return trainer, before, received


def test_find_labels_follows_transformers():
    import transformers

    for name in ("BertForSequenceClassification", "BertForQuestionAnswering", "BertForPreTraining",
                 "BertForMaskedLM", "BertModel"):
        import mindone_ft

        assert find_labels(getattr(mindone_ft, name)) == transformers.utils.find_labels(getattr(transformers, name))
    assert find_labels(BertForQuestionAnswering) == ["start_positions", "end_positions"]
    assert find_labels(BertForPreTraining) == ["labels", "next_sentence_label"]


def test_question_answering_trains_and_loss_falls(qa_run):
    trainer, before, _ = qa_run
    assert trainer.label_names == ["start_positions", "end_positions"]
    losses = [entry["loss"] for entry in trainer.log_history if "loss" in entry]
    assert len(losses) == 15
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3]), losses
    evals = [entry for entry in trainer.log_history if "eval_loss" in entry]
    assert len(evals) == 3 and evals[-1]["eval_loss"] < 0.8 * before["eval_loss"]
    assert evals[-1]["eval_exact_match"] > before["eval_exact_match"]


def test_question_answering_metrics_and_predict_get_label_tuples(qa_run, qa_data):
    trainer, _, received = qa_run
    pred = received[-1]
    assert isinstance(pred.label_ids, tuple) and len(pred.label_ids) == 2
    np.testing.assert_array_equal(pred.label_ids[0], np.ones(ROWS_EVAL))
    assert isinstance(pred.predictions, tuple) and pred.predictions[0].shape[0] == ROWS_EVAL

    output = trainer.predict(qa_data[1])
    start, end = output.label_ids
    np.testing.assert_array_equal(end, np.array(qa_data[1]["end_positions"]))
    start_logits, end_logits = output.predictions
    assert start_logits.shape == end_logits.shape and start_logits.shape[0] == ROWS_EVAL
    assert {"test_loss", "test_exact_match"} <= set(output.metrics)

    # Without labels: predictions only, no loss (the model's outputs start with the logits).
    unlabeled = qa_data[1].remove_columns(["start_positions", "end_positions"])
    output = trainer.predict(unlabeled)
    assert output.label_ids is None and "test_loss" not in output.metrics
    np.testing.assert_allclose(output.predictions[0], start_logits, atol=1e-5)


def test_label_names_are_honoured(tmp_path, tokenizer, qa_data):
    """`label_names` decides what `compute_metrics` receives; the loss still comes from the model's arguments."""
    train, test = qa_data
    received = []
    trainer = Trainer(model=BertForQuestionAnswering(tiny_config(tokenizer)),
                      args=training_args(tmp_path, label_names=["end_positions"], max_steps=2),
                      train_dataset=train, eval_dataset=test, processing_class=tokenizer,
                      compute_metrics=lambda p: received.append(p) or {})
    trainer.train()
    metrics = trainer.evaluate()
    assert "eval_loss" in metrics
    np.testing.assert_array_equal(received[-1].label_ids, np.array(test["end_positions"]))


def test_question_answering_without_positions_is_a_clear_error(tmp_path, tokenizer, qa_data):
    train = qa_data[0].remove_columns(["end_positions"])
    trainer = Trainer(model=BertForQuestionAnswering(tiny_config(tokenizer)), args=training_args(tmp_path),
                      train_dataset=train, processing_class=tokenizer)
    with pytest.raises(ValueError, match="start_positions.*end_positions.*missing \\['end_positions'\\]"):
        trainer.train()


def test_model_without_loss_is_a_clear_error(tmp_path, tokenizer, qa_data):
    trainer = Trainer(model=BertModel(tiny_config(tokenizer)), args=training_args(tmp_path),
                      train_dataset=qa_data[0], processing_class=tokenizer)
    assert trainer.label_names == []
    with pytest.raises(ValueError, match="BertModel returns no loss"):
        trainer.train()


def test_label_smoothing_only_replaces_a_labels_loss(tmp_path, tokenizer, caplog):
    trainer = Trainer(model=BertForQuestionAnswering(tiny_config(tokenizer)),
                      args=training_args(tmp_path, label_smoothing_factor=0.1))
    assert trainer._smoothing_index is None and "label_smoothing_factor=0.1 is ignored" in caplog.text
    trainer = Trainer(model=BertForSequenceClassification(tiny_config(tokenizer)),
                      args=training_args(tmp_path, label_smoothing_factor=0.1))
    assert trainer._smoothing_index == trainer._input_names.index("labels")
    model = BertForSequenceClassification(tiny_config(tokenizer, problem_type="multi_label_classification"))
    assert Trainer(model=model, args=training_args(tmp_path, label_smoothing_factor=0.1))._smoothing_index is None


def test_untokenized_dataset_is_a_clear_error_before_compiling(tmp_path, tokenizer, reviews):
    train, test = reviews  # raw `text` and `label`
    trainer = Trainer(model=BertForSequenceClassification(tiny_config(tokenizer, num_labels=2)),
                      args=training_args(tmp_path), train_dataset=train, eval_dataset=test,
                      processing_class=tokenizer)
    fix = 'dataset.map(lambda b: tokenizer(b["text"], truncation=True), batched=True)'
    for run in (trainer.train, trainer.evaluate, lambda: trainer.predict(test)):
        with pytest.raises(ValueError, match="no `input_ids` column") as error:
            run()
        assert fix in str(error.value) and "'label', 'text'" in str(error.value)
    assert trainer._train_step is None  # failed before building (and compiling) the train step


def test_custom_collator_batches_without_input_ids_are_a_clear_error(tmp_path, tokenizer, reviews):
    train, _ = reviews
    trainer = Trainer(model=BertForSequenceClassification(tiny_config(tokenizer, num_labels=2)),
                      args=training_args(tmp_path), train_dataset=train,
                      data_collator=lambda rows: {"labels": np.array([r["label"] for r in rows])})
    with pytest.raises(ValueError, match="The batch has no `input_ids` column"):
        trainer.train()


def test_problem_type_is_set_during_training_and_saved(tmp_path, tokenizer, reviews):
    tokenize = lambda batch: tokenizer(batch["text"], truncation=True, max_length=16)  # noqa: E731
    train = reviews[0].map(tokenize, batched=True)
    model = BertForSequenceClassification(tiny_config(tokenizer, num_labels=2))
    assert model.config.problem_type is None
    trainer = Trainer(model=model, args=training_args(tmp_path, max_steps=1), train_dataset=train,
                      processing_class=tokenizer)
    trainer.train()
    assert model.config.problem_type == "single_label_classification"
    trainer.save_model(str(tmp_path / "saved"))
    with open(tmp_path / "saved" / "config.json", encoding="utf-8") as handle:
        assert json.load(handle)["problem_type"] == "single_label_classification"

    regression = train.map(lambda row: {"label": float(row["label"])})
    model = BertForSequenceClassification(tiny_config(tokenizer, num_labels=1))
    Trainer(model=model, args=training_args(tmp_path, max_steps=1), train_dataset=regression,
            processing_class=tokenizer).train()
    assert model.config.problem_type == "regression"


def test_masked_lm_still_uses_labels(tmp_path, tokenizer, reviews):
    """A model whose only label is `labels` keeps the single-array label_ids."""
    def tokenize(batch):
        encoded = tokenizer(batch["text"], truncation=True, max_length=16, padding="max_length")
        encoded["labels"] = [[t if i % 4 == 1 else -100 for i, t in enumerate(ids)] for ids in encoded["input_ids"]]
        return encoded

    test = reviews[1].map(tokenize, batched=True)
    received = []
    trainer = Trainer(model=BertForMaskedLM(tiny_config(tokenizer)), args=training_args(tmp_path),
                      processing_class=tokenizer, compute_metrics=lambda p: received.append(p) or {})
    metrics = trainer.evaluate(test)
    assert "eval_loss" in metrics and isinstance(received[0].label_ids, np.ndarray)
    assert received[0].label_ids.shape == (ROWS_EVAL, 16)
