"""MindSporeArguments parsing and init_environment on CPU."""

import pytest
from transformers import HfArgumentParser

import mindspore as ms

from mindone_ft.mindspore_adapter import MindSporeArguments, environment, get_rank_info, init_environment
from mindone_ft.mindspore_adapter.environment import launched_by_msrun, parse_mode, resolve_device_target


@pytest.fixture
def fresh_environment(monkeypatch):
    """Lets a test call init_environment as if first, and restores the recorded state afterwards."""
    monkeypatch.setattr(environment, "_rank_info", None)
    yield
    ms.set_context(mode=ms.GRAPH_MODE)


def test_parse_mode_accepts_ints_and_names():
    assert parse_mode("graph") == parse_mode(0) == parse_mode("0") == ms.GRAPH_MODE
    assert parse_mode("PyNative") == parse_mode(1) == parse_mode("PYNATIVE_MODE") == ms.PYNATIVE_MODE
    with pytest.raises(ValueError, match="'graph'.*'pynative'"):
        parse_mode("eager")


def test_hf_argument_parser_reads_flags_and_help():
    parser = HfArgumentParser(MindSporeArguments)
    (args,) = parser.parse_args_into_dataclasses(
        ["--mode", "pynative", "--device_target", "cpu", "--jit_level", "O1", "--deterministic"]
    )
    assert (args.mode, args.device_target, args.jit_level, args.deterministic) == (1, "CPU", "O1", True)
    (defaults,) = parser.parse_args_into_dataclasses([])
    assert defaults.mode == ms.GRAPH_MODE and defaults.device_target == "auto" and defaults.distributed is None
    assert "PYNATIVE_MODE" in parser.format_help()


def test_bad_arguments_name_the_field():
    with pytest.raises(ValueError, match="device_target"):
        MindSporeArguments(device_target="TPU")
    with pytest.raises(ValueError, match="jit_level"):
        MindSporeArguments(jit_level="O3")


def test_auto_device_prefers_ascend_then_gpu(monkeypatch):
    from mindone_ft.utils import compat

    assert resolve_device_target("auto") == "CPU"  # this machine has no accelerator
    monkeypatch.setattr(compat, "is_device_available", lambda target: target == "GPU")
    assert resolve_device_target("auto") == "GPU"
    assert resolve_device_target("CPU") == "CPU"


def test_msrun_detection(monkeypatch):
    monkeypatch.delenv("MS_ROLE", raising=False)
    assert not launched_by_msrun()
    monkeypatch.setenv("MS_ROLE", "MS_WORKER")
    monkeypatch.setenv("MS_WORKER_NUM", "2")
    assert launched_by_msrun()
    monkeypatch.setenv("MS_ROLE", "MS_SCHED")  # the scheduler runs the script too and must join init()
    assert launched_by_msrun()
    monkeypatch.setenv("MS_WORKER_NUM", "1")
    assert not launched_by_msrun()


def test_init_environment_on_cpu_is_idempotent(fresh_environment):
    info = init_environment(MindSporeArguments(mode="pynative", device_target="auto", seed=1, jit_level="O0"))
    assert tuple(info) == (0, 1) and info.world_size == 1
    assert ms.get_context("device_target") == "CPU" and ms.get_context("mode") == ms.PYNATIVE_MODE
    again = init_environment(MindSporeArguments(mode="graph", device_target="CPU"))
    assert again == info and get_rank_info() == info
    assert ms.get_context("mode") == ms.PYNATIVE_MODE  # the second call changes nothing
