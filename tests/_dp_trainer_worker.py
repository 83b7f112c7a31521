"""Trains a tiny random BERT with the `Trainer` and writes what `test_distributed.py` compares.

The same script runs as one process or under msrun; `init_environment` (inside the Trainer) decides:

    python tests/_dp_trainer_worker.py OUT --batch_size 8                  # 1 process, batch 8
    msrun --worker_num=2 ... tests/_dp_trainer_worker.py OUT --batch_size 4  # 2 ranks x batch 4

Each rank writes `OUT/rank{r}.npz` (final parameters) and `OUT/rank{r}.json` (losses it computed, log history,
evaluation metrics, gathered predictions, a direct full-batch evaluation, the rows it trained on). Checkpoints
go to `OUT/run` on rank 0; other ranks are given `OUT/run_rank{r}`, which must stay absent (only rank 0 writes).
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from datasets import Dataset  # noqa: E402
from transformers import BertConfig  # noqa: E402

import mindspore as ms  # noqa: E402

from mindone_ft import BertForSequenceClassification, Trainer, TrainerCallback, TrainingArguments  # noqa: E402
from mindone_ft.mindspore_adapter import MindSporeArguments, NumpyDataCollator, init_environment  # noqa: E402

VOCAB, TRAIN_ROWS, EVAL_ROWS = 64, 32, 13  # 13 eval rows: shards of 7 and 6, not a multiple of any batch
MAX_STEPS = 3


def tiny_dataset(num_rows: int, seed: int) -> Dataset:
    """Random token rows of 4-30 tokens (one 32-token bucket, so every batch has the same length) whose label
    depends on the tokens, so that the model has something to learn and per-rank losses differ."""
    rng = np.random.default_rng(seed)
    rows = [rng.integers(1, VOCAB, size=rng.integers(4, 31)).tolist() for _ in range(num_rows)]
    return Dataset.from_dict({
        "input_ids": rows,
        "attention_mask": [[1] * len(r) for r in rows],
        "label": [int(np.mean(r) > VOCAB / 2) for r in rows],
    })


def tiny_bert() -> BertForSequenceClassification:
    config = BertConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64, num_labels=2, pad_token_id=0, initializer_range=0.2,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,  # dropout off: runs must match exactly
    )
    return BertForSequenceClassification(config)


class RecordingTrainer(Trainer):
    """Keeps the loss this rank computed at every micro-step (before any averaging over ranks)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.local_losses = []

    def _accumulate_loss(self, loss):
        self.local_losses.append(float(loss.asnumpy()))
        super()._accumulate_loss(loss)


class DieAtStep(TrainerCallback):
    """Kills this process at `step` (to test that msrun fails instead of hanging)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            os._exit(3)


def direct_evaluation(model, dataset) -> dict:
    """Loss, accuracy and logits of one forward pass over the whole set in this process, without the Trainer."""
    batch = NumpyDataCollator(pad_token_id=0)([dict(row) for row in dataset])
    inputs = {k: ms.Tensor(v) for k, v in batch.items() if k != "labels"}
    model.set_train(False)
    logits = model(**inputs)[0].asnumpy().astype(np.float64)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    labels = batch["labels"]
    return {
        "eval_loss": float(-log_probs[np.arange(len(labels)), labels].mean()),
        "eval_accuracy": float((logits.argmax(-1) == labels).mean()),
        "logits": logits.tolist(),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--batch_size", type=int, required=True)
    parser.add_argument("--die_at_step", type=int, default=None, help="rank 1 exits at this step")
    cli = parser.parse_args()

    rank, world_size = init_environment(MindSporeArguments(device_target="CPU", cpu_threads=1))
    gathered = {}

    def compute_metrics(eval_pred):
        gathered["predictions"], gathered["label_ids"] = eval_pred.predictions, eval_pred.label_ids
        return {"accuracy": float((eval_pred.predictions.argmax(-1) == eval_pred.label_ids).mean())}

    output_dir = os.path.join(cli.out, "run" if rank == 0 else f"run_rank{rank}")
    args = TrainingArguments(
        output_dir=output_dir, per_device_train_batch_size=cli.batch_size, per_device_eval_batch_size=4,
        max_steps=MAX_STEPS, learning_rate=1e-2, logging_steps=1, save_steps=MAX_STEPS, seed=0,
        disable_tqdm=True, report_to="none",
    )
    callbacks = [DieAtStep(cli.die_at_step)] if cli.die_at_step is not None and rank == 1 else []
    train, evaluation = tiny_dataset(TRAIN_ROWS, seed=1), tiny_dataset(EVAL_ROWS, seed=2)
    trainer = RecordingTrainer(model_init=tiny_bert, args=args, train_dataset=train, eval_dataset=evaluation,
                               compute_metrics=compute_metrics, callbacks=callbacks)
    trained_rows = trainer.get_train_dataloader().shard_indices().tolist()
    trainer.train()
    metrics = trainer.evaluate()

    np.savez(os.path.join(cli.out, f"rank{rank}.npz"),
             **{p.name: p.asnumpy() for p in trainer.model.get_parameters()})
    result = {
        "rank": rank, "world_size": world_size, "trained_rows": trained_rows,
        "local_losses": trainer.local_losses,
        "logged_losses": [log["loss"] for log in trainer.state.log_history if "loss" in log],
        "metrics": metrics,
        "predictions": gathered["predictions"].tolist(), "label_ids": gathered["label_ids"].tolist(),
        "direct": direct_evaluation(trainer.model, evaluation),
    }
    with open(os.path.join(cli.out, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
