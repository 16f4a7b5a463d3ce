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
"""engine.backend and engine.threads: configuration, resolution and errors (no ORT needed)."""

import importlib.util
import sys

import pytest
import torch

from multiexit_ros.errors import ConfigError
from multiexit_ros.model import MultiExitSegNet, preset
from multiexit_ros.runtime import Engine, PipelineConfig
from multiexit_ros.runtime.engine import resolve_backend


@pytest.fixture
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_engine_settings_are_pipeline_parameters():
    config = PipelineConfig.from_params({'engine.backend': 'torch', 'engine.threads': 2})
    assert (config.engine.backend, config.engine.threads) == ('torch', 2)
    assert PipelineConfig().engine.threads == 1
    assert PipelineConfig().to_params()['engine.backend'] == 'auto'
    with pytest.raises(ConfigError, match='engine.backend'):
        PipelineConfig.from_params({'engine.backend': 'tensorrt'})
    with pytest.raises(ConfigError, match='engine.threads'):
        PipelineConfig.from_params({'engine.threads': -1})
    with pytest.raises(ConfigError, match='unknown pipeline parameter'):
        PipelineConfig.from_params({'engine.thread': 1})


def test_threads_set_torch_and_bad_counts_are_refused(keep_threads):
    torch.manual_seed(0)
    model = MultiExitSegNet(preset('tiny'))
    engine = Engine(model, threads=1)
    assert engine.threads == 1 and torch.get_num_threads() == 1
    with pytest.raises(ConfigError, match='threads'):
        Engine(MultiExitSegNet(preset('tiny')), threads=-2)


def test_auto_is_onnxruntime_on_the_cpu_only_when_installed(monkeypatch):
    assert resolve_backend('torch', torch.device('cpu')) == 'torch'
    assert resolve_backend('auto', torch.device('cuda')) == 'torch'
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *a: None if name == 'onnxruntime' else real(name, *a))
    assert resolve_backend('auto', torch.device('cpu')) == 'torch'
    with pytest.raises(ConfigError, match='backend'):
        resolve_backend('openvino', torch.device('cpu'))


def test_onnxruntime_backend_without_the_runtime_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)  # import fails
    torch.manual_seed(0)
    with pytest.raises(ConfigError, match=r"onnx extra: pip install -e '\.\[onnx\]'"):
        Engine(MultiExitSegNet(preset('tiny')), backend='onnxruntime')
