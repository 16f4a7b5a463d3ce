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
"""Datasets for training and evaluation (all read from disk or generated; no downloads).

``build_dataset(name, ...)`` gives a ``torch.utils.data.Dataset`` of (normalized image
(3, H, W) float32, label (H, W) int64) pairs with a ``labels`` attribute; ``name`` is
``camvid``, ``cityscapes``, ``folder``, ``generated`` or a mix such as
``camvid+generated`` (all parts must share one label set).
"""

from torch.utils.data import ConcatDataset

from .base import read_label, read_rgb, SegmentationDataset
from .layouts import camvid, cityscapes, folder, GeneratedDataset, read_classes
from .synthetic import render_scene, render_sequence
from .transforms import to_tensor, Transform
from ..errors import DatasetError

__all__ = ['DATASETS', 'GeneratedDataset', 'MixedDataset', 'SegmentationDataset', 'Transform',
           'build_dataset', 'camvid', 'cityscapes', 'folder', 'read_classes', 'read_label',
           'read_rgb', 'render_scene', 'render_sequence', 'to_tensor']

DATASETS = ('camvid', 'cityscapes', 'folder', 'generated')


class MixedDataset(ConcatDataset):
    """Several datasets with one label set, concatenated."""

    def __init__(self, parts: list):
        names = {p.labels.classes for p in parts}
        if len(names) != 1:
            raise DatasetError('a dataset mix needs one label set; got '
                               + ', '.join(p.labels.name for p in parts))
        super().__init__(parts)
        self.labels = parts[0].labels

    def set_epoch(self, epoch: int):
        """Forward the epoch to every part."""
        for p in self.datasets:
            p.set_epoch(epoch)


def build_dataset(name: str, root, split: str, transform: Transform = None, *,
                  generated_count: int = 64, generated_size: tuple = (360, 480),
                  seed: int = 0):
    """Build a dataset by layout name.

    Args:
        name: ``camvid``, ``cityscapes``, ``folder``, ``generated`` or a ``+`` mix.
        root: Dataset folder (unused for ``generated``); for a mix, one folder used by
            every on-disk part.
        split: Split name (``train``, ``val``, ...).
        transform: Augmentation / resizing; None keeps images as stored.
        generated_count: Number of generated scenes in the split.
        generated_size: (H, W) of generated scenes.
        seed: Augmentation seed (and generated-scene seed offset).

    Raises:
        DatasetError: Unknown layout, missing folder or files, or invalid labels.
    """
    parts = [p.strip() for p in str(name).split('+') if p.strip()]
    if not parts or any(p not in DATASETS for p in parts):
        raise DatasetError(f'unknown dataset {name!r}; choose from {DATASETS} or a mix '
                           f'such as camvid+generated')
    built = []
    for part in parts:
        if part == 'generated':
            built.append(GeneratedDataset(generated_count, generated_size, split, transform,
                                          seed))
            continue
        if root is None or str(root) == '':
            raise DatasetError(f'dataset {part!r} needs a data folder (--data DIR)')
        built.append({'camvid': camvid, 'cityscapes': cityscapes, 'folder': folder}[part](
            root, split, transform, seed))
    if transform is not None:
        for d in built:
            d.transform.ignore_index = d.labels.ignore_index
    return built[0] if len(built) == 1 else MixedDataset(built)
