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
"""The engine on the CPU: masks, resizing, mono input, incremental runs, bad input."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from multiexit_ros.errors import ConfigError, ImageError
from multiexit_ros.labels import CAMVID
from multiexit_ros.model import CheckpointMeta, MultiExitSegNet, preset, save_checkpoint
from multiexit_ros.runtime import Engine, PipelineConfig
from replay_helpers import tiny_model_with_random_affines

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


pytestmark = pytest.mark.usefixtures('one_torch_thread')


@pytest.fixture(scope='module')
def engine(tiny_engine):
    return tiny_engine


@pytest.fixture(scope='module')
def varied_engine():
    """Build an untrained network with random batch-norm affines (masks not uniform)."""
    return Engine(tiny_model_with_random_affines())


def _image(h=45, w=70, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _reference_logits(model, image, in_size, exit_index):
    """Low-resolution logits of an exit, computed independently of the engine."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    x = F.interpolate(x, size=in_size, mode='bilinear', align_corners=False) / 255.0
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        return model.advance(model.begin(x), exit_index, size=False)


def test_mask_is_uint8_at_camera_resolution(engine):
    image = _image()
    for k in range(engine.num_exits):
        result = engine.infer(image, k)
        assert result.mask.shape == (45, 70) and result.mask.dtype == np.uint8
        assert result.mask.max() < engine.labels.num_classes
        assert result.latency_s > 0
    assert engine.input_size_for((45, 70)) == (32, 64)
    assert engine.labels is CAMVID  # 11 classes, no metadata


def test_logits_are_upsampled_bilinearly_before_argmax(varied_engine):
    engine = varied_engine
    image = _image(90, 140, seed=1)
    differs = []
    for k in range(engine.num_exits):
        low = _reference_logits(engine.model, image, (96, 128), k)
        smooth = F.interpolate(low, size=(90, 140), mode='bilinear',
                               align_corners=False)[0].argmax(0).numpy()
        blocky = F.interpolate(low[0].argmax(0)[None, None].float(), size=(90, 140),
                               mode='nearest')[0, 0].numpy()
        assert np.mean(engine.infer(image, k).mask != smooth) < 1e-3
        differs.append(np.mean(blocky != smooth))
    # The test can tell the two apart: nearest-neighbour ids differ visibly.
    assert max(differs) > 0.01


def test_output_size_and_fixed_input_size():
    torch.manual_seed(0)
    engine = Engine(MultiExitSegNet(preset('tiny')), input_size=(32, 32))
    assert engine.input_size_for((480, 640)) == (32, 32)
    mask = engine.infer(_image(), 2, out_size=(20, 30)).mask
    assert mask.shape == (20, 30)


def test_mono_images_equal_their_grey_rgb_version(engine):
    grey = _image()[:, :, 0]
    mono = engine.infer(grey, 3).mask
    rgb = engine.infer(np.repeat(grey[:, :, None], 3, axis=2), 3).mask
    assert np.array_equal(mono, rgb)
    assert np.array_equal(engine.infer(grey[:, :, None], 3).mask, mono)


def test_non_contiguous_images_are_accepted(engine):
    image = _image()
    bgr_view = image[:, :, ::-1]
    assert np.array_equal(engine.infer(bgr_view, 1).mask,
                          engine.infer(np.ascontiguousarray(bgr_view), 1).mask)


def test_incremental_run_gives_every_exit_like_separate_inferences(varied_engine):
    engine = varied_engine
    image = _image(seed=3)
    run = engine.begin(image)
    masks = [engine.advance(run, k) for k in range(engine.num_exits)]
    for k, mask in enumerate(masks):
        assert np.array_equal(mask, engine.infer(image, k).mask)
    with pytest.raises(ConfigError, match='not reachable'):
        engine.advance(run, 0)


@pytest.mark.parametrize('image, match', [
    (np.zeros((10, 10, 3), np.float32), 'uint8'),
    (np.zeros((10, 10, 4), np.uint8), 'HxWx3'),
    (np.zeros((2, 10, 10, 3), np.uint8), 'HxWx3'),
    (np.zeros((0, 10, 3), np.uint8), 'empty'),
    ([[0, 1], [2, 3]], 'numpy array'),
])
def test_bad_images_are_image_errors(engine, image, match):
    with pytest.raises(ImageError, match=match):
        engine.infer(image, 0)


def test_bad_exit_is_a_config_error(engine):
    with pytest.raises(ConfigError, match='exit 5 does not exist'):
        engine.infer(_image(), 5)


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine without CUDA')
def test_cuda_without_a_gpu_is_an_error_unless_fallback_is_allowed(caplog):
    model = MultiExitSegNet(preset('tiny'))
    with pytest.raises(ConfigError, match='CUDA is not available'):
        Engine(model, device='cuda', precision='fp16')
    with caplog.at_level('WARNING'):
        engine = Engine(model, device='cuda', precision='fp16', channels_last=True,
                        cuda_graphs=True, allow_cpu_fallback=True)
    assert 'running on the CPU' in caplog.text
    assert engine.device == 'cpu' and engine.precision == 'fp32'
    assert engine.channels_last and not engine.cuda_graphs  # NHWC pays on the CPU too
    assert engine.infer(_image(), 0).mask.shape == (45, 70)


@pytest.mark.parametrize('kwargs, match', [
    ({'device': 'tpu'}, 'not supported|unknown device'),
    ({'precision': 'int4'}, 'precision'),
    ({'input_size': (4, 4)}, 'at least 8x8'),
])
def test_bad_engine_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Engine(MultiExitSegNet(preset('tiny')), **kwargs)


def test_engine_from_checkpoint_takes_labels_normalization_and_identity(tmp_path):
    torch.manual_seed(1)
    model = MultiExitSegNet(preset('tiny'))
    meta = CheckpointMeta(model=model.config, labels=CAMVID, mean=(0.5, 0.5, 0.5),
                          std=(0.25, 0.25, 0.25), input_size=(32, 48))
    path = save_checkpoint(tmp_path / 'm.safetensors', model, meta)
    engine = Engine.from_checkpoint(path)
    assert engine.labels == CAMVID and engine.input_size == (32, 48)
    assert engine.model_id['name'] == 'm.safetensors'
    assert len(engine.model_id['tensors_sha256']) == 64
    config = PipelineConfig(model_path=str(path), device='cpu', input_height=64,
                            input_width=64)
    assert Engine.from_config(config).input_size == (64, 64)
    with pytest.raises(ConfigError, match='both input_height and input_width'):
        Engine.from_config(PipelineConfig(model_path=str(path), device='cpu',
                                          input_height=64))


def test_the_cuda_path_imports_without_a_gpu():
    from multiexit_ros.runtime.cuda import CudaPath, CudaTiming
    assert CudaTiming(event_s=0.01, host_s=0.02).event_s == 0.01
    assert callable(CudaPath.infer)
