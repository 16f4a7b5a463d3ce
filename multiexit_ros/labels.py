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
"""Label sets: class names, colour palettes and ignore labels of the supported datasets."""

from dataclasses import dataclass

import numpy as np

__all__ = [
    'CAMVID',
    'CITYSCAPES',
    'CITYSCAPES_LABEL_TO_TRAIN',
    'LabelSet',
    'colorize',
]


@dataclass(frozen=True)
class LabelSet:
    """Names, colours and ignore label of a segmentation class set.

    Attributes:
        name: Short identifier of the set (``camvid``, ``cityscapes``, ...).
        classes: Class names; the index is the class id.
        palette: One RGB colour per class.
        ignore_index: Label value excluded from losses and metrics.
    """

    name: str
    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    ignore_index: int

    def __post_init__(self):
        if len(self.classes) != len(self.palette):
            raise ValueError(
                f'label set {self.name!r}: {len(self.classes)} classes but '
                f'{len(self.palette)} palette colours')
        if 0 <= self.ignore_index < len(self.classes):
            raise ValueError(
                f'label set {self.name!r}: ignore_index {self.ignore_index} is a class id')

    @property
    def num_classes(self) -> int:
        """Return the number of classes."""
        return len(self.classes)

    def palette_array(self) -> np.ndarray:
        """Palette as a (256, 3) uint8 lookup table; ids without a class map to black."""
        lut = np.zeros((256, 3), np.uint8)
        lut[:len(self.palette)] = np.asarray(self.palette, np.uint8)
        return lut


# The 11 classes of CamVid in the SegNet layout; 11 marks unlabelled pixels.
CAMVID = LabelSet(
    name='camvid',
    classes=('sky', 'building', 'pole', 'road', 'pavement', 'tree', 'sign_symbol',
             'fence', 'car', 'pedestrian', 'bicyclist'),
    palette=((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128),
             (60, 40, 222), (128, 128, 0), (192, 128, 128), (64, 64, 128),
             (64, 0, 128), (64, 64, 0), (0, 128, 192)),
    ignore_index=11,
)

# The 19 evaluation classes of Cityscapes ("train ids"); 255 marks ignored pixels.
CITYSCAPES = LabelSet(
    name='cityscapes',
    classes=('road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic_light',
             'traffic_sign', 'vegetation', 'terrain', 'sky', 'person', 'rider', 'car',
             'truck', 'bus', 'train', 'motorcycle', 'bicycle'),
    palette=((128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156),
             (190, 153, 153), (153, 153, 153), (250, 170, 30), (220, 220, 0),
             (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
             (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100),
             (0, 0, 230), (119, 11, 32)),
    ignore_index=255,
)

# Cityscapes labelIds (0..33) to train ids; every id not listed maps to 255.
_CITYSCAPES_PAIRS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
                     23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
CITYSCAPES_LABEL_TO_TRAIN = np.full(256, 255, np.uint8)
for _label_id, _train_id in _CITYSCAPES_PAIRS.items():
    CITYSCAPES_LABEL_TO_TRAIN[_label_id] = _train_id


def colorize(mask: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Turn an (H, W) class-id mask into an (H, W, 3) RGB image.

    Args:
        mask: uint8 class ids.
        palette: (256, 3) uint8 lookup table, as from :meth:`LabelSet.palette_array`.

    Returns:
        The colour image, uint8.
    """
    return palette[mask]
