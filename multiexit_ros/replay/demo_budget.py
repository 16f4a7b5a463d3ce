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
"""The demo's budget settings, derived from a latency profile.

The demo should show the trade the product makes: deep exits while standing, early ones
at motorway speed. Which budgets do that depends on the model and the machine, so the
demo derives them from the latency profile it measured (:func:`calibrate_budget`):

- an exit *fits* a budget when its predicted latency (the planner's quantile of the
  profile) plus the frame's age on arrival and the output reserve is within it, as the
  planner decides; that sum is the exit's *need*, and the budgets below keep a safety
  margin over it where they can;
- standing still (``max_budget_s``): every exit fits, even in a frame that waited in
  the one-slot buffer while the network finished the previous frame at the final exit;
- at the top speed (``blind_distance_m = top speed x budget``): exits 0..``early`` fit;
- the least budget (``min_budget_s``, also used when the speed is stale): exit 0 fits,
  so a known speed never forces a deadline miss;
- the camera rate (:func:`camera_rate`): the fastest common rate whose frame period
  covers the median latency of exits 0..``early``, so the early exits keep up with the
  camera while slower, deeper exits fall behind (frames are dropped, masks get older).

When a deeper exit needs no more time than the early ones (exits of nearly equal cost),
no budget separates them; the settings then say so in ``notes``.
"""

from dataclasses import dataclass, field
import logging

__all__ = ['calibrate_budget', 'camera_rate', 'DemoBudget', 'RATES_HZ']

RATES_HZ = (60.0, 50.0, 40.0, 30.0, 25.0, 20.0, 15.0, 12.0, 10.0, 8.0, 6.0, 5.0, 4.0, 3.0,
            2.0, 1.0)
MAX_BUDGET_S = 10.0    # budget.max_budget_s's range
MAX_DISTANCE_M = 100.0  # budget.blind_distance_m's range

_LOG = logging.getLogger(__name__)


@dataclass
class DemoBudget:
    """Budget parameters for the demo and how they were found."""

    params: dict                     # budget.* parameters (flat dotted names)
    need_s: list                     # per exit: time it needs to fit (s)
    top_speed_mps: float
    early: int                       # exits 0..early fit at the top speed
    top_budget_s: float = 0.0        # budget at the top speed
    early_p50_s: float = 0.0         # slowest median latency of exits 0..early
    notes: list = field(default_factory=list)

    def describe(self) -> str:
        """One line: the budgets at standstill and top speed, and which exits fit."""
        p = self.params
        top = self.top_budget_s
        fit_top = [k for k, n in enumerate(self.need_s) if n <= top + 1e-12]
        return (f'budget from the profile: standing {p["budget.max_budget_s"] * 1e3:.1f} ms '
                f'(every exit fits, after waiting one final-exit pass), '
                f'{self.top_speed_mps * 3.6:.0f} km/h '
                f'{top * 1e3:.1f} ms (exits {", ".join(map(str, fit_top))} fit), blind '
                f'distance {p["budget.blind_distance_m"]:.2f} m, least '
                f'{p["budget.min_budget_s"] * 1e3:.1f} ms')


def calibrate_budget(profile, quantile: float, arrival_delay_s: float, reserve_s: float,
                     top_speed_mps: float, early: int = 1,
                     margin: float = 0.1) -> DemoBudget:
    """Return blind-distance budget settings for ``profile`` (see the module doc).

    Args:
        profile: Latency profile of the model on the device.
        quantile: The planner's latency quantile.
        arrival_delay_s: Age of a frame when the node gets it.
        reserve_s: ``budget.output_reserve_s``.
        top_speed_mps: Fastest speed of the drive.
        early: Deepest exit that should still fit at the top speed.
        margin: Relative safety margin on each predicted latency.
    """
    n = profile.num_exits
    early = max(0, min(early, n - 1))
    # The planner runs exit k when its quantile <= budget - age - reserve: exit k's need.
    need = [profile.quantile(k, quantile) + arrival_delay_s + reserve_s for k in range(n)]
    grow = 1.0 + margin
    base = max(need[:early + 1])
    top = base * grow
    notes = []
    deeper = need[early + 1:]
    above = [v for v in deeper if v > base]
    if above and min(above) <= top:  # a smaller margin still keeps those out
        top = (base + min(above)) / 2
    cheap = [early + 1 + i for i, v in enumerate(deeper) if v <= base]
    if cheap:
        notes.append(f'exit(s) {", ".join(map(str, cheap))} need no more time than exits '
                     f'0..{early} on this device '
                     f'({", ".join(f"{v * 1e3:.1f}" for v in need)} ms): no budget keeps '
                     f'them out at top speed')
        _LOG.warning('demo budget: %s', notes[-1])
    wait = max(profile.quantile(k, 0.5) for k in range(n))  # one pass of the slowest exit
    # Within the parameters' ranges (a very slow or very busy machine can leave them).
    most = min(max(need) * grow + wait, MAX_BUDGET_S)
    distance = min(max(top * top_speed_mps, 0.01), MAX_DISTANCE_M)
    if most < max(need) or distance < top * top_speed_mps:
        notes.append(f'exits this slow ({", ".join(f"{v * 1e3:.0f}" for v in need)} ms) '
                     f'leave the budget ranges: budgets clamped')
        _LOG.warning('demo budget: %s', notes[-1])
    top = distance / top_speed_mps
    params = {'budget.policy': 'blind_distance',
              'budget.max_budget_s': most,
              'budget.min_budget_s': min(need[0] * grow, top, most),
              'budget.blind_distance_m': distance,
              'budget.output_reserve_s': reserve_s}
    return DemoBudget(params, need, top_speed_mps, early, top_budget_s=top, notes=notes,
                      early_p50_s=max(profile.quantile(k, 0.5) for k in range(early + 1)))


def camera_rate(calib: DemoBudget) -> float:
    """Return the fastest of :data:`RATES_HZ` at which exits 0..early keep up (median)."""
    return next((hz for hz in RATES_HZ if 1.0 / hz >= calib.early_p50_s), RATES_HZ[-1])
