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
"""Shared fixtures and helpers for the test suite."""

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / 'shared' / 'data'


@pytest.fixture
def shared_data():
    """Return the reference data folder beside the checkout; skip the test when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f'reference data not found at {SHARED_DATA}')
    return SHARED_DATA


@pytest.fixture(scope='module')
def one_torch_thread():
    """Use one torch thread: on a shared 2-core CPU, two spin-waiting threads stall."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def tiny_engine():
    """Return a CPU engine over an untrained tiny network (seeded)."""
    from multiexit_ros.model import MultiExitSegNet, preset
    from multiexit_ros.runtime import Engine

    torch.manual_seed(0)
    return Engine(MultiExitSegNet(preset('tiny')))
