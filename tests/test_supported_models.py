"""docs/supported_models.md lists exactly the model types and heads of the Auto tables, with measured parity."""

import json
import os

import pytest

from mindone_ft.models.auto.modeling_auto import (
    TASK_TABLES,
    model_module_name,
    supported_models,
    supported_models_markdown,
)
from update_parity_figures import BEGIN, DOC, END, FIGURES


def test_docs_table_is_generated_from_the_auto_tables():
    with open(FIGURES, encoding="utf-8") as handle:
        figures = json.load(handle)
    with open(DOC, encoding="utf-8") as handle:
        text = handle.read()
    table = text.split(BEGIN)[1].split(END)[0]
    assert table == supported_models_markdown(figures), (
        "docs/supported_models.md is stale: run `.venv/bin/python tests/update_parity_figures.py`"
    )


def test_every_model_type_has_measured_parity_within_the_harness_tolerances():
    from model_parity import ATOL, GRAD_RTOL

    with open(FIGURES, encoding="utf-8") as handle:
        figures = json.load(handle)
    assert set(figures) == set(supported_models()), "run tests/update_parity_figures.py"
    for model_type, values in figures.items():
        assert values["forward"] < ATOL and values["gradient"] < GRAD_RTOL, model_type


@pytest.mark.parametrize("title,names", TASK_TABLES)
def test_every_auto_entry_imports(title, names):
    import importlib

    for model_type, class_name in names.items():
        module = importlib.import_module(f"mindone_ft.models.{model_module_name(model_type)}")
        cls = getattr(module, class_name)
        assert cls.config_class.model_type == model_type, (title, model_type, class_name)
        import mindone_ft

        assert getattr(mindone_ft, class_name) is cls, f"mindone_ft does not export {class_name}"


def test_doc_is_linked_from_the_readme():
    with open(os.path.join(os.path.dirname(DOC), "..", "README.md"), encoding="utf-8") as handle:
        assert "docs/supported_models.md" in handle.read()
