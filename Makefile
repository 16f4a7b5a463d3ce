# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Each creates .venv with the pinned dependencies (requirements/constraints.txt).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench gpu-check venv clean

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

## On a machine with an NVIDIA GPU: the CUDA tests, then the GPU benchmarks written to
## bench/results/ (pipeline overhead with and without CUDA graphs at 1024x2048, model cost).
gpu-check: $(STAMP)
	@$(PY) -c "import sys, torch; torch.cuda.is_available() or sys.exit('gpu-check: CUDA is not available to PyTorch ' + torch.__version__ + ' on this machine')"
	$(PY) -m pytest -q test/test_engine_cuda.py test/test_engine_capture.py
	PYTHONPATH=. $(PY) bench/pipeline_overhead.py --device cuda --preset base --size 1024x2048 --precision fp16 --cuda-graphs
	PYTHONPATH=. $(PY) bench/model_cost.py --device cuda --size 1024x2048

clean:
	rm -rf $(VENV) build install log *.egg-info
