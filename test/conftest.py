# Copyright 2026 The multiexit_ros Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""Shared fixtures and helpers for the test suite.

Without PyTorch (a ROS 2 machine where only ``colcon test`` runs, for example) every
test module that needs it is reported as skipped, with the reason, instead of failing
at collection; the lint tests and the ROS-only tests still run.
"""

import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / 'shared' / 'data'
# Packages of the runtime extra that whole test modules need at import time.
NEEDED = ('torch', 'safetensors')
MISSING = [name for name in NEEDED if importlib.util.find_spec(name) is None]
SKIP_REASON = (f'needs {", ".join(MISSING)} (not installed here: pip install torch==2.13.0 '
               'safetensors, see README)')


def _missing_module(report) -> bool:
    text = str(report.longrepr)
    return any(f"No module named '{name}" in text or f'import of {name} halted' in text
               for name in MISSING)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """Report a test module that cannot import a missing runtime package as skipped."""
    outcome = yield
    report = outcome.get_result()
    if MISSING and report.failed and isinstance(collector, pytest.Module) and \
            _missing_module(report):
        report.outcome = 'skipped'
        report.longrepr = (str(collector.path), 0, f'Skipped: {SKIP_REASON}')


def _torch():
    if MISSING:
        pytest.skip(SKIP_REASON)
    import torch
    return torch


@pytest.fixture(scope='session', autouse=True)
def onnx_cache(tmp_path_factory):
    """Keep the ONNX exports the engine makes on the fly out of the user's cache."""
    os.environ['MULTIEXIT_CACHE_DIR'] = str(tmp_path_factory.mktemp('multiexit_cache'))


@pytest.fixture
def shared_data():
    """Return the reference data folder beside the checkout; skip the test when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f'reference data not found at {SHARED_DATA}')
    return SHARED_DATA


@pytest.fixture(scope='module')
def one_torch_thread():
    """Use one torch thread: on a shared 2-core CPU, two spin-waiting threads stall."""
    torch = _torch()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def tiny_engine():
    """Return a CPU engine over an untrained tiny network (seeded)."""
    torch = _torch()
    from multiexit_ros.model import MultiExitSegNet, preset
    from multiexit_ros.runtime import Engine

    torch.manual_seed(0)
    return Engine(MultiExitSegNet(preset('tiny')))


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    """Return an untrained tiny checkpoint written once per test module."""
    from replay_helpers import tiny_checkpoint

    return tiny_checkpoint(tmp_path_factory.mktemp('model') / 'tiny.safetensors')
