# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Each creates .venv with the pinned dependencies (requirements/constraints.txt).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench venv clean

$(STAMP): requirements/constraints.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements/constraints.txt -e '.[runtime,test]'
	touch $(STAMP)

venv: $(STAMP)

## The main job: replay a generated drive through the speed-aware pipeline (CPU).
demo: $(STAMP)
	$(PY) -m multiexit_ros demo --out multiexit_demo

## The whole test suite (unit, integration and lint); no GPU, no ROS needed.
test: $(STAMP)
	$(PY) -m pytest -q test

lint: $(STAMP)
	$(PY) -m pytest -q test -m linter

bench: $(STAMP)
	$(PY) bench/model_cost.py

clean:
	rm -rf $(VENV) build install log *.egg-info
