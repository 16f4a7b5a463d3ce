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
"""Training options: determinism, class weights, full-resolution validation, Lite runs."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from multiexit_ros.data import Transform
from multiexit_ros.errors import ConfigError
from multiexit_ros.labels import CAMVID
from multiexit_ros.model import load_checkpoint, MultiExitSegNet, preset
from multiexit_ros.model.checkpoint import LITE_MEAN, LITE_STD
from multiexit_ros.train.config import load_config
from multiexit_ros.train.evaluate import confusions
from multiexit_ros.train.losses import enet_class_weights, segmentation_ce
from multiexit_ros.train.trainer import train


def _config(tmp_path, name, *extra):
    return load_config(None, [
        f'run.out={tmp_path / name}', 'optim.steps=3', 'run.val_every=3', 'model=tiny',
        'data.dataset=generated', 'optim.batch_size=2', 'data.size=[48,64]',
        'data.crop=[48,48]', 'data.generated_count=6', 'data.generated_val_count=2',
        'data.workers=0', 'run.val_batch_size=1', 'routing.name=overlap', 'routing.window=2',
        'routing.distill=0.3', *extra])


def _weights(path):
    model, meta = load_checkpoint(path)
    return model.state_dict(), meta


def test_one_seed_gives_identical_weights_twice(tmp_path):
    for name in ('a', 'b', 'other'):
        seed = 1 if name == 'other' else 0
        train(_config(tmp_path, name, f'run.seed={seed}', 'optim.class_weights=enet'),
              progress=False)
    a, meta_a = _weights(tmp_path / 'a' / 'last.safetensors')
    b, meta_b = _weights(tmp_path / 'b' / 'last.safetensors')
    other, _ = _weights(tmp_path / 'other' / 'last.safetensors')
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert meta_a.metrics['miou'] == meta_b.metrics['miou']
    assert not all(torch.equal(a[k], other[k]) for k in a)  # the seed does matter


def test_a_lite_run_from_pretrained_weights_records_its_normalization(tmp_path):
    net = MultiExitSegNet(preset('lite0'))
    pth = tmp_path / 'trunk.pth'
    from test_lite_trunk import _published_names
    torch.save(_published_names(net), pth)
    config = _config(tmp_path, 'lite', 'model=lite0', f'pretrained={pth}', 'optim.steps=1',
                     'run.val_every=1', 'optim.batch_size=2', 'data.size=[32,32]',
                     'data.crop=[32,32]', 'routing.distill=0.0')
    train(config, progress=False)
    model, meta = load_checkpoint(tmp_path / 'lite' / 'last.safetensors')
    assert model.config.trunk == 'efficientnet_lite0'
    assert meta.mean == LITE_MEAN and meta.std == LITE_STD
    with pytest.raises(ConfigError, match='efficientnet_lite0 trunk'):
        train(_config(tmp_path, 'tiny', f'pretrained={pth}'), progress=False)


def test_enet_weights_follow_the_label_frequencies():
    class Labels:
        labels = CAMVID

        def __len__(self):
            return 2

        def read(self, i):
            label = np.full((2, 4), 11, np.uint8)       # 11: ignored
            label[0, :3] = 0 if i == 0 else 3            # 3 pixels of class 0 or 3
            label[1, 0] = 3
            return None, label

    w = enet_class_weights(Labels())                    # class 0: 3/8, class 3: 5/8
    assert w[0].item() == pytest.approx(1 / math.log(1.02 + 3 / 8))
    assert w[3].item() == pytest.approx(1 / math.log(1.02 + 5 / 8))
    assert w[5].item() == pytest.approx(1 / math.log(1.02))


def test_weighted_cross_entropy_is_torchs_weighted_mean():
    torch.manual_seed(0)
    logits, target = torch.randn(2, 4, 3, 5), torch.randint(0, 4, (2, 3, 5))
    target[0, 0] = 255
    weight = torch.tensor([1.0, 2.0, 0.5, 4.0])
    expected = F.cross_entropy(logits, target, weight=weight, ignore_index=255)
    assert segmentation_ce(logits, target, 255, weight).item() == pytest.approx(
        expected.item(), rel=1e-6)
    assert segmentation_ce(logits, target, 255).item() == pytest.approx(
        F.cross_entropy(logits, target, ignore_index=255).item(), rel=1e-6)


def test_validation_scores_at_the_labels_own_resolution():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (60, 80, 3), np.uint8)
    label = rng.integers(0, 11, (60, 80), np.uint8)
    x, y = Transform(size=(30, 40), resize_label=False)(image, label, rng)
    assert tuple(x.shape) == (3, 30, 40) and tuple(y.shape) == (60, 80)
    x2, y2 = Transform(size=(30, 40))(image, label, rng)
    assert tuple(y2.shape) == (30, 40) and torch.equal(x, x2)

    class Constant(torch.nn.Module):  # predicts class 1 on the left half of its output
        num_exits = 1

        def forward(self, images):
            z = torch.zeros(images.shape[0], 2, *images.shape[-2:])
            z[:, 1, :, :images.shape[-1] // 2] = 1
            return [z]

    labels = torch.zeros(1, 60, 80, dtype=torch.long)
    labels[..., :40] = 1
    cms = confusions(Constant(), [(x[None], labels)], 2, 255, torch.device('cpu'))
    assert cms[0].matrix.sum() == 60 * 80            # every full-resolution pixel scored
    assert np.trace(cms[0].matrix) >= 60 * 79      # all but the boundary column


def test_labels_of_different_sizes_in_one_batch_are_one_clear_error():
    from multiexit_ros.errors import DatasetError
    from multiexit_ros.train.evaluate import collate_eval

    image = torch.zeros(3, 8, 8)
    same = collate_eval([(image, torch.zeros(8, 8)), (image, torch.zeros(8, 8))])
    assert tuple(same[1].shape) == (2, 8, 8)
    with pytest.raises(DatasetError, match=r'differ in size \(16x16 vs 8x8\).*batch size 1'):
        collate_eval([(image, torch.zeros(8, 8)), (image, torch.zeros(16, 16))])
