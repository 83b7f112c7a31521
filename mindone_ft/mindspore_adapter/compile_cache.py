"""A persistent graph compile cache, on by default, and a count of the compiles each process does.

A re-run of the same job loads its graphs from the user cache folder instead of compiling them again (a 6-layer BERT
train step: ~10 s -> ~4 s for the first step on CPU). It is MindSpore's own compile cache, made safe. Measured in
MindSpore 2.10 (`../shared/MINDSPORE_NOTES.md`), that cache (`MS_COMPILER_CACHE_ENABLE=1`, `MS_COMPILER_CACHE_PATH`):

- is on or off for a whole process, and its folder is fixed by the process's first compile;
- saves the process's i-th compiled graph as `compile_cache_i.mindir`, and a later process loads file i for its i-th
  compile when the hash of the entry script and its local source files matches. Nothing else is checked: another
  model size, input shape, Cell or train-step option with unchanged files loads a stale graph, which fails or runs.

So this module keys the folder on everything that changes the graphs (MindSpore, mindone_ft and Python versions,
backend, mindone_ft's own source, MindSpore's source hash, graph-relevant environment variables, and the first
graph's fingerprint), and records the fingerprint of every graph in order (`graph_fingerprint`: the Cell tree's
classes and their source, their attributes and configs, the parameters' names, shapes and dtypes, and the inputs'
shapes and dtypes). A graph whose fingerprint is not the one recorded at its position switches MindSpore to a fresh
dependency file, so that it and every later graph compile anew (and are recorded for the next run). A re-run that
compiles the same graphs in the same order (same data, seed and options) loads them all.

Off with `MINDONE_FT_COMPILE_CACHE=0`. It is not used when the process sets MindSpore's own cache variables, runs in
PYNATIVE mode, or compiles another graph (one without mindone_ft Cells) first. The folder is `$MINDONE_FT_CACHE/graphs`
(default `~/.cache/mindone_ft/graphs`); each folder in it holds one recorded run per rank, about 1 MiB per graph for a
6-layer BERT. It is never pruned: delete it (or its older folders) to reclaim the space. Each rank takes a lock on its
folder, so concurrent runs of the same job never share one (the second compiles without the cache).
"""

import enum
import fcntl
import functools
import hashlib
import json
import logging
import os
import platform
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import mindspore as ms
from mindspore import Parameter, Tensor, nn

from ..utils import compat
from ..utils.user_cache import CACHE_ENV, cache_root
from .environment import get_rank_info

logger = logging.getLogger(__name__)

DISABLE_ENV = "MINDONE_FT_COMPILE_CACHE"
MANIFEST_NAME = "mindone_ft_graphs.json"
_PACKAGE_DIR = Path(__file__).resolve().parent.parent
# Cell attributes that are MindSpore's bookkeeping (ids, times, phases), not graph content. `_scope` is set by a full
# compile but not by a load from the cache (recompute is seen in `_has_config_recompute`).
_VOLATILE_ATTRIBUTES = {
    "_create_time", "_id", "arguments_key", "_phase", "_compile_phase", "_jit_graph_name", "_compiled",
    "is_top_cell", "_init_flag", "_is_check_and_refresh", "_cell_init_args", "_phase_cache", "_compile_cache",
    "compile_phase", "current_phase", "phase", "_scope",
}
# Environment variables that change how graphs are built (the cache's own are excluded).
_GRAPH_ENV_PREFIXES = ("MINDONE_FT_", "MS_DEV_")
_NOT_GRAPH_ENV = {CACHE_ENV, DISABLE_ENV}


# ------------------------------------------------------------------------------------------------- compile counting
@dataclass
class CompileEvent:
    """One graph compile: the compiled Cell's class, seconds spent, and whether it was loaded from the cache."""

    cell_class: str
    seconds: float
    cache_load: bool = False


@dataclass
class CompileLog:
    """Every graph compile of this process, in order (`compile_log()`)."""

    events: List[CompileEvent] = field(default_factory=list)

    def since(self, start: int, cell_class: Optional[str] = None) -> List[CompileEvent]:
        """The events after the first `start`, optionally only those compiling a `cell_class` Cell."""
        return [e for e in self.events[start:] if cell_class is None or e.cell_class == cell_class]


_LOG = CompileLog()


def compile_log() -> CompileLog:
    """This process's `CompileLog`: compiles and their seconds, per compiled Cell class (the Trainer reports them)."""
    return _LOG


def compile_metrics(events: List[CompileEvent], prefix: str) -> Dict[str, float]:
    """`{prefix}_compiles`, `{prefix}_compile_seconds` and `{prefix}_compile_cache_loads` of some events."""
    return {
        f"{prefix}_compiles": len(events),
        f"{prefix}_compile_seconds": round(sum(e.seconds for e in events), 4),
        f"{prefix}_compile_cache_loads": sum(e.cache_load for e in events),
    }


def compile_summary() -> str:
    """One line on this process's graph compiles so far, e.g. for the end of a script."""
    events = _LOG.events
    loads = sum(e.cache_load for e in events)
    return (f"Graph compiles: {len(events)} ({loads} loaded from the compile cache), "
            f"{sum(e.seconds for e in events):.1f} s in all.")


# ------------------------------------------------------------------------------------------------------ fingerprints
def _describe(value: Any) -> Any:
    """A JSON-able description of a graph input or Cell attribute; None for what does not enter a graph."""
    if isinstance(value, Parameter):
        return None  # described with the Cell's parameters
    if isinstance(value, Tensor):
        return ["tensor", list(value.shape), str(value.dtype)]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, enum.Enum):
        return str(value)
    if isinstance(value, (tuple, list)):
        items = [_describe(v) for v in value]
        return items if all(i is not None or v is None for i, v in zip(items, value)) else None
    if isinstance(value, dict):
        items = {str(k): _describe(v) for k, v in value.items()}
        return dict(sorted(items.items()))
    if isinstance(value, ms.dtype.Type):
        return str(value)
    if callable(getattr(value, "to_dict", None)):  # a model or adapter config
        return json.dumps(value.to_dict(), sort_keys=True, default=repr)
    if isinstance(value, ms.ops.Primitive):
        return [type(value).__name__, {k: repr(v) for k, v in sorted(value.attrs.items())}]
    return None


@functools.lru_cache(maxsize=None)
def _source_digest(cls: type) -> str:
    """Hash of the file defining `cls` (installed packages included, which MindSpore's own key leaves out)."""
    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None)
    if not path or cls.__module__.startswith("mindspore."):
        return cls.__module__
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return path


def graph_fingerprint(cell: nn.Cell, args: tuple, kwargs: dict) -> str:
    """Hash of everything a compiled graph of `cell` depends on besides source files outside the Cells' modules.

    The Cell tree (names, classes, the hash of each class's source file, train/eval mode, attributes that are numbers,
    strings, flags, dtypes, primitives or configs), the parameters (names, shapes, dtypes, trainability) and the
    inputs (shapes and dtypes of Tensors, values of constants).
    """
    cells = []
    for name, sub in cell.cells_and_names():
        attributes = {}
        for key, value in vars(sub).items():
            if key in _VOLATILE_ATTRIBUTES or key.startswith("_lazy") or isinstance(value, nn.Cell):
                continue
            described = _describe(value)
            if described is not None:
                attributes[key] = described
        cls = type(sub)
        cells.append([name, f"{cls.__module__}.{cls.__qualname__}", _source_digest(cls), attributes])
    parameters = [[p.name, list(p.shape), str(p.dtype), bool(p.requires_grad)] for p in cell.get_parameters()]
    inputs = [_describe(a) if isinstance(a, (Tensor, tuple, list, dict)) or a is None else repr(a) for a in args]
    description = {"cells": cells, "parameters": parameters, "inputs": inputs, "kwargs": _describe(kwargs)}
    return hashlib.sha256(json.dumps(description, sort_keys=True, default=repr).encode()).hexdigest()


@functools.lru_cache(maxsize=None)
def _package_digest() -> str:
    """Hash of mindone_ft's own source files (an installed package is not in MindSpore's key)."""
    digest = hashlib.sha256()
    for path in sorted(_PACKAGE_DIR.rglob("*")):
        if path.suffix in (".py", ".cc") and path.is_file():
            digest.update(str(path.relative_to(_PACKAGE_DIR)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _files_digest(paths: List[str]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.encode() + b"\0")
        try:
            digest.update(Path(path).read_bytes())
        except OSError:
            pass
    return digest.hexdigest()


def folder_key(first_graph: str) -> str:
    """The key of a cache folder: versions, backend, sources, environment and the process's first graph."""
    from .. import __version__

    parts = {
        "mindspore": ms.__version__,
        "mindone_ft": __version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "device": compat.device_target(),
        "mindone_ft_source": _package_digest(),
        "mindspore_dependency_files": _files_digest(compat.compile_cache_dependency_files()),
        "environment": {k: v for k, v in sorted(os.environ.items())
                        if k.startswith(_GRAPH_ENV_PREFIXES) and k not in _NOT_GRAPH_ENV},
        "jit_syntax_level": str(ms.get_context("jit_syntax_level")),
        "first_graph": first_graph,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def cache_folder() -> Path:
    """Where the graph cache lives: `$MINDONE_FT_CACHE/graphs` (default `~/.cache/mindone_ft/graphs`)."""
    return cache_root() / "graphs"


def is_enabled() -> bool:
    """Whether a process would use the cache: not switched off with `MINDONE_FT_COMPILE_CACHE=0`, and MindSpore's own
    cache not configured by the user."""
    if os.environ.get(DISABLE_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return not _users_own_cache


# Set when the process was started with MindSpore's cache variables: the user runs MindSpore's cache themselves.
_users_own_cache = any(name in os.environ for name in compat.COMPILE_CACHE_ENV)


# ------------------------------------------------------------------------------------------------ the cache session
class _Session:
    """The cache as this process uses it: decided at the first compile, then one recorded position per compile."""

    def __init__(self):
        self.decided = False
        self.active = False
        self.position = 0  # compiles MindSpore has cached in this process
        self.recorded: List[str] = []  # fingerprints the folder holds, by position (the previous run's)
        self.records: List[str] = []  # this run's
        self.diverged = False  # a graph differed from the recorded one: everything from there on compiles anew
        self.broken = False  # a compile failed: positions are unknown, stop recording
        self.rank_dir: Optional[Path] = None
        self.dependency_file: Optional[str] = None
        self._lock = None
        self.pending: Optional[tuple] = None  # (cell, args, kwargs) of the compile running now
        self.expect_load = False

    # -- deciding, at the first compile
    def _start(self, cell: nn.Cell, fingerprint: str) -> None:
        self.decided = True
        if not is_enabled() or ms.get_context("mode") != ms.GRAPH_MODE:
            return
        if not any(type(c).__module__.startswith("mindone_ft.") for _, c in cell.cells_and_names()):
            return
        folder = cache_folder() / folder_key(fingerprint)
        rank_dir = folder / f"rank_{get_rank_info().rank}"
        try:
            rank_dir.mkdir(parents=True, exist_ok=True)
            lock = open(rank_dir / "mindone_ft.lock", "w")
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("Another process uses the compile cache in %s: compiling without it.", folder)
            return
        except OSError as err:
            logger.warning("The compile cache folder %s is not writable (%s): compiling without it. Set %s to a "
                           "writable folder, or %s=0.", folder, err, CACHE_ENV, DISABLE_ENV)
            return
        self._lock, self.rank_dir, self.active = lock, rank_dir, True
        self.recorded = self._read_manifest()
        self._remove_unrecorded_graphs(len(self.recorded))
        for stale in rank_dir.glob("diverged-*.key"):
            stale.unlink(missing_ok=True)
        self.dependency_file = self._write_key_file("dependency.key", str(folder.name))
        os.environ["MS_COMPILER_CACHE_PATH"] = str(folder)
        os.environ["MS_COMPILER_CACHE_ENABLE"] = "1"

    def _read_manifest(self) -> List[str]:
        try:
            with open(self.rank_dir / MANIFEST_NAME, encoding="utf-8") as handle:
                graphs = json.load(handle)["graphs"]
            return [str(g) for g in graphs]
        except (OSError, ValueError, KeyError, TypeError):
            return []

    def _write_manifest(self, graphs: List[str]) -> None:
        fd, partial = tempfile.mkstemp(dir=self.rank_dir, suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"graphs": graphs}, handle)
        os.replace(partial, self.rank_dir / MANIFEST_NAME)  # atomic: a killed run leaves the previous manifest

    def _remove_unrecorded_graphs(self, keep: int) -> None:
        """Deletes MindSpore's graph files past the recorded ones (left by a run that was killed or failed)."""
        for path in (self.rank_dir / "graph_cache").glob("compile_cache_*.mindir"):
            index = path.stem.rpartition("_")[2]
            if not index.isdigit() or int(index) >= keep:
                path.unlink(missing_ok=True)

    def _write_key_file(self, name: str, content: str) -> str:
        path = self.rank_dir / name
        path.write_text(content, encoding="utf-8")
        return str(path)

    # -- hooks
    def before_cell_compile(self) -> None:
        """Right before MindSpore compiles `self.pending`: decide, then check the recorded graph at this position."""
        if self.pending is None:
            return
        cell, args, kwargs = self.pending
        fingerprint = graph_fingerprint(cell, args, kwargs)
        if not self.decided:
            self._start(cell, fingerprint)
        self.pending = (cell, args, kwargs, fingerprint)
        self.expect_load = False
        if not self.active or self.broken:
            return
        recorded = self.recorded[self.position] if self.position < len(self.recorded) else None
        if not self.diverged and recorded is not None and recorded != fingerprint:
            self._diverge()
        self.expect_load = not self.diverged and recorded == fingerprint

    def before_jit_compile(self) -> None:
        """An `ms.jit` function compiles: MindSpore caches it too, under a position we cannot fingerprint."""
        self.decided = True  # a cache switched on after this compile would count positions from another origin
        if self.active and not self.broken:
            if not self.diverged:
                self._diverge()
            self.position += 1
            self.records.append("ms.jit")
            self._write_manifest(self.records)

    def _diverge(self) -> None:
        # A new dependency file changes MindSpore's hash: it compiles (and saves) this graph and all later ones.
        self.diverged = True
        self.dependency_file = self._write_key_file(f"diverged-{uuid.uuid4().hex}.key", uuid.uuid4().hex)

    def after_compile(self, compiled: bool) -> None:
        if not (self.active and compiled) or self.broken or len(self.pending) != 4:
            return
        self.records.append(self.pending[3])
        self.position += 1
        tail = [] if self.diverged else self.recorded[len(self.records):]  # a longer recorded run stays valid
        self._write_manifest(self.records + tail)

    def compile_failed(self) -> None:
        if self.active and not self.broken:
            self.broken = True  # MindSpore's position is unknown now: keep only what was recorded
            self._diverge()
            self._write_manifest(self.records)

    def extra_dependency_files(self) -> List[str]:
        return [self.dependency_file] if self.active and self.dependency_file else []


_SESSION = _Session()


def _compile_hook(compile, cell, args, kwargs):
    previous, _SESSION.pending = _SESSION.pending, (cell, args, kwargs)
    start = time.perf_counter()
    try:
        phase, compiled = compile(cell, *args, **kwargs)
    except RuntimeError as err:
        _SESSION.compile_failed()
        if compat.COMPILE_CACHE_EXPORT_ERROR in str(err) and _SESSION.active:
            raise RuntimeError(
                f"MindSpore's compile cache cannot save the graph of {type(cell).__name__}: it holds Python-executed "
                f"nodes (e.g. a `None` passed into a Tensor-conditioned branch, or a starred call, in `construct`). "
                f"Run with {DISABLE_ENV}=0 to compile without the cache."
            ) from err
        raise
    finally:
        pending, _SESSION.pending = _SESSION.pending, previous
    if compiled:
        _LOG.events.append(CompileEvent(type(cell).__name__, time.perf_counter() - start, _SESSION.expect_load))
        _SESSION.pending = pending
        try:
            _SESSION.after_compile(compiled)
        finally:
            _SESSION.pending = previous
    return phase, compiled


def install() -> None:
    """Hooks the compile cache and the compile log into MindSpore (once; `import mindone_ft` does it)."""
    compat.patch_graph_compile(_compile_hook)
    compat.patch_compile_cache_dependencies(
        _SESSION.before_cell_compile, _SESSION.before_jit_compile, _SESSION.extra_dependency_files
    )


__all__ = ["CompileEvent", "CompileLog", "cache_folder", "compile_log", "compile_metrics", "compile_summary",
           "graph_fingerprint", "install", "is_enabled"]
