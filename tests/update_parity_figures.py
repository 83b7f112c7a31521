"""Runs the parity harness of every model family and writes its measured figures into the docs.

    .venv/bin/python tests/update_parity_figures.py [tests/test_modeling_<family>.py ...]

writes `docs/parity_figures.json` (largest forward difference and gradient relative difference per model type,
over every head, label kind and both modes) and regenerates the table in `docs/supported_models.md`. Given test
files, it runs only those and updates the figures of the model types they measure, keeping the others.
`tests/test_supported_models.py` fails when the table no longer matches the Auto tables or the figures.
"""

import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIGURES = os.path.join(ROOT, "docs", "parity_figures.json")
DOC = os.path.join(ROOT, "docs", "supported_models.md")
BEGIN, END = "<!-- supported-models-table: begin -->\n", "<!-- supported-models-table: end -->\n"


def render_doc(text: str, table: str) -> str:
    """`text` with the part between the table markers replaced by `table`."""
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    return head + BEGIN + table + END + tail


def main(test_files=()) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "figures.json")
        tests = [os.path.relpath(os.path.abspath(t), ROOT) for t in test_files]
        if not tests:
            tests = sorted(os.path.join("tests", f) for f in os.listdir(os.path.join(ROOT, "tests"))
                           if f.startswith("test_modeling_") and f != "test_modeling_utils.py")
        env = {**os.environ, "MINDONE_FT_PARITY_FIGURES": out}
        command = [sys.executable, "-m", "pytest", "-q", "-k", "Parity", *tests]
        subprocess.run(command, cwd=ROOT, env=env, check=True)
        with open(out, encoding="utf-8") as handle:
            measured = json.load(handle)
    figures = {}
    if test_files:  # only some families ran: keep the figures of the others
        with open(FIGURES, encoding="utf-8") as handle:
            figures = json.load(handle)
    figures.update({model_type: {kind: float(f"{value:.2e}") for kind, value in values.items()}
                    for model_type, values in measured.items()})
    figures = dict(sorted(figures.items()))
    with open(FIGURES, "w", encoding="utf-8") as handle:
        json.dump(figures, handle, indent=2, sort_keys=True)
        handle.write("\n")

    sys.path.insert(0, ROOT)
    from mindone_ft.models.auto.modeling_auto import supported_models_markdown

    with open(DOC, encoding="utf-8") as handle:
        text = handle.read()
    with open(DOC, "w", encoding="utf-8") as handle:
        handle.write(render_doc(text, supported_models_markdown(figures)))
    print(f"wrote {FIGURES} and {DOC}")


if __name__ == "__main__":
    main(sys.argv[1:])
