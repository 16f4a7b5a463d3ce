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
"""The engine's CUDA path against its CPU path (runs only where CUDA is available)."""

import numpy as np
import pytest
import torch

from multiexit_ros.runtime import Engine, measure_profile
from replay_helpers import tiny_model_with_random_affines

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')


def _model():
    return tiny_model_with_random_affines()


def _image(seed, h=90, w=140):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize('precision, channels_last, graphs, tolerance', [
    ('fp32', False, False, 1e-3),
    ('fp32', False, True, 1e-3),
    ('fp16', True, False, 0.05),
    ('bf16', True, True, 0.1),
])
def test_cuda_masks_match_the_cpu(precision, channels_last, graphs, tolerance):
    cpu = Engine(_model())
    gpu = Engine(_model(), device='cuda', precision=precision, channels_last=channels_last,
                 cuda_graphs=graphs)
    assert gpu.device.startswith('cuda') and gpu.cuda_graphs == graphs
    for seed in range(3):  # new content each call: a graph's static input is refreshed
        image = _image(seed)
        for k in range(gpu.num_exits):
            ref = cpu.infer(image, k).mask
            got = gpu.infer(image, k)
            assert got.mask.shape == ref.shape and got.mask.dtype == np.uint8
            assert np.mean(got.mask != ref) <= tolerance
            assert got.latency_s > 0


def test_cuda_graphs_replay_equals_eager():
    eager = Engine(_model(), device='cuda', precision='fp16', channels_last=True)
    graphed = Engine(_model(), device='cuda', precision='fp16', channels_last=True,
                     cuda_graphs=True)
    for seed in range(3):
        image = _image(seed)
        for k in range(eager.num_exits):
            assert np.mean(eager.infer(image, k).mask != graphed.infer(image, k).mask) < 1e-3


def test_cuda_mono_output_size_and_incremental():
    engine = Engine(_model(), device='cuda', precision='fp16', cuda_graphs=True)
    grey = _image(4)[:, :, 0]
    assert engine.infer(grey, 2, out_size=(30, 50)).mask.shape == (30, 50)
    run = engine.begin(_image(5))
    masks = [engine.advance(run, k) for k in range(engine.num_exits)]
    assert all(m.shape == (90, 140) for m in masks)


def test_cuda_profile_records_the_device():
    engine = Engine(_model(), device='cuda', precision='fp16')
    profile = measure_profile(engine, (64, 96), warmup=1, samples=3)
    assert profile.device.startswith('cuda') and profile.precision == 'fp16'
    assert all(profile.n(k) == 3 for k in range(engine.num_exits))
