"""The user cache folder where mindone_ft keeps what it builds once per machine (CPU kernels, compiled graphs)."""

import os
from pathlib import Path

CACHE_ENV = "MINDONE_FT_CACHE"


def cache_root() -> Path:
    """`$MINDONE_FT_CACHE` if set, else `$XDG_CACHE_HOME/mindone_ft`, else `~/.cache/mindone_ft`."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mindone_ft"
    )
    return Path(root)
