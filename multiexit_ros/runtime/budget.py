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
"""From the vehicle's speed to the time a frame may take.

Pure functions plus :class:`SpeedTracker`, which holds the last good speed and says when
it is too old to trust. Every budget lies in ``[min_budget_s, max_budget_s]``, and the
minimum is the worst case used whenever the speed is unknown: a missing speed must
never buy a frame more time.
"""

from bisect import bisect_right
from dataclasses import dataclass
import logging
import math
from typing import Optional, Sequence

from .config import BudgetConfig

__all__ = ['SpeedReading', 'SpeedTracker', 'blind_distance_budget', 'frame_budget',
           'speed_budget', 'table_budget']

_log = logging.getLogger(__name__)


def blind_distance_budget(speed_mps: float, distance_m: float, min_s: float,
                          max_s: float) -> float:
    """Budget so that the vehicle travels at most ``distance_m`` during one frame.

    ``budget = distance_m / speed_mps`` clamped to ``[min_s, max_s]``; standing still
    (speed 0) gives ``max_s``.
    """
    if speed_mps <= 0.0:
        return max_s
    return min(max(distance_m / speed_mps, min_s), max_s)


def table_budget(speed_mps: float, speeds: Sequence[float], budgets: Sequence[float]) -> float:
    """Interpolate budgets linearly between (speed, budget) points; clamp beyond the ends.

    Args:
        speed_mps: Vehicle speed.
        speeds: Strictly increasing speeds (m/s).
        budgets: Budget (s) at each of ``speeds``.
    """
    if speed_mps <= speeds[0]:
        return float(budgets[0])
    if speed_mps >= speeds[-1]:
        return float(budgets[-1])
    i = bisect_right(speeds, speed_mps)
    s0, s1, b0, b1 = speeds[i - 1], speeds[i], budgets[i - 1], budgets[i]
    return float(b0 + (b1 - b0) * (speed_mps - s0) / (s1 - s0))


def speed_budget(speed_mps: Optional[float], config: BudgetConfig) -> float:
    """Budget (s) for a speed under ``config``'s policy; None (unknown) gives the minimum."""
    if speed_mps is None:
        return config.min_budget_s
    if config.policy == 'table':
        budget = table_budget(speed_mps, config.table_speeds_mps, config.table_budgets_s)
        return min(max(budget, config.min_budget_s), config.max_budget_s)
    return blind_distance_budget(speed_mps, config.blind_distance_m, config.min_budget_s,
                                 config.max_budget_s)


def frame_budget(budget_s: float, stamp: float, now: float, reserve_s: float) -> tuple:
    """Time a frame may still take: the budget minus its age and the output reserve.

    Args:
        budget_s: Budget from the speed.
        stamp: Image header stamp (s).
        now: Current time (s), same clock as ``stamp``.
        reserve_s: Time kept for publishing.

    Returns:
        (remaining_s, age_s); the age is never negative (a stamp from the future, i.e.
        clock skew, counts as age 0) and ``remaining_s`` may be negative.
    """
    age = max(now - stamp, 0.0)
    return budget_s - age - reserve_s, age


@dataclass(frozen=True)
class SpeedReading:
    """The speed the budget is computed from.

    Attributes:
        speed_mps: Speed to use, or None when unknown or stale (use the worst case).
        last_mps: Last good speed received, even if stale (for diagnostics).
        age_s: Age of the last good speed, or None if none was received.
        reason: Why ``speed_mps`` is None ('' when it is fresh).
    """

    speed_mps: Optional[float]
    last_mps: Optional[float]
    age_s: Optional[float]
    reason: str


class SpeedTracker:
    """The latest good vehicle speed, with its stamp.

    Args:
        timeout_s: A speed older than this is stale.
    """

    def __init__(self, timeout_s: float):
        self.timeout_s = float(timeout_s)
        self._speed: Optional[float] = None
        self._stamp: Optional[float] = None
        self.rejected = 0  # bad values received so far

    def update(self, speed_mps: float, stamp: Optional[float], now: float) -> bool:
        """Take a new speed; NaN, infinite or negative values are rejected.

        Args:
            speed_mps: Speed (m/s, magnitude).
            stamp: Time the speed was measured; None stamps it with ``now``.
            now: Current time.

        Returns:
            True when accepted; False when rejected (logged, the last good value kept).
        """
        try:
            speed = float(speed_mps)
        except (TypeError, ValueError):
            speed = math.nan
        stamp = now if stamp is None else stamp
        try:
            stamp = float(stamp)
        except (TypeError, ValueError):
            stamp = math.nan
        if not math.isfinite(speed) or speed < 0.0 or not math.isfinite(stamp):
            self.rejected += 1
            if self.rejected == 1 or self.rejected % 100 == 0:
                _log.warning('rejected speed %r (stamp %r): must be a finite, non-negative '
                             'number; keeping %s (%d rejected so far)', speed_mps, stamp,
                             'none' if self._speed is None else f'{self._speed:.2f} m/s',
                             self.rejected)
            return False
        if self._stamp is not None and stamp < self._stamp:
            _log.debug('speed stamp %.3f is older than the last one %.3f; ignored', stamp,
                       self._stamp)
            return True  # a valid but out-of-order message: keep the newer one
        self._speed, self._stamp = speed, stamp
        return True

    def reading(self, now: float) -> SpeedReading:
        """Return the speed to use at ``now`` (None when missing or stale)."""
        if self._speed is None:
            return SpeedReading(None, None, None, 'no speed received: worst-case budget')
        age = max(now - self._stamp, 0.0)
        if age > self.timeout_s:
            return SpeedReading(None, self._speed, age,
                                f'speed stale ({age:.3f} s old > {self.timeout_s:g} s): '
                                f'worst-case budget')
        return SpeedReading(self._speed, self._speed, age, '')
