"""`Trainer`: Hugging Face's training loop API on MindSpore.

The public surface (constructor, `train`, `evaluate`, `predict`, `save_model`, callbacks, `state`,
`log_history`, checkpoint layout) mirrors `transformers.Trainer` 5.23, so a script only changes its imports.
Under the hood one compiled train step (`TrainOneStepWrapper(loss_cell, AdamW)`) does forward, backward,
loss scaling, accumulation, clipping and the update in a single graph; batches are passed as positional tuples
in the model's argument order; the loss stays on the device and is read back only when logging.

Labels work as in transformers: `label_names` defaults to the label arguments of the model's `construct`
(`labels`; `start_positions` and `end_positions` for question answering; see `trainer_utils.find_labels`), any
model that computes its loss from its label arguments trains (its first output is the loss), and
`compute_metrics` gets `EvalPrediction.label_ids` as one array per label name (a tuple when there are several).

Checkpoints (`output_dir/checkpoint-N/`) are written in a temporary folder and renamed into place, so a crash
while saving never leaves a half-written `checkpoint-N` and never touches the previous ones. They hold:

- `config.json`, `model.safetensors` (Hugging Face format, via `save_pretrained`), tokenizer files if any; for a
  `mindone_ft.peft.PeftModel` the adapter only (`adapter_config.json`, `adapter_model.safetensors`, PEFT's format),
  as the optimizer only holds the adapter's parameters;
- `optimizer.safetensors` (AdamW moments and step; under ZeRO one shard per rank instead,
  `optimizer-rank00000-of-00002.safetensors`, ..., written by every rank), `scheduler.json` (schedule position),
  `train_step.safetensors` (loss-scaler state);
- `rng_state.json` (python, numpy and MindSpore seeds, and the dropout seeding step),
  `trainer_loop_state.json` (loss accumulated since the last log, so the resumed log history is identical);
- `trainer_state.json` (same format as Hugging Face's) and `training_args.json`.
"""

import inspect
import json
import logging
import math
import os
import random
import shutil
import tempfile
import time
from typing import Any, Callable, Optional, Union

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn, ops

from .mindspore_adapter import (
    AdamW,
    MindSporeArguments,
    MSDataLoader,
    NumpyDataCollator,
    ReturnLoss,
    TrainOneStepWrapper,
    ZeroAdamW,
    fitted_length_buckets,
    init_environment,
)
from .data import as_numpy_collator
from .mindspore_adapter.collectives import all_gather, all_reduce_sum, barrier
from .mindspore_adapter.compile_cache import compile_log, compile_metrics
from .mindspore_adapter.data import numpy_to_tensor
from .modeling_layers import Dropout, reseed_nn_dropout
from .optimization import get_schedule_fn, get_scheduler
from .peft import PeftModel
from .peft.save_and_load import WEIGHTS_NAME as ADAPTER_WEIGHTS_NAME
from .trainer_callback import (
    CallbackHandler,
    DefaultFlowCallback,
    ExportableState,
    PrinterCallback,
    ProgressCallback,
    TensorBoardCallback,
    TrainerCallback,
    TrainerControl,
    TrainerState,
)
from .trainer_utils import (
    PREFIX_CHECKPOINT_DIR,
    EvalLoopOutput,
    EvalPrediction,
    PredictionOutput,
    SaveStrategy,
    TrainOutput,
    denumpify_detensorize,
    find_labels,
    get_last_checkpoint,
    set_seed,
    sorted_checkpoints,
    speed_metrics,
)
from .training_args import TrainingArguments
from .utils import compat

logger = logging.getLogger(__name__)

TRAINER_STATE_NAME = "trainer_state.json"
TRAINING_ARGS_NAME = "training_args.json"
OPTIMIZER_NAME = "optimizer.safetensors"
SCHEDULER_NAME = "scheduler.json"
TRAIN_STEP_NAME = "train_step.safetensors"
RNG_STATE_NAME = "rng_state.json"
LOOP_STATE_NAME = "trainer_loop_state.json"
MODEL_WEIGHTS_NAME = "model.safetensors"
# Every file a resumable checkpoint must have (the model may also be sharded: see `_check_checkpoint`).
RESUME_FILES = (TRAINER_STATE_NAME, OPTIMIZER_NAME, SCHEDULER_NAME, TRAIN_STEP_NAME, RNG_STATE_NAME, LOOP_STATE_NAME)
LABEL_COLUMNS = ("label", "labels", "label_ids")


class LabelSmoothedLoss(nn.Cell):
    """Model loss with label smoothing, as transformers' `LabelSmoother`: the model runs without labels and
    the loss is `(1 - eps) * nll + eps * mean(-log_softmax)` over non-ignored (-100) targets.

    Args:
        model (`nn.Cell`): returns a tuple whose first item is the logits when called without labels.
        epsilon (`float`): the smoothing factor.
        labels_index (`int`): position of `labels` in the model's positional arguments.
    """

    def __init__(self, model: nn.Cell, epsilon: float, labels_index: int, ignore_index: int = -100):
        super().__init__(auto_prefix=False)
        self.model = model
        self.epsilon = float(epsilon)
        self.labels_index = labels_index
        self.ignore_index = ignore_index

    def construct(self, *inputs):
        labels = inputs[self.labels_index]
        logits = self.model(*inputs[: self.labels_index])[0]
        return smoothed_cross_entropy(logits, labels, self.epsilon, self.ignore_index)


def smoothed_cross_entropy(logits: Tensor, labels: Tensor, epsilon: float, ignore_index: int = -100) -> Tensor:
    """transformers' `LabelSmoother` loss on `(..., C)` logits and `(...)` integer labels."""
    num_classes = logits.shape[-1]
    log_probs = -compat.accurate_log_softmax(logits.astype(ms.float32).reshape(-1, num_classes), axis=-1)
    labels = labels.reshape(-1).astype(ms.int32)
    valid = labels != ignore_index
    safe = ops.where(valid, labels, ops.zeros_like(labels))
    nll = ops.gather_elements(log_probs, 1, safe.expand_dims(-1)).squeeze(-1)
    smooth = log_probs.sum(axis=-1)
    mask = valid.astype(ms.float32)
    num_active = mask.sum()
    nll = (nll * mask).sum() / num_active
    smooth = (smooth * mask).sum() / (num_active * num_classes)
    return (1 - epsilon) * nll + epsilon * smooth


class EvalStep(nn.Cell):
    """Forward pass for evaluation: returns the model's output tuple `(loss, logits, ...)` or `(logits, ...)`;
    with label smoothing the loss is the smoothed one, as in transformers."""

    def __init__(self, model: nn.Cell, label_smoothing: float = 0.0, labels_index: int = -1):
        super().__init__(auto_prefix=False)
        self.model = model
        self.label_smoothing = float(label_smoothing)
        self.labels_index = labels_index

    def construct(self, *inputs):
        if self.label_smoothing > 0 and len(inputs) > self.labels_index:
            logits = self.model(*inputs[: self.labels_index])[0]
            loss = smoothed_cross_entropy(logits, inputs[self.labels_index], self.label_smoothing)
            return loss, logits
        return self.model(*inputs)


def reseed_dropout(model: nn.Cell, seed: int, step: int) -> bool:
    """Restarts every dropout of `model` from a seed derived from `(seed, step)`, so a run resumed from
    checkpoint `step` draws the same masks as the uninterrupted run.

    mindone_ft's `Dropout` on CPU keeps its random stream in a Parameter, so this needs no recompile. MindSpore's
    own dropout kernels (other backends, or an `nn.Dropout` in a user's model) keep it inside the compiled graph,
    where no API can read or restore it; those get new kernel seeds, and the train graph must be recompiled.
    Returns whether it must.
    """
    recompile = False
    count = 0
    for _, cell in model.cells_and_names():
        if not isinstance(cell, (Dropout, nn.Dropout)):
            continue
        cell_seed = int(np.random.default_rng([seed, step, count]).integers(0, 2**63 - 1))
        recompile |= cell.reseed(cell_seed) if isinstance(cell, Dropout) else reseed_nn_dropout(cell, cell_seed)
        count += 1
    return recompile


class Trainer:
    """Trains, evaluates and checkpoints a `mindone_ft` model, with the API of `transformers.Trainer`.

    Args:
        model (`MSPreTrainedModel`): the model; its `construct` signature decides which dataset columns are used
            and which are labels (`args.label_names` overrides the latter). A `mindone_ft.peft.PeftModel` trains
            its adapter only (and its `modules_to_save`): the optimizer holds those parameters alone.
        args (`TrainingArguments`, *optional*): defaults to `TrainingArguments(output_dir="trainer_output")`.
        data_collator (`Callable`, *optional*): turns a list of rows into a dict of numpy arrays. Default:
            dynamic padding (`NumpyDataCollator` with the tokenizer's pad id) up to a few bucket lengths, one graph
            compile each, placed where the dataset's batches fall (`fitted_length_buckets`: as many buckets as
            `length_buckets` of the longest row would have its batches use, at most 8, and less padding). A
            custom collator's batches are padded up to the same buckets.
        train_dataset, eval_dataset (`datasets.Dataset`, *optional*): tokenized datasets (`eval_dataset` may be
            a dict of datasets, evaluated one by one with prefix `eval_<name>`).
        processing_class (*optional*): the tokenizer; gives the pad id and is saved with checkpoints.
            `tokenizer=` is accepted as an older alias.
        compute_metrics (`Callable[[EvalPrediction], dict]`, *optional*): metrics from predictions and labels.
        callbacks (`list[TrainerCallback]`, *optional*): added to the default ones.
        optimizers (`tuple`, *optional*): `(optimizer, lr_schedule)`: an `AdamW` and/or a per-step learning-rate
            array (as from `optimization.get_scheduler`). Default: `AdamW` with the schedule of the arguments.
        preprocess_logits_for_metrics (`Callable`, *optional*): `(logits, labels) -> logits` applied per batch.
        mindspore_args (`MindSporeArguments`, *optional*): runtime set-up used if `init_environment` was not called.

    Example:

    ```python
    trainer = Trainer(model=model, args=TrainingArguments("out", eval_strategy="epoch"),
                      train_dataset=train, eval_dataset=test, processing_class=tokenizer,
                      compute_metrics=compute_metrics)
    trainer.train()
    ```
    """

    def __init__(
        self,
        model: nn.Cell = None,
        args: Optional[TrainingArguments] = None,
        data_collator: Optional[Callable] = None,
        train_dataset=None,
        eval_dataset=None,
        processing_class=None,
        model_init: Optional[Callable] = None,
        compute_metrics: Optional[Callable[[EvalPrediction], dict]] = None,
        callbacks: Optional[list] = None,
        optimizers: tuple = (None, None),
        preprocess_logits_for_metrics: Optional[Callable] = None,
        tokenizer=None,
        mindspore_args: Optional[MindSporeArguments] = None,
    ):
        if args is None:
            args = TrainingArguments(output_dir="trainer_output")
        self.args = args
        rank_info = init_environment(mindspore_args)  # no-op when the script already called it
        self.rank, self.world_size = rank_info.rank, rank_info.world_size
        if args.full_determinism:
            ms.set_deterministic(True)
        if args.bf16 and not compat.supports_bf16_matmul():
            raise ValueError(
                f"bf16=True is not supported on {compat.device_target()}: MindSpore's CPU backend has no bf16 "
                "MatMul. Use fp16=True or float32 (the default) on CPU, or run on Ascend/GPU."
            )
        self.model_init = model_init  # each `hyperparameter_search` trial re-creates the model with it
        if model is None:
            if model_init is None:
                raise ValueError("`Trainer` requires either a `model` or `model_init` argument.")
            set_seed(args.seed)
            model = self.call_model_init()  # as transformers: a one-argument model_init gets trial=None
        self.model = model
        self.hp_name = None  # set by `hyperparameter_search`, as in transformers
        self.hp_search_backend = None
        self.processing_class = processing_class if processing_class is not None else tokenizer
        self.data_collator = data_collator
        self.train_dataset = train_dataset
        self.eval_dataset = eval_dataset
        self.compute_metrics = compute_metrics
        self.preprocess_logits_for_metrics = preprocess_logits_for_metrics
        self.optimizer, self.lr_scheduler = optimizers
        # A PeftModel takes the arguments of the model it wraps (transformers' Trainer inspects that model too).
        signature_model = model.get_base_model() if isinstance(model, PeftModel) else model
        self._input_names = list(inspect.signature(signature_model.construct).parameters)
        # As transformers: the label arguments of the model's signature (QA: start/end positions), or `label_names`.
        self.label_names = find_labels(signature_model) if args.label_names is None else list(args.label_names)
        # The arguments that make the model return its loss (first output): all must be in a batch to train.
        self._loss_names = tuple(getattr(model, "loss_input_names", ()) or
                                 [name for name in self.label_names if name in self._input_names])
        self._smoothing_index = self._label_smoothing_index()
        self._train_step = None
        self._resumed_step_state = None
        self._eval_step = None
        self._mixed_precision_applied = False
        self.hub_model_id = None  # set by `push_to_hub`, with the namespace the Hub resolved

        report = [TensorBoardCallback] if "tensorboard" in args.report_to else []
        progress = PrinterCallback if args.disable_tqdm else ProgressCallback
        self.callback_handler = CallbackHandler(
            [DefaultFlowCallback] + report + [progress] + list(callbacks or []),
            self.model,
            self.processing_class,
            self.optimizer,
            self.lr_scheduler,
        )
        self.state = TrainerState(is_local_process_zero=self.rank == 0, is_world_process_zero=self.rank == 0)
        self.control = TrainerControl()
        self.control = self.callback_handler.on_init_end(self.args, self.state, self.control)

    def _label_smoothing_index(self) -> Optional[int]:
        """Position of `labels` among the model's inputs when label smoothing applies, else None.

        As in transformers, smoothing replaces the loss only of models that take a `labels` argument (not question
        answering's start/end positions), and never for multi-label classification.
        """
        if self.args.label_smoothing_factor <= 0:
            return None
        if getattr(getattr(self.model, "config", None), "problem_type", None) == "multi_label_classification":
            logger.warning("Label smoothing is not compatible with multi-label classification. "
                           "Disabling label smoothing for this training run.")
            return None
        if "labels" not in self.label_names or "labels" not in self._input_names:
            logger.warning(f"label_smoothing_factor={self.args.label_smoothing_factor} is ignored: "
                           f"{type(self.model).__name__} computes its loss from {list(self._loss_names)}, "
                           "and label smoothing only replaces a loss computed from `labels`.")
            return None
        return self._input_names.index("labels")

    # ------------------------------------------------------------------ callbacks
    def add_callback(self, callback: Union[type, TrainerCallback]) -> None:
        """Adds a callback (class or instance) to the current list."""
        self.callback_handler.add_callback(callback)

    def pop_callback(self, callback):
        """Removes a callback and returns it."""
        return self.callback_handler.pop_callback(callback)

    def remove_callback(self, callback) -> None:
        """Removes a callback."""
        self.callback_handler.remove_callback(callback)

    @property
    def log_history(self) -> list:
        """Every log entry so far (`state.log_history`)."""
        return self.state.log_history

    def is_world_process_zero(self) -> bool:
        return self.rank == 0

    def is_local_process_zero(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------------ data
    def _remove_unused_columns(self, dataset, description: str = "training"):
        if not self.args.remove_unused_columns or not hasattr(dataset, "column_names"):
            return dataset
        keep = set(self._input_names) | set(LABEL_COLUMNS) | set(self.label_names)
        keep |= set(getattr(self.data_collator, "required_columns", ()))  # e.g. prompt/completion texts
        ignored = [c for c in dataset.column_names if c not in keep]
        if ignored:
            logger.info(f"The following columns in the {description} set don't have a corresponding argument in "
                        f"`{type(self.model).__name__}.construct` and have been ignored: {', '.join(ignored)}.")
            dataset = dataset.remove_columns(ignored)
        return dataset

    def _collator(self, lengths: Optional[list], batch_size: int, order: str) -> Callable:
        # Padded lengths come from a few buckets, so GRAPH_MODE compiles a bounded number of shapes instead of
        # one per distinct batch length. They depend only on the dataset and the batching, so every rank, a
        # resumed run and a re-run (whose graphs the compile cache has) pad alike.
        buckets = fitted_length_buckets(lengths, batch_size, order) if lengths else None
        # Without a tokenizer the model config's pad id is the best guess (transformers would not pad at all).
        pad_id = None if self.processing_class is not None else getattr(self.model.config, "pad_token_id", None)
        if self.data_collator is not None:  # numpy batches (not torch), padded up to the buckets too
            tokenizer_pad = getattr(self.processing_class, "pad_token_id", None)
            return as_numpy_collator(self.data_collator, buckets, tokenizer_pad if pad_id is None else pad_id)
        return NumpyDataCollator(tokenizer=self.processing_class, pad_token_id=pad_id, bucket_boundaries=buckets)

    def _lengths(self, dataset) -> Optional[list]:
        if self.args.length_column_name in getattr(dataset, "column_names", []):
            return list(dataset[self.args.length_column_name])
        if "input_ids" in getattr(dataset, "column_names", []):
            return [len(ids) for ids in dataset["input_ids"]]
        return None

    def _check_model_inputs(self, available: list, description: str) -> None:
        """Raises a ValueError naming the fix when the model's main input (`input_ids`) is missing, e.g. a dataset
        that was never tokenized; without it the model would fail inside graph compile with an obscure error."""
        main = getattr(self.model, "main_input_name", "input_ids")
        if main not in self._input_names or main in available or "inputs_embeds" in available:
            return
        text = "text" if "text" in available else next(
            (c for c in available if c not in self.label_names and c not in LABEL_COLUMNS), "text")
        raise ValueError(
            f"The {description} has no `{main}` column, which {type(self.model).__name__} needs; it has "
            f"{sorted(available)}. Tokenize it first, for example:\n"
            f"    dataset = dataset.map(lambda b: tokenizer(b[\"{text}\"], truncation=True), batched=True)"
        )

    def _loader(self, dataset, batch_size: int, train: bool, description: str) -> MSDataLoader:
        if self.data_collator is None:  # a custom collator may tokenize itself: its batches are checked instead
            self._check_model_inputs(_column_names(dataset), f"{description} set")
        lengths = self._lengths(dataset)
        dataset = self._remove_unused_columns(dataset, description)
        group = train and self.args.train_sampling_strategy == "group_by_length"
        shuffle = train and self.args.train_sampling_strategy == "random"
        order = "grouped" if group else "random" if shuffle else "sequential"
        if group and lengths is None:
            raise ValueError("group_by_length needs an `input_ids` column or `length_column_name` in the dataset.")
        if not train and len(dataset) < self.world_size:  # a rank without rows would skip the gather and hang
            raise ValueError(f"The {description} set has {len(dataset)} rows, fewer than the {self.world_size} "
                             "data-parallel ranks: each rank needs at least one.")
        return MSDataLoader(
            dataset,
            batch_size=batch_size,
            collate_fn=self._collator(lengths, batch_size, order),
            shuffle=shuffle,
            seed=self.args.data_seed if self.args.data_seed is not None else self.args.seed,
            drop_last=train and self.args.dataloader_drop_last,
            # Training shards are padded so ranks step in lockstep; evaluation repeats no row, so that gathered
            # metrics equal a single-process evaluation.
            even_shards=train,
            group_by_length=group,
            lengths=lengths if group else None,
            require_labels=self._loss_names if train else (),
            output_numpy=True,
        )

    def get_train_dataloader(self) -> MSDataLoader:
        """The training loader: sharded over ranks, reshuffled every epoch, resumable mid-epoch."""
        if self.train_dataset is None:
            raise ValueError("Trainer: training requires a train_dataset.")
        return self._loader(self.train_dataset, self.args.per_device_train_batch_size, True, "training")

    def get_eval_dataloader(self, eval_dataset=None) -> MSDataLoader:
        """The evaluation loader (sharded over ranks, in order)."""
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if dataset is None:
            raise ValueError("Trainer: evaluation requires an eval_dataset.")
        return self._loader(dataset, self.args.per_device_eval_batch_size, False, "evaluation")

    def get_test_dataloader(self, test_dataset) -> MSDataLoader:
        """The prediction loader."""
        return self._loader(test_dataset, self.args.per_device_eval_batch_size, False, "test")

    def _to_inputs(self, batch: dict) -> tuple:
        """Positional inputs in the model's argument order (`None` where absent, trailing `None`s dropped)."""
        if "label_ids" in batch and "labels" not in batch:
            batch["labels"] = batch.pop("label_ids")  # transformers' third label name
        self._check_model_inputs(list(batch), "batch")
        inputs = [None] * len(self._input_names)
        for i, name in enumerate(self._input_names):
            if name in batch:
                inputs[i] = numpy_to_tensor(np.asarray(batch[name]))
        self._prepare_model_call(inputs)
        while inputs and inputs[-1] is None:
            inputs.pop()
        return tuple(inputs)

    def _prepare_model_call(self, inputs: list) -> None:
        """Runs the model's `_prepare_call` hook, which a top-level call runs but a call inside the compiled step
        cannot (it is Python): e.g. `config.problem_type` is inferred from the first labels, as in transformers."""
        prepare = getattr(self.model, "_prepare_call", None)
        if prepare is None:
            return
        arguments = dict(zip(self._input_names, inputs))
        if self._smoothing_index is not None:  # smoothing calls the model without labels, as transformers does
            arguments.pop("labels", None)
        prepare(arguments)

    def _returns_loss(self, batch: dict) -> bool:
        """Whether the eval step's first output is a loss for this batch: the smoothed loss needs `labels`, the
        model's own loss all of its loss inputs."""
        names = ("labels",) if self._smoothing_index is not None else self._loss_names
        return bool(names) and all(batch.get(name) is not None for name in names)

    # ------------------------------------------------------------------ optimizer & step
    def create_optimizer_and_scheduler(self, num_training_steps: int) -> None:
        """Builds the learning-rate array and `AdamW` (unless given through `optimizers=`)."""
        args = self.args
        if self.lr_scheduler is None:
            self.lr_scheduler = get_scheduler(
                args.lr_scheduler_type,
                args.learning_rate,
                num_warmup_steps=args.get_warmup_steps(num_training_steps),
                num_training_steps=num_training_steps,
                scheduler_specific_kwargs=args.lr_scheduler_kwargs,
            )
        if self.optimizer is None:
            self.optimizer = AdamW(
                self.model.trainable_params(),
                learning_rate=self.lr_scheduler,
                betas=(args.adam_beta1, args.adam_beta2),
                eps=args.adam_epsilon,
                weight_decay=args.weight_decay,
            )
        if args.zero_stage and self.world_size > 1 and not isinstance(self.optimizer, ZeroAdamW):
            self.optimizer = ZeroAdamW(self.optimizer, args.zero_stage, self.rank, self.world_size)
        elif args.zero_stage and self.world_size == 1:
            logger.info(f"ZeRO stage {args.zero_stage} has nothing to shard over one process: plain AdamW.")
        self._lr_fn = get_schedule_fn(
            args.lr_scheduler_type, args.learning_rate, args.get_warmup_steps(num_training_steps),
            num_training_steps, args.lr_scheduler_kwargs,
        )
        self.callback_handler.optimizer, self.callback_handler.lr_scheduler = self.optimizer, self.lr_scheduler

    def _apply_mixed_precision(self) -> None:
        if self._mixed_precision_applied or not (self.args.fp16 or self.args.bf16):
            return
        dtype = ms.float16 if self.args.fp16 else ms.bfloat16
        # O2: half-precision compute with float32 master weights, normalisation layers kept in float32
        # (O1's per-op rewriting fails to compile our models' functional ops in MindSpore 2.10).
        ms.amp.auto_mixed_precision(self.model, amp_level="O2", dtype=dtype)
        self._mixed_precision_applied = True

    def _apply_activation_checkpointing(self) -> None:
        """`args.activation_checkpointing` (or its old name `gradient_checkpointing`), as transformers' Trainer: on
        the model (a PeftModel's base model), before the train graph is compiled."""
        if not self.args.activation_checkpointing:
            return
        options = dict(self.args.activation_checkpointing_kwargs or {})
        every_n_layers = options.pop("every_n_layers", 1)
        offload = options.pop("offload", False)
        self.model.activation_checkpointing_enable(
            activation_checkpointing_kwargs=options or None, every_n_layers=every_n_layers, offload=offload
        )

    def _build_train_step(self) -> TrainOneStepWrapper:
        args = self.args
        if self._smoothing_index is not None:
            loss_cell = LabelSmoothedLoss(self.model, args.label_smoothing_factor, self._smoothing_index)
        else:
            loss_cell = ReturnLoss(self.model)
        step = TrainOneStepWrapper(
            loss_cell,
            self.optimizer,
            # torch.amp.GradScaler's defaults for fp16; bf16 and float32 need no scaling.
            scaler="dynamic" if args.fp16 else "none",
            scaler_config={"scale_value": 2.0**16, "scale_factor": 2.0, "scale_window": 2000} if args.fp16 else None,
            gradient_accumulation_steps=args.gradient_accumulation_steps,
            clip_grad="norm" if args.max_grad_norm and args.max_grad_norm > 0 else "none",
            clip_value=args.max_grad_norm or 1.0,
        )
        if self._train_step is not None:  # a rebuild (after re-seeding dropout) keeps the scaler/step state
            step.load_state_dict(self._train_step.state_dict())
        elif self._resumed_step_state is not None:
            step.load_state_dict(self._resumed_step_state)
            self._resumed_step_state = None
        return step

    def _reseed_and_rebuild(self, step: int) -> None:
        if reseed_dropout(self.model, self.args.seed, step) or self._train_step is None:
            self._train_step = self._build_train_step()

    def _stateful_callbacks(self) -> list:
        return [cb for cb in self.callback_handler.callbacks + [self.control] if isinstance(cb, ExportableState)]

    def _optimizer_steps(self) -> int:
        return int(self.optimizer.global_step.asnumpy())

    # ------------------------------------------------------------------ training
    def train(self, resume_from_checkpoint: Optional[Union[str, bool]] = None, **kwargs) -> TrainOutput:
        """Trains the model.

        Args:
            resume_from_checkpoint (`str` or `bool`, *optional*): a `checkpoint-N` folder, or `True` for the last
                one in `args.output_dir`. Training continues at step N with the same data order, learning rate,
                optimizer, loss-scaler and dropout state as the interrupted run.

        Returns:
            `TrainOutput(global_step, training_loss, metrics)`.
        """
        args = self.args
        if resume_from_checkpoint is True or resume_from_checkpoint == "True":
            resume_from_checkpoint = get_last_checkpoint(args.output_dir)
            if resume_from_checkpoint is None:
                raise ValueError(f"No valid checkpoint found in output directory ({args.output_dir})")
        elif resume_from_checkpoint is False:
            resume_from_checkpoint = None
        if not self._loss_names:
            raise ValueError(
                f"{type(self.model).__name__} returns no loss: its `construct` takes none of the label names "
                f"{self.label_names or ['labels']}. Train a model with a task head (e.g. ...ForSequenceClassification)"
                ", or set `label_names` to the arguments its loss is computed from."
            )
        set_seed(args.seed)
        self.model.set_train(True)
        loader = self.get_train_dataloader()
        self.callback_handler.train_dataloader = loader
        gas = args.gradient_accumulation_steps
        steps_per_epoch, max_steps, num_epochs = self.compute_num_steps(len(loader))

        self.state = TrainerState(
            is_local_process_zero=self.rank == 0,
            is_world_process_zero=self.rank == 0,
            stateful_callbacks=self._stateful_callbacks(),
        )
        self.state.compute_steps(args, max_steps)
        self.state.max_steps, self.state.num_train_epochs = max_steps, num_epochs
        self.state.train_batch_size = args.per_device_train_batch_size
        self.create_optimizer_and_scheduler(max_steps)
        self._apply_mixed_precision()
        self._apply_activation_checkpointing()
        self._loop = {"tr_loss": np.float32(0.0), "tr_count": 0, "pending_losses": [],
                      "total_loss": 0.0, "total_count": 0, "last_logged": 0}
        start_step = 0
        if resume_from_checkpoint is not None:
            start_step = self._load_checkpoint(resume_from_checkpoint)
        if self._zero_sharded():  # the shards must start from the (possibly just loaded) weights
            self.optimizer.sync_slices()
        self._train_step = None
        self._reseed_and_rebuild(start_step)

        start_time = time.time()
        compiles_before = len(compile_log().events)
        self.control = self.callback_handler.on_train_begin(args, self.state, self.control)
        if args.eval_on_start and start_step == 0:
            self._evaluate_all()  # a sanity check: not a candidate for the best model (as in transformers)
        epochs_done, batches_to_skip = divmod(start_step, steps_per_epoch)
        if start_step >= max_steps:  # resumed from the final checkpoint: nothing left to train
            epochs_done = num_epochs
        batches_to_skip = 0 if args.ignore_data_skip else batches_to_skip * gas

        for epoch in range(epochs_done, num_epochs):
            loader.set_epoch(epoch)
            if epoch == epochs_done and batches_to_skip:
                loader.skip_batches(batches_to_skip)
            self.control = self.callback_handler.on_epoch_begin(args, self.state, self.control)
            step = batches_to_skip - 1 if epoch == epochs_done else -1
            for batch in loader:
                step += 1
                if step >= steps_per_epoch * gas:
                    break  # incomplete accumulation window at the end of the epoch
                updates = (step + 1) % gas == 0  # the last batch of an accumulation window updates the weights
                if step % gas == 0:
                    self.control = self.callback_handler.on_step_begin(args, self.state, self.control)
                if updates:
                    self.control = self.callback_handler.on_pre_optimizer_step(args, self.state, self.control)
                loss, _, _ = self._train_step(*self._to_inputs(batch))
                self._accumulate_loss(loss)
                if not updates:
                    self.control = self.callback_handler.on_substep_end(args, self.state, self.control)
                    continue
                self.control = self.callback_handler.on_optimizer_step(args, self.state, self.control)
                self.state.global_step += 1
                self.state.epoch = epoch + (step + 1) / (steps_per_epoch * gas)
                self.control = self.callback_handler.on_step_end(args, self.state, self.control)
                self._maybe_log_save_evaluate()
                if self.control.should_epoch_stop or self.control.should_training_stop:
                    break
            self.control = self.callback_handler.on_epoch_end(args, self.state, self.control)
            self._maybe_log_save_evaluate()
            if self.control.should_training_stop:
                break

        if args.load_best_model_at_end and self.state.best_model_checkpoint is not None:
            self._load_best_model()
        self._flush_loss()
        train_loss = self._loop["total_loss"] / max(self._loop["total_count"], 1)
        metrics = speed_metrics("train", start_time, num_samples=max_steps * args.train_batch_size * gas *
                                self.world_size, num_steps=max_steps)
        metrics.update({"total_flos": float(self.state.total_flos), "train_loss": train_loss})
        # Graph compiles of the train step (evaluation's are in the eval metrics): count, seconds, loads from the cache.
        metrics.update(compile_metrics(compile_log().since(compiles_before, type(self._train_step).__name__), "train"))
        self.log(metrics)
        self._rotate_checkpoints()
        self.control = self.callback_handler.on_train_end(args, self.state, self.control)
        return TrainOutput(self.state.global_step, train_loss, metrics)

    def compute_num_steps(self, num_batches: int) -> tuple:
        """`(update steps per epoch, total update steps, epochs)` for a loader of `num_batches` batches.

        `max_steps > 0` wins over `num_train_epochs`; a fractional `num_train_epochs` stops part-way through the
        last epoch (`ceil(num_train_epochs * steps_per_epoch)` steps), as in transformers.
        """
        gas = self.args.gradient_accumulation_steps
        if num_batches < gas:
            raise ValueError(f"The train loader has {num_batches} batches, fewer than gradient_accumulation_steps={gas}.")
        if num_batches % gas:
            logger.warning(f"{num_batches % gas} batch(es) at the end of each epoch do not fill a gradient "
                           f"accumulation window of {gas} and are skipped.")
        steps_per_epoch = num_batches // gas
        if self.args.max_steps > 0:
            max_steps = self.args.max_steps
        else:
            max_steps = math.ceil(self.args.num_train_epochs * steps_per_epoch)
        return steps_per_epoch, max_steps, math.ceil(max_steps / steps_per_epoch)

    def _accumulate_loss(self, loss: Tensor) -> None:
        # Kept as the step's output tensor, read at the next log: no host sync per step, and no eager ops either
        # (summing on the device took six, a few ms a step: ~2% of the README demo's batch-8 steps).
        self._loop["pending_losses"].append(loss)

    def _fold_pending_losses(self) -> None:
        """Adds the kept step losses to the running sum, in step order and in float32 as transformers' `tr_loss`;
        non-finite ones (fp16 overflow) are left out of the mean."""
        loss_sum, count = self._loop["tr_loss"], self._loop["tr_count"]
        for loss in self._loop["pending_losses"]:
            value = np.float32(loss.asnumpy())
            if np.isfinite(value):
                loss_sum, count = np.float32(loss_sum + value), count + 1
        self._loop.update({"tr_loss": loss_sum, "tr_count": count, "pending_losses": []})

    def _flush_loss(self) -> tuple:
        """Reads and resets the loss accumulated since the last log; returns `(sum, count)` over all ranks."""
        loss_sum, loss_count = self._running_loss()
        self._loop["tr_loss"], self._loop["tr_count"] = np.float32(0.0), 0
        self._loop["total_loss"] += loss_sum
        self._loop["total_count"] += loss_count
        return loss_sum, loss_count

    def _maybe_log_save_evaluate(self) -> None:
        if self.control.should_log and self.state.global_step > self._loop["last_logged"]:
            loss_sum, loss_count = self._flush_loss()
            optimizer_steps = self._optimizer_steps()
            logs = {
                "loss": round(loss_sum / max(loss_count, 1), 4),
                "grad_norm": float(self._train_step.last_grad_norm.asnumpy()),
                # The rate the last update used (transformers logs it before stepping the scheduler).
                "learning_rate": self.args.learning_rate * self._lr_fn(max(optimizer_steps - 1, 0)),
            }
            if self.args.fp16:
                logs["skipped_steps"] = self.state.global_step - optimizer_steps
                logs["loss_scale"] = float(self._train_step.loss_scaler.scale_value.asnumpy())
            self._loop["last_logged"] = self.state.global_step
            self.log(logs)
        if self.control.should_evaluate:
            is_new_best = self._evaluate_and_track()
            if self.args.save_strategy == SaveStrategy.BEST:
                self.control.should_save = is_new_best
        if self.control.should_save:
            self._save_checkpoint()
            self.control = self.callback_handler.on_save(self.args, self.state, self.control)

    def _evaluate_all(self) -> dict:
        if isinstance(self.eval_dataset, dict):
            metrics = {}
            for name, dataset in self.eval_dataset.items():
                metrics.update(self.evaluate(dataset, metric_key_prefix=f"eval_{name}"))
        else:
            metrics = self.evaluate()
        self.model.set_train(True)
        return metrics

    def _evaluate_and_track(self) -> bool:
        """Evaluates every eval set; returns whether `metric_for_best_model` improved."""
        return self._determine_best_metric(self._evaluate_all())

    def _determine_best_metric(self, metrics: dict) -> bool:
        name = self.args.metric_for_best_model
        if name is None:
            return False
        key = name if name.startswith("eval_") else f"eval_{name}"
        if key not in metrics:
            raise KeyError(f"The `metric_for_best_model` training argument is set to '{key}', which is not found "
                           f"in the evaluation metrics. The available metrics are: {list(metrics)}.")
        value = metrics[key]
        better = np.greater if self.args.greater_is_better else np.less
        if self.state.best_metric is None or better(value, self.state.best_metric):
            self.state.best_metric = value
            self.state.best_global_step = self.state.global_step
            return True
        return False

    def log(self, logs: dict) -> None:
        """Records `logs` in `state.log_history` (with `epoch` and `step`) and calls `on_log`."""
        if self.state.epoch is not None:
            logs["epoch"] = self.state.epoch
        self.state.log_history.append({**logs, "step": self.state.global_step})
        self.control = self.callback_handler.on_log(self.args, self.state, self.control, logs)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict:
        """Runs evaluation and returns metrics (`{prefix}_loss`, `compute_metrics` results, speed), all prefixed."""
        start_time = time.time()
        compiles_before = len(compile_log().events)
        loader = self.get_eval_dataloader(eval_dataset)
        output = self.evaluation_loop(loader, "Evaluation", metric_key_prefix=metric_key_prefix)
        output.metrics.update(compile_metrics(compile_log().since(compiles_before, EvalStep.__name__), metric_key_prefix))
        output.metrics.update(speed_metrics(metric_key_prefix, start_time, output.num_samples,
                                            math.ceil(output.num_samples / self.args.eval_batch_size)))
        self.log(output.metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, output.metrics)
        return output.metrics

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix: str = "test") -> PredictionOutput:
        """Predictions (logits) on `test_dataset`, its labels if any, and metrics prefixed `test_`."""
        start_time = time.time()
        loader = self.get_test_dataloader(test_dataset)
        output = self.evaluation_loop(loader, "Prediction", metric_key_prefix=metric_key_prefix)
        output.metrics.update(speed_metrics(metric_key_prefix, start_time, output.num_samples,
                                            math.ceil(output.num_samples / self.args.eval_batch_size)))
        self.control = self.callback_handler.on_predict(self.args, self.state, self.control, output.metrics)
        return PredictionOutput(output.predictions, output.label_ids, output.metrics)

    def evaluation_loop(self, dataloader: MSDataLoader, description: str, prediction_loss_only=None,
                        ignore_keys=None, metric_key_prefix: str = "eval") -> EvalLoopOutput:
        """Forward passes over `dataloader`; gathers losses, predictions and labels from every rank."""
        prediction_loss_only = self.args.prediction_loss_only if prediction_loss_only is None else prediction_loss_only
        if self._eval_step is None:
            if self._smoothing_index is None:
                self._eval_step = EvalStep(self.model)
            else:
                self._eval_step = EvalStep(self.model, self.args.label_smoothing_factor, self._smoothing_index)
        self.model.set_train(False)
        self.callback_handler.eval_dataloader = dataloader
        losses, preds, labels = [], [], []
        for batch in dataloader:
            inputs = self._to_inputs(batch)
            # As transformers: labels are reported when every label name is in the batch, one array per name.
            has_labels = bool(self.label_names) and all(batch.get(n) is not None for n in self.label_names)
            batch_labels = None
            if has_labels:
                batch_labels = tuple(np.asarray(batch[n]) for n in self.label_names)
                batch_labels = batch_labels[0] if len(batch_labels) == 1 else batch_labels
            outputs = self._eval_step(*inputs)
            if self._returns_loss(batch):
                batch_size = next(t.shape[0] for t in inputs if t is not None)
                losses.append(np.full(batch_size, float(outputs[0].asnumpy()), np.float32))
                outputs = outputs[1:]
            if not prediction_loss_only:
                # transformers drops `past_key_values` (config.keys_to_ignore_at_inference) from the predictions:
                # a decoder's cache is the tuple of per-layer (key, value) pairs
                logits = tuple(o.asnumpy() for o in outputs if not (isinstance(o, tuple) and o and
                                                                    isinstance(o[0], tuple)))
                logits = logits[0] if len(logits) == 1 else logits
                if self.preprocess_logits_for_metrics is not None:
                    logits = self.preprocess_logits_for_metrics(logits, batch_labels)
                preds.append(logits)
                if has_labels:
                    labels.append(batch_labels)
            self.control = self.callback_handler.on_prediction_step(self.args, self.state, self.control)

        num_samples = len(dataloader.dataset)
        all_losses = self._gather(_concat(losses), num_samples) if losses else None
        all_preds = self._gather(_concat(preds), num_samples) if preds else None
        all_labels = self._gather(_concat(labels), num_samples) if labels else None
        metrics = {}
        if self.compute_metrics is not None and all_preds is not None and all_labels is not None:
            metrics = self.compute_metrics(EvalPrediction(predictions=all_preds, label_ids=all_labels))
        metrics = denumpify_detensorize(dict(metrics))
        if all_losses is not None:
            metrics[f"{metric_key_prefix}_loss"] = float(all_losses.mean())
        for key in list(metrics):
            if not key.startswith(f"{metric_key_prefix}_"):
                metrics[f"{metric_key_prefix}_{key}"] = metrics.pop(key)
        return EvalLoopOutput(all_preds, all_labels, metrics, num_samples)

    def _gather(self, array, num_samples: int):
        """Every rank's rows of `array` (or of each array of a tuple), in dataset order."""
        if isinstance(array, tuple):
            return tuple(self._gather(a, num_samples) for a in array)
        if self.world_size == 1:
            return array[:num_samples]
        # Shards may differ by one row, and token-level outputs in padded length: pad every rank's array to the
        # largest shape (with -100, as transformers' pad_across_processes) so that all send the same shape.
        shape = all_gather(np.array(array.shape, np.int32)).max(axis=0)
        padding = [(0, int(target) - size) for target, size in zip(shape, array.shape)]
        gathered = all_gather(np.pad(array, padding, constant_values=-100))
        # Shard r holds rows r, r + world, r + 2 * world, ...: interleave, then drop the padding rows, which
        # all land after the last real row.
        rows = gathered.swapaxes(0, 1).reshape(-1, *shape[1:])
        return rows[:num_samples]

    # ------------------------------------------------------------------ saving
    def save_model(self, output_dir: Optional[str] = None, _internal_call: bool = False) -> None:
        """Saves the model (Hugging Face safetensors + config), the tokenizer and `training_args.json`."""
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save:
            return
        self.model.save_pretrained(output_dir)
        if self.processing_class is not None and hasattr(self.processing_class, "save_pretrained"):
            self.processing_class.save_pretrained(output_dir)
        _write_json(os.path.join(output_dir, TRAINING_ARGS_NAME), self.args.to_dict())

    def create_model_card(
        self,
        model_name: Optional[str] = None,
        finetuned_from: Optional[str] = None,
        tags: Optional[Union[str, list]] = None,
        **kwargs,
    ) -> None:
        """Writes `README.md` in `args.output_dir`: a model card with the training hyper-parameters and the last
        evaluation metrics (transformers' card also has the Hub's dataset and license metadata; extra `kwargs`
        such as `language` or `license` are accepted and ignored).

        Args:
            model_name (`str`, *optional*): title of the card; default: the repository or output folder name.
            finetuned_from (`str`, *optional*): base model; default: the model's `name_or_path`.
            tags (`str` or `list[str]`, *optional*): tags added to `mindone_ft` and `mindspore`.
        """
        if not self.is_world_process_zero():
            return
        from .modeling_utils import model_card_markdown

        repo_id = self.args.hub_model_id or os.path.basename(os.path.abspath(self.args.output_dir))
        finetuned_from = finetuned_from or getattr(self.model, "name_or_path", "") or None
        args = self.args
        lines = [f"Fine-tuned from `{finetuned_from}`." if finetuned_from else "", "",
                 "## Training hyperparameters", ""]
        lines += [f"- {name}: {getattr(args, name)}" for name in (
            "learning_rate", "per_device_train_batch_size", "per_device_eval_batch_size", "seed",
            "gradient_accumulation_steps", "lr_scheduler_type", "num_train_epochs", "weight_decay")]
        evaluations = [entry for entry in self.state.log_history if any(k.startswith("eval_") for k in entry)]
        if evaluations:
            lines += ["", "## Evaluation results (last evaluation)", ""]
            lines += [f"- {key}: {value}" for key, value in evaluations[-1].items() if key.startswith("eval_")]
        tags = [tags] if isinstance(tags, str) else list(tags or [])
        card = model_card_markdown(repo_id, "\n".join(lines).strip(), tags, title=model_name)
        os.makedirs(self.args.output_dir, exist_ok=True)
        with open(os.path.join(self.args.output_dir, "README.md"), "w", encoding="utf-8") as handle:
            handle.write(card)

    def push_to_hub(
        self,
        commit_message: Optional[str] = "End of training",
        blocking: bool = True,
        token: Optional[str] = None,
        revision: Optional[str] = None,
        private: Optional[bool] = None,
        **kwargs,
    ):
        """Uploads the model, tokenizer, `training_args.json` and a model card from `args.output_dir` to the
        Hugging Face Hub repository `args.hub_model_id` (default: the output folder's name), like transformers'
        `Trainer.push_to_hub`: `save_model()`, `create_model_card()`, then `huggingface_hub`'s `create_repo` and
        `upload_folder` (checkpoint folders are not uploaded).

        Args:
            commit_message (`str`, *optional*, defaults to `"End of training"`).
            blocking (`bool`, *optional*, defaults to `True`): wait for the upload; `False` returns a `Future`.
            token (`str`, *optional*): Hub token with write access; default `args.hub_token`, then the one of
                `hf auth login`.
            revision (`str`, *optional*): branch to push to; default `args.hub_revision`.
            private (`bool`, *optional*): make a newly created repository private; default `args.hub_private_repo`.
            kwargs: passed to `create_model_card` (`model_name`, `finetuned_from`, `tags`, ...).

        Returns:
            `huggingface_hub.CommitInfo` (or a `Future` of it), `None` on ranks other than 0.

        Raises:
            `OSError` when the Hub cannot be reached (offline, `HF_HUB_OFFLINE=1`) or refuses the upload; the model
            is saved in `args.output_dir` first, so nothing is lost.
        """
        from .modeling_utils import upload_folder_to_hub

        self.callback_handler.on_push_begin(self.args, self.state, self.control)
        self.save_model(_internal_call=True)
        if not self.is_world_process_zero():
            return None
        self.create_model_card(**kwargs)
        repo_id = self.args.hub_model_id or os.path.basename(os.path.abspath(self.args.output_dir))
        repo_id, commit = upload_folder_to_hub(
            self.args.output_dir,
            repo_id,
            commit_message=commit_message,
            token=token if token is not None else self.args.hub_token,
            private=private if private is not None else self.args.hub_private_repo,
            revision=revision if revision is not None else self.args.hub_revision,
            ignore_patterns=["_*", f"{PREFIX_CHECKPOINT_DIR}-*", ".tmp-*"],
            run_as_future=not blocking,
        )
        self.hub_model_id = repo_id
        return commit

    def _save_checkpoint(self) -> None:
        step = self.state.global_step
        name = f"{PREFIX_CHECKPOINT_DIR}-{step}"
        output_dir = os.path.join(self.args.output_dir, name)
        if self.state.best_global_step == step:
            self.state.best_model_checkpoint = output_dir
        running_loss = self._running_loss()  # a collective: every rank calls it, only rank 0 writes
        shard_dir = self._write_zero_shard(name)  # under ZeRO every rank writes its optimizer shard first
        if self.args.should_save:
            os.makedirs(self.args.output_dir, exist_ok=True)
            tmp_dir = tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=self.args.output_dir)
            try:
                self._write_checkpoint(tmp_dir, running_loss, shard_dir)
                _replace_dir(tmp_dir, output_dir)
            finally:
                shutil.rmtree(tmp_dir, ignore_errors=True)
                if shard_dir is not None:
                    shutil.rmtree(shard_dir, ignore_errors=True)
            self._rotate_checkpoints()
        if shard_dir is not None:
            barrier()  # the checkpoint is complete (shards included) before any rank goes on
        # Dropout masks after this step are re-seeded from the step, so a resume from here draws the same ones.
        if not self.args.save_only_model:
            self._reseed_and_rebuild(step)

    def _zero_sharded(self) -> bool:
        return isinstance(self.optimizer, ZeroAdamW)

    def _write_zero_shard(self, name: str) -> Optional[str]:
        """Under ZeRO, writes this rank's optimizer shard into a staging folder next to the checkpoints (which
        all ranks must see: a shared file system on several nodes) and waits for every rank; rank 0 then moves
        the shards into the checkpoint. Returns the staging folder, or None without ZeRO."""
        if not self._zero_sharded() or self.args.save_only_model:
            return None
        from safetensors.numpy import save_file

        shard_dir = os.path.join(self.args.output_dir, f".tmp-{name}-zero-shards")
        os.makedirs(shard_dir, exist_ok=True)
        path = os.path.join(shard_dir, zero_shard_name(self.rank, self.world_size))
        metadata = {"format": "pt", "zero_stage": str(self.optimizer.zero_stage),
                    "rank": str(self.rank), "world_size": str(self.world_size)}
        save_file(self.optimizer.state_dict(), path + ".partial", metadata=metadata)
        os.replace(path + ".partial", path)  # a shard is never seen half-written
        barrier()
        return shard_dir

    def _write_checkpoint(
        self, directory: str, running_loss: tuple = (0.0, 0), shard_dir: Optional[str] = None
    ) -> None:
        """Writes every checkpoint file into `directory`; `running_loss` is `_running_loss()`; `shard_dir` holds
        the ranks' ZeRO optimizer shards (`_write_zero_shard`)."""
        from safetensors.numpy import save_file

        self.save_model(directory)
        self.state.stateful_callbacks = TrainerState(stateful_callbacks=self._stateful_callbacks()).stateful_callbacks
        self.state.save_to_json(os.path.join(directory, TRAINER_STATE_NAME))
        if self.args.save_only_model:
            return
        if shard_dir is not None:
            for rank in range(self.world_size):
                shard = zero_shard_name(rank, self.world_size)
                shutil.move(os.path.join(shard_dir, shard), os.path.join(directory, shard))
        else:
            save_file(self.optimizer.state_dict(), os.path.join(directory, OPTIMIZER_NAME))
        save_file({k: np.asarray(v) for k, v in self._train_step.state_dict().items()},
                  os.path.join(directory, TRAIN_STEP_NAME))
        _write_json(os.path.join(directory, SCHEDULER_NAME), {"last_epoch": self._optimizer_steps()})
        py_state = random.getstate()
        np_state = np.random.get_state()
        _write_json(os.path.join(directory, RNG_STATE_NAME), {
            "python": [py_state[0], list(py_state[1]), py_state[2]],
            "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
            "mindspore_seed": ms.get_seed(),
            "dropout_seed_step": self.state.global_step,
        })
        _write_json(os.path.join(directory, LOOP_STATE_NAME), {
            "tr_loss_sum": running_loss[0], "tr_loss_count": running_loss[1],
            "total_loss": self._loop["total_loss"], "total_count": self._loop["total_count"],
            "last_logged": self._loop["last_logged"],
        })

    def _running_loss(self) -> tuple:
        """`(sum, count)` of the loss since the last log, summed over ranks, without resetting it (the log after a
        checkpoint must still include it)."""
        self._fold_pending_losses()
        local = np.array([self._loop["tr_loss"], self._loop["tr_count"]], np.float32)
        total = all_reduce_sum(local) if self.world_size > 1 else local
        return float(total[0]), int(round(float(total[1])))

    def _rotate_checkpoints(self) -> None:
        limit = self.args.save_total_limit
        if not limit or limit <= 0 or not self.args.should_save:
            return
        checkpoints = sorted_checkpoints(self.args.output_dir)
        best = self.state.best_model_checkpoint
        if best is not None and os.path.abspath(best) in map(os.path.abspath, checkpoints):
            # Never delete the best checkpoint: treat it as the newest.
            checkpoints = [c for c in checkpoints if os.path.abspath(c) != os.path.abspath(best)] + [best]
            if limit == 1 and checkpoints[-1] != checkpoints[0]:
                limit = 2  # keep the best and the latest (to resume)
        for path in checkpoints[: max(len(checkpoints) - limit, 0)]:
            logger.info(f"Deleting older checkpoint [{path}] due to args.save_total_limit")
            shutil.rmtree(path, ignore_errors=True)

    # ------------------------------------------------------------------ loading
    def _load_checkpoint(self, checkpoint: str) -> int:
        """Restores everything `_save_checkpoint` wrote; returns the global step to continue from."""
        from safetensors.numpy import load_file

        _check_checkpoint(checkpoint)
        try:
            self._load_model_weights(checkpoint)
            self._load_optimizer_state(checkpoint)
            self._resumed_step_state = load_file(os.path.join(checkpoint, TRAIN_STEP_NAME))
            state = TrainerState.load_from_json(os.path.join(checkpoint, TRAINER_STATE_NAME))
            rng = _read_json(os.path.join(checkpoint, RNG_STATE_NAME))
            loop = _read_json(os.path.join(checkpoint, LOOP_STATE_NAME))
        except ZeroCheckpointError:
            raise
        except Exception as error:  # truncated safetensors, invalid JSON, wrong shapes...
            raise ValueError(f"Checkpoint {checkpoint} is corrupt or incompatible with this model: {error}") from error
        if state.max_steps != self.state.max_steps:
            logger.warning(f"The checkpoint was written for max_steps={state.max_steps}, this run has "
                           f"{self.state.max_steps}: the learning-rate schedule differs.")
        for key in ("global_step", "epoch", "log_history", "best_metric", "best_global_step",
                    "best_model_checkpoint", "total_flos", "stateful_callbacks"):
            setattr(self.state, key, getattr(state, key))
        if self.args.restore_callback_states_from_checkpoint:
            self._restore_callback_states(state.stateful_callbacks)
        random.setstate((rng["python"][0], tuple(rng["python"][1]), rng["python"][2]))
        np.random.set_state((rng["numpy"][0], np.array(rng["numpy"][1], dtype=np.uint32), *rng["numpy"][2:]))
        # The saved running loss is the sum over ranks: rank 0 carries it, so the next log's sum counts it once.
        carried = (loop["tr_loss_sum"], int(loop["tr_loss_count"])) if self.rank == 0 else (0.0, 0)
        self._loop.update({"tr_loss": np.float32(carried[0]), "tr_count": carried[1], "pending_losses": [],
                           "total_loss": loop["total_loss"], "total_count": loop["total_count"],
                           "last_logged": loop["last_logged"]})
        return state.global_step

    def _load_optimizer_state(self, checkpoint: str) -> None:
        """The optimizer state of `checkpoint`: one file, or under ZeRO this rank's shard of one file per rank.

        ZeRO shards resume only with the world size that wrote them (a clear error otherwise); an unsharded
        state also resumes a ZeRO run (each rank keeps its slices).
        """
        from safetensors.numpy import load_file

        saved_world = zero_checkpoint_world_size(checkpoint)
        if saved_world is None:
            state = load_file(os.path.join(checkpoint, OPTIMIZER_NAME))
            if self._zero_sharded():
                self.optimizer.load_full_state_dict(state)
            else:
                self.optimizer.load_state_dict(state)
            return
        if not self._zero_sharded() or saved_world != self.world_size:
            this_run = f"ZeRO over {self.world_size} ranks" if self._zero_sharded() else (
                f"no ZeRO ({self.world_size} rank{'s' if self.world_size > 1 else ''})")
            raise ZeroCheckpointError(
                f"Checkpoint {checkpoint} holds ZeRO optimizer shards written by {saved_world} ranks, and this run "
                f"has {this_run}. Resume it with ZeRO (`deepspeed` zero_optimization.stage 1 or 2, or "
                f"`fsdp=\"shard_grad_op\"`) on {saved_world} ranks (msrun --worker_num={saved_world}); resharding "
                "to another world size is not implemented."
            )
        self.optimizer.load_state_dict(load_file(os.path.join(checkpoint, zero_shard_name(self.rank, self.world_size))))

    def _restore_callback_states(self, states: dict) -> None:
        for callback in self.callback_handler.callbacks:
            saved = states.get(callback.__class__.__name__)
            if isinstance(callback, ExportableState) and isinstance(saved, dict):
                for key, value in saved.get("attributes", {}).items():
                    setattr(callback, key, value)

    def _load_model_weights(self, checkpoint: str) -> None:
        from .modeling_utils import load_state_dict_from_file

        if isinstance(self.model, PeftModel):  # the checkpoint holds the adapters: "default" at the top, others below
            for name in self.model.peft_config:
                folder = checkpoint if name == "default" else os.path.join(checkpoint, name)
                result = self.model.load_adapter(folder, name, is_trainable=True)
                if result.missing_keys or result.unexpected_keys:
                    raise ValueError(f"adapter {name!r}: missing keys {result.missing_keys}, unexpected keys "
                                     f"{result.unexpected_keys}")
            return
        path = os.path.join(checkpoint, MODEL_WEIGHTS_NAME)
        if not os.path.isfile(path):
            path = os.path.join(checkpoint, "model.safetensors.index.json")
        self.model.load_state_dict_numpy(load_state_dict_from_file(path), strict=True)

    def _load_best_model(self) -> None:
        if self.world_size > 1:
            barrier()  # rank 0 may still be writing the checkpoint the others are about to read
        logger.info(f"Loading best model from {self.state.best_model_checkpoint} (score: {self.state.best_metric}).")
        self._load_model_weights(self.state.best_model_checkpoint)

    # ------------------------------------------------------------------ hyperparameter search
    def hyperparameter_search(
        self,
        hp_space: Optional[Callable] = None,
        compute_objective: Optional[Callable[[dict], float]] = None,
        n_trials: int = 20,
        direction: Union[str, list] = "minimize",
        backend=None,
        hp_name: Optional[Callable] = None,
        **kwargs,
    ):
        """Hyperparameter search with optuna, as transformers' `Trainer.hyperparameter_search`.

        Needs a Trainer built with `model_init`: every trial re-creates the model, applies `hp_space(trial)` to a
        copy of the `TrainingArguments`, trains and evaluates (see `mindone_ft.hyperparameter_search`). optuna is
        imported only here (`pip install optuna==5.0.0`).

        Args:
            hp_space (`Callable[[optuna.Trial], dict]`, *optional*): the search space; defaults to
                `default_hp_space_optuna` (learning rate, epochs, seed, train batch size).
            compute_objective (`Callable[[dict], float]`, *optional*): the objective from the evaluation
                metrics; defaults to `default_compute_objective` (the eval loss, or the sum of the other metrics).
            n_trials (`int`, *optional*, defaults to 20): number of trials.
            direction (`str` or `list[str]`, *optional*, defaults to `"minimize"`): `"minimize"` or `"maximize"`,
                or a list of them for several objectives.
            backend (`str`, *optional*): `"optuna"` (or `None`); other backends raise a ValueError.
            hp_name (`Callable[[optuna.Trial], str]`, *optional*): a trial's run name (default `run-<number>`).
            kwargs: passed to `optuna.create_study` (e.g. `sampler`, `pruner`, `study_name`, `storage`), except
                `timeout`, `gc_after_trial` and `catch`, which go to `Study.optimize`.

        Returns:
            `BestRun(run_id, objective, hyperparameters, run_summary)`, or a list of them for several directions.
        """
        from .hyperparameter_search import hyperparameter_search

        return hyperparameter_search(self, hp_space=hp_space, compute_objective=compute_objective, n_trials=n_trials,
                                     direction=direction, backend=backend, hp_name=hp_name, **kwargs)

    def call_model_init(self, trial=None) -> nn.Cell:
        """A fresh model from `model_init` (called with `trial` when it takes one argument), as in transformers."""
        from .hyperparameter_search import call_model_init

        return call_model_init(self, trial)


# ---------------------------------------------------------------------- helpers
class ZeroCheckpointError(ValueError):
    """A checkpoint's ZeRO optimizer shards do not fit this run (another world size, or no ZeRO)."""


def zero_shard_name(rank: int, world_size: int) -> str:
    """File name of rank `rank`'s ZeRO optimizer shard in a checkpoint written by `world_size` ranks."""
    return f"optimizer-rank{rank:05d}-of-{world_size:05d}.safetensors"


def zero_checkpoint_world_size(checkpoint: str) -> Optional[int]:
    """The world size whose ZeRO optimizer shards `checkpoint` holds, or None for an unsharded optimizer state.
    Raises a ValueError when shards are missing."""
    shards = sorted(f for f in os.listdir(checkpoint) if f.startswith("optimizer-rank") and f.endswith(".safetensors"))
    if not shards:
        return None
    world_size = int(shards[0].rsplit("-of-", 1)[1].split(".")[0])
    expected = [zero_shard_name(rank, world_size) for rank in range(world_size)]
    if shards != expected:
        raise ValueError(f"Checkpoint {checkpoint} has ZeRO optimizer shards {shards}, expected {expected}: "
                         "some are missing or from another run; resume from another checkpoint.")
    return world_size


def _check_checkpoint(checkpoint: str) -> None:
    """Raises a clear error if `checkpoint` is not a complete, resumable checkpoint folder."""
    if not os.path.isdir(checkpoint):
        raise ValueError(f"Can't find a valid checkpoint at {checkpoint}")
    files = set(os.listdir(checkpoint))
    has_model = bool(files & {MODEL_WEIGHTS_NAME, "model.safetensors.index.json", ADAPTER_WEIGHTS_NAME})
    if zero_checkpoint_world_size(checkpoint) is not None:  # ZeRO: one optimizer shard per rank instead
        files.add(OPTIMIZER_NAME)
    missing = [f for f in RESUME_FILES if f not in files] + ([] if has_model else [MODEL_WEIGHTS_NAME])
    if missing:
        raise ValueError(
            f"Checkpoint {checkpoint} is incomplete: missing {missing}. It was saved with save_only_model=True, "
            "or its files were removed or damaged; resume from another checkpoint."
        )


def _replace_dir(src: str, dst: str) -> None:
    """Moves folder `src` to `dst`, atomically replacing an existing `dst` (rename away, rename in, delete)."""
    old = None
    if os.path.exists(dst):
        old = tempfile.mkdtemp(prefix=".tmp-old-", dir=os.path.dirname(dst))
        os.replace(dst, os.path.join(old, "ckpt"))
    os.replace(src, dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _column_names(dataset) -> list:
    """Column names of a Hugging Face dataset, or the keys of the first row of a list of dict rows."""
    names = getattr(dataset, "column_names", None)
    if names is not None:
        return list(names)
    try:
        first = dataset[0]
    except (IndexError, KeyError, TypeError):
        return []
    return list(first) if hasattr(first, "keys") else []


def _concat(chunks: list):
    """Concatenates per-batch arrays (or tuples of arrays) along the batch axis, padding the sequence axis
    with -100 like transformers when batches have different lengths."""
    if isinstance(chunks[0], tuple):
        return tuple(_concat([c[i] for c in chunks]) for i in range(len(chunks[0])))
    if chunks[0].ndim < 2 or all(c.shape[1:] == chunks[0].shape[1:] for c in chunks):
        return np.concatenate(chunks, axis=0)
    width = max(c.shape[1] for c in chunks)
    padded = []
    for c in chunks:
        pad = [(0, 0), (0, width - c.shape[1])] + [(0, 0)] * (c.ndim - 2)
        padded.append(np.pad(c, pad, constant_values=-100))
    return np.concatenate(padded, axis=0)


def _write_json(path: str, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")


def _read_json(path: str) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


__all__ = ["EvalStep", "LabelSmoothedLoss", "Trainer", "TrainingArguments", "reseed_dropout"]
