"""The Trainer with a LoRA `PeftModel`: only the adapter trains and is checkpointed, resume is exact, the best
adapter is loaded at the end, and LoRA on the real pretrained BERT learns real reviews (adapter loads in PEFT)."""

import json
import os
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest
from safetensors.numpy import load_file

from mindone_ft import AutoModelForSequenceClassification, BertForSequenceClassification, Trainer, TrainingArguments
from mindone_ft.mindspore_adapter import MindSporeArguments, NumpyDataCollator, init_environment
from mindone_ft.peft import LoraConfig, PeftModel, get_peft_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_LENGTH = 32


@pytest.fixture(scope="module")
def data():
    from transformers import AutoTokenizer

    from mindone_ft.utils import default_model_path, load_rotten_tomatoes

    init_environment(MindSporeArguments(deterministic=True, cpu_threads=1))
    tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    reviews = load_rotten_tomatoes()
    tokenize = lambda batch: tokenizer(batch["text"], truncation=True, max_length=MAX_LENGTH)  # noqa: E731
    return tokenizer, reviews["train"].map(tokenize, batched=True), reviews["test"].map(tokenize, batched=True)


def accuracy(prediction) -> dict:
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


def fixed_length(tokenizer) -> NumpyDataCollator:
    # One padded length: one train graph and one eval graph to compile.
    return NumpyDataCollator(tokenizer, padding="max_length", max_length=MAX_LENGTH)


def tiny_peft_model(tokenizer) -> PeftModel:
    from transformers import BertConfig

    ms.set_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=2, hidden_dropout_prob=0.1,
                        attention_probs_dropout_prob=0.1)
    return get_peft_model(BertForSequenceClassification(config),
                          LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, lora_dropout=0.1,
                                     target_modules=["query", "value", "dense"]))


def _train(data, output_dir, resume=None):
    tokenizer, train, test = data
    model = tiny_peft_model(tokenizer)
    args = TrainingArguments(output_dir=str(output_dir), per_device_train_batch_size=8, per_device_eval_batch_size=16,
                             num_train_epochs=2, learning_rate=5e-3, seed=7, disable_tqdm=True, logging_steps=1,
                             eval_strategy="epoch", save_strategy="epoch", load_best_model_at_end=True,
                             metric_for_best_model="accuracy")
    trainer = Trainer(model=model, args=args, train_dataset=train.select(range(40)),
                      eval_dataset=test.select(range(16)), processing_class=tokenizer, compute_metrics=accuracy,
                      data_collator=fixed_length(tokenizer))
    initial = {name: param.asnumpy().copy() for name, param in model.named_parameters()}
    trainer.train(resume_from_checkpoint=resume)
    return trainer, initial


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    """10 steps in one go, and the same run resumed from its step-5 checkpoint (copied to another folder)."""
    import shutil

    full_dir = tmp_path_factory.mktemp("full")
    full = _train(data, full_dir)
    resumed_dir = tmp_path_factory.mktemp("resumed")
    shutil.copytree(full_dir / "checkpoint-5", resumed_dir / "checkpoint-5")
    resumed = _train(data, resumed_dir, resume=str(resumed_dir / "checkpoint-5"))
    return full, resumed


def test_only_the_adapter_is_optimized_and_base_weights_never_change(runs):
    (trainer, initial), _ = runs
    model = trainer.model
    trainable = {name for name, param in model.named_parameters() if param.requires_grad}
    assert trainable and all(".lora_A.default." in n or ".lora_B.default." in n or
                             ".classifier.modules_to_save.default." in n for n in trainable)
    assert {p.name for p in trainer.optimizer.parameters} == {p.name for p in model.trainable_params()}
    state = trainer.optimizer.state_dict()
    moments = sum(v.size for k, v in state.items() if k != "global_step")
    trainable_size = sum(p.size for p in model.trainable_params())
    assert moments == 2 * trainable_size < 0.2 * sum(p.size for _, p in model.named_parameters())
    changed = {name for name, param in model.named_parameters() if not np.array_equal(param.asnumpy(), initial[name])}
    assert changed and changed <= trainable  # adapters moved, no base weight did


def test_checkpoints_hold_the_adapter_in_peft_format(runs):
    (trainer, _), _ = runs
    checkpoint = os.path.join(trainer.args.output_dir, "checkpoint-10")
    files = set(os.listdir(checkpoint))
    assert {"adapter_config.json", "adapter_model.safetensors", "optimizer.safetensors", "trainer_state.json",
            "train_step.safetensors", "rng_state.json", "tokenizer.json"} <= files
    assert "model.safetensors" not in files and "config.json" not in files
    weights = load_file(os.path.join(checkpoint, "adapter_model.safetensors"))
    assert all(k.startswith("base_model.model.") and ("lora_" in k or ".classifier." in k) for k in weights)
    assert json.load(open(os.path.join(checkpoint, "adapter_config.json")))["peft_type"] == "LORA"


def test_resume_is_exact_and_the_best_adapter_is_loaded_at_the_end(runs):
    (full, _), (resumed, _) = runs
    for name in ("adapter_model.safetensors", "optimizer.safetensors"):
        expected = load_file(os.path.join(full.args.output_dir, "checkpoint-10", name))
        got = load_file(os.path.join(resumed.args.output_dir, "checkpoint-10", name))
        assert expected.keys() == got.keys()
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key], rtol=0, atol=1e-6, err_msg=key)
    losses = lambda t: [(e["step"], e["loss"]) for e in t.log_history if "loss" in e]  # noqa: E731
    assert losses(resumed) == losses(full) and len(losses(full)) == 10  # steps 1-5 restored, 6-10 retrained
    best = full.state.best_model_checkpoint
    saved = load_file(os.path.join(best, "adapter_model.safetensors"))
    from mindone_ft.peft import get_peft_model_state_dict

    for key, value in get_peft_model_state_dict(full.model).items():
        np.testing.assert_array_equal(value, saved[key])


@pytest.mark.slow  # ~70 s of real-review training; test_lora_example_script runs LoRA end to end
def test_lora_on_pretrained_bert_learns_real_reviews_and_loads_in_peft(data, tmp_path):
    """All-MiniLM-L6-v2 (real weights) with LoRA r=8 on query/value: 40 steps on 320 reviews beat the frozen model
    (random head) on 192 held-out ones; `save_model()` writes an adapter PEFT on PyTorch reproduces."""
    import peft
    import torch
    import transformers

    from mindone_ft.utils import default_model_path

    tokenizer, train, test = data
    ms.set_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(default_model_path(), num_labels=2)
    peft_model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, lora_dropout=0.05))
    base = {name: param.asnumpy().copy() for name, param in model.named_parameters_hf().items()
            if "lora_" not in name and "modules_to_save" not in name}
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=16, per_device_eval_batch_size=64,
                             num_train_epochs=2, learning_rate=1e-2, warmup_steps=0.1, seed=42, disable_tqdm=True,
                             save_strategy="no", report_to=[])
    trainer = Trainer(model=peft_model, args=args, train_dataset=train.select(range(320)),
                      eval_dataset=test.select(range(192)), processing_class=tokenizer, compute_metrics=accuracy,
                      data_collator=fixed_length(tokenizer))
    with peft_model.disable_adapter():
        frozen = trainer.evaluate()["eval_accuracy"]
    trainer.train()
    trained = trainer.evaluate()["eval_accuracy"]
    majority = max(np.mean(test.select(range(192))["label"]), 1 - np.mean(test.select(range(192))["label"]))
    print(f"eval accuracy: frozen {frozen:.3f}, LoRA-trained {trained:.3f}, majority class {majority:.3f}")
    assert trained > max(frozen, majority) + 0.1, (trained, frozen, majority)
    for name, value in model.named_parameters_hf().items():
        if name in base:
            np.testing.assert_array_equal(value.asnumpy(), base[name], err_msg=name)

    trainer.save_model()
    batch = fixed_length(tokenizer)([{k: row[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
                                     for row in test.select(range(4))])
    peft_model.set_train(False)
    ours = peft_model(**batch).logits.asnumpy()
    torch_model = transformers.AutoModelForSequenceClassification.from_pretrained(default_model_path(), num_labels=2)
    theirs = peft.PeftModel.from_pretrained(torch_model, str(tmp_path)).eval()
    with torch.no_grad():
        expected = theirs(**{k: torch.from_numpy(v.astype(np.int64)) for k, v in batch.items()}).logits.numpy()
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-5)


def test_lora_example_script(tmp_path):
    csv = tmp_path / "reviews.csv"
    csv.write_text("text,label\n" + "\n".join(f"review number {i} is {'great' if i % 2 else 'bad'},{i % 2}"
                                               for i in range(24)))
    script = os.path.join(ROOT, "examples", "bert", "finetune_lora.py")
    command = [sys.executable, script, "--train_file", str(csv), "--max_train_samples", "16", "--max_eval_samples",
               "8", "--max_seq_length", "32", "--max_steps", "2", "--save_strategy", "no", "--output_dir",
               str(tmp_path / "out"), "--disable_tqdm", "true", "--deterministic", "--cpu_threads", "1",
               "--merge_adapter"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path,
                            env=dict(os.environ, GLOG_v="3"))
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0
    assert "trainable params: 74,498 || all params: 22,788,484" in result.stdout
    out = tmp_path / "out"
    assert {"adapter_config.json", "adapter_model.safetensors"} <= set(os.listdir(out))
    assert "model.safetensors" in os.listdir(out / "merged")  # merge_and_unload: a plain checkpoint
