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
"""The dataset base class: reading and checking images and label maps from disk."""

from pathlib import Path

import cv2
import numpy as np
from torch.utils.data import Dataset

from .transforms import Transform
from ..errors import DatasetError
from ..labels import LabelSet

__all__ = ['SegmentationDataset', 'read_label', 'read_rgb']


def read_rgb(path) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3).

    Raises:
        DatasetError: The file is missing or not a readable image.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f'image not found: {path}')
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f'{path}: not a readable image')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_label(path) -> np.ndarray:
    """Read a single-channel 8-bit label map as uint8 (H, W).

    Raises:
        DatasetError: The file is missing, unreadable, multi-channel or not 8-bit.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f'label map not found: {path}')
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise DatasetError(f'{path}: not a readable label image')
    if label.ndim != 2 or label.dtype != np.uint8:
        raise DatasetError(f'{path}: label maps must be single-channel 8-bit, got shape '
                           f'{label.shape} {label.dtype}')
    return label


class SegmentationDataset(Dataset):
    """(image, label) pairs from files, mapped to class ids, checked and transformed.

    Args:
        samples: (image path, label path) pairs.
        labels: Class set the label maps are expressed in after ``lut``.
        transform: Turns a uint8 pair into tensors; None gives evaluation tensors at
            the file's size.
        lut: 256-entry uint8 table from stored label values to class ids (None: identity).
        valid: 256-entry bool table of stored values allowed in a label file (None: the
            class ids and the ignore label).
        seed: Base seed of the augmentation (with the epoch and the index).
    """

    def __init__(self, samples: list, labels: LabelSet, transform: Transform = None,
                 lut: np.ndarray = None, valid: np.ndarray = None, seed: int = 0):
        self.samples = list(samples)
        self.labels = labels
        self.transform = transform or Transform(ignore_index=labels.ignore_index)
        self.lut = lut
        if valid is None:
            valid = np.zeros(256, bool)
            valid[:labels.num_classes] = True
            valid[labels.ignore_index] = True
        self.valid = valid
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int):
        """Change the augmentation draws (call once per epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def read(self, index: int) -> tuple:
        """Return the checked (RGB uint8 image, uint8 class-id label) pair ``index``."""
        image_path, label_path = self.samples[index]
        image, label = read_rgb(image_path), read_label(label_path)
        if image.shape[:2] != label.shape:
            raise DatasetError(f'{label_path}: label is {label.shape[0]}x{label.shape[1]} (HxW), '
                               f'its image {image_path} is {image.shape[0]}x{image.shape[1]}')
        self.check(label, label_path)
        return image, (label if self.lut is None else self.lut[label])

    def check(self, label: np.ndarray, where):
        """Raise :class:`DatasetError` when ``label`` holds values that are not allowed."""
        counts = np.bincount(label.ravel(), minlength=256)
        bad = np.flatnonzero((counts > 0) & ~self.valid)
        if bad.size:
            allowed = np.flatnonzero(self.valid)
            raise DatasetError(
                f'{where}: label values {bad[:8].tolist()} are outside the allowed range '
                f'({_ranges(allowed)}) of {self.labels.name}')

    def __getitem__(self, index: int) -> tuple:
        image, label = self.read(index)
        rng = np.random.default_rng((self.seed, self.epoch, index))
        return self.transform(image, label, rng)


def _ranges(values) -> str:
    out, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            out.append(f'{start}' if start == v else f'{start}..{v}')
            start = None
    return ', '.join(out)
