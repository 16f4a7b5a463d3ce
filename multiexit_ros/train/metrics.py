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
"""Segmentation metrics from a confusion matrix (mIoU, pixel accuracy, per-class IoU)."""

import numpy as np

__all__ = ['ConfusionMatrix']


class ConfusionMatrix:
    """Counts of (true class, predicted class) pixel pairs, updated with bincount.

    Rows are true classes, columns predictions. Pixels whose label is ``ignore_index``
    or outside ``0..num_classes-1`` are not counted.

    Args:
        num_classes: Number of classes.
        ignore_index: Label value to skip (None: skip only out-of-range labels).
    """

    def __init__(self, num_classes: int, ignore_index: int = None):
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.matrix = np.zeros((self.num_classes, self.num_classes), np.int64)

    def update(self, prediction, target) -> 'ConfusionMatrix':
        """Add a batch of predicted and true class ids (NumPy arrays or torch tensors).

        Torch tensors are counted on their own device; only the K x K counts move.
        """
        n = self.num_classes
        if hasattr(prediction, 'detach'):
            import torch
            p, t = prediction.detach().reshape(-1).long(), target.detach().reshape(-1).long()
            keep = (t >= 0) & (t < n)
            if self.ignore_index is not None:
                keep &= t != self.ignore_index
            counts = torch.bincount(t[keep] * n + p[keep].clamp(0, n - 1), minlength=n * n)
            self.matrix += counts.cpu().numpy().reshape(n, n)
            return self
        p = np.asarray(prediction).reshape(-1).astype(np.int64)
        t = np.asarray(target).reshape(-1).astype(np.int64)
        keep = (t >= 0) & (t < n)
        if self.ignore_index is not None:
            keep &= t != self.ignore_index
        counts = np.bincount(t[keep] * n + np.clip(p[keep], 0, n - 1), minlength=n * n)
        self.matrix += counts.reshape(n, n)
        return self

    def merge(self, other: 'ConfusionMatrix') -> 'ConfusionMatrix':
        """Add another matrix's counts (e.g. from another process)."""
        self.matrix += other.matrix
        return self

    @property
    def total(self) -> int:
        """Return the number of counted pixels."""
        return int(self.matrix.sum())

    def iou(self) -> np.ndarray:
        """Per-class intersection over union (NaN where a class is in neither)."""
        m = self.matrix.astype(np.float64)
        tp = np.diag(m)
        union = m.sum(0) + m.sum(1) - tp
        with np.errstate(invalid='ignore', divide='ignore'):
            return np.where(union > 0, tp / union, np.nan)

    def miou(self) -> float:
        """Mean IoU over classes that occur (NaN when nothing was counted)."""
        iou = self.iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float('nan')

    def pixel_accuracy(self) -> float:
        """Fraction of counted pixels predicted correctly."""
        total = self.matrix.sum()
        return float(np.trace(self.matrix) / total) if total else float('nan')

    def to_dict(self, class_names=None) -> dict:
        """JSON-ready summary; per-class IoU keyed by name (None where undefined)."""
        names = class_names or [str(i) for i in range(self.num_classes)]
        return {'miou': _num(self.miou()), 'pixel_accuracy': _num(self.pixel_accuracy()),
                'pixels': self.total,
                'iou': {name: _num(v) for name, v in zip(names, self.iou())}}


def _num(v):
    return None if v is None or not np.isfinite(v) else round(float(v), 6)
