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
"""Streaming quality: each labelled frame against the mask a consumer holds at its time.

The per-frame mIoU of a replay scores each processed frame's own mask against its own
label, as if the mask existed at the frame's time; drops and late masks cost nothing.
Streaming evaluation (Li, Wang and Ramanan, "Towards Streaming Perception", ECCV 2020)
instead asks, at each labelled frame's *query time*, which mask a downstream consumer
holds: the most recent mask whose processing had finished by then, from whichever
earlier frame (the frame itself included) it came. The world has moved on since that
frame, so latency and dropped frames cost accuracy. No mask yet counts every labelled
pixel as wrong.

The query time is the frame's header stamp (``frame``, the default) or its deadline,
stamp plus the budget the speed gives (``deadline``): a consumer that waits for the
budget. Mask finish times are on the recording's clock, like the stamps (the node
compares the two in the same way for a frame's age).

The *mask age* at query time is the query time minus the capture stamp of the frame the
held mask came from: how old the world it shows is.
"""

from bisect import bisect_right
from collections import deque
import math
from typing import Optional

import numpy as np

from .stats import finite
from ..train.metrics import ConfusionMatrix

__all__ = ['QUERIES', 'StreamingQuality', 'StreamingScorer', 'speed_budget_at',
           'streaming_table']

QUERIES = ('frame', 'deadline')


class StreamingQuality(ConfusionMatrix):
    """Confusion counts of held masks against references, plus the pixels left unanswered.

    Args:
        num_classes: Classes of the model.
        ignore_index: Reference id left out (None: only ids outside the classes).
    """

    def __init__(self, num_classes: int, ignore_index: Optional[int] = None):
        super().__init__(num_classes, ignore_index)
        self.missed = np.zeros(self.num_classes, np.int64)  # per true class, no mask held

    def update(self, mask: Optional[np.ndarray], reference: np.ndarray) -> 'StreamingQuality':
        """Count one query: ``mask`` None means no mask was held (every pixel wrong)."""
        if mask is not None:
            return super().update(mask, reference)
        t = np.asarray(reference).reshape(-1).astype(np.int64)
        keep = (t >= 0) & (t < self.num_classes)
        if self.ignore_index is not None:
            keep &= t != self.ignore_index
        self.missed += np.bincount(t[keep], minlength=self.num_classes)
        return self

    def merge(self, other: 'StreamingQuality') -> 'StreamingQuality':
        """Add another's counts."""
        super().merge(other)
        self.missed += other.missed
        return self

    def iou(self) -> np.ndarray:
        """Per-class IoU; unanswered pixels count as false negatives (NaN: class absent)."""
        m = self.matrix.astype(np.float64)
        tp = np.diag(m)
        union = m.sum(0) + m.sum(1) + self.missed - tp
        with np.errstate(invalid='ignore', divide='ignore'):
            return np.where(union > 0, tp / union, np.nan)

    def pixel_accuracy(self) -> float:
        """Fraction of counted pixels answered correctly (unanswered ones are wrong)."""
        total = self.matrix.sum() + self.missed.sum()
        return float(np.trace(self.matrix) / total) if total else float('nan')


class _Held:
    __slots__ = ('index', 'stamp', 'finish', 'mask')

    def __init__(self, index, stamp, finish, mask):
        self.index, self.stamp, self.finish, self.mask = index, stamp, finish, mask


class StreamingScorer:
    """Streaming quality of every policy of a replay.

    Args:
        names: Policy names.
        num_classes: Classes of the model.
        ignore_index: Label id left out of the scores when scoring against labels.
        query: ``frame`` (query at the frame's stamp) or ``deadline`` (stamp + budget).
        budget_of: ``budget_of(frame) -> seconds``, the speed budget at the frame
            (needed for ``deadline``).
        horizon_s: Masks that finished this long before a query and were superseded are
            forgotten (queries come roughly in frame order).
    """

    def __init__(self, names, num_classes: int, ignore_index: Optional[int] = None,
                 query: str = 'frame', budget_of=None, horizon_s: float = 5.0):
        if query not in QUERIES:
            from ..errors import ConfigError
            raise ConfigError(f'streaming query must be one of {", ".join(QUERIES)}, '
                              f'got {query!r}')
        self.query = query
        self.budget_of = budget_of
        self.horizon_s = horizon_s
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.held = {n: deque() for n in names}
        self.quality = {n: StreamingQuality(num_classes, ignore_index) for n in names}
        self.ages = {n: [] for n in names}
        self.unanswered = dict.fromkeys(names, 0)
        self.queries = 0

    def add_mask(self, name: str, index: int, stamp: float, finish: float, mask):
        """Hold a policy's mask of frame ``index`` (captured at ``stamp``), ready at ``finish``."""
        if mask is not None:
            self.held[name].append(_Held(index, stamp, finish, mask))

    def query_time(self, frame) -> float:
        """When frame ``frame`` is asked for: its stamp, or stamp + speed budget."""
        if self.query == 'deadline':
            return frame.stamp + self.budget_of(frame)
        return frame.stamp

    def _pick(self, name: str, index: int, when: float) -> Optional[_Held]:
        for held in reversed(self.held[name]):
            if held.index <= index and held.finish <= when:
                return held
        return None

    def _forget(self, name: str, index: int, when: float):
        held, limit = self.held[name], when - self.horizon_s
        while len(held) >= 2 and held[1].finish <= limit and held[1].index <= index:
            held.popleft()

    def score(self, frame, reference: np.ndarray, ignore: bool = True) -> dict:
        """Score frame ``frame`` for every policy against ``reference``.

        Args:
            frame: The :class:`~multiexit_ros.replay.timing.Frame` (index, stamp).
            reference: Its label (or the final exit's mask).
            ignore: Leave out the ignore index (labels) or count every pixel (masks).

        Returns:
            {policy: {'stream_from', 'stream_age_ms', 'stream_miou'}} for the frame.
        """
        when = self.query_time(frame)
        self.queries += 1
        out = {}
        for name in self.held:
            held = self._pick(name, frame.index, when)
            one = StreamingQuality(self.num_classes, self.ignore_index if ignore else None)
            mask = None if held is None else _fit(held.mask, reference.shape)
            one.update(mask, reference)
            self.quality[name].merge(one)
            if held is None:
                self.unanswered[name] += 1
                out[name] = {'stream_from': None, 'stream_age_ms': None,
                             'stream_miou': finite(one.miou())}
            else:
                age = when - held.stamp
                self.ages[name].append(age)
                out[name] = {'stream_from': held.index, 'stream_age_ms': age * 1e3,
                             'stream_miou': finite(one.miou())}
            self._forget(name, frame.index, when)
        return out

    def summary(self, name: str) -> dict:
        """One policy's streaming figures, for the replay summary."""
        q, ages = self.quality[name], self.ages[name]
        return {'streaming_miou': finite(q.miou()),
                'streaming_pixel_accuracy': finite(q.pixel_accuracy()),
                'streaming_query': self.query,
                'streaming_frames': self.queries,
                'streaming_no_mask': self.unanswered[name],
                'mean_mask_age_ms': float(np.mean(ages)) * 1e3 if ages else None}


def _fit(mask: np.ndarray, shape) -> np.ndarray:
    """``mask`` at ``shape`` (nearest neighbour) when the sizes differ."""
    if mask.shape == tuple(shape):
        return mask
    import cv2
    return cv2.resize(mask, tuple(shape)[::-1], interpolation=cv2.INTER_NEAREST)


def speed_budget_at(speeds, t: float, budget) -> float:
    """Return the speed budget at time ``t`` from a :class:`SpeedLog`, as a pipeline sees it.

    The last finite, non-negative speed received by ``t`` counts when it is not older
    than ``budget.speed_timeout_s`` (by its stamp, or its arrival when unstamped);
    otherwise the worst case, ``min_budget_s``.
    """
    from ..runtime.budget import speed_budget

    i = bisect_right(speeds.times, t)
    while i > 0:
        speed, stamp, arrived = speeds.values[i - 1]
        if speed is not None and math.isfinite(speed) and speed >= 0.0:
            age = t - (arrived if stamp is None else stamp)
            return speed_budget(speed if age <= budget.speed_timeout_s else None, budget)
        i -= 1
    return speed_budget(None, budget)


def _pct(value) -> str:
    return '-' if value is None else f'{100 * value:.1f}%'


def streaming_table(summary: dict) -> str:
    """Markdown table per policy, streaming quality first.

    Columns: streaming mIoU, per-frame mIoU, deadline misses (of processed frames),
    drops, mean mask age at query time and how many queries found no mask yet.
    """
    labels = summary.get('quality_reference', 'labels') == 'labels'
    query = summary.get('streaming_query', 'frame')
    what = 'mIoU' if labels else 'mIoU vs final'
    at = 'frame time' if query == 'frame' else 'deadline'
    lines = [f'| policy | streaming {what} (at {at}) | per-frame {what} | deadline miss | '
             f'dropped | mean mask age (ms) | no mask yet |',
             '| --- | ---: | ---: | ---: | ---: | ---: | ---: |']
    for p in summary['policies']:
        age = p.get('mean_mask_age_ms')
        lines.append(
            f'| {p["policy"]} | {_pct(p.get("streaming_miou"))} | {_pct(p.get("miou"))} | '
            f'{_pct(p.get("deadline_miss_rate"))} | {p["dropped"]} / {p["frames"]} | '
            f'{"-" if age is None else f"{age:.0f}"} | {p.get("streaming_no_mask", "-")} |')
    lines += ['', f'Streaming: each labelled frame against the most recent mask finished by '
                  f'its {"stamp" if query == "frame" else "stamp + speed budget"}, from '
                  f'whichever earlier frame; no mask yet = every pixel wrong. Mask age: query '
                  f'time - stamp of the frame the mask came from.']
    return '\n'.join(lines) + '\n'
