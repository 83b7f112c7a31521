"""Causal-LM fine-tuning with the Trainer: transformers' `DataCollatorForLanguageModeling(mlm=False)`, our
prompt/completion collator, and the two examples in examples/llm/."""

import json
import os
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest
from transformers import AutoTokenizer, DataCollatorForLanguageModeling, LlamaConfig

from mindone_ft import LlamaForCausalLM, Trainer, TrainingArguments
from mindone_ft.data import DataCollatorForPromptCompletion, as_numpy_collator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def tokenizer(model_path):
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    tokenizer.eos_token = tokenizer.sep_token
    return tokenizer


def tiny_llama(tokenizer, **overrides) -> LlamaForCausalLM:
    values = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                  pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True)
    values.update(overrides)
    ms.set_seed(0)
    np.random.seed(0)
    return LlamaForCausalLM(LlamaConfig(**values))


def test_prompt_completion_collator_masks_the_prompt(tokenizer):
    collator = DataCollatorForPromptCompletion(tokenizer)
    batch = collator([{"prompt": "a fine film", "completion": " positive"},
                      {"prompt": "a long and dull film indeed", "completion": " negative"}])
    prompt = tokenizer("a fine film")["input_ids"]
    completion = tokenizer(" positive", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    row = batch["input_ids"][0]
    n = len(prompt) + len(completion)
    assert row[:n].tolist() == prompt + completion and (row[n:] == tokenizer.pad_token_id).all()
    labels = batch["labels"][0]
    assert (labels[:len(prompt)] == -100).all() and labels[len(prompt):n].tolist() == completion
    assert (labels[n:] == -100).all() and batch["attention_mask"][0].tolist() == [1] * n + [0] * (len(row) - n)
    assert batch["input_ids"].dtype == np.int32 and batch["input_ids"].shape[0] == 2

    left = DataCollatorForPromptCompletion(tokenizer, padding_side="left")(
        [{"input_ids": [5, 6, 7], "completion_mask": [0, 1, 1]}, {"input_ids": [8, 9], "completion_mask": [0, 1]}])
    assert left["input_ids"].tolist() == [[5, 6, 7], [tokenizer.pad_token_id, 8, 9]]
    assert left["labels"].tolist() == [[-100, 6, 7], [-100, -100, 9]]
    with pytest.raises(ValueError, match="remove_unused_columns=False"):
        collator([{"text": "no prompt here"}])


def test_transformers_collator_gives_numpy_padded_to_a_bucket_without_changing_the_loss(tokenizer, pynative):
    collator = DataCollatorForLanguageModeling(tokenizer, mlm=False)
    assert collator.return_tensors == "pt"
    wrapped = as_numpy_collator(collator, bucket_boundaries=[16, 32])
    assert collator.return_tensors == "pt"  # the user's collator is not changed
    rows = [tokenizer("a fine film"), tokenizer("a long and dull film, really long and really dull")]
    rows = [{k: v for k, v in r.items() if k != "token_type_ids"} for r in rows]
    assert as_numpy_collator(collator)._target_length(5) == 32  # no buckets: multiples of 32
    batch = wrapped(rows)
    assert all(isinstance(v, np.ndarray) for v in batch.values()) and batch["input_ids"].shape == (2, 16)
    unpadded = dict(numpy_collate(collator, rows))
    assert unpadded["input_ids"].shape[1] < 16
    assert (batch["labels"][:, unpadded["labels"].shape[1]:] == -100).all()
    model = tiny_llama(tokenizer)
    loss_padded = model(**{k: ms.Tensor(v) for k, v in batch.items()}).loss.asnumpy()
    loss_plain = model(**{k: ms.Tensor(v) for k, v in unpadded.items()}).loss.asnumpy()
    assert abs(float(loss_padded) - float(loss_plain)) < 1e-6


def numpy_collate(collator, rows):
    import copy

    numpy_collator = copy.copy(collator)
    numpy_collator.return_tensors = "np"
    return numpy_collator(rows)


def test_trainer_trains_a_causal_lm_with_transformers_collator(tokenizer, tmp_path, graph_mode):
    texts = ["the film is a gem", "the film is a bore", "a gem of a film", "a bore of a film"] * 8
    import datasets

    train = datasets.Dataset.from_dict({"text": texts}).map(
        lambda b: tokenizer(b["text"], return_token_type_ids=False), batched=True, remove_columns=["text"])
    model = tiny_llama(tokenizer)
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=8, num_train_epochs=8,
                             learning_rate=1e-2, logging_steps=4, report_to="none", save_strategy="no",
                             disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=train, processing_class=tokenizer,
                      data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False))
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    after = trainer.evaluate()["eval_loss"]
    assert after < 0.5 * before, (before, after)


def test_prompt_completion_fine_tuning_learns_the_completions(tokenizer, tmp_path, graph_mode):
    """The loss is on the completions only: after training, greedy generation answers each training prompt."""
    import datasets

    pairs = [("the film is a gem. sentiment:", " positive"), ("the film is a bore. sentiment:", " negative"),
             ("what a gem. sentiment:", " positive"), ("what a bore. sentiment:", " negative")]
    train = datasets.Dataset.from_dict({"prompt": [p for p, _ in pairs] * 8, "completion": [c for _, c in pairs] * 8,
                                        "source": ["x"] * 32})
    model = tiny_llama(tokenizer, hidden_size=64, intermediate_size=128)
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=8, num_train_epochs=8,
                             learning_rate=1e-2, report_to="none", save_strategy="no", disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=train, processing_class=tokenizer,
                      data_collator=DataCollatorForPromptCompletion(tokenizer))
    trainer.train()
    tokenizer.padding_side = "left"
    inputs = tokenizer([p for p, _ in pairs], return_tensors="np", padding=True, return_token_type_ids=False)
    tokenizer.padding_side = "right"
    out = model.generate(**inputs, max_new_tokens=2, do_sample=False)
    answers = tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1]:])
    assert [a.split()[0] for a in answers] == ["positive", "negative", "positive", "negative"], answers
    assert all(a.split()[1] == tokenizer.sep_token for a in answers)  # the learned end of the completion


def test_examples_finetune_then_generate(tmp_path):
    """examples/llm/finetune_causal_lm.py on a few reviews, then examples/llm/generate.py on its output folder."""
    out = tmp_path / "llm"
    env = dict(os.environ, GLOG_v="3")
    train = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "llm", "finetune_causal_lm.py"), "--output_dir", str(out),
         "--max_train_samples", "64", "--max_eval_samples", "16", "--num_train_epochs", "1", "--hidden_size", "32",
         "--per_device_train_batch_size", "16", "--learning_rate", "5e-3", "--report_to", "none",
         "--save_strategy", "no", "--disable_tqdm", "true", "--show_examples", "2"],
        capture_output=True, text=True, env=env, timeout=900)
    assert train.returncode == 0, train.stderr[-3000:]
    assert "--- before fine-tuning" in train.stdout and "--- after fine-tuning" in train.stdout
    metrics = json.loads(train.stdout.strip().splitlines()[-1])
    assert {"eval_loss", "eval_sentiment_accuracy", "eval_majority_baseline"} <= set(metrics)
    assert (out / "generation_config.json").exists() and (out / "initial_model" / "config.json").exists()
    generate = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "llm", "generate.py"), "--model", str(out),
         "--prompt", "review: a gem sentiment:", "--prompt", "review: a long and dull bore sentiment:",
         "--max_new_tokens", "2", "--mode", "pynative"],
        capture_output=True, text=True, env=env, timeout=600)
    assert generate.returncode == 0, generate.stderr[-3000:]
    lines = [json.loads(line) for line in generate.stdout.strip().splitlines() if line.startswith("{")]
    assert [r["prompt"] for r in lines] == ["review: a gem sentiment:", "review: a long and dull bore sentiment:"]


@pytest.mark.slow  # ~35 s; test_examples_finetune_then_generate runs the same script without --lora
def test_example_trains_a_lora_adapter(tmp_path):
    """--lora_r: the example trains a PEFT-format adapter on the from-scratch model; the base weights stay."""
    out = tmp_path / "llm_lora"
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "llm", "finetune_causal_lm.py"), "--output_dir", str(out),
         "--max_train_samples", "32", "--max_eval_samples", "8", "--num_train_epochs", "1", "--hidden_size", "32",
         "--per_device_train_batch_size", "16", "--lora_r", "4", "--report_to", "none", "--save_strategy", "no",
         "--disable_tqdm", "true", "--show_examples", "1"],
        capture_output=True, text=True, env=dict(os.environ, GLOG_v="3"), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "trainable params" in result.stdout
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 4 and (out / "adapter_model.safetensors").exists()
