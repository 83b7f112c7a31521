"""Kill a real training process mid-run, resume it in a new process, and compare with an uninterrupted run.

The same file is the child script (`python tests/test_trainer_resume.py OUTPUT_DIR [--kill-at N] [--resume]`):
a tiny random BERT (dropout on) trained on real reviews, saving a checkpoint every 3 steps.
"""

import json
import os
import signal
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MAX_STEPS = 6
SAVE_STEPS = 3
KILL_AT = 4  # the process dies at the start of step 4: checkpoint-3 exists, step 4 never finishes


def _child(output_dir: str, kill_at: int, resume: bool) -> None:
    os.environ.setdefault("GLOG_v", "3")
    from transformers import AutoTokenizer, BertConfig

    import mindspore as ms
    from mindone_ft import BertForSequenceClassification, Trainer, TrainerCallback, TrainingArguments
    from mindone_ft.mindspore_adapter import MindSporeArguments, init_environment
    from mindone_ft.utils import default_model_path, load_rotten_tomatoes

    init_environment(MindSporeArguments(deterministic=True, cpu_threads=1))  # one thread each: two runs share 2 cores
    tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    reviews = load_rotten_tomatoes()
    tokenize = lambda batch: tokenizer(batch["text"], truncation=True, max_length=32)  # noqa: E731
    train = reviews["train"].select(range(40)).map(tokenize, batched=True)
    ms.set_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=2, hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.2)
    model = BertForSequenceClassification(config)

    class Killer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step + 1 == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    args = TrainingArguments(
        output_dir=output_dir, max_steps=MAX_STEPS, per_device_train_batch_size=8, per_device_eval_batch_size=16,
        learning_rate=5e-3, warmup_steps=2, weight_decay=0.01, logging_steps=1, save_steps=SAVE_STEPS, seed=7,
        disable_tqdm=True,
    )
    # Evaluation is left out to keep this test fast (one compile less per process); test_trainer.py covers it.
    trainer = Trainer(model=model, args=args, train_dataset=train, processing_class=tokenizer,
                      callbacks=[Killer()] if kill_at else None)
    trainer.train(resume_from_checkpoint=True if resume else None)
    trainer.save_model(os.path.join(output_dir, "final"))
    with open(os.path.join(output_dir, "log_history.json"), "w") as f:
        json.dump(trainer.state.log_history, f)


def _run(output_dir, *extra):
    env = dict(os.environ, PYTHONPATH=ROOT, GLOG_v="3")
    return subprocess.Popen([sys.executable, __file__, str(output_dir), *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _comparable(history):
    # Wall-clock fields differ between any two runs.
    return [{k: v for k, v in entry.items() if "runtime" not in k and "per_second" not in k and "compile_seconds" not in k} for entry in history]


def test_killed_and_resumed_run_matches_uninterrupted_run(tmp_path):
    from safetensors.numpy import load_file

    full_dir, killed_dir = tmp_path / "full", tmp_path / "killed"
    # Both single-threaded: run them side by side on the two cores.
    full, killed = _run(full_dir), _run(killed_dir, "--kill-at", str(KILL_AT))
    full_out, killed_out = full.communicate(timeout=300)[0], killed.communicate(timeout=300)[0]
    assert full.returncode == 0, full_out[-3000:]
    assert killed.returncode == -signal.SIGKILL, killed_out[-3000:]
    assert sorted(os.listdir(killed_dir)) == ["checkpoint-3"]  # no half-written checkpoint, nothing else

    resumed = _run(killed_dir, "--resume")
    resumed_out = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, resumed_out[-3000:]

    full_weights = load_file(str(full_dir / "final" / "model.safetensors"))
    resumed_weights = load_file(str(killed_dir / "final" / "model.safetensors"))
    start_weights = load_file(str(killed_dir / "checkpoint-3" / "model.safetensors"))
    assert full_weights.keys() == resumed_weights.keys()
    moved = max(float(np.abs(full_weights[k] - start_weights[k]).max()) for k in full_weights)
    assert moved > 1e-3  # steps 4-6 really trained
    for key in full_weights:
        np.testing.assert_allclose(resumed_weights[key], full_weights[key], rtol=0, atol=1e-6, err_msg=key)

    full_log = json.load(open(full_dir / "log_history.json"))
    resumed_log = json.load(open(killed_dir / "log_history.json"))
    assert [e["step"] for e in full_log if "loss" in e] == list(range(1, MAX_STEPS + 1))
    assert _comparable(resumed_log) == _comparable(full_log)

    state = json.load(open(killed_dir / "checkpoint-6" / "trainer_state.json"))
    assert state["global_step"] == MAX_STEPS and len(state["log_history"]) == len(full_log) - 1


def test_dropout_reseeding_makes_masks_depend_on_step_only():
    """What the resume relies on with MindSpore's own `nn.Dropout` (in a user's model, or off CPU): after
    `reseed_dropout(model, seed, step)` and a fresh compile, masks are a function of `(seed, step)`, whatever the
    kernels drew before."""
    import mindspore as ms
    from mindspore import nn

    from mindone_ft.mindspore_adapter import init_environment
    from mindone_ft.trainer import reseed_dropout

    init_environment()

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(p=0.5)

        def construct(self, x):
            return self.drop(x)

    x = ms.Tensor(np.ones((8, 16), np.float32))

    def masks(warmup_calls):
        net = Net()
        net.set_train(True)
        for _ in range(warmup_calls):
            Net.__call__(net, x)
        reseed_dropout(net, seed=3, step=5)
        fresh = Net()  # a new top cell compiles a new graph with the new kernel seeds
        fresh.drop = net.drop
        fresh.set_train(True)
        return [fresh(x).asnumpy() for _ in range(3)]

    a, b = masks(0), masks(2)
    for left, right in zip(a, b):
        np.testing.assert_array_equal(left, right)
    assert not np.array_equal(a[0], a[1])  # still random from call to call


if __name__ == "__main__":
    out_dir = sys.argv[1]
    kill = int(sys.argv[sys.argv.index("--kill-at") + 1]) if "--kill-at" in sys.argv else 0
    _child(out_dir, kill, "--resume" in sys.argv)


def test_reseeding_mindone_dropout_needs_no_recompile(monkeypatch):
    """mindone_ft's `Dropout` (CPU kernels) keeps its random stream in a Parameter: re-seeding restarts the masks
    inside the graph already compiled, whatever it drew before, and `reseed_dropout` asks for no rebuild."""
    import mindspore as ms
    from mindspore import nn

    from mindone_ft.mindspore_adapter import init_environment
    from mindone_ft.modeling_layers import Dropout
    from mindone_ft.trainer import reseed_dropout
    from mindone_ft.utils import compat

    init_environment()
    if not compat.use_cpu_kernels():
        import pytest

        pytest.skip("fused CPU kernels unavailable")

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.first, self.second = Dropout(p=0.5), Dropout(p=0.5)

        def construct(self, x):
            return self.second(self.first(x))

    net = Net()
    net.set_train(True)
    x = ms.Tensor(np.ones((8, 16), np.float32))
    assert reseed_dropout(net, seed=3, step=5) is False
    first = [net(x).asnumpy() for _ in range(3)]
    assert reseed_dropout(net, seed=3, step=5) is False
    again = [net(x).asnumpy() for _ in range(3)]
    for left, right in zip(first, again):
        np.testing.assert_array_equal(left, right)
    assert not np.array_equal(first[0], first[1])  # still random from call to call
    reseed_dropout(net, seed=3, step=6)
    assert not np.array_equal(net(x).asnumpy(), first[0])  # another step, another stream
    # MindSpore's own dropout keeps its generator inside the compiled graph: the train step must be rebuilt.
    assert reseed_dropout(nn.SequentialCell([nn.Dropout(p=0.5)]), seed=3, step=5) is True
    monkeypatch.setattr(compat, "use_cpu_kernels", lambda: False)  # `Dropout` without the kernels uses it too
    fallback = nn.SequentialCell([Dropout(p=0.5)])
    fallback.set_train(True)
    assert reseed_dropout(fallback, seed=3, step=5) is True
    assert set(np.unique(fallback(x).asnumpy())) <= {0.0, 2.0}
