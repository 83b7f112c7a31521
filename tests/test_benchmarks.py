"""The benchmark script's plans build and its docs page is what it renders (the measurements themselves run in
`python benchmarks/run.py`, never in tests)."""

import importlib.util
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("benchmarks_run", os.path.join(ROOT, "benchmarks", "run.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_plan_builds_specs_of_known_kinds(bench, tmp_path, monkeypatch):
    # The start-up and demo plans make their (empty) compile cache folders when they are built.
    monkeypatch.setattr(bench.tempfile, "mkdtemp", lambda prefix="": str(tmp_path / prefix))
    known = {"step", "lora_step", "gc_step", "startup", "matmul", "epoch", "paired", "lora_paired", "llama_paired",
             "demo"}
    plans = {
        "full": bench.plan(False, 2), "quick": bench.plan(True, 2), "steps": bench.steps_plan(False, 2),
        "families": bench.family_plan(2), "lora": bench.lora_plan(2), "llama": bench.llama_plan(2),
        "gradient_checkpointing": bench.gradient_checkpointing_plan(2), "startup": bench.startup_plan(2),
        "demo": bench.demo_plan(2),
    }
    for name, specs in plans.items():
        assert isinstance(specs, list) and specs, name
        assert {spec["kind"] for spec in specs} <= known, name
    # Every spec gets its environment; the compile cache stays off unless the spec turns it on.
    for spec in (spec for specs in plans.values() for spec in specs):
        env = bench.worker_env(spec)
        assert env["OMP_NUM_THREADS"] == str(spec["threads"])
        assert env["MINDONE_FT_COMPILE_CACHE"] == spec.get("env", {}).get("MINDONE_FT_COMPILE_CACHE", "0")
    assert any(spec.get("env", {}).get("MINDONE_FT_COMPILE_CACHE") == "1" for spec in plans["startup"])
    # The full run is every partial run but the demo's (which replaces the make-demo rows only).
    full = plans["full"]
    for name in ("steps", "families", "lora", "llama", "gradient_checkpointing", "startup"):
        assert all(spec in full for spec in plans[name]), name


def test_the_performance_page_is_what_the_script_renders_from_latest_json(bench, tmp_path, monkeypatch):
    with open(os.path.join(ROOT, "benchmarks", "results", "latest.json")) as f:
        payload = json.load(f)
    monkeypatch.setattr(bench, "DOC_PATH", str(tmp_path / "performance.md"))
    rendered = bench.write_docs(payload["environment"], payload["matmul_peak_gflops"],
                                [(item["spec"], item["result"]) for item in payload["results"]])
    with open(os.path.join(ROOT, "docs", "performance.md")) as f:
        assert f.read() == rendered, "docs/performance.md differs: regenerate it with `python benchmarks/run.py --render`"


def test_a_partial_run_on_another_cpu_says_so(bench):
    # A VM can name every host CPU "AMD EPYC"; the family/model numbers tell two generations apart.
    full = {"processor": "AMD EPYC (family 25, model 17)", "date": "d0", "load_average_1min": 0.5}
    same = dict(full, date="d1")
    other = dict(full, date="d2", processor="AMD EPYC (family 26, model 2)")
    assert bench.measured_when(same, full) == "d1 (load average 0.5)"
    assert bench.measured_when(other, full) == "d2 (load average 0.5; CPU AMD EPYC (family 26, model 2))"
    assert bench.measured_when({"date": "d3", "load_average_1min": 1.0}, full) == "d3 (load average 1.0)"


def test_each_partial_run_replaces_exactly_its_own_rows(bench, tmp_path, monkeypatch):
    # --steps once dropped the model-family rows: they are "paired" specs too.
    monkeypatch.setattr(bench.tempfile, "mkdtemp", lambda prefix="": str(tmp_path / prefix))
    plans = {
        "families": bench.family_plan(2), "lora": bench.lora_plan(2), "llama": bench.llama_plan(2),
        "gradient_checkpointing": bench.gradient_checkpointing_plan(2), "startup": bench.startup_plan(2),
        "demo": bench.demo_plan(2), "epochs": bench.epochs_plan(False, 2),
        "steps": bench.steps_plan(False, 2) + [dict(kind="matmul", threads=2)],
    }
    assert set(plans) == set(bench.PARTIAL_RUNS)
    for flag, replaced in bench.PARTIAL_RUNS.items():
        for other, specs in plans.items():
            assert all(replaced(spec) == (other == flag) for spec in specs), (flag, other)
