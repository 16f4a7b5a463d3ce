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
"""The onnxruntime backend on CUDA and TensorRT (run by ``make gpu-check``).

Each test skips, saying why, where CUDA, ONNX Runtime or its CUDA / TensorRT execution
provider is missing; ``make gpu-check`` prints those reasons (pytest -rs), so its output
says which providers ran.
"""

import numpy as np
import pytest
import torch

from multiexit_ros.runtime import Engine
from replay_helpers import tiny_model_with_random_affines

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')


def _providers() -> list:
    ort = pytest.importorskip('onnxruntime', reason='onnxruntime is not installed (on a GPU: '
                                                    'pip install onnxruntime-gpu==1.32.0 onnx)')
    return ort.get_available_providers()


def _model():
    return tiny_model_with_random_affines()


def _export(folder):
    from multiexit_ros.labels import CAMVID
    from multiexit_ros.model.checkpoint import IMAGENET_MEAN, IMAGENET_STD
    from multiexit_ros.runtime.onnx_backend import export_onnx

    export_onnx(_model(), folder, (96, 128), mean=IMAGENET_MEAN, std=IMAGENET_STD,
                labels=CAMVID)
    return folder


def _check_network(folder, tensorrt: bool, agreement: float) -> list:
    """Run every exit on the device against PyTorch on the CPU; return the providers."""
    from multiexit_ros.runtime.onnx_backend import OrtNetwork

    net = OrtNetwork(folder, device='cuda', tensorrt=tensorrt)
    model = _model().eval()
    torch.manual_seed(1)
    x = torch.randn(1, 3, 96, 128)
    run, ref_run = net.begin(x.cuda()), model.begin(x)
    with torch.no_grad():
        for k in range(net.num_exits):
            got = net.advance(run, k, False)
            want = model.advance(ref_run, k, False)
            assert got.is_cuda and got.shape == want.shape
            assert (got.cpu()[0].argmax(0) == want[0].argmax(0)).float().mean() >= agreement
    return net.providers


def test_onnxruntime_cuda_provider_with_io_binding(tmp_path):
    if 'CUDAExecutionProvider' not in _providers():
        pytest.skip('ONNX Runtime CUDA provider not installed (pip install '
                    'onnxruntime-gpu==1.32.0): not run')
    providers = _check_network(_export(tmp_path / 'onnx'), tensorrt=False, agreement=0.999)
    assert providers[0] == 'CUDAExecutionProvider'
    print(f'ONNX Runtime CUDA provider ran: {providers}')


def test_onnxruntime_tensorrt_provider(tmp_path):
    if 'TensorrtExecutionProvider' not in _providers():
        pytest.skip('ONNX Runtime TensorRT provider not available (onnxruntime-gpu with '
                    'TensorRT libraries): not run')
    providers = _check_network(_export(tmp_path / 'onnx'), tensorrt=True, agreement=0.99)
    assert providers[0] == 'TensorrtExecutionProvider'
    print(f'ONNX Runtime TensorRT provider ran: {providers}')


def test_engine_onnxruntime_backend_on_cuda(monkeypatch, tmp_path):
    if 'CUDAExecutionProvider' not in _providers():
        pytest.skip('ONNX Runtime CUDA provider not installed: engine on CUDA not run')
    monkeypatch.setenv('MULTIEXIT_CACHE_DIR', str(tmp_path))
    engine = Engine(_model(), device='cuda', backend='onnxruntime')
    ref = Engine(_model(), backend='torch')
    for seed in range(2):
        image = np.random.default_rng(seed).integers(0, 256, (96, 128, 3), dtype=np.uint8)
        run = engine.begin(image)
        for k in range(engine.num_exits):
            want = ref.infer(image, k).mask
            assert (engine.infer(image, k).mask == want).mean() >= 0.99
            assert (engine.advance(run, k) == want).mean() >= 0.99
