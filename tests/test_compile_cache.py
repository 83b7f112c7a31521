"""The persistent compile cache: a re-run loads its graphs, and a graph that changed never loads a stale one.

Each run is a fresh process (`_compile_cache_worker.py`) with its own `MINDONE_FT_CACHE`; the results are checked
against the same runs without the cache (`MINDONE_FT_COMPILE_CACHE=0`).
"""

import json
import os
import subprocess
import sys

import pytest

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_compile_cache_worker.py")


def run_worker(cache_dir, *args, cache=True):
    env = dict(os.environ, MINDONE_FT_CACHE=str(cache_dir), MINDONE_FT_COMPILE_CACHE="1" if cache else "0")
    for name in ("MS_COMPILER_CACHE_ENABLE", "MS_COMPILER_CACHE_PATH"):
        env.pop(name, None)
    result = subprocess.run([sys.executable, WORKER, *args], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("mindone_ft_cache")


@pytest.fixture(scope="module")
def recorded(cache_dir):
    """The first run of the 8- and 16-token train steps: compiles both and records them."""
    first = run_worker(cache_dir, "--lengths", "8,16")
    assert first["loads"] == [False, False] and len(first["folders"]) == 1
    return first


def test_a_rerun_loads_every_graph_and_computes_the_same(cache_dir, recorded):
    second = run_worker(cache_dir, "--lengths", "8,16")
    assert second["loads"] == [True, True] and second["folders"] == recorded["folders"]
    assert second["losses"] == pytest.approx(recorded["losses"], rel=1e-6)
    assert sum(second["seconds"]) < sum(recorded["seconds"])


@pytest.mark.parametrize("changed", [
    ["--hidden", "48"],
    pytest.param(["--num_labels", "3"], marks=pytest.mark.slow),
    pytest.param(["--lengths", "12,16"], marks=pytest.mark.slow),
])
def test_a_changed_graph_gets_a_new_folder_and_runs_correctly(cache_dir, recorded, changed):
    args = ["--lengths", "8,16", *changed]
    cached = run_worker(cache_dir, *args)
    assert cached["loads"] == [False, False]
    assert set(cached["folders"]) > set(recorded["folders"])  # keyed on the first graph: a new folder
    reference = run_worker(cache_dir, *args, cache=False)
    assert cached["losses"] == pytest.approx(reference["losses"], rel=1e-5)


@pytest.mark.slow  # ~40 s; the changed-graph and re-run tests cover the key
def test_a_graph_differing_from_the_recorded_one_recompiles_from_there(cache_dir, recorded):
    # Same first graph, then another length at position 1: MindSpore's cache alone would load the 16-token graph.
    diverged = run_worker(cache_dir, "--lengths", "8,24,16")
    assert diverged["loads"] == [True, False, False]
    assert diverged["losses"] == pytest.approx(run_worker(cache_dir, "--lengths", "8,24,16", cache=False)["losses"],
                                               rel=1e-5)
    # The folder now holds the diverged run: the original order loads position 0 and recompiles position 1.
    back = run_worker(cache_dir, "--lengths", "8,16")
    assert back["loads"] == [True, False]
    assert back["losses"] == pytest.approx(recorded["losses"], rel=1e-5)


def test_a_graph_compile_collects_only_new_objects(graph_mode, monkeypatch):
    """MindSpore's `gc.collect()` before each compile runs with the process's older objects frozen (it scanned all
    of them: 0.2-0.4 s a compile); they are unfrozen afterwards, calls of a compiled graph freeze nothing (a freeze
    promotes every live object to the oldest generation), and a process's own `gc.freeze()` is kept."""
    import gc

    import mindspore as ms
    import numpy as np
    from mindspore.graph import api

    from mindone_ft.modeling_layers import Linear

    frozen_at_collect = []

    class RecordingGC:
        def __getattr__(self, name):
            return getattr(gc, name)

        def collect(self, *args):
            frozen_at_collect.append(gc.get_freeze_count())
            return gc.collect(*args)

    monkeypatch.setattr(api, "gc", RecordingGC())
    layer = Linear(3, 2)
    layer.set_train(False)
    older = len(gc.get_objects())
    layer(ms.Tensor(np.ones((5, 3), np.float32)))
    assert len(frozen_at_collect) == 1 and frozen_at_collect[0] >= 0.9 * older
    assert gc.get_freeze_count() == 0

    from mindone_ft.utils import compat

    freezes = []
    monkeypatch.setattr(compat, "gc", type("CountingGC", (RecordingGC,), {
        "freeze": lambda self: (freezes.append(1), gc.freeze())[1]})())
    layer(ms.Tensor(np.ones((5, 3), np.float32)))  # compiled already: nothing to freeze (a train step's calls)
    assert freezes == [] and len(frozen_at_collect) == 1

    gc.freeze()
    try:
        users_frozen = gc.get_freeze_count()
        layer(ms.Tensor(np.ones((6, 3), np.float32)))  # a new shape: compiles again
        # still frozen (less a few objects the call freed)
        assert len(frozen_at_collect) == 2 and gc.get_freeze_count() > 0.99 * users_frozen
    finally:
        gc.unfreeze()
