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
"""Choosing the exit: the deepest one whose predicted latency fits the remaining budget.

Predictions are the latency profile's quantiles times a common *slowdown* factor learnt
online. Every exit shares that factor: a GPU that throttles or gets busier slows all
exits alike, so a slowdown seen on the exit that ran moves the prediction of every exit,
and a recovery seen on a shallow exit brings the deep exits back. (Updating only the
exit that ran would let a deep exit that was slow once stay predicted slow for good,
since it is then never chosen again to show that it is fast.)
"""

from dataclasses import asdict, dataclass
import math
from typing import Optional, Sequence

from ..errors import ConfigError

__all__ = ['Decision', 'Plan', 'Planner', 'choose_exit']


@dataclass(frozen=True)
class Plan:
    """The planner's choice for one frame.

    Attributes:
        exit: Exit to run, or None to skip the frame.
        predicted_s: Predicted latency of that exit (of exit 0 when skipped).
        late: The exit runs although it is not predicted to fit (best effort).
        skipped: No exit fits and the frame is dropped.
        reason: Why, in words.
    """

    exit: Optional[int]
    predicted_s: float
    late: bool
    skipped: bool
    reason: str


@dataclass
class Decision:
    """What happened to one frame; the pipeline returns one with every result.

    Attributes:
        stamp: Image header stamp (s).
        budget_s: Time the frame could still take when it arrived: the speed budget
            minus the frame's age and the output reserve (may be negative).
        age_s: Frame age at arrival (now - stamp, at least 0).
        speed_mps: Speed used for the budget; None when missing or stale (worst case).
        exit: Exit run, None when skipped.
        predicted_s: Latency predicted by the profile at the configured quantile.
        actual_s: Latency measured (or simulated from the profile's median in replay);
            None when skipped.
        deadline_met: The mask was ready within ``budget_s`` (False when skipped).
        late: The exit was run although predicted not to fit (best effort).
        skipped: No mask was produced.
        reason: Why this exit, in words.
        speed_budget_s: Budget from the speed alone, before age and reserve.
    """

    stamp: float
    budget_s: float
    age_s: float
    speed_mps: Optional[float]
    exit: Optional[int]
    predicted_s: float
    actual_s: Optional[float]
    deadline_met: bool
    late: bool
    skipped: bool
    reason: str
    speed_budget_s: float = 0.0

    def to_dict(self) -> dict:
        """JSON-ready dictionary (infinite predictions become None)."""
        d = asdict(self)
        if d['predicted_s'] in (float('inf'), float('-inf')):
            d['predicted_s'] = None
        return d


def choose_exit(predicted_s: Sequence[float], remaining_s: float,
                when_none_fits: str = 'best_effort') -> Plan:
    """Pick the deepest exit whose predicted latency is at most ``remaining_s``.

    Args:
        predicted_s: Predicted latency of each exit, in exit order.
        remaining_s: Time the frame may still take.
        when_none_fits: ``best_effort`` runs exit 0 flagged late; ``skip`` drops the frame.

    Returns:
        The :class:`Plan`.
    """
    for k in range(len(predicted_s) - 1, -1, -1):
        if predicted_s[k] <= remaining_s:
            return Plan(k, predicted_s[k], False, False,
                        f'exit {k} predicted {predicted_s[k] * 1e3:.2f} ms <= '
                        f'{remaining_s * 1e3:.2f} ms left')
    why = (f'no exit fits {remaining_s * 1e3:.2f} ms left (exit 0 predicted '
           f'{predicted_s[0] * 1e3:.2f} ms)')
    if when_none_fits == 'skip':
        return Plan(None, predicted_s[0], False, True, why + ': skipped')
    return Plan(0, predicted_s[0], True, False, why + ': best effort')


SLOWDOWN_LIMIT = 10.0  # the slowdown factor stays within [1/10, 10]


class Planner:
    """Plans exits from a :class:`~multiexit_ros.runtime.LatencyProfile`.

    Args:
        profile: Latency profile (read at every plan).
        quantile: Quantile of the profile used as the prediction.
        when_none_fits: ``best_effort`` or ``skip``.
        fixed_exit: Always run this exit (-1: the last) instead of planning; the
            decision still says whether it was predicted to fit.
        adapt_rate: Weight of each observed latency in the slowdown factor (an
            exponential moving average of log(observed / profile median)); 0 keeps
            the factor at 1.

    Attributes:
        slowdown: Current factor by which every exit's profile is scaled.
    """

    def __init__(self, profile, quantile: float = 0.95, when_none_fits: str = 'best_effort',
                 fixed_exit: Optional[int] = None, adapt_rate: float = 0.0):
        if when_none_fits not in ('best_effort', 'skip'):
            raise ConfigError(f'when_none_fits must be best_effort or skip, got '
                              f'{when_none_fits!r}')
        if not 0.0 <= quantile <= 1.0:
            raise ConfigError(f'latency quantile must be in [0, 1], got {quantile}')
        n = profile.num_exits
        if fixed_exit is not None:
            if not -1 <= fixed_exit < n:
                raise ConfigError(f'fixed_exit {fixed_exit} does not exist (exits 0..{n - 1}, '
                                  f'or -1 for the last)')
            fixed_exit = n - 1 if fixed_exit == -1 else fixed_exit
        if not 0.0 <= adapt_rate <= 1.0:
            raise ConfigError(f'latency adaptation rate must be in [0, 1], got {adapt_rate}')
        self.profile = profile
        self.quantile = quantile
        self.when_none_fits = when_none_fits
        self.fixed_exit = fixed_exit
        self.adapt_rate = adapt_rate
        self.slowdown = 1.0

    def _predict(self, exit_index: int) -> float:
        return self.profile.quantile(exit_index, self.quantile) * self.slowdown

    def predicted(self) -> list:
        """Predicted latency of every exit (s), slowdown included."""
        return [self._predict(k) for k in range(self.profile.num_exits)]

    def observe(self, exit_index: int, actual_s: float) -> float:
        """Fold an observed latency of ``exit_index`` into the slowdown factor; return it.

        Observations that say nothing (not finite, not positive, or an exit without
        samples in the profile) leave the factor as it is.
        """
        reference = self.profile.p50(exit_index)
        if (self.adapt_rate > 0.0 and math.isfinite(actual_s) and actual_s > 0.0
                and math.isfinite(reference) and reference > 0.0):
            ratio = min(max(actual_s / reference, 1.0 / SLOWDOWN_LIMIT), SLOWDOWN_LIMIT)
            log_factor = ((1.0 - self.adapt_rate) * math.log(self.slowdown)
                          + self.adapt_rate * math.log(ratio))
            self.slowdown = math.exp(log_factor)
        return self.slowdown

    def plan(self, remaining_s: float) -> Plan:
        """Choose the exit for a frame that may still take ``remaining_s``."""
        if self.fixed_exit is not None:
            k = self.fixed_exit
            pred = self._predict(k)
            fits = pred <= remaining_s
            return Plan(k, pred, not fits, False,
                        f'fixed exit {k} (predicted {pred * 1e3:.2f} ms, '
                        f'{remaining_s * 1e3:.2f} ms left)')
        return choose_exit(self.predicted(), remaining_s, self.when_none_fits)
