"""Trains the tiny BERT of `_dp_trainer_worker.py` under msrun with plain data parallelism and with ZeRO, for
`test_zero.py`. One launch runs every configuration one after the other (each launch costs tens of seconds):

    msrun --worker_num=2 ... tests/_zero_worker.py OUT

- `dp`, `zero1` (`deepspeed` dict, stage 1), `zero2` (`fsdp="shard_grad_op"`): 4 steps, a checkpoint at step 2;
- `zero2_resumed`: ZeRO-2 resumed from `zero2/checkpoint-2`, to step 4;
- `dp_gas2`, `zero2_gas2`: 2 steps of 2 accumulated micro-batches (stage 2 accumulates gradient slices).

Each rank writes `OUT/<run>_rank{r}.npz` (final parameters) and `OUT/<run>_rank{r}.json` (logged losses,
optimizer state elements on this rank and in the whole unsharded state).
"""

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _dp_trainer_worker import TRAIN_ROWS, tiny_bert, tiny_dataset  # noqa: E402

from mindone_ft import Trainer, TrainingArguments  # noqa: E402
from mindone_ft.mindspore_adapter import MindSporeArguments, init_environment  # noqa: E402
from mindone_ft.mindspore_adapter.zero import optimizer_state_size  # noqa: E402

ZERO1 = {"deepspeed": {"zero_optimization": {"stage": 1, "overlap_comm": True}, "train_batch_size": "auto"}}
ZERO2 = {"fsdp": "shard_grad_op"}
RUNS = [
    ("dp", {}, None),
    ("zero1", ZERO1, None),
    ("zero2", ZERO2, None),
    ("zero2_resumed", ZERO2, "zero2/checkpoint-2"),
    ("dp_gas2", {"gradient_accumulation_steps": 2}, None),
    ("zero2_gas2", {**ZERO2, "gradient_accumulation_steps": 2}, None),
]


def main():
    out, only = sys.argv[1], sys.argv[2:]  # optional run names: only those (for debugging)
    rank, world_size = init_environment(MindSporeArguments(device_target="CPU", cpu_threads=1))
    train = tiny_dataset(TRAIN_ROWS, seed=1)
    for name, options, resume in RUNS:
        if only and name not in only:
            continue
        options = dict(options)
        gas = options.pop("gradient_accumulation_steps", 1)
        args = TrainingArguments(
            output_dir=os.path.join(out, name), per_device_train_batch_size=4, gradient_accumulation_steps=gas,
            max_steps=4 // gas, learning_rate=1e-2, logging_steps=1, save_steps=2, seed=0, disable_tqdm=True,
            report_to="none", **options,
        )
        trainer = Trainer(model_init=tiny_bert, args=args, train_dataset=train)
        trainer.train(resume_from_checkpoint=os.path.join(out, resume) if resume else None)
        params = trainer.model.trainable_params()
        np.savez(os.path.join(out, f"{name}_rank{rank}.npz"), **{p.name: p.asnumpy() for p in params})
        result = {
            "rank": rank, "world_size": world_size, "zero_stage": args.zero_stage,
            "optimizer": type(trainer.optimizer).__name__,
            "logged_losses": [log["loss"] for log in trainer.state.log_history if "loss" in log],
            "grad_norms": [log["grad_norm"] for log in trainer.state.log_history if "grad_norm" in log],
            "optimizer_state_size": optimizer_state_size(trainer.optimizer),
            "full_state_size": 2 * int(sum(p.size for p in params)),
        }
        with open(os.path.join(out, f"{name}_rank{rank}.json"), "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    main()
