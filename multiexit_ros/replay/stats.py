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

from ..train.metrics import ConfusionMatrix

__all__ = ['PolicyStats', 'finite']

_MAX_REASONS = 20  # distinct reasons kept per policy; the rest are counted together


def finite(value: float) -> Optional[float]:
    """Return ``value``, or None when it is NaN (e.g. the mIoU of no pixels)."""
    return None if value is None or math.isnan(value) else float(value)


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
        self.matrix = ConfusionMatrix(num_classes)
        self.agree_pixels = 0
        self.total_pixels = 0

    def add(self, outcome, stamp: float):
        """Count one frame's outcome."""
        self.counts[outcome.status] += 1
        if outcome.status != 'processed':
            reason = (outcome.reason if outcome.status == 'rejected'
                      else 'replaced while the network was busy')
            if reason not in self.reasons and len(self.reasons) >= _MAX_REASONS:
                reason = 'other reasons'
            self.reasons[reason] += 1
            return
        self.exits[outcome.exit] += 1
        self.latencies.append(outcome.latency_s)
        self.ages.append(outcome.finish - stamp)
        if not outcome.decision.get('deadline_met', True):
            self.misses += 1
        if outcome.decision.get('late'):
            self.late += 1

    def add_quality(self, mask: np.ndarray, reference: np.ndarray,
                    ignore: bool = True) -> ConfusionMatrix:
        """Compare one processed frame's mask with its label (or the final exit's mask).

        Returns:
            This frame's confusion matrix (already added to the total).
        """
        if mask.shape != reference.shape:
            import cv2
            mask = cv2.resize(mask, reference.shape[::-1], interpolation=cv2.INTER_NEAREST)
        frame = ConfusionMatrix(self.num_classes, self.ignore_index if ignore else None)
        self.matrix.merge(frame.update(mask, reference))
        return frame

    def summary(self, frames: int) -> dict:
        """Return the JSON-ready summary over ``frames`` camera frames."""
        processed = self.counts['processed']
        m, acc = finite(self.matrix.miou()), finite(self.matrix.pixel_accuracy())
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
