"""Makes a Python process see its packages as on a machine without torch (mindone_ft never needs torch, and
transformers imports an installed one: ~310 MiB and ~2 s). On `PYTHONPATH`, Python runs this at start-up;
`benchmarks/run.py` also runs it in its mindone_ft workers.

Each `sys.path` folder holding torch is replaced by a folder of links to everything in it but torch's packages and
metadata, at a fixed path per folder, so that every run sees the same file paths (MindSpore's compile cache hashes
them). Blocking `sys.modules["torch"] = None` instead breaks `datasets`, which imports torch when that key exists.
"""

import hashlib
import os
import sys
import tempfile

TORCH_PACKAGES = ("torch", "torchgen", "functorch")


def _links_without_torch(folder: str) -> str:
    names = sorted(name for name in os.listdir(folder) if name.split("-")[0].split(".")[0] not in TORCH_PACKAGES)
    # Named by the folder and its contents: a package installed later gets a new folder of links.
    key = hashlib.sha256("\0".join([folder, *names]).encode()).hexdigest()[:12]
    links = os.path.join(tempfile.gettempdir(), f"mindone_ft_site_without_torch_{key}")
    if not os.path.isdir(links):
        partial = tempfile.mkdtemp(prefix=os.path.basename(links) + ".", dir=os.path.dirname(links))
        for name in names:
            os.symlink(os.path.join(folder, name), os.path.join(partial, name))
        try:
            os.rename(partial, links)  # atomic: a concurrent process sees the whole folder or none
        except OSError:  # another process made it first
            pass
    return links


def without_torch() -> None:
    for index, entry in enumerate(list(sys.path)):
        if os.path.isdir(os.path.join(entry, "torch")):
            sys.path[index] = _links_without_torch(entry)


without_torch()
