"""The Hugging Face PyTorch twin of `examples/bert/finetune_in_native_mindspore.py`, for comparing accuracy.

Same offline model, same reviews (same split, shuffle seed and slices), same tokenisation, batch size,
learning rate, linear schedule, gradient clipping and epochs; the loop is the one of the Hugging Face
"native PyTorch" tutorial. Needs torch (`pip install torch==2.13.0`), which the library itself never does.

    python benchmarks/native_pytorch_reference.py --per_device_train_batch_size 8
"""

import json
import os
import sys
import time

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, HfArgumentParser
from transformers import get_scheduler

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "bert"))
from finetune_in_native_mindspore import ExampleArguments, tokenized_splits  # noqa: E402

from mindone_ft.utils.offline import resolve_model_name  # noqa: E402


def main():
    (args,) = HfArgumentParser(ExampleArguments).parse_args_into_dataclasses()
    torch.manual_seed(args.seed)
    model_path = resolve_model_name(args.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    train_data, eval_data = tokenized_splits(args, tokenizer, args.seed)
    collator = DataCollatorWithPadding(tokenizer)
    generator = torch.Generator().manual_seed(args.seed)
    train_loader = torch.utils.data.DataLoader(
        train_data.with_format("torch"), batch_size=args.per_device_train_batch_size, shuffle=True,
        collate_fn=collator, drop_last=True, generator=generator,
    )
    eval_loader = torch.utils.data.DataLoader(
        eval_data.with_format("torch"), batch_size=args.per_device_eval_batch_size, collate_fn=collator
    )

    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.learning_rate,
    )
    num_steps = len(train_loader) * args.num_train_epochs
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=0, num_training_steps=num_steps)

    losses, start = [], time.perf_counter()
    for _ in tqdm(range(args.num_train_epochs)):
        model.train()
        for batch in train_loader:
            loss = model(**batch).loss
            loss.backward()
            if args.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(loss.item())
    train_time = time.perf_counter() - start

    model.eval()
    correct = total = 0
    with torch.no_grad():
        for batch in eval_loader:
            logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
            correct += int((logits.argmax(-1) == batch["labels"]).sum())
            total += len(batch["labels"])
    print(json.dumps({
        "eval_accuracy": correct / total,
        "train_loss": float(np.mean(losses)),
        "train_runtime": round(train_time, 2),
        "train_samples_per_second": round(num_steps * args.per_device_train_batch_size / train_time, 3),
        "torch_threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
