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
"""The shipped model loads through the normal loader and agrees with its model card."""

import re

import numpy as np
import pytest
import torch

from conftest import REPO
from multiexit_ros import default_model_path
from multiexit_ros.data import render_scene
from multiexit_ros.labels import CAMVID
from multiexit_ros.model import exit_costs, load_checkpoint
from multiexit_ros.train.metrics import ConfusionMatrix

CARD = REPO / 'models' / 'README.md'


@pytest.fixture(scope='module')
def shipped():
    path = default_model_path()
    assert path.is_file(), f'the shipped model is missing: {path}'
    return load_checkpoint(path)


def test_shipped_model_is_small_enough_for_the_repository():
    assert default_model_path().stat().st_size <= 20 * 1024 * 1024


def test_metadata_is_consistent(shipped):
    model, meta = shipped
    assert meta.labels.classes == CAMVID.classes
    assert meta.labels.palette == CAMVID.palette
    assert meta.labels.ignore_index == CAMVID.ignore_index
    assert model.config.num_classes == len(meta.labels.classes) == 11
    assert len(meta.metrics['miou']) == model.num_exits
    assert all(0.0 < v < 1.0 for v in meta.metrics['miou'])
    assert meta.metrics['dataset'] == 'camvid' and meta.metrics['split'] == 'val'
    assert meta.training['strategy']['name'] in ('joint', 'local', 'grouped', 'overlap')
    assert meta.input_size is not None


def test_every_exit_segments_a_generated_scene(shipped):
    model, meta = shipped
    image, label = render_scene(12345, *meta.input_size)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    x = (x - torch.tensor(meta.mean).view(1, 3, 1, 1)) / torch.tensor(meta.std).view(1, 3, 1, 1)
    with torch.no_grad():
        outs = model(x)
    assert len(outs) == model.num_exits
    for out in outs:
        assert out.shape == (1, 11, *meta.input_size)
        pred = out[0].argmax(0).numpy().astype(np.uint8)
        cm = ConfusionMatrix(11, CAMVID.ignore_index).update(pred, label)
        # A trained model, not a random one: most pixels of a scene are right.
        assert cm.pixel_accuracy() > 0.5


def test_model_card_matches_the_checkpoint(shipped):
    model, meta = shipped
    card = CARD.read_text(encoding='utf-8')
    assert 'CC BY-NC 4.0' in card
    rows = {int(m.group(1)): m.group(2) for m in
            re.finditer(r'^\| (\d+) \|(.*)$', card, flags=re.MULTILINE)}
    assert sorted(rows) == list(range(model.num_exits))
    costs = exit_costs(model, tuple(meta.input_size))
    for k in range(model.num_exits):
        cells = [c.strip() for c in rows[k].split('|')]
        assert f'{meta.metrics["miou"][k]:.3f}' in cells, (k, cells)
        assert f'{costs[k].flops / 1e9:.2f}' in cells, (k, cells)
