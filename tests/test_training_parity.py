"""The native training loop follows Hugging Face PyTorch step for step on the real checkpoint.

Same initial weights (the PyTorch model's, saved and loaded), same batches, dropout off, AdamW with the linear
schedule and gradient clipping as in the examples: the losses and the trained classifier must agree, which
rules out a difference in the loop itself when accuracies of single runs differ (seeds decide init, dropout
and order). The slow variant runs the native example's whole default recipe (2,000 reviews, one epoch,
batch 8, its collator and length buckets) and compares the held-out accuracy.
"""

import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

LR = 5e-5
NO_DROPOUT = dict(num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples", "bert")


def train_both(model_path, tmp_path, batches):
    """Trains a PyTorch and a MindSpore copy of the same initial model on the same numpy batches.

    Returns (pytorch losses, mindspore losses, pytorch model, mindspore model).
    """
    import transformers

    import mindspore as ms
    from mindone_ft import AutoModelForSequenceClassification
    from mindone_ft.mindspore_adapter import AdamW, ReturnLoss, TrainOneStepWrapper
    from mindone_ft.optimization import get_scheduler

    steps = len(batches)
    torch.manual_seed(0)
    pt_model = transformers.AutoModelForSequenceClassification.from_pretrained(model_path, **NO_DROPOUT)
    pt_model.save_pretrained(tmp_path)
    ms_model = AutoModelForSequenceClassification.from_pretrained(str(tmp_path), **NO_DROPOUT)

    pt_opt = torch.optim.AdamW(pt_model.parameters(), lr=LR, weight_decay=0.0)
    pt_sched = transformers.get_scheduler("linear", pt_opt, num_warmup_steps=0, num_training_steps=steps)
    ms_opt = AdamW(ms_model.trainable_params(), learning_rate=get_scheduler("linear", LR, 0, steps), weight_decay=0.0)
    ms_step = TrainOneStepWrapper(ReturnLoss(ms_model), ms_opt, scaler="none", clip_grad="norm", clip_value=1.0)

    pt_model.train()
    ms_step.set_train(True)
    pt_losses, ms_losses = [], []
    for batch in batches:
        loss = pt_model(**{k: torch.from_numpy(v.astype(np.int64)) for k, v in batch.items()}).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(pt_model.parameters(), 1.0)
        pt_opt.step()
        pt_sched.step()
        pt_opt.zero_grad()
        pt_losses.append(loss.item())

        ids, mask, types, y = (ms.Tensor(batch[k].astype(np.int32))
                               for k in ("input_ids", "attention_mask", "token_type_ids", "labels"))
        ms_loss, _, overflow = ms_step(ids, mask, types, None, None, None, y)
        assert not bool(overflow.asnumpy())
        ms_losses.append(float(ms_loss.asnumpy()))
    return np.array(pt_losses), np.array(ms_losses), pt_model, ms_model


@pytest.mark.slow  # ~80 s; the Trainer parity tests cover the same step
def test_native_loop_matches_pytorch_step_for_step(model_path, reviews, tmp_path):
    from transformers import AutoTokenizer, DataCollatorWithPadding

    steps, batch_size = 8, 8
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    texts = reviews["train"]["text"][: steps * batch_size]
    labels = reviews["train"]["label"][: steps * batch_size]
    collate = DataCollatorWithPadding(tokenizer, return_tensors="np")
    batches = []
    for i in range(steps):
        rows = slice(i * batch_size, (i + 1) * batch_size)
        encoded = tokenizer(texts[rows], truncation=True, max_length=64)
        rows = [{**{k: v[j] for k, v in encoded.items()}, "labels": labels[rows][j]} for j in range(batch_size)]
        batches.append(dict(collate(rows)))

    pt_losses, ms_losses, pt_model, ms_model = train_both(model_path, tmp_path, batches)

    np.testing.assert_allclose(ms_losses, pt_losses, atol=1e-4)
    assert abs(pt_losses[-1] - pt_losses[0]) > 1e-3  # the weights really moved
    np.testing.assert_allclose(
        ms_model.classifier.weight.asnumpy(), pt_model.classifier.weight.detach().numpy(), atol=1e-5
    )


@pytest.mark.slow
def test_native_example_recipe_reaches_pytorch_accuracy(model_path, tmp_path):
    """The example's default recipe, dropout off, both frameworks on the example's own batches: one epoch
    of 250 steps, then accuracy on the 1,000 held-out reviews must agree within two reviews."""
    from transformers import AutoTokenizer

    import mindspore as ms
    from mindone_ft.mindspore_adapter import MSDataLoader, NumpyDataCollator, length_buckets

    sys.path.insert(0, EXAMPLES)
    from finetune_in_native_mindspore import ExampleArguments, tokenized_splits

    args = ExampleArguments()
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    train, evaluation = tokenized_splits(args, tokenizer, args.seed)
    collator = NumpyDataCollator(tokenizer=tokenizer, bucket_boundaries=length_buckets(args.max_seq_length))
    train_loader = MSDataLoader(train, batch_size=args.per_device_train_batch_size, collate_fn=collator,
                                shuffle=True, seed=args.seed, output_numpy=True)
    batches = list(train_loader)
    assert len(batches) == 250

    pt_losses, ms_losses, pt_model, ms_model = train_both(model_path, tmp_path, batches)

    np.testing.assert_allclose(ms_losses, pt_losses, atol=1e-4)  # 3e-6 measured over the 250 steps
    pt_model.eval()
    ms_model.set_train(False)
    pt_correct = ms_correct = disagree = 0
    for batch in MSDataLoader(evaluation, batch_size=64, collate_fn=collator, output_numpy=True):
        inputs = [batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")]
        with torch.no_grad():
            pt_pred = pt_model(*(torch.from_numpy(x.astype(np.int64)) for x in inputs)).logits.numpy().argmax(-1)
        ms_pred = ms_model(*(ms.Tensor(x.astype(np.int32)) for x in inputs)).logits.asnumpy().argmax(-1)
        pt_correct += int((pt_pred == batch["labels"]).sum())
        ms_correct += int((ms_pred == batch["labels"]).sum())
        disagree += int((pt_pred != ms_pred).sum())
    print(f"accuracy PyTorch {pt_correct / len(evaluation):.3f} MindSpore {ms_correct / len(evaluation):.3f}, "
          f"{disagree} predictions differ, max loss diff {np.abs(ms_losses - pt_losses).max():.2e}")
    assert pt_correct / len(evaluation) > 0.7  # it really learned
    assert disagree <= 2 and abs(pt_correct - ms_correct) <= 2
