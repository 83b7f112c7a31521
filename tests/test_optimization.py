"""Learning-rate schedules: every value equals what `transformers.get_scheduler` gives a torch optimizer."""

import numpy as np
import pytest

from mindone_ft.optimization import get_schedule_fn, get_scheduler

LR = 3e-4
CASES = [
    ("linear", 3, 20, None),
    ("linear", 0, 7, None),
    ("cosine", 4, 25, None),
    ("cosine", 4, 25, {"num_cycles": 1.0}),
    ("cosine_with_restarts", 2, 30, {"num_cycles": 3}),
    ("constant", 0, 10, None),
    ("constant_with_warmup", 5, 12, None),
    ("cosine_with_min_lr", 3, 20, {"min_lr_rate": 0.1}),
    ("cosine_with_min_lr", 3, 20, {"min_lr": 1e-5}),
    ("polynomial", 2, 15, {"power": 2.0, "lr_end": 1e-6}),
    ("polynomial", 0, 9, None),
    ("inverse_sqrt", 4, 16, None),
]


def _torch_lrs(name, warmup, total, kwargs):
    """Learning rate of each optimizer update in transformers + torch (read before `scheduler.step()`)."""
    torch = pytest.importorskip("torch")
    import transformers

    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=LR)
    scheduler = transformers.get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=total,
                                           scheduler_specific_kwargs=kwargs)
    lrs = []
    for _ in range(total + 3):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return np.array(lrs)


@pytest.mark.parametrize("name,warmup,total,kwargs", CASES)
def test_schedule_matches_transformers(name, warmup, total, kwargs):
    expected = _torch_lrs(name, warmup, total, kwargs)
    ours = get_scheduler(name, LR, num_warmup_steps=warmup, num_training_steps=total, scheduler_specific_kwargs=kwargs)
    assert ours.dtype == np.float32 and ours.shape == (total,)
    np.testing.assert_allclose(ours, expected[:total], rtol=1e-6, atol=1e-12)
    # Past the end (what the Trainer reports after the last update) the multiplier still matches.
    fn = get_schedule_fn(name, LR, warmup, total, kwargs)
    np.testing.assert_allclose([LR * fn(k) for k in range(total, total + 3)], expected[total:], rtol=1e-9, atol=1e-15)


def test_schedule_errors():
    with pytest.raises(ValueError, match="not a valid SchedulerType"):
        get_scheduler("warmup_stable_decay_typo", LR, 0, 10)
    with pytest.raises(ValueError, match="min_lr"):
        get_scheduler("cosine_with_min_lr", LR, 0, 10)
    with pytest.raises(ValueError, match="num_training_steps"):
        get_scheduler("linear", LR, 0, None)
