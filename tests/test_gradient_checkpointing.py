"""Activation (gradient) checkpointing: the transformers API on models and TrainingArguments, the Trainer path (a
plain model and a LoRA PeftModel), and what is rejected.

That checkpointing changes no numbers is checked for every family by the parity harness
(`test_gradient_checkpointing_keeps_the_training_numbers` in tests/model_parity.py); the memory it saves is measured
by `python benchmarks/run.py --gradient-checkpointing`, not here.
"""

import mindspore as ms
import numpy as np
import pytest
from transformers import BertConfig, LlamaConfig

from mindone_ft import BertForSequenceClassification, LlamaForCausalLM, Trainer, TrainingArguments
from mindone_ft.mindspore_adapter import MindSporeArguments, NumpyDataCollator, init_environment
from mindone_ft.modeling_layers import Dropout
from mindone_ft.peft import LoraConfig, get_peft_model
from mindone_ft.utils import compat

ROWS, MAX_LENGTH = 32, 16


def tiny_bert(num_hidden_layers: int = 2, dropout: float = 0.1) -> BertForSequenceClassification:
    ms.set_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=num_hidden_layers, num_attention_heads=2,
                        intermediate_size=64, num_labels=2, hidden_dropout_prob=dropout,
                        attention_probs_dropout_prob=dropout)
    return BertForSequenceClassification(config)


def checkpointed_flags(model) -> list:
    return [layer.gradient_checkpointing for layer in model.bert.encoder.layer]


# --------------------------------------------------------------------------------------------------- model API
def test_enable_and_disable_as_in_transformers():
    model = tiny_bert(num_hidden_layers=4)
    assert model.supports_gradient_checkpointing and not model.is_activation_checkpointing
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    assert checkpointed_flags(model) == [True] * 4 and model.is_gradient_checkpointing
    model.gradient_checkpointing_disable()
    assert checkpointed_flags(model) == [False] * 4 and not model.is_activation_checkpointing
    model.activation_checkpointing_enable(every_n_layers=3)  # layers 0 and 3, as transformers counts them
    assert checkpointed_flags(model) == [True, False, False, True]
    model.activation_checkpointing_disable()
    assert not model.is_gradient_checkpointing


def test_every_family_base_has_checkpointable_layers():
    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=3,
                         num_attention_heads=2, num_key_value_heads=1)
    model = LlamaForCausalLM(config)
    model.gradient_checkpointing_enable()
    assert [layer.gradient_checkpointing for layer in model.model.layers] == [True] * 3


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda m: m.gradient_checkpointing_enable({"preserve_rng_state": False}), "preserve_rng_state"),
        (lambda m: m.gradient_checkpointing_enable({"use_reentrant": "yes"}), "use_reentrant must be a bool"),
        (lambda m: m.activation_checkpointing_enable(offload=True), "offload=True is not supported"),
        (lambda m: m.activation_checkpointing_enable(every_n_layers=0), "every_n_layers must be an integer >= 1"),
    ],
)
def test_unsupported_options_are_rejected(call, error):
    with pytest.raises((ValueError, TypeError), match=error):
        call(tiny_bert())


def test_pynative_checkpointing_needs_the_replaying_dropout(monkeypatch, pynative):
    """MindSpore's own dropout cannot replay its masks in a PyNative recompute: a clear error, not wrong gradients."""
    monkeypatch.setattr(compat, "use_cpu_kernels", lambda: False)
    model = tiny_bert()
    assert not any(cell.use_cpu_kernel for _, cell in model.cells_and_names() if isinstance(cell, Dropout))
    model.gradient_checkpointing_enable()
    model.set_train(True)
    ids = ms.Tensor(np.ones((2, 8), np.int32))
    grad_fn = ms.value_and_grad(lambda x: model(x, labels=ms.Tensor(np.array([0, 1], np.int32)))[0], None,
                                model.trainable_params())
    with pytest.raises(ValueError, match="needs mindone_ft's CPU dropout kernel"):
        grad_fn(ids)


# ------------------------------------------------------------------------------------------ TrainingArguments
def test_training_arguments_take_both_names(tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), gradient_checkpointing=True,
                             gradient_checkpointing_kwargs='{"use_reentrant": false}')
    assert args.activation_checkpointing is True and args.activation_checkpointing_kwargs == {"use_reentrant": False}
    assert args.gradient_checkpointing is True  # the old name mirrors the new one, as in transformers 5
    args = TrainingArguments(output_dir=str(tmp_path), activation_checkpointing=True,
                             activation_checkpointing_kwargs={"every_n_layers": 2})
    assert args.gradient_checkpointing_kwargs == {"every_n_layers": 2}
    assert TrainingArguments(output_dir=str(tmp_path)).activation_checkpointing is False


@pytest.mark.parametrize("kwargs, error", [({"offload": True}, "offload"), ({"determinism_check": "none"}, "determinism_check"),
                                           ({"every_n_layers": -1}, "every_n_layers")])
def test_training_arguments_reject_unsupported_options_when_built(tmp_path, kwargs, error):
    with pytest.raises(ValueError, match=error):
        TrainingArguments(output_dir=str(tmp_path), gradient_checkpointing=True, gradient_checkpointing_kwargs=kwargs)


# ------------------------------------------------------------------------------------------------ Trainer
@pytest.fixture(scope="module")
def data():
    from transformers import AutoTokenizer

    from mindone_ft.utils import default_model_path, load_rotten_tomatoes

    init_environment(MindSporeArguments(deterministic=True, cpu_threads=1))
    tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    tokenize = lambda batch: tokenizer(batch["text"], truncation=True, max_length=MAX_LENGTH)  # noqa: E731
    return tokenizer, load_rotten_tomatoes()["train"].select(range(ROWS)).map(tokenize, batched=True)


def _train(data, tmp_path, model, checkpointing: bool):
    tokenizer, train = data
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=8, max_steps=12,
                             learning_rate=5e-3, seed=7, disable_tqdm=True, logging_steps=1, save_strategy="no",
                             report_to="none", gradient_checkpointing=checkpointing)
    # One padded length: one train graph per run.
    collator = NumpyDataCollator(tokenizer, padding="max_length", max_length=MAX_LENGTH)
    trainer = Trainer(model=model, args=args, train_dataset=train, data_collator=collator)
    trainer.train()
    assert model.is_gradient_checkpointing == checkpointing
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return losses, {p.name: p.asnumpy() for p in model.trainable_params()}


def _assert_same_run(run, checkpointed_run):
    (losses, params), (gc_losses, gc_params) = run, checkpointed_run
    # The run is not degenerate (the losses change from step to step). They are logged rounded to 4 digits, as
    # transformers logs them, so two of the 12 may coincide.
    assert len(losses) == 12 and len(set(losses)) >= 10
    np.testing.assert_allclose(gc_losses, losses, rtol=1e-6)
    assert params.keys() == gc_params.keys()
    worst = max(float(np.max(np.abs(params[k] - gc_params[k]))) for k in params)
    assert worst <= 1e-5, f"parameters differ by {worst} after 12 steps"


def test_trainer_with_gradient_checkpointing_ends_on_the_same_weights(data, tmp_path):
    _assert_same_run(_train(data, tmp_path / "plain", tiny_bert(), False),
                     _train(data, tmp_path / "checkpointed", tiny_bert(), True))


def test_trainer_checkpoints_a_lora_model_the_same(data, tmp_path):
    def lora_model():
        return get_peft_model(tiny_bert(), LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, lora_dropout=0.1,
                                                      target_modules=["query", "value"]))

    _assert_same_run(_train(data, tmp_path / "plain", lora_model(), False),
                     _train(data, tmp_path / "checkpointed", lora_model(), True))


def test_pynative_checkpointing_replays_dropouts_added_after_enabling(pynative):
    """LoRA adapters (with their dropout) added after `gradient_checkpointing_enable()`: the recomputed layers still
    draw the first pass's masks, so the gradients are those without checkpointing."""

    def loss_and_grads(checkpointing: bool):
        model = tiny_bert()
        if checkpointing:
            model.gradient_checkpointing_enable()
        model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, lora_dropout=0.5,
                                                 target_modules=["query", "value"]))
        model.set_train(True)
        input_ids = ms.Tensor(np.random.default_rng(0).integers(0, 1000, (2, 8)), ms.int32)
        labels = ms.Tensor(np.array([0, 1]), ms.int32)
        params = model.trainable_params()
        loss, grads = ms.value_and_grad(lambda ids, y: model(input_ids=ids, labels=y).loss, None, params)(
            input_ids, labels)
        return float(loss), {p.name: g.asnumpy() for p, g in zip(params, grads)}

    loss, grads = loss_and_grads(False)
    checkpointed_loss, checkpointed_grads = loss_and_grads(True)
    assert checkpointed_loss == pytest.approx(loss, rel=1e-6)
    assert any("lora_A" in name for name in grads)
    for name, grad in grads.items():
        np.testing.assert_allclose(checkpointed_grads[name], grad, rtol=1e-5, atol=1e-7, err_msg=name)
