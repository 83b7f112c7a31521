"""MindSpore building blocks for fine-tuning: runtime setup, data loading, AdamW and the training step."""

from . import compile_cache
from .adamw import AdamW, is_no_decay_parameter
from .data import (
    HF2MSDataset,
    MSDataLoader,
    NumpyDataCollator,
    fitted_length_buckets,
    group_by_length_indices,
    length_buckets,
    numpy_to_tensor,
)
from .environment import (
    MindSporeArguments,
    RankInfo,
    get_rank_info,
    init_environment,
    is_main_process,
    launched_by_msrun,
    parse_mode,
    resolve_device_target,
)
from .loss_scaler import DynamicLossScaler, LossScaler, create_loss_scaler
from .train_step import ReturnLoss, TrainOneStepWrapper, global_norm
from .zero import ZeroAdamW

# Every graph compile from here on is counted, and cached across runs (see `compile_cache`).
compile_cache.install()

__all__ = [
    "AdamW",
    "DynamicLossScaler",
    "HF2MSDataset",
    "LossScaler",
    "MSDataLoader",
    "MindSporeArguments",
    "NumpyDataCollator",
    "RankInfo",
    "ReturnLoss",
    "TrainOneStepWrapper",
    "ZeroAdamW",
    "create_loss_scaler",
    "fitted_length_buckets",
    "get_rank_info",
    "global_norm",
    "group_by_length_indices",
    "init_environment",
    "is_main_process",
    "is_no_decay_parameter",
    "launched_by_msrun",
    "length_buckets",
    "numpy_to_tensor",
    "parse_mode",
    "resolve_device_target",
]
