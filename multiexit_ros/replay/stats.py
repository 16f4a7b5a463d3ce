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
"""Per-policy statistics of a replay: accounting, deadlines, exits, latency, quality."""

from collections import Counter
import math
from typing import Optional

import numpy as np

__all__ = ['PolicyStats', 'confusion', 'miou']


def confusion(pred: np.ndarray, target: np.ndarray, num_classes: int,
              ignore_index: Optional[int] = None) -> np.ndarray:
    """Return the (classes x classes) confusion matrix, rows = target, columns = prediction.

    Target pixels equal to ``ignore_index`` or outside ``0..num_classes-1`` are left out.
    """
    t = target.reshape(-1).astype(np.int64)
    p = pred.reshape(-1).astype(np.int64)
    keep = (t >= 0) & (t < num_classes)
    if ignore_index is not None:
        keep &= t != ignore_index
    p = np.clip(p[keep], 0, num_classes - 1)
    return np.bincount(t[keep] * num_classes + p, minlength=num_classes * num_classes
                       ).reshape(num_classes, num_classes)


def miou(matrix: np.ndarray) -> tuple:
    """Return (mean IoU over classes present in target or prediction, pixel accuracy).

    Both are None when the matrix is empty.
    """
    total = matrix.sum()
    if total == 0:
        return None, None
    tp = np.diag(matrix).astype(np.float64)
    union = matrix.sum(0) + matrix.sum(1) - tp
    present = union > 0
    return float((tp[present] / union[present]).mean()), float(tp.sum() / total)


def _pct(values, q) -> Optional[float]:
    return float(np.percentile(values, q)) if values else None


class PolicyStats:
    """Accumulates one policy's outcomes over a replay.

    Args:
        name: Policy name.
        num_exits: Exits of the model (for the histogram).
        num_classes: Classes of the model (for the confusion matrix).
        ignore_index: Label id left out of quality (e.g. 11, unlabelled in CamVid).
    """

    def __init__(self, name: str, num_exits: int, num_classes: int,
                 ignore_index: Optional[int] = None):
        self.name = name
        self.num_exits = num_exits
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.counts = Counter()
        self.reasons = Counter()
        self.exits = [0] * num_exits
        self.latencies = []
        self.ages = []
        self.misses = 0
        self.late = 0
        self.matrix = np.zeros((num_classes, num_classes), np.int64)
        self.agree_pixels = 0
        self.total_pixels = 0

    def add(self, outcome, stamp: float):
        """Count one frame's outcome."""
        self.counts[outcome.status] += 1
        if outcome.status != 'processed':
            self.reasons[outcome.reason.split(' (')[0] if outcome.status == 'rejected'
                         else 'replaced while the network was busy'] += 1
            return
        self.exits[outcome.exit] += 1
        self.latencies.append(outcome.latency_s)
        self.ages.append(outcome.finish - stamp)
        if not outcome.decision.get('deadline_met', True):
            self.misses += 1
        if outcome.decision.get('late'):
            self.late += 1

    def add_quality(self, mask: np.ndarray, reference: np.ndarray,
                    ignore: bool = True) -> np.ndarray:
        """Compare one processed frame's mask with its label (or the final exit's mask).

        Returns:
            This frame's confusion matrix (already added to the total).
        """
        if mask.shape != reference.shape:
            import cv2
            mask = cv2.resize(mask, reference.shape[::-1], interpolation=cv2.INTER_NEAREST)
        ignore_index = self.ignore_index if ignore else None
        matrix = confusion(mask, reference, self.num_classes, ignore_index)
        self.matrix += matrix
        return matrix

    def summary(self, frames: int) -> dict:
        """Return the JSON-ready summary over ``frames`` camera frames."""
        processed = self.counts['processed']
        m, acc = miou(self.matrix)
        return {
            'policy': self.name,
            'frames': frames,
            'processed': processed,
            'dropped': self.counts['dropped'],
            'rejected': self.counts['rejected'],
            'reasons': dict(self.reasons),
            'deadline_misses': self.misses,
            'deadline_miss_rate': self.misses / processed if processed else None,
            'late': self.late,
            'exit_histogram': list(self.exits),
            'mean_exit': (sum(k * n for k, n in enumerate(self.exits)) / processed
                          if processed else None),
            'latency_p50_ms': _ms(_pct(self.latencies, 50)),
            'latency_p99_ms': _ms(_pct(self.latencies, 99)),
            'age_at_output_p50_ms': _ms(_pct(self.ages, 50)),
            'age_at_output_p99_ms': _ms(_pct(self.ages, 99)),
            'miou': m,
            'pixel_accuracy': acc,
        }


def _ms(value):
    return None if value is None or not math.isfinite(value) else value * 1e3
