"""TrainingArguments: transformers 5.23 names and defaults, older names mapped, unsupported ones rejected."""

import dataclasses
import json
import warnings

import pytest
from transformers import HfArgumentParser

from mindone_ft import TrainingArguments
from mindone_ft.trainer_utils import IntervalStrategy, SaveStrategy
from mindone_ft.training_args import ACCEPTED_ARGS, LEGACY_ARGS, SUPPORTED_ARGS, UNSUPPORTED_ARGS


def _hf_fields():
    import transformers

    return {f.name: f for f in dataclasses.fields(transformers.TrainingArguments)}


def _default(f):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def test_every_transformers_field_exists_with_the_same_default():
    ours = {f.name: f for f in dataclasses.fields(TrainingArguments)}
    for name, hf_field in _hf_fields().items():
        assert name in ours, name
        hf_default = _default(hf_field)
        if name in ("parallelism_config", "accelerator_config"):
            continue
        assert _default(ours[name]) == (hf_default.value if hasattr(hf_default, "value") else hf_default), name


def test_every_field_is_classified_exactly_once():
    names = [f.name for f in dataclasses.fields(TrainingArguments)]
    groups = [SUPPORTED_ARGS, ACCEPTED_ARGS, UNSUPPORTED_ARGS, LEGACY_ARGS]
    for name in names:
        assert sum(name in g for g in groups) == 1, name
    assert sum(len(g) for g in groups) == len(names)


def test_defaults_match_transformers_post_init():
    args = TrainingArguments()
    assert args.output_dir == "trainer_output"
    assert args.report_to == [] and args.max_grad_norm == 1.0 and args.save_strategy == SaveStrategy.STEPS
    assert args.eval_strategy == IntervalStrategy.NO and args.logging_steps == 500
    args = TrainingArguments(output_dir="o", eval_strategy="steps", logging_steps=7, load_best_model_at_end=True,
                             save_steps=14)
    assert args.eval_steps == 7 and args.metric_for_best_model == "loss" and args.greater_is_better is False
    assert TrainingArguments(metric_for_best_model="accuracy").greater_is_better is True


@pytest.mark.parametrize(
    "old,new",
    [
        ({"evaluation_strategy": "epoch"}, {"eval_strategy": IntervalStrategy.EPOCH, "evaluation_strategy": None}),
        ({"warmup_ratio": 0.1}, {"warmup_steps": 0.1, "warmup_ratio": None}),
        ({"warmup_ratio": 0.1, "warmup_steps": 5}, {"warmup_steps": 5}),
        ({"group_by_length": True}, {"train_sampling_strategy": "group_by_length"}),
        ({"no_cuda": True}, {"use_cpu": True}),
        ({"overwrite_output_dir": True}, {}),
        ({"logging_dir": "tb"}, {"logging_dir": "tb"}),
        ({"save_safetensors": True}, {}),
    ],
)
def test_legacy_names_are_mapped(old, new):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        args = TrainingArguments(output_dir="o", **old)
    for key, value in new.items():
        assert getattr(args, key) == value, key


def test_legacy_names_warn():
    with pytest.warns(FutureWarning, match="eval_strategy"):
        TrainingArguments(evaluation_strategy="steps", eval_steps=3)
    with pytest.warns(UserWarning, match="safetensors"):
        TrainingArguments(save_safetensors=False)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"push_to_hub": True}, "push_to_hub"),
        ({"deepspeed": "ds.json"}, "deepspeed"),
        ({"fsdp": "full_shard"}, "fsdp"),
        ({"torch_compile": True}, "torch_compile"),
        ({"gradient_checkpointing_kwargs": {"offload": True}}, "offload"),
        ({"hub_strategy": "end"}, "hub_strategy"),
        ({"include_for_metrics": ["inputs"]}, "include_for_metrics"),
        ({"optim": "sgd"}, "optim"),
        ({"train_sampling_strategy": "weird"}, "train_sampling_strategy"),
    ],
)
def test_unsupported_values_raise_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        TrainingArguments(output_dir="o", **kwargs)


def test_report_to():
    with pytest.raises(ValueError, match=r"wandb.*supported.*'none', 'tensorboard'"):
        TrainingArguments(report_to="wandb")
    assert TrainingArguments(report_to="none").report_to == []
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="tensorboardX"):
            TrainingArguments(report_to="tensorboard")
    else:
        assert TrainingArguments(report_to="tensorboard").report_to == ["tensorboard"]


def test_validation_errors():
    with pytest.raises(ValueError, match="save and eval strategy to match"):
        TrainingArguments(load_best_model_at_end=True, eval_strategy="epoch", save_strategy="steps")
    with pytest.raises(ValueError, match="round multiple"):
        TrainingArguments(load_best_model_at_end=True, eval_strategy="steps", eval_steps=3, save_steps=5)
    with pytest.raises(ValueError, match="fp16 and bf16"):
        TrainingArguments(fp16=True, bf16=True)
    with pytest.raises(ValueError, match="warmup_ratio"):
        TrainingArguments(warmup_ratio=1.5)


def test_hf_argument_parser_roundtrip():
    from mindone_ft.mindspore_adapter import MindSporeArguments

    argv = ["--output_dir", "out", "--eval_strategy", "steps", "--eval_steps", "5", "--learning_rate", "2e-5",
            "--lr_scheduler_kwargs", '{"min_lr_rate": 0.1}', "--lr_scheduler_type", "cosine_with_min_lr",
            "--warmup_ratio", "0.1", "--group_by_length", "--fp16", "--max_grad_norm", "0"]
    (args,) = HfArgumentParser((TrainingArguments,)).parse_args_into_dataclasses(argv)
    assert args.eval_steps == 5 and args.learning_rate == 2e-5 and args.lr_scheduler_kwargs == {"min_lr_rate": 0.1}
    assert args.warmup_steps == 0.1 and args.train_sampling_strategy == "group_by_length" and args.fp16
    assert args.max_grad_norm == 0
    again = TrainingArguments(**args.to_dict())
    assert again.to_dict() == args.to_dict()
    json.loads(args.to_json_string())


def test_parser_with_mindspore_arguments_two_steps():
    from mindone_ft.mindspore_adapter import MindSporeArguments

    # What the example script does: training flags first, the runtime flags from what is left.
    argv = ["--output_dir", "o", "--mode", "1", "--seed", "3", "--deterministic"]
    args, rest = HfArgumentParser((TrainingArguments,)).parse_args_into_dataclasses(argv, return_remaining_strings=True)
    (ms_args,) = HfArgumentParser((MindSporeArguments,)).parse_args_into_dataclasses(rest)
    assert args.seed == 3 and args.output_dir == "o" and ms_args.mode == 1 and ms_args.deterministic


def test_one_parser_for_training_and_mindspore_arguments():
    from mindone_ft.mindspore_adapter import MindSporeArguments

    parser = HfArgumentParser((TrainingArguments, MindSporeArguments))
    args, ms_args = parser.parse_args_into_dataclasses(["--output_dir", "o", "--mode", "1", "--seed", "5"])
    assert ms_args.mode == 1 and args.output_dir == "o" and args.seed == 5
    assert ms_args.seed is None  # --seed is TrainingArguments'; MindSporeArguments takes it as a keyword
    assert MindSporeArguments(seed=5).seed == 5


def test_warmup_steps_resolution():
    assert TrainingArguments(warmup_steps=0.1).get_warmup_steps(95) == 10  # ceil, like transformers
    assert TrainingArguments(warmup_steps=7).get_warmup_steps(95) == 7


def test_docs_table_is_generated_from_the_code():
    import os

    from mindone_ft.training_args import training_args_markdown

    path = os.path.join(os.path.dirname(__file__), "..", "docs", "training_args.md")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert training_args_markdown() in text, "docs/training_args.md is stale: paste training_args_markdown()"
