"""The native training step follows Hugging Face PyTorch step for step on the real checkpoint.

Same initial weights (the PyTorch model's, saved and loaded), same batches, dropout off, AdamW with the linear
schedule and gradient clipping as in the examples: the losses and the trained classifier must agree, which
rules out a difference in the loop itself when accuracies of single runs differ (seeds decide init, dropout
and order).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

STEPS, BATCH, LR = 8, 8, 5e-5


def test_native_loop_matches_pytorch_step_for_step(model_path, reviews, tmp_path):
    import transformers
    from transformers import AutoTokenizer, DataCollatorWithPadding

    import mindspore as ms
    from mindone_ft import AutoModelForSequenceClassification
    from mindone_ft.mindspore_adapter import AdamW, ReturnLoss, TrainOneStepWrapper
    from mindone_ft.optimization import get_scheduler

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    texts = reviews["train"]["text"][: STEPS * BATCH]
    labels = reviews["train"]["label"][: STEPS * BATCH]
    no_dropout = dict(num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)

    torch.manual_seed(0)
    pt_model = transformers.AutoModelForSequenceClassification.from_pretrained(model_path, **no_dropout)
    pt_model.save_pretrained(tmp_path)
    ms_model = AutoModelForSequenceClassification.from_pretrained(str(tmp_path), **no_dropout)

    pt_opt = torch.optim.AdamW(pt_model.parameters(), lr=LR, weight_decay=0.0)
    pt_sched = transformers.get_scheduler("linear", pt_opt, num_warmup_steps=0, num_training_steps=STEPS)
    ms_opt = AdamW(ms_model.trainable_params(), learning_rate=get_scheduler("linear", LR, 0, STEPS), weight_decay=0.0)
    ms_step = TrainOneStepWrapper(ReturnLoss(ms_model), ms_opt, scaler="none", clip_grad="norm", clip_value=1.0)
    collate = DataCollatorWithPadding(tokenizer)

    pt_model.train()
    ms_step.set_train(True)
    pt_losses, ms_losses = [], []
    for i in range(STEPS):
        rows = slice(i * BATCH, (i + 1) * BATCH)
        encoded = tokenizer(texts[rows], truncation=True, max_length=64)
        batch = collate([{**{k: v[j] for k, v in encoded.items()}, "labels": labels[rows][j]} for j in range(BATCH)])
        loss = pt_model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(pt_model.parameters(), 1.0)
        pt_opt.step()
        pt_sched.step()
        pt_opt.zero_grad()
        pt_losses.append(loss.item())

        ids, mask, types, y = (ms.Tensor(batch[k].numpy().astype(np.int32))
                               for k in ("input_ids", "attention_mask", "token_type_ids", "labels"))
        ms_loss, _, overflow = ms_step(ids, mask, types, None, None, None, y)
        assert not bool(overflow.asnumpy())
        ms_losses.append(float(ms_loss.asnumpy()))

    np.testing.assert_allclose(ms_losses, pt_losses, atol=1e-4)
    assert abs(pt_losses[-1] - pt_losses[0]) > 1e-3  # the weights really moved
    np.testing.assert_allclose(
        ms_model.classifier.weight.asnumpy(), pt_model.classifier.weight.detach().numpy(), atol=1e-5
    )
