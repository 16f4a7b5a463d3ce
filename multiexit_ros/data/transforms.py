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
"""Training augmentation and evaluation resizing of (image, label) pairs."""

from dataclasses import dataclass

import cv2
import numpy as np
import torch

__all__ = ['Transform', 'to_tensor']


def to_tensor(image: np.ndarray, mean, std) -> torch.Tensor:
    """Turn an RGB uint8 (H, W, 3) image into a normalized float32 (3, H, W) tensor."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255)
    mean = torch.tensor(mean, dtype=torch.float32)[:, None, None]
    std = torch.tensor(std, dtype=torch.float32)[:, None, None]
    return x.sub_(mean).div_(std)


def _resize_image(image, size):
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    shrink = h * w < image.shape[0] * image.shape[1]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink
                      else cv2.INTER_LINEAR)


def _resize(image, label, size):
    h, w = size
    if label.shape != (h, w):
        label = cv2.resize(label, (w, h), interpolation=cv2.INTER_NEAREST)
    return _resize_image(image, size), label


@dataclass
class Transform:
    """Resize, then (when ``train``) random scale, crop, flip and photometric jitter.

    ``size`` resizes every pair first (None keeps it); evaluation stops there.
    """

    train: bool = False
    size: tuple = None         # (H, W) every image is resized to first; None keeps it
    crop: tuple = None         # (H, W) random crop after scaling (train); None = size
    scale: tuple = (0.75, 1.5)  # random scale range (train)
    flip: bool = True          # random horizontal flip (train)
    jitter: float = 0.25       # brightness / contrast / saturation strength (train)
    mean: tuple = (0.485, 0.456, 0.406)
    std: tuple = (0.229, 0.224, 0.225)
    ignore_index: int = 255    # fills padding of crops larger than the scaled image
    resize_label: bool = True  # False: ``size`` resizes the image only; the label keeps its
    #                            resolution, so predictions are scored at the labels' own size

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator):
        """Return (normalized image tensor (3, H, W), int64 label tensor (H, W))."""
        if self.size and self.resize_label:
            image, label = _resize(image, label, self.size)
        elif self.size:
            image = _resize_image(image, self.size)
        if self.train:
            image, label = self._augment(image, label, rng)
        return (to_tensor(image, self.mean, self.std),
                torch.from_numpy(np.ascontiguousarray(label)).long())

    def _augment(self, image, label, rng):
        h, w = label.shape
        s = float(rng.uniform(*self.scale))
        image, label = _resize(image, label, (max(int(h * s + 0.5), 1), max(int(w * s + 0.5), 1)))
        ch, cw = self.crop or (h, w)
        ph, pw = max(ch - label.shape[0], 0), max(cw - label.shape[1], 0)
        if ph or pw:
            image = cv2.copyMakeBorder(image, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=0)
            label = cv2.copyMakeBorder(label, 0, ph, 0, pw, cv2.BORDER_CONSTANT,
                                       value=self.ignore_index)
        y = int(rng.integers(0, label.shape[0] - ch + 1))
        x = int(rng.integers(0, label.shape[1] - cw + 1))
        image, label = image[y:y + ch, x:x + cw], label[y:y + ch, x:x + cw]
        if self.flip and rng.random() < 0.5:
            image, label = image[:, ::-1], label[:, ::-1]
        if self.jitter:
            j = self.jitter
            img = image.astype(np.float32)
            grey = img.mean(axis=2, keepdims=True)
            img = grey + (img - grey) * rng.uniform(1 - j, 1 + j)           # saturation
            img = (img - img.mean()) * rng.uniform(1 - j, 1 + j) + img.mean()  # contrast
            img = img * rng.uniform(1 - j, 1 + j)                           # brightness
            image = np.clip(img, 0, 255).astype(np.uint8)
        return image, label
