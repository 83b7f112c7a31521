"""`TrainingArguments`: the hyper-parameters of `Trainer`, with transformers 5.23's names and defaults.

Every field of transformers' `TrainingArguments` exists here, so scripts and `HfArgumentParser` command lines
written for Hugging Face work unchanged. Each field is in exactly one of four groups (the tables below,
also rendered in `docs/training_args.md` by `training_args_markdown()`):

- supported: does what it does in transformers;
- accepted: kept for compatibility, has no effect on MindSpore (said why);
- unsupported: setting it to anything but its default raises a `ValueError` naming it at construction;
- legacy: older names (transformers 4.x) mapped to their 5.x replacement.
"""

import contextlib
import json
import logging
import math
import os
import socket
import warnings
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime
from enum import Enum
from typing import Any, Optional, Union

from .trainer_utils import IntervalStrategy, SaveStrategy, SchedulerType

logger = logging.getLogger(__name__)

# Names of the optimizers that our `AdamW` (decoupled weight decay, torch semantics) stands in for.
_ADAMW_NAMES = ("adamw_torch_fused", "adamw_torch", "adamw_hf", "adamw")
_SAMPLING_STRATEGIES = ("random", "sequential", "group_by_length")
_REPORT_TO = ("none", "tensorboard")

SUPPORTED_ARGS = {
    "output_dir": "Checkpoints, `trainer_state.json` and the final model go here (default `trainer_output`).",
    "per_device_train_batch_size": "Batch size per process for training.",
    "per_device_eval_batch_size": "Batch size per process for evaluation/prediction.",
    "num_train_epochs": "Epochs; fractional values stop part-way through the last epoch.",
    "max_steps": "Update steps; overrides `num_train_epochs` when > 0.",
    "learning_rate": "Peak learning rate of `AdamW`.",
    "lr_scheduler_type": "`linear`, `cosine`, `cosine_with_restarts`, `polynomial`, `constant`, "
    "`constant_with_warmup`, `inverse_sqrt`, `cosine_with_min_lr`.",
    "lr_scheduler_kwargs": "Extra schedule arguments, e.g. `{\"min_lr_rate\": 0.1}`.",
    "warmup_steps": "Linear warmup: steps if >= 1, a ratio of the total steps if < 1.",
    "optim": "`adamw_torch_fused`/`adamw_torch`/`adamw_hf`/`adamw`, all mapped to mindone_ft's `AdamW` (torch semantics).",
    "weight_decay": "Decoupled weight decay, not applied to biases and LayerNorm weights.",
    "adam_beta1": "AdamW beta1.",
    "adam_beta2": "AdamW beta2.",
    "adam_epsilon": "AdamW epsilon.",
    "gradient_accumulation_steps": "Batches accumulated per update step (exact: the mean over the batches).",
    "max_grad_norm": "Clip the global gradient norm (0 disables).",
    "label_smoothing_factor": "Label smoothing of the cross-entropy loss.",
    "fp16": "float16 compute with dynamic loss scaling; overflowing steps are skipped and counted in the logs.",
    "bf16": "bfloat16 compute (Ascend/GPU); a clear error on CPU, whose MatMul has no bf16 kernel.",
    "logging_strategy": "`no`, `steps` or `epoch`.",
    "logging_steps": "Log every N update steps (ratio of total steps if < 1).",
    "logging_first_step": "Also log after the first step.",
    "disable_tqdm": "No progress bars (logs are printed instead).",
    "report_to": "`none` or `tensorboard` (needs `tensorboardX`); `all` means every installed one of these.",
    "run_name": "Name of the run (stored; shown in TensorBoard args).",
    "eval_strategy": "`no`, `steps` or `epoch`.",
    "eval_steps": "Evaluate every N update steps (default: `logging_steps`).",
    "eval_delay": "Steps/epochs to wait before the first evaluation.",
    "prediction_loss_only": "Evaluation returns the loss only.",
    "eval_on_start": "Evaluate once before training (a sanity check).",
    "save_only_model": "Checkpoints hold the model only (no optimizer/scheduler/RNG state: cannot resume).",
    "save_strategy": "`no`, `steps`, `epoch` or `best`.",
    "save_steps": "Save every N update steps (ratio of total steps if < 1).",
    "save_total_limit": "Keep at most N checkpoints (never deleting the best one).",
    "load_best_model_at_end": "Reload the best checkpoint when training ends.",
    "metric_for_best_model": "Metric that picks the best checkpoint (default `loss` with `load_best_model_at_end`).",
    "greater_is_better": "Whether a larger `metric_for_best_model` is better (default: not for `*loss`).",
    "ignore_data_skip": "On resume, do not skip the batches already seen.",
    "restore_callback_states_from_checkpoint": "On resume, restore stateful callbacks (e.g. EarlyStopping).",
    "full_determinism": "Deterministic kernels (`mindspore.set_deterministic`). CPU dropout is reproducible "
    "without it; with the CPU kernels off it needs one thread (`--deterministic` sets that).",
    "seed": "Seed of parameter init, dropout and shuffling.",
    "data_seed": "Seed of the data order only (default: `seed`).",
    "dataloader_drop_last": "Drop the last incomplete training batch.",
    "remove_unused_columns": "Drop dataset columns the model's `construct` does not take.",
    "label_names": "Input names of the labels; default: the model's label arguments (`labels`; "
                   "`start_positions`, `end_positions` for question answering), as transformers' `find_labels`.",
    "hub_model_id": "Repository of `trainer.push_to_hub()` (default: the output folder's name).",
    "hub_token": "Token of `trainer.push_to_hub()`.",
    "hub_private_repo": "Whether `trainer.push_to_hub()` creates a private repository.",
    "hub_revision": "Branch `trainer.push_to_hub()` pushes to.",
    "train_sampling_strategy": "`random`, `sequential` or `group_by_length` (length buckets: few compiled shapes).",
    "length_column_name": "Precomputed length column for `group_by_length`.",
    "deepspeed": "ZeRO over the msrun ranks: a dict, JSON string or JSON file with `zero_optimization.stage` 1 "
    "(optimizer state sharded) or 2 (plus gradients); other keys only as `\"auto\"` (see docs/distributed.md).",
    "activation_checkpointing": "Recompute each encoder/decoder layer in the backward pass (MindSpore recompute, "
    "GRAPH and PYNATIVE): less activation memory, the same numbers (dropout masks are replayed).",
    "activation_checkpointing_kwargs": "`every_n_layers` (checkpoint every n-th layer) and `use_reentrant` (no "
    "effect); `offload` and other `torch.utils.checkpoint` options raise.",
    "fsdp": "`shard_grad_op` = ZeRO stage 2 (as `deepspeed`); `full_shard` (stage 3) raises, naming stages 1/2.",
}

ACCEPTED_ARGS = {
    "average_tokens_across_devices": "Loss is a mean per batch, averaged across devices.",
    "use_cache": "Our models have no KV cache during training.",
    "log_on_each_node": "Only rank 0 logs.",
    "logging_nan_inf_filter": "Logged loss is the mean of the real losses since the last log.",
    "log_level": "Use Python `logging` to set levels.",
    "log_level_replica": "Use Python `logging` to set levels.",
    "project": "Used by trackio only.",
    "eval_do_concat_batches": "Evaluation batches are always concatenated (padded to the longest).",
    "eval_accumulation_steps": "Predictions are moved to host memory after every batch.",
    "include_for_metrics": "Empty only; `inputs`/`loss` are not passed to `compute_metrics`.",
    "use_cpu": "The device comes from `MindSporeArguments.device_target`.",
    "dataloader_num_workers": "Batches are built in the main process (cheaper than workers for tokenized data).",
    "dataloader_pin_memory": "No pinned memory in MindSpore.",
    "dataloader_persistent_workers": "No worker processes.",
    "dataloader_prefetch_factor": "No worker processes.",
    "dataloader_in_order": "Batches are always in order.",
    "ddp_find_unused_parameters": "Data parallel is MindSpore's (`msrun`).",
    "ddp_bucket_cap_mb": "Data parallel is MindSpore's (`msrun`).",
    "ddp_broadcast_buffers": "Data parallel is MindSpore's (`msrun`).",
    "ddp_static_graph": "Data parallel is MindSpore's (`msrun`).",
    "ddp_backend": "The backend is chosen by MindSpore (hccl/nccl/mccl).",
    "ddp_timeout": "Data parallel is MindSpore's (`msrun`).",
    "skip_memory_metrics": "No memory metrics.",
    "do_train": "Read by scripts, not by `Trainer` (as in transformers).",
    "do_eval": "Read by scripts, not by `Trainer` (as in transformers).",
    "do_predict": "Read by scripts, not by `Trainer` (as in transformers).",
    "resume_from_checkpoint": "Read by scripts; pass it to `trainer.train(resume_from_checkpoint=...)`.",
    "local_rank": "Rank comes from `init_environment` (msrun).",
    "debug": "Empty only.",
}

UNSUPPORTED_ARGS = {
    "optim_args": "Optimizer is `AdamW`, configured by `adam_*` and `weight_decay`.",
    "optim_target_modules": "No GaLore/APOLLO optimizers.",
    "bf16_full_eval": "Evaluation runs in the training dtype.",
    "fp16_full_eval": "Evaluation runs in the training dtype.",
    "tf32": "CUDA only.",
    "torch_compile": "MindSpore compiles graphs itself (GRAPH_MODE).",
    "torch_compile_backend": "MindSpore compiles graphs itself (GRAPH_MODE).",
    "torch_compile_mode": "MindSpore compiles graphs itself (GRAPH_MODE).",
    "use_liger_kernel": "CUDA kernels.",
    "liger_kernel_config": "CUDA kernels.",
    "neftune_noise_alpha": "Not implemented.",
    "torch_empty_cache_steps": "torch only.",
    "auto_find_batch_size": "Not implemented.",
    "include_num_input_tokens_seen": "Not implemented.",
    "trackio_space_id": "No Hub.",
    "trackio_bucket_id": "No Hub.",
    "trackio_static_space_id": "No Hub.",
    "eval_use_gather_object": "Not implemented.",
    "batch_eval_metrics": "`compute_metrics` is called once on the whole eval set.",
    "save_on_each_node": "Only rank 0 saves.",
    "enable_jit_checkpoint": "Not implemented.",
    "push_to_hub": "No uploads during training: call `trainer.push_to_hub()` after `train()`.",
    "hub_strategy": "No uploads during training: call `trainer.push_to_hub()` after `train()`.",
    "hub_always_push": "No uploads during training: call `trainer.push_to_hub()` after `train()`.",
    "accelerator_config": "No accelerate.",
    "parallelism_config": "No accelerate.",
    "dataloader_multiprocessing_context": "No worker processes.",
    "fsdp_config": "FSDP wrapping options do not apply: ZeRO shards every parameter (see `fsdp`).",
}

LEGACY_ARGS = {
    "evaluation_strategy": "`eval_strategy`",
    "warmup_ratio": "`warmup_steps` (a value below 1 is a ratio)",
    "group_by_length": "`train_sampling_strategy=\"group_by_length\"`",
    "no_cuda": "`use_cpu` (no effect)",
    "overwrite_output_dir": "nothing: removed in transformers 5 (checkpoints never overwrite each other)",
    "save_safetensors": "nothing: checkpoints are always Hugging Face safetensors (`False` warns)",
    "gradient_checkpointing": "`activation_checkpointing` (transformers 5's deprecated alias)",
    "gradient_checkpointing_kwargs": "`activation_checkpointing_kwargs` (transformers 5's deprecated alias)",
    "logging_dir": "TensorBoard folder (default `<output_dir>/runs/<date>_<host>`), as in transformers 4",
}


def _default_logdir() -> str:
    return os.path.join("runs", datetime.now().strftime("%b%d_%H-%M-%S") + "_" + socket.gethostname())


@dataclass
class TrainingArguments:
    """Arguments of `Trainer`, the same names and defaults as transformers 5.23's `TrainingArguments`.

    Parse them from a command line with `transformers.HfArgumentParser((TrainingArguments, MindSporeArguments))`.
    See `docs/training_args.md` (or `SUPPORTED_ARGS`, `ACCEPTED_ARGS`, `UNSUPPORTED_ARGS`, `LEGACY_ARGS` in this
    module) for which fields do what on MindSpore. The most used:

    Args:
        output_dir (`str`, *optional*, defaults to `"trainer_output"`): where checkpoints and the model are written.
        per_device_train_batch_size (`int`, *optional*, defaults to 8): train batch size per process.
        num_train_epochs (`float`, *optional*, defaults to 3.0): epochs (fractions allowed).
        learning_rate (`float`, *optional*, defaults to 5e-5): peak learning rate of AdamW.
        warmup_steps (`float`, *optional*, defaults to 0): warmup steps, or a ratio of the total if < 1.
        eval_strategy / save_strategy / logging_strategy (`str`): `"no"`, `"steps"` or `"epoch"`.
        fp16 (`bool`, *optional*, defaults to `False`): float16 with dynamic loss scaling.
        seed (`int`, *optional*, defaults to 42): seed of init, dropout and data order.

    Example:

    ```python
    >>> from mindone_ft import TrainingArguments
    >>> args = TrainingArguments(output_dir="out", evaluation_strategy="epoch", warmup_ratio=0.1)
    >>> args.eval_strategy.value, args.warmup_steps
    ('epoch', 0.1)
    ```
    """

    output_dir: Optional[str] = field(default=None, metadata={"help": "Output directory (default trainer_output)."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Train batch size per device."})
    num_train_epochs: float = field(default=3.0, metadata={"help": "Total number of training epochs."})
    max_steps: int = field(default=-1, metadata={"help": "If > 0: total number of update steps."})
    learning_rate: float = field(default=5e-5, metadata={"help": "Initial learning rate for AdamW."})
    lr_scheduler_type: Union[SchedulerType, str] = field(default="linear", metadata={"help": "Scheduler type."})
    lr_scheduler_kwargs: Union[dict, str, None] = field(default=None, metadata={"help": "Scheduler kwargs (JSON)."})
    warmup_steps: float = field(default=0, metadata={"help": "Warmup steps (ratio of total if < 1)."})
    optim: str = field(default="adamw_torch_fused", metadata={"help": "Optimizer (AdamW variants)."})
    optim_args: Optional[str] = field(default=None, metadata={"help": "Unsupported."})
    weight_decay: float = field(default=0.0, metadata={"help": "Weight decay for AdamW."})
    adam_beta1: float = field(default=0.9, metadata={"help": "Beta1 for AdamW."})
    adam_beta2: float = field(default=0.999, metadata={"help": "Beta2 for AdamW."})
    adam_epsilon: float = field(default=1e-8, metadata={"help": "Epsilon for AdamW."})
    optim_target_modules: Union[None, str, list[str]] = field(default=None, metadata={"help": "Unsupported."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Batches per update step."})
    average_tokens_across_devices: bool = field(default=True, metadata={"help": "Accepted, no effect."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Max gradient norm (0 disables clipping)."})
    label_smoothing_factor: float = field(default=0.0, metadata={"help": "Label smoothing epsilon."})
    bf16: bool = field(default=False, metadata={"help": "bfloat16 compute (not on CPU)."})
    fp16: bool = field(default=False, metadata={"help": "float16 compute with dynamic loss scaling."})
    bf16_full_eval: bool = field(default=False, metadata={"help": "Unsupported."})
    fp16_full_eval: bool = field(default=False, metadata={"help": "Unsupported."})
    tf32: Optional[bool] = field(default=None, metadata={"help": "Unsupported."})
    activation_checkpointing: Optional[bool] = field(
        default=None, metadata={"help": "Recompute each layer in the backward pass (less activation memory)."}
    )
    activation_checkpointing_kwargs: Union[dict, str, None] = field(
        default=None, metadata={"help": "`every_n_layers`, `use_reentrant` (JSON)."}
    )
    gradient_checkpointing: Optional[bool] = field(default=None, metadata={"help": "Old name of activation_checkpointing."})
    gradient_checkpointing_kwargs: Union[dict, str, None] = field(
        default=None, metadata={"help": "Old name of activation_checkpointing_kwargs."}
    )
    torch_compile: bool = field(default=False, metadata={"help": "Unsupported."})
    torch_compile_backend: Optional[str] = field(default=None, metadata={"help": "Unsupported."})
    torch_compile_mode: Optional[str] = field(default=None, metadata={"help": "Unsupported."})
    use_liger_kernel: bool = field(default=False, metadata={"help": "Unsupported."})
    liger_kernel_config: Optional[dict] = field(default=None, metadata={"help": "Unsupported."})
    use_cache: bool = field(default=False, metadata={"help": "Accepted, no effect."})
    neftune_noise_alpha: Optional[float] = field(default=None, metadata={"help": "Unsupported."})
    torch_empty_cache_steps: Optional[int] = field(default=None, metadata={"help": "Unsupported."})
    auto_find_batch_size: bool = field(default=False, metadata={"help": "Unsupported."})
    logging_strategy: Union[IntervalStrategy, str] = field(default="steps", metadata={"help": "no/steps/epoch."})
    logging_steps: float = field(default=500, metadata={"help": "Log every N steps (ratio if < 1)."})
    logging_first_step: bool = field(default=False, metadata={"help": "Log the first step."})
    log_on_each_node: bool = field(default=True, metadata={"help": "Accepted, no effect."})
    logging_nan_inf_filter: bool = field(default=True, metadata={"help": "Accepted, no effect."})
    include_num_input_tokens_seen: Union[str, bool] = field(default="no", metadata={"help": "Unsupported."})
    log_level: str = field(default="passive", metadata={"help": "Accepted, no effect."})
    log_level_replica: str = field(default="warning", metadata={"help": "Accepted, no effect."})
    disable_tqdm: Optional[bool] = field(default=None, metadata={"help": "Disable progress bars."})
    report_to: Union[None, str, list[str]] = field(default="none", metadata={"help": "none or tensorboard."})
    run_name: Optional[str] = field(default=None, metadata={"help": "Run name."})
    project: str = field(default="huggingface", metadata={"help": "Accepted, no effect."})
    trackio_space_id: Optional[str] = field(default=None, metadata={"help": "Unsupported."})
    trackio_bucket_id: Optional[str] = field(default=None, metadata={"help": "Unsupported."})
    trackio_static_space_id: Optional[str] = field(default=None, metadata={"help": "Unsupported."})
    eval_strategy: Union[IntervalStrategy, str] = field(default="no", metadata={"help": "no/steps/epoch."})
    eval_steps: Optional[float] = field(default=None, metadata={"help": "Evaluate every N steps (ratio if < 1)."})
    eval_delay: float = field(default=0, metadata={"help": "Steps/epochs before the first evaluation."})
    per_device_eval_batch_size: int = field(default=8, metadata={"help": "Eval batch size per device."})
    prediction_loss_only: bool = field(default=False, metadata={"help": "Evaluation returns the loss only."})
    eval_on_start: bool = field(default=False, metadata={"help": "Evaluate before training."})
    eval_do_concat_batches: bool = field(default=True, metadata={"help": "Accepted, no effect."})
    eval_use_gather_object: bool = field(default=False, metadata={"help": "Unsupported."})
    eval_accumulation_steps: Optional[int] = field(default=None, metadata={"help": "Accepted, no effect."})
    include_for_metrics: list[str] = field(default_factory=list, metadata={"help": "Accepted when empty."})
    batch_eval_metrics: bool = field(default=False, metadata={"help": "Unsupported."})
    save_only_model: bool = field(default=False, metadata={"help": "Save the model only in checkpoints."})
    save_strategy: Union[SaveStrategy, str] = field(default="steps", metadata={"help": "no/steps/epoch/best."})
    save_steps: float = field(default=500, metadata={"help": "Save every N steps (ratio if < 1)."})
    save_on_each_node: bool = field(default=False, metadata={"help": "Unsupported."})
    save_total_limit: Optional[int] = field(default=None, metadata={"help": "Max checkpoints kept."})
    enable_jit_checkpoint: bool = field(default=False, metadata={"help": "Unsupported."})
    push_to_hub: bool = field(default=False, metadata={"help": "Unsupported."})
    hub_token: Optional[str] = field(default=None, metadata={"help": "Token of `trainer.push_to_hub()`."})
    hub_private_repo: Optional[bool] = field(default=None, metadata={"help": "Private repo for push_to_hub."})
    hub_model_id: Optional[str] = field(default=None, metadata={"help": "Repository of `trainer.push_to_hub()`."})
    hub_strategy: str = field(default="every_save", metadata={"help": "Unsupported."})
    hub_always_push: bool = field(default=False, metadata={"help": "Unsupported."})
    hub_revision: Optional[str] = field(default=None, metadata={"help": "Branch of `trainer.push_to_hub()`."})
    load_best_model_at_end: bool = field(default=False, metadata={"help": "Load the best checkpoint at the end."})
    metric_for_best_model: Optional[str] = field(default=None, metadata={"help": "Metric for the best model."})
    greater_is_better: Optional[bool] = field(default=None, metadata={"help": "Larger metric is better."})
    ignore_data_skip: bool = field(default=False, metadata={"help": "Do not skip seen batches on resume."})
    restore_callback_states_from_checkpoint: bool = field(
        default=False, metadata={"help": "Restore stateful callbacks on resume."}
    )
    full_determinism: bool = field(default=False, metadata={"help": "Deterministic kernels."})
    seed: int = field(default=42, metadata={"help": "Random seed."})
    data_seed: Optional[int] = field(default=None, metadata={"help": "Seed of the data order."})
    use_cpu: bool = field(default=False, metadata={"help": "Accepted, no effect."})
    accelerator_config: Union[dict, str, None] = field(default=None, metadata={"help": "Unsupported."})
    parallelism_config: Optional[str] = field(default=None, metadata={"help": "Unsupported."})
    dataloader_drop_last: bool = field(default=False, metadata={"help": "Drop the last incomplete batch."})
    dataloader_num_workers: int = field(default=0, metadata={"help": "Accepted, no effect."})
    dataloader_pin_memory: bool = field(default=True, metadata={"help": "Accepted, no effect."})
    dataloader_persistent_workers: bool = field(default=False, metadata={"help": "Accepted, no effect."})
    dataloader_prefetch_factor: Optional[int] = field(default=None, metadata={"help": "Accepted, no effect."})
    dataloader_multiprocessing_context: Optional[str] = field(default=None, metadata={"help": "Unsupported."})
    dataloader_in_order: bool = field(default=True, metadata={"help": "Accepted, no effect."})
    remove_unused_columns: bool = field(default=True, metadata={"help": "Drop columns the model does not take."})
    label_names: Optional[list[str]] = field(default=None, metadata={"help": "Names of the label inputs."})
    train_sampling_strategy: str = field(default="random", metadata={"help": "random/sequential/group_by_length."})
    length_column_name: str = field(default="length", metadata={"help": "Length column for group_by_length."})
    ddp_find_unused_parameters: Optional[bool] = field(default=None, metadata={"help": "Accepted, no effect."})
    ddp_bucket_cap_mb: Optional[int] = field(default=None, metadata={"help": "Accepted, no effect."})
    ddp_broadcast_buffers: Optional[bool] = field(default=None, metadata={"help": "Accepted, no effect."})
    ddp_static_graph: Optional[bool] = field(default=None, metadata={"help": "Accepted, no effect."})
    ddp_backend: Optional[str] = field(default=None, metadata={"help": "Accepted, no effect."})
    ddp_timeout: int = field(default=1800, metadata={"help": "Accepted, no effect."})
    fsdp: Optional[str] = field(default=None, metadata={"help": "'shard_grad_op': ZeRO stage 2."})
    fsdp_config: Union[dict, str, None] = field(default=None, metadata={"help": "Unsupported."})
    deepspeed: Union[dict, str, None] = field(
        default=None, metadata={"help": "DeepSpeed config (dict, JSON or JSON file): zero_optimization.stage 1/2."}
    )
    debug: str = field(default="", metadata={"help": "Accepted when empty."})
    skip_memory_metrics: bool = field(default=True, metadata={"help": "Accepted, no effect."})
    do_train: bool = field(default=False, metadata={"help": "For scripts."})
    do_eval: bool = field(default=False, metadata={"help": "For scripts."})
    do_predict: bool = field(default=False, metadata={"help": "For scripts."})
    resume_from_checkpoint: Optional[str] = field(default=None, metadata={"help": "For scripts."})
    local_rank: int = field(default=-1, metadata={"help": "Accepted, no effect."})
    # transformers 4.x names, mapped in __post_init__ and then reset to None.
    evaluation_strategy: Optional[str] = field(default=None, metadata={"help": "Old name of eval_strategy."})
    warmup_ratio: Optional[float] = field(default=None, metadata={"help": "Old name: warmup_steps < 1."})
    group_by_length: bool = field(default=False, metadata={"help": "Old name of train_sampling_strategy."})
    no_cuda: bool = field(default=False, metadata={"help": "Old name of use_cpu."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Accepted, no effect."})
    save_safetensors: bool = field(default=True, metadata={"help": "Always safetensors."})
    logging_dir: Optional[str] = field(default=None, metadata={"help": "TensorBoard log folder."})

    def __post_init__(self):
        if self.output_dir is None:
            self.output_dir = "trainer_output"
        self.output_dir = os.path.expanduser(self.output_dir)
        if isinstance(self.include_num_input_tokens_seen, bool):
            self.include_num_input_tokens_seen = "all" if self.include_num_input_tokens_seen else "no"
        self._check_unsupported()
        self._map_legacy()
        # The one internal ZeRO setting (0: off), from either Hugging Face spelling.
        self.zero_stage = zero_stage_from_args(self.deepspeed, self.fsdp)
        for name in ("lr_scheduler_kwargs", "activation_checkpointing_kwargs", "gradient_checkpointing_kwargs"):
            value = getattr(self, name)
            if isinstance(value, str) and value.startswith("{"):
                setattr(self, name, json.loads(value))
        if self.disable_tqdm is None:
            self.disable_tqdm = logger.getEffectiveLevel() > logging.WARN

        self.eval_strategy = IntervalStrategy(self.eval_strategy)
        self.logging_strategy = IntervalStrategy(self.logging_strategy)
        self.save_strategy = SaveStrategy(self.save_strategy)
        self.lr_scheduler_type = SchedulerType(self.lr_scheduler_type)
        if self.optim not in _ADAMW_NAMES:
            raise ValueError(f"`optim={self.optim!r}` is not supported; use one of {list(_ADAMW_NAMES)} (AdamW).")
        if self.train_sampling_strategy not in _SAMPLING_STRATEGIES:
            raise ValueError(
                f"`train_sampling_strategy` must be one of {list(_SAMPLING_STRATEGIES)}, "
                f"got {self.train_sampling_strategy!r}."
            )
        self.report_to = self._resolve_report_to(self.report_to)
        if self.do_eval is False and self.eval_strategy != IntervalStrategy.NO:
            self.do_eval = True

        if self.eval_strategy == IntervalStrategy.STEPS and not self.eval_steps:
            if self.logging_steps > 0:
                self.eval_steps = self.logging_steps
            else:
                raise ValueError(
                    f"evaluation strategy {self.eval_strategy.value} requires either non-zero --eval_steps or"
                    " --logging_steps"
                )
        if self.load_best_model_at_end and self.metric_for_best_model is None:
            self.metric_for_best_model = "loss"
        if self.greater_is_better is None and self.metric_for_best_model is not None:
            self.greater_is_better = not self.metric_for_best_model.endswith("loss")
        if self.logging_dir is None:
            self.logging_dir = os.path.join(self.output_dir, _default_logdir())
        self._validate()

    def _check_unsupported(self):
        defaults = {f.name: _field_default(f) for f in fields(self)}
        bad = [name for name in UNSUPPORTED_ARGS if not _is_off(getattr(self, name), defaults[name])]
        # Accepted only when empty: a non-empty value asks for a feature we do not have.
        bad += [name for name in ("include_for_metrics", "debug") if getattr(self, name)]
        if bad:
            details = "; ".join(
                f"`{n}={getattr(self, n)!r}`: {UNSUPPORTED_ARGS.get(n, ACCEPTED_ARGS.get(n))}" for n in bad
            )
            raise ValueError(
                f"TrainingArguments: not supported by mindone_ft, leave at the default: {details} "
                "(see docs/training_args.md)."
            )

    def _map_legacy(self):
        if self.evaluation_strategy is not None:
            warnings.warn("`evaluation_strategy` is deprecated, use `eval_strategy`.", FutureWarning)
            if self.eval_strategy not in ("no", IntervalStrategy.NO) and str(self.eval_strategy) != str(
                self.evaluation_strategy
            ):
                raise ValueError("Both `eval_strategy` and the old `evaluation_strategy` are set; use `eval_strategy`.")
            self.eval_strategy = self.evaluation_strategy
            self.evaluation_strategy = None
        if self.warmup_ratio is not None:
            warnings.warn("`warmup_ratio` is deprecated, use `warmup_steps` < 1 (a ratio).", FutureWarning)
            if not 0 <= self.warmup_ratio < 1:
                raise ValueError(f"`warmup_ratio` must be in [0, 1), got {self.warmup_ratio}.")
            # As in transformers 4.x, explicit warmup_steps win over warmup_ratio.
            if self.warmup_steps == 0:
                self.warmup_steps = self.warmup_ratio
            self.warmup_ratio = None
        # The boolean old names stay as given: mapping them again (e.g. `TrainingArguments(**args.to_dict())`)
        # gives the same result.
        if self.group_by_length:
            self.train_sampling_strategy = "group_by_length"
        if self.no_cuda:
            self.use_cpu = True
        # As transformers 5: the old names are used when the new one is unset, and then mirror the new ones.
        for old, new in (("gradient_checkpointing", "activation_checkpointing"),
                         ("gradient_checkpointing_kwargs", "activation_checkpointing_kwargs")):
            if getattr(self, new) is None and getattr(self, old) is not None:
                setattr(self, new, getattr(self, old))
            setattr(self, old, getattr(self, new))
        if self.activation_checkpointing is None:
            self.activation_checkpointing = self.gradient_checkpointing = False
        if not self.save_safetensors:
            warnings.warn("`save_safetensors=False` is ignored: checkpoints are always safetensors.", UserWarning)

    @staticmethod
    def _resolve_report_to(report_to) -> list[str]:
        if report_to is None or report_to == "none" or report_to == ["none"]:
            return []
        if report_to == "all" or report_to == ["all"]:
            from .trainer_callback import TensorBoardCallback

            try:
                TensorBoardCallback.writer_class()
                return ["tensorboard"]
            except ImportError:
                return []
        names = [report_to] if isinstance(report_to, str) else list(report_to)
        unknown = [n for n in names if n not in _REPORT_TO]
        if unknown:
            raise ValueError(f"`report_to={unknown}` is not supported; supported: {list(_REPORT_TO)}.")
        names = [n for n in names if n != "none"]
        if "tensorboard" in names:
            from .trainer_callback import TensorBoardCallback

            TensorBoardCallback.writer_class()  # raises a clear ImportError now rather than mid-training
        return names

    def _validate(self):
        if self.activation_checkpointing_kwargs is not None:
            from .modeling_utils import check_activation_checkpointing_options

            options = self.activation_checkpointing_kwargs
            if isinstance(options, dict):  # the Trainer passes these two as arguments, as transformers' does
                options = dict(options)
                check_activation_checkpointing_options(options, options.pop("every_n_layers", 1),
                                                       options.pop("offload", False))
            else:
                check_activation_checkpointing_options(options)  # raises: not a dict
        if self.logging_strategy == IntervalStrategy.STEPS and self.logging_steps == 0:
            raise ValueError("logging strategy steps requires non-zero --logging_steps")
        for kind, strategy in (("logging", self.logging_strategy), ("eval", self.eval_strategy),
                               ("save", self.save_strategy)):
            steps = getattr(self, f"{kind}_steps")
            if strategy == IntervalStrategy.STEPS or strategy == SaveStrategy.STEPS:
                if steps > 1:
                    if steps != int(steps):
                        raise ValueError(f"--{kind}_steps must be an integer if bigger than 1: {steps}")
                    setattr(self, f"{kind}_steps", int(steps))
        if self.load_best_model_at_end and self.save_strategy != SaveStrategy.BEST:
            if self.eval_strategy.value != self.save_strategy.value:
                raise ValueError(
                    "--load_best_model_at_end requires the save and eval strategy to match, except when "
                    f'--save_strategy="best", but found eval_strategy={self.eval_strategy.value} and '
                    f"save_strategy={self.save_strategy.value}"
                )
            if self.eval_strategy == IntervalStrategy.STEPS and self.save_steps % self.eval_steps != 0:
                raise ValueError(
                    "--load_best_model_at_end requires the saving steps to be a round multiple of the evaluation "
                    f"steps, but found {self.save_steps}, which is not a round multiple of {self.eval_steps}."
                )
        if self.save_strategy == SaveStrategy.BEST and self.metric_for_best_model is None:
            raise ValueError('`save_strategy="best"` needs `metric_for_best_model`.')
        if self.fp16 and self.bf16:
            raise ValueError("At most one of fp16 and bf16 can be True, but not both")
        if self.warmup_steps < 0:
            raise ValueError(f"Got warmup_steps = {self.warmup_steps}, Expected value warmup_steps >= 0")
        if self.gradient_accumulation_steps < 1:
            raise ValueError("`gradient_accumulation_steps` must be >= 1.")
        if self.max_grad_norm is not None and self.max_grad_norm < 0:
            raise ValueError("`max_grad_norm` must be >= 0 (0 disables clipping).")

    # ----- properties transformers scripts read -----
    @property
    def train_batch_size(self) -> int:
        """Per-process train batch size (MindSpore has one device per process)."""
        return self.per_device_train_batch_size

    @property
    def eval_batch_size(self) -> int:
        """Per-process eval batch size."""
        return self.per_device_eval_batch_size

    @property
    def n_gpu(self) -> int:
        return 1

    @property
    def world_size(self) -> int:
        """Number of data-parallel processes (from `init_environment`)."""
        from .mindspore_adapter.environment import get_rank_info

        return get_rank_info().world_size

    @property
    def process_index(self) -> int:
        """Rank of this process."""
        from .mindspore_adapter.environment import get_rank_info

        return get_rank_info().rank

    @property
    def local_process_index(self) -> int:
        return int(os.environ.get("LOCAL_RANK", self.process_index))

    @property
    def should_log(self) -> bool:
        """Only rank 0 logs."""
        return self.process_index == 0

    @property
    def should_save(self) -> bool:
        """Only rank 0 writes files."""
        return self.process_index == 0

    @contextlib.contextmanager
    def main_process_first(self, local: bool = True, desc: str = "work"):
        """Runs the block on rank 0 first, then on the others (e.g. a cached `dataset.map`)."""
        if self.world_size <= 1:
            yield
            return
        from .mindspore_adapter.collectives import barrier

        if self.process_index != 0:
            barrier()
        yield
        if self.process_index == 0:
            barrier()

    def get_warmup_steps(self, num_training_steps: int) -> int:
        """Warmup steps: `warmup_steps` if >= 1, else `ceil(num_training_steps * warmup_steps)`."""
        if self.warmup_steps >= 1:
            return int(self.warmup_steps)
        return math.ceil(num_training_steps * self.warmup_steps)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-able dict (enums as their values, tokens hidden)."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        for k, v in d.items():
            if isinstance(v, Enum):
                d[k] = v.value
            if k.endswith("_token") and v is not None:
                d[k] = f"<{k.upper()}>"
        return d

    def to_json_string(self) -> str:
        """The fields as a JSON string."""
        return json.dumps(self.to_dict(), indent=2)

    def to_sanitized_dict(self) -> dict[str, Any]:
        """Only `bool`/`int`/`float`/`str` values (others as `str`), e.g. for TensorBoard hparams."""
        return {k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in self.to_dict().items()}

    def __str__(self):
        items = "".join(f"{k}={v},\n" for k, v in sorted(self.to_dict().items()))
        return f"{self.__class__.__name__}(\n{items})"

    __repr__ = __str__


# DeepSpeed `zero_optimization` keys that tune communication buckets and overlap: no effect on the numbers, and
# none here (MindSpore schedules its own collectives), so configs written for DeepSpeed keep working.
_ZERO_TUNING_KEYS = ("allgather_partitions", "allgather_bucket_size", "overlap_comm", "reduce_scatter",
                     "reduce_bucket_size", "contiguous_gradients", "round_robin_gradients")
_FSDP_STAGES = {"shard_grad_op": 2, "full_shard": 3, "hybrid_shard": 3, "hybrid_shard_zero2": 2, "no_shard": 0}


def _is_auto(value) -> bool:
    return value == "auto" or (isinstance(value, dict) and bool(value) and all(v == "auto" for v in value.values()))


def zero_stage_from_args(deepspeed: Union[dict, str, None], fsdp: Union[str, list, None]) -> int:
    """The ZeRO stage (0 = off, 1 or 2) asked for by `TrainingArguments.deepspeed` or `.fsdp`.

    `deepspeed` is a dict, a JSON string, or the path of a JSON file, as in transformers; only
    `zero_optimization.stage` (plus DeepSpeed's communication-tuning keys, which change nothing) and top-level
    values `"auto"` (filled from these arguments in transformers) are accepted. `fsdp` may be `"shard_grad_op"`
    (stage 2). Stage 3 (`full_shard`, `zero_optimization.stage=3`), offloading and anything else raise a
    `ValueError` naming the field.
    """
    if deepspeed not in (None, "", {}) and fsdp:
        raise ValueError("Set `deepspeed` or `fsdp`, not both: both configure ZeRO sharding here.")
    if fsdp:
        options = fsdp.split() if isinstance(fsdp, str) else [str(o) for o in fsdp]
        stages = [_FSDP_STAGES.get(o) for o in options]
        if len(options) != 1 or stages[0] not in (0, 2):
            raise ValueError(
                f"`fsdp={fsdp!r}` is not supported: mindone_ft implements ZeRO stage 2 as `fsdp=\"shard_grad_op\"` "
                "(or `deepspeed={\"zero_optimization\": {\"stage\": 1 or 2}}`); parameter sharding (stage 3, "
                "`full_shard`), hybrid sharding, offloading and auto-wrapping are not implemented."
            )
        return stages[0]
    if deepspeed in (None, "", {}):
        return 0
    config = deepspeed
    if isinstance(config, str):
        if config.lstrip().startswith("{"):
            config = json.loads(config)
        elif os.path.isfile(config):
            with open(config, encoding="utf-8") as f:
                config = json.load(f)
        else:
            raise ValueError(f"`deepspeed={deepspeed!r}`: no such JSON file (give a dict, JSON text or a file path).")
    if not isinstance(config, dict):
        raise ValueError(f"`deepspeed` must be a dict, JSON text or a JSON file path, got {type(config).__name__}.")
    zero = config.get("zero_optimization")
    if not isinstance(zero, dict) or "stage" not in zero:
        raise ValueError("`deepspeed` needs `zero_optimization.stage` (1 or 2): the only part of DeepSpeed's "
                         "config mindone_ft implements is ZeRO sharding.")
    stage = zero["stage"]
    if stage not in (0, 1, 2):
        raise ValueError(f"`deepspeed` `zero_optimization.stage={stage!r}` is not supported: use stage 1 (optimizer "
                         "state sharded) or 2 (plus gradients); stage 3 (parameters) is not implemented.")
    unsupported = [f"zero_optimization.{k}" for k in zero if k != "stage" and k not in _ZERO_TUNING_KEYS]
    unsupported += [k for k, v in config.items() if k != "zero_optimization" and not _is_auto(v)]
    if unsupported:
        raise ValueError(
            f"`deepspeed` keys not supported by mindone_ft: {unsupported}. Only `zero_optimization.stage` (1 or 2) "
            "is read; set the optimizer, schedule, batch sizes, precision and clipping with TrainingArguments, and "
            "leave those keys out of the DeepSpeed config or set them to \"auto\"."
        )
    return int(stage)


def _field_default(f):
    return f.default_factory() if f.default_factory is not MISSING else f.default


def _is_off(value, default) -> bool:
    # `False` for a field whose default is `None` (e.g. `tf32=False`) also means "not used".
    return value == default or (default in (None, False) and not value)


def training_args_markdown() -> str:
    """The support tables of `docs/training_args.md`, generated from this module so the docs cannot drift."""
    defaults = {f.name: _field_default(f) for f in fields(TrainingArguments)}
    sections = [
        ("Supported", "Work as in transformers.", SUPPORTED_ARGS),
        ("Accepted, no effect", "Kept so Hugging Face scripts run; they change nothing on MindSpore.", ACCEPTED_ARGS),
        (
            "Rejected",
            "A value other than the default raises `ValueError` at construction, naming the field.",
            UNSUPPORTED_ARGS,
        ),
        ("Older names (transformers 4.x), mapped", "Accepted with a `FutureWarning` where renamed.", LEGACY_ARGS),
    ]
    out = []
    for title, intro, table in sections:
        out += [f"## {title}", "", intro, "", "| argument | default | notes |", "| --- | --- | --- |"]
        for name, note in table.items():
            out.append(f"| `{name}` | `{defaults[name]!r}` | {note} |")
        out.append("")
    return "\n".join(out)
