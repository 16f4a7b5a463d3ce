# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Each creates .venv with the pinned dependencies (requirements/constraints.txt).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-ros lint bench bench-ros gpu-check venv venv-ros clean

$(STAMP): requirements/constraints.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements/constraints.txt -e '.[runtime,test,onnx]'
	touch $(STAMP)

venv: $(STAMP)

## The main job: replay a generated drive through the speed-aware pipeline (CPU).
demo: $(STAMP)
	$(PY) -m multiexit_ros demo --out multiexit_demo

## The whole test suite (unit, integration and lint); no GPU, no ROS needed.
test: $(STAMP)
	$(PY) -m pytest -q test

## Against a real ROS 2 (../shared/ros2, or ROS2_SETUP=/path/to/activate-or-setup.bash):
## colcon build in a temporary workspace, then colcon test (launch_testing, end-to-end
## tests with a real perception_node, ament flake8/pep257/copyright) and test-result.
## It needs pytest < 9 (launch_testing's plugin), hence a second venv, .venv-ros.
ROS_VENV  ?= .venv-ros
ROS_STAMP := $(ROS_VENV)/.installed
ROS2_SETUP ?= ../shared/ros2/activate.sh

$(ROS_STAMP): requirements/constraints.txt setup.py
	$(PYTHON) -m venv $(ROS_VENV)
	sed 's/^pytest==.*/pytest<9/' requirements/constraints.txt > $(ROS_VENV)/constraints.txt
	$(ROS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(ROS_VENV)/bin/python -m pip install --quiet -c $(ROS_VENV)/constraints.txt -e '.[runtime,test]'
	$(ROS_VENV)/bin/python -m pip uninstall --quiet -y multiexit_ros  # colcon installs it
	touch $(ROS_STAMP)

venv-ros: $(ROS_STAMP)

test-ros: $(ROS_STAMP)
	ROS_VENV=$(ROS_VENV) ROS2_SETUP=$(ROS2_SETUP) test/run_test_ros.sh

## Node latency on the real ROS 2 (camera publish -> mask vs the pipeline alone, CPU),
## written to bench/results/node_latency_cpu.{md,json}.
bench-ros: $(ROS_STAMP)
	unshare -n bash -c 'ip link set lo up && . $(ROS_VENV)/bin/activate && set +u && \
		. $(ROS2_SETUP) && PYTHONPATH=.:$$PYTHONPATH python bench/node_latency.py'

lint: $(STAMP)
	$(PY) -m pytest -q test -m linter

bench: $(STAMP)
	$(PY) bench/model_cost.py

## On a machine with an NVIDIA GPU: the CUDA tests, the onnxruntime backend on the ONNX
## Runtime CUDA and TensorRT providers (each test says that it ran, or why it skipped:
## they need onnxruntime-gpu==1.32.0 in place of onnxruntime, and TensorRT for the
## latter), then the GPU benchmarks written to bench/results/ (pipeline overhead with and
## without CUDA graphs at 1024x2048, model cost).
gpu-check: $(STAMP)
	@$(PY) -c "import sys, torch; torch.cuda.is_available() or sys.exit('gpu-check: CUDA is not available to PyTorch ' + torch.__version__ + ' on this machine')"
	$(PY) -m pytest -q test/test_engine_cuda.py test/test_engine_capture.py
	$(PY) -m pytest -v -s -rs test/test_onnx_cuda.py
	PYTHONPATH=. $(PY) bench/pipeline_overhead.py --device cuda --preset base --size 1024x2048 --precision fp16 --cuda-graphs
	PYTHONPATH=. $(PY) bench/model_cost.py --device cuda --size 1024x2048

clean:
	rm -rf $(VENV) $(ROS_VENV) build install log *.egg-info
