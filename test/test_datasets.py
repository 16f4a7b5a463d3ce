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
"""Dataset layouts, label checks, augmentation and the generated driving scenes."""

import cv2
import numpy as np
import pytest
import torch

from multiexit_ros.data import build_dataset, render_scene, render_sequence, Transform
from multiexit_ros.errors import DatasetError
from multiexit_ros.labels import CAMVID, CITYSCAPES_LABEL_TO_TRAIN


def _write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(path), array)


def _pair(seed, h=24, w=32):
    image, label = render_scene(seed, h, w)
    return image, label


def _camvid_tree(root, bad_value=None):
    lines = []
    for i in range(3):
        image, label = _pair(i)
        if bad_value is not None and i == 1:
            label[0, 0] = bad_value
        _write(root / 'train' / f'f{i}.png', image)
        _write(root / 'trainannot' / f'f{i}.png', label)
        lines.append(f'/SegNet/CamVid/train/f{i}.png /SegNet/CamVid/trainannot/f{i}.png')
    (root / 'train.txt').write_text('\n'.join(lines) + '\n')
    return root


def test_camvid_layout_reads_rgb_and_labels_exactly(tmp_path):
    root = _camvid_tree(tmp_path / 'camvid')
    ds = build_dataset('camvid', root, 'train')
    assert len(ds) == 3 and ds.labels is CAMVID
    image, label = ds.read(2)
    want_image, want_label = _pair(2)
    assert np.array_equal(image, want_image)  # PNG is lossless and BGR was turned to RGB
    assert np.array_equal(label, want_label)
    x, y = ds[2]
    assert x.shape == (3, 24, 32) and x.dtype == torch.float32 and y.dtype == torch.int64


def test_camvid_label_out_of_range_is_a_clear_error(tmp_path):
    ds = build_dataset('camvid', _camvid_tree(tmp_path / 'c', bad_value=40), 'train')
    ds[0]
    with pytest.raises(DatasetError, match=r'f1\.png: label values \[40\] are outside'):
        ds[1]


@pytest.mark.parametrize('name, make, match', [
    ('camvid', lambda r: None, 'CamVid folder not found'),
    ('cityscapes', lambda r: r.mkdir(), 'Cityscapes split'),
    ('folder', lambda r: r.mkdir(), 'class list not found'),
    ('mapillary', lambda r: None, 'unknown dataset'),
    ('camvid', lambda r: _camvid_tree(r) and (r / 'trainannot' / 'f0.png').unlink(),
     'listed files are missing'),
])
def test_bad_dataset_paths_are_clear_errors(tmp_path, name, make, match):
    root = tmp_path / 'data'
    make(root)
    with pytest.raises(DatasetError, match=match):
        build_dataset(name, root, 'train')


def test_cityscapes_layout_maps_label_ids_to_train_ids(tmp_path):
    root = tmp_path / 'cs'
    image, _ = _pair(5)
    ids = np.arange(24 * 32, dtype=np.int64).reshape(24, 32) % 34
    ids[0, :3] = 255
    _write(root / 'leftImg8bit' / 'val' / 'aachen' / 'a_000001_000019_leftImg8bit.png', image)
    _write(root / 'gtFine' / 'val' / 'aachen' / 'a_000001_000019_gtFine_labelIds.png',
           ids.astype(np.uint8))
    ds = build_dataset('cityscapes', root, 'val')
    _, label = ds.read(0)
    assert np.array_equal(label, CITYSCAPES_LABEL_TO_TRAIN[ids])
    assert set(np.unique(label)) <= set(range(19)) | {255}
    ids[3, 3] = 40
    _write(root / 'gtFine' / 'val' / 'aachen' / 'a_000001_000019_gtFine_labelIds.png',
           ids.astype(np.uint8))
    with pytest.raises(DatasetError, match=r'\[40\]'):
        ds[0]


def test_folder_layout_with_class_list(tmp_path):
    root = tmp_path / 'mine'
    (root).mkdir()
    (root / 'classes.txt').write_text('# my classes\nground 128 64 128\nobstacle\nsky 0 0 255\n')
    for i in range(2):
        image, label = _pair(i)
        mask = np.minimum(label, 2).astype(np.uint8)
        mask[:2] = 255
        _write(root / 'images' / 'train' / f'{i}.jpg', image)
        _write(root / 'masks' / 'train' / f'{i}.png', mask)
    ds = build_dataset('folder', root, 'train')
    assert ds.labels.classes == ('ground', 'obstacle', 'sky')
    assert ds.labels.palette[0] == (128, 64, 128) and ds.labels.ignore_index == 255
    assert set(np.unique(ds.read(1)[1])) <= {0, 1, 2, 255}
    bad = np.full((24, 32), 3, np.uint8)
    _write(root / 'masks' / 'train' / '0.png', bad)
    with pytest.raises(DatasetError, match=r'label values \[3\]'):
        ds[0]


def test_generated_dataset_and_mix(tmp_path):
    gen = build_dataset('generated', None, 'val', generated_count=3, generated_size=(40, 56))
    assert len(gen) == 3
    image, label = gen.read(1)
    assert image.shape == (40, 56, 3) and label.max() <= 10
    mix = build_dataset('camvid+generated', _camvid_tree(tmp_path / 'c'), 'train',
                        generated_count=2, generated_size=(24, 32))
    assert len(mix) == 5 and mix.labels is CAMVID
    with pytest.raises(DatasetError, match='one label set'):
        (tmp_path / 'f').mkdir()
        (tmp_path / 'f' / 'classes.txt').write_text('a\nb\n')
        _write(tmp_path / 'f' / 'images' / 'train' / 'x.png', image)
        _write(tmp_path / 'f' / 'masks' / 'train' / 'x.png', np.zeros((40, 56), np.uint8))
        build_dataset('folder+generated', tmp_path / 'f', 'train')


def test_training_augmentation_is_seeded_and_keeps_labels_aligned():
    image, label = render_scene(3, 60, 80)
    t = Transform(train=True, crop=(48, 48), scale=(0.5, 1.5), jitter=0.3, ignore_index=11)
    a = t(image, label, np.random.default_rng(1))
    b = t(image, label, np.random.default_rng(1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[0].shape == (3, 48, 48) and a[1].shape == (48, 48)
    assert set(a[1].unique().tolist()) <= set(range(12))
    # Without photometric jitter the labels stay aligned with a nearest-resized copy.
    plain = Transform(train=True, crop=(60, 80), scale=(1, 1), flip=False, jitter=0)
    x, y = plain(image, label, np.random.default_rng(0))
    assert torch.equal(y, torch.from_numpy(label).long())


def test_render_scene_is_deterministic_and_varied():
    a, la = render_scene(11, 90, 120)
    b, lb = render_scene(11, 90, 120)
    c, _ = render_scene(12, 90, 120)
    assert a.dtype == np.uint8 and a.shape == (90, 120, 3) and la.shape == (90, 120)
    assert np.array_equal(a, b) and np.array_equal(la, lb) and not np.array_equal(a, c)
    counts = np.bincount(np.concatenate([render_scene(s, 90, 120)[1].ravel()
                                         for s in range(12)]), minlength=11)
    assert counts.size == 11 and (counts > 0).all()  # every CamVid class appears
    assert la[0].tolist().count(0) > 0 and la[-1].tolist().count(3) > 0  # sky top, road bottom


def test_render_sequence_moves_forward_coherently():
    frames = list(render_sequence(4, 3, 90, 120, speed_mps=10, fps=10))
    assert len(frames) == 3
    again = list(render_sequence(4, 3, 90, 120, speed_mps=10, fps=10))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(frames, again))
    near = np.mean(frames[0][1] != frames[1][1])
    other = np.mean(frames[0][1] != render_scene(99, 90, 120)[1])
    assert 0 < near < other


def test_real_camvid_and_cityscapes_samples(shared_data):
    ds = build_dataset('camvid', shared_data / 'camvid', 'val')
    image, label = ds.read(0)
    assert image.shape == (360, 480, 3) and label.shape == (360, 480)
    assert label.max() <= 11
    cs = build_dataset('cityscapes', shared_data / 'cityscapes_sample', 'val')
    image, label = cs.read(0)
    train_ids = cv2.imread(str(next((shared_data / 'cityscapes_sample').rglob(
        '*_gtFine_labelTrainIds.png'))), cv2.IMREAD_UNCHANGED)
    assert image.shape[:2] == label.shape == train_ids.shape
    assert np.mean(label == train_ids) > 0.99


def test_training_on_a_mix_can_validate_on_one_part(tmp_path):
    from multiexit_ros.train.config import TrainConfig
    from multiexit_ros.train.trainer import build_datasets

    root = _camvid_tree(tmp_path / 'c')
    data = {'dataset': 'camvid+generated', 'root': str(root), 'val_split': 'train',
            'size': [24, 32], 'crop': [24, 32], 'generated_count': 2,
            'generated_val_count': 4, 'workers': 0}
    train_set, val_set = build_datasets(TrainConfig.from_dict({'data': data}))
    assert len(train_set) == 5 and len(val_set) == 3 + 4
    data['val_dataset'] = 'camvid'
    train_set, val_set = build_datasets(TrainConfig.from_dict({'data': data}))
    assert len(train_set) == 5 and len(val_set) == 3
