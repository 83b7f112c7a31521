"""LoRA fine-tuning with Hugging Face PEFT's API and files, on MindSpore (`import mindone_ft.peft as peft`).

`peft` itself imports torch, so it cannot run here; this package mirrors its LoRA API (`LoraConfig`,
`get_peft_model`, `PeftModel.from_pretrained`, `save_pretrained`, `merge_and_unload`, `disable_adapter`, named
adapters) and its on-disk format (`adapter_config.json`, `adapter_model.safetensors` with PEFT's key names), so
adapters move between PEFT on PyTorch and mindone_ft both ways. `mindone_ft.Trainer` trains a `PeftModel`: only the
adapter (and `modules_to_save`) is optimized and checkpointed. See docs/peft.md.
"""

from .config import LoraConfig, PeftType, TaskType
from .layer import LoraEmbedding, LoraLayer, LoraLinear, ModulesToSaveWrapper
from .model import LoraModel
from .peft_model import (
    MODEL_TYPE_TO_PEFT_MODEL_MAPPING,
    PeftModel,
    PeftModelForCausalLM,
    PeftModelForFeatureExtraction,
    PeftModelForQuestionAnswering,
    PeftModelForSequenceClassification,
    PeftModelForTokenClassification,
    get_peft_model,
)
from .save_and_load import get_peft_model_state_dict, set_peft_model_state_dict

__all__ = [
    "LoraConfig",
    "LoraEmbedding",
    "LoraLayer",
    "LoraLinear",
    "LoraModel",
    "MODEL_TYPE_TO_PEFT_MODEL_MAPPING",
    "ModulesToSaveWrapper",
    "PeftModel",
    "PeftModelForCausalLM",
    "PeftModelForFeatureExtraction",
    "PeftModelForQuestionAnswering",
    "PeftModelForSequenceClassification",
    "PeftModelForTokenClassification",
    "PeftType",
    "TaskType",
    "get_peft_model",
    "get_peft_model_state_dict",
    "set_peft_model_state_dict",
]
