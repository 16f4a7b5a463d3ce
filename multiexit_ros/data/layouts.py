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
"""Dataset layouts on disk: CamVid (SegNet), Cityscapes, a generic folder; generated scenes.

Generic folder layout (``folder``)::

    ROOT/classes.txt             one class per line: "name" or "name R G B"
    ROOT/images/SPLIT/NAME.png   RGB images (.png, .jpg or .jpeg)
    ROOT/masks/SPLIT/NAME.png    8-bit single-channel class ids; 255 = ignore
"""

from pathlib import Path

import numpy as np

from .base import SegmentationDataset
from .synthetic import render_scene
from .transforms import Transform
from ..errors import DatasetError
from ..labels import CAMVID, CITYSCAPES, CITYSCAPES_LABEL_TO_TRAIN, LabelSet

__all__ = ['GeneratedDataset', 'camvid', 'cityscapes', 'folder', 'read_classes']

_IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg')
_SEGNET_PREFIX = '/SegNet/CamVid/'


def _folder(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DatasetError(f'{what} folder not found: {path}')
    return path


def camvid(root, split: str, transform: Transform = None, seed: int = 0):
    """Read CamVid in the SegNet layout: ``SPLIT.txt`` lists, ``SPLIT/``, ``SPLITannot/``.

    List lines hold two paths starting with ``/SegNet/CamVid/`` (that prefix is
    replaced by ``root``); without a list, every PNG in ``SPLIT/`` is used.
    """
    root = _folder(Path(root), 'CamVid')
    listing = root / f'{split}.txt'
    samples = []
    if listing.is_file():
        for n, line in enumerate(listing.read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2:
                raise DatasetError(f'{listing}:{n}: expected "IMAGE LABEL", got {line!r}')
            samples.append(tuple(root / p.replace(_SEGNET_PREFIX, '', 1).lstrip('/')
                                 for p in parts))
    else:
        images = sorted(_folder(root / split, f'CamVid split {split!r}').glob('*.png'))
        samples = [(p, root / f'{split}annot' / p.name) for p in images]
    _nonempty(samples, f'CamVid split {split!r} in {root}')
    return SegmentationDataset(samples, CAMVID, transform, seed=seed)


def cityscapes(root, split: str, transform: Transform = None, seed: int = 0):
    """Cityscapes: ``leftImg8bit/SPLIT/CITY/*_leftImg8bit.png`` and ``gtFine`` labelIds.

    labelIds (0..33) map to the 19 train ids; everything else becomes 255 (ignored).
    """
    root = Path(root)
    images = sorted(_folder(root / 'leftImg8bit' / split, f'Cityscapes split {split!r}')
                    .glob('*/*_leftImg8bit.png'))
    samples = [(p, root / 'gtFine' / split / p.parent.name /
                p.name.replace('_leftImg8bit.png', '_gtFine_labelIds.png')) for p in images]
    _nonempty(samples, f'Cityscapes split {split!r} in {root}')
    valid = np.zeros(256, bool)
    valid[:34] = True
    valid[255] = True
    return SegmentationDataset(samples, CITYSCAPES, transform, lut=CITYSCAPES_LABEL_TO_TRAIN,
                               valid=valid, seed=seed)


def read_classes(path) -> LabelSet:
    """Read a ``classes.txt`` (one ``name`` or ``name R G B`` per line) as a LabelSet."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f'class list not found: {path}')
    names, colours = [], []
    rng = np.random.default_rng(0)
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith('#'):
            continue
        try:
            rgb = tuple(int(v) for v in parts[1:4]) if len(parts) > 1 else None
        except ValueError:
            rgb = None
        if rgb is not None and (len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb)):
            rgb = None
        if len(parts) not in (1, 4) or (len(parts) == 4 and rgb is None):
            raise DatasetError(f'{path}:{n}: expected "name" or "name R G B", got {line!r}')
        names.append(parts[0])
        colours.append(rgb or tuple(int(v) for v in rng.integers(0, 256, 3)))
    if not 1 <= len(names) <= 255:
        raise DatasetError(f'{path}: needs 1..255 classes, found {len(names)}')
    return LabelSet(name=path.parent.name or 'folder', classes=tuple(names),
                    palette=tuple(colours), ignore_index=255)


def folder(root, split: str, transform: Transform = None, seed: int = 0):
    """Read the generic folder layout described in this module's docstring."""
    root = _folder(Path(root), 'dataset')
    labels = read_classes(root / 'classes.txt')
    image_dir = _folder(root / 'images' / split, f'split {split!r} images')
    mask_dir = root / 'masks' / split
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
    samples = [(p, mask_dir / (p.stem + '.png')) for p in images]
    _nonempty(samples, f'split {split!r} in {root}')
    return SegmentationDataset(samples, labels, transform, seed=seed)


def _nonempty(samples, what):
    if not samples:
        raise DatasetError(f'no images found for {what}')
    missing = [str(p) for pair in samples for p in pair if not Path(p).is_file()]
    if missing:
        raise DatasetError(f'{what}: {len(missing)} listed files are missing, e.g. '
                           f'{missing[0]}')


class GeneratedDataset(SegmentationDataset):
    """Generated driving scenes (:func:`render_scene`), CamVid labels; nothing on disk.

    Splits draw from disjoint seed ranges, so ``train`` and ``val`` never share a scene.
    """

    SPLITS = {'train': 0, 'val': 1_000_000, 'test': 2_000_000}

    def __init__(self, count: int, size: tuple, split: str = 'train',
                 transform: Transform = None, seed: int = 0):
        if split not in self.SPLITS:
            raise DatasetError(f'generated dataset: unknown split {split!r}; choose one of '
                               f'{sorted(self.SPLITS)}')
        if count < 1:
            raise DatasetError(f'generated dataset: count must be >= 1, got {count}')
        super().__init__([None] * int(count), CAMVID, transform, seed=seed)
        self.size = tuple(int(v) for v in size)
        self.first = self.SPLITS[split] + 10_000 * int(seed)

    def read(self, index: int) -> tuple:
        """Render scene ``index`` of this split."""
        return render_scene(self.first + index, *self.size)
