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
"""The planner against hand-written latency profiles."""

import pytest

from multiexit_ros.errors import ConfigError
from multiexit_ros.runtime import choose_exit, LatencyProfile, Planner

# Five exits; every exit's samples are 10 values spread around its median.
MEDIANS = [0.010, 0.020, 0.030, 0.045, 0.060]


def _profile(medians=MEDIANS, spread=0.1):
    return LatencyProfile.from_samples(
        [[m * (1 - spread + 2 * spread * i / 9) for i in range(10)] for m in medians])


def test_choose_exit_picks_the_deepest_that_fits():
    pred = [0.01, 0.02, 0.03, 0.04]
    assert choose_exit(pred, 0.035).exit == 2
    assert choose_exit(pred, 1.0).exit == 3
    assert choose_exit(pred, 0.01).exit == 0  # equal to the budget fits
    plan = choose_exit(pred, 0.025)
    assert (plan.exit, plan.predicted_s, plan.late, plan.skipped) == (1, 0.02, False, False)


def test_choose_exit_is_not_fooled_by_a_non_monotonic_profile():
    # A deeper exit measured faster than a shallower one is still the deepest that fits.
    assert choose_exit([0.01, 0.05, 0.03], 0.04).exit == 2


@pytest.mark.parametrize('remaining', [0.005, 0.0, -0.2])
def test_none_fits_best_effort_runs_exit_0_flagged_late(remaining):
    plan = choose_exit([0.01, 0.02], remaining, 'best_effort')
    assert plan.exit == 0 and plan.late and not plan.skipped
    assert plan.predicted_s == 0.01
    assert 'best effort' in plan.reason


def test_none_fits_skip_drops_the_frame():
    plan = choose_exit([0.01, 0.02], 0.005, 'skip')
    assert plan.exit is None and plan.skipped and not plan.late
    assert 'skipped' in plan.reason


@pytest.mark.parametrize('remaining, expected', [
    (0.100, 4), (0.060, 3), (0.0495, 3), (0.0485, 2), (0.032, 1), (0.0215, 0)])
def test_planner_uses_the_profile_quantile(remaining, expected):
    # The 0.95 quantile is about 1.09 x the median with this spread.
    assert Planner(_profile(), quantile=0.95).plan(remaining).exit == expected


def test_a_higher_quantile_is_more_cautious():
    profile = _profile(spread=0.3)
    remaining = 0.062  # above exit 4's median (0.060), below its upper tail
    assert Planner(profile, quantile=0.0).plan(remaining).exit == 4
    assert Planner(profile, quantile=0.99).plan(remaining).exit == 3


def test_planner_follows_online_updates():
    profile = LatencyProfile.from_samples([[0.01] * 4, [0.02] * 4], window=4)
    planner = Planner(profile, quantile=0.5)
    assert planner.plan(0.025).exit == 1
    for _ in range(4):  # exit 1 slows down (thermal throttling)
        profile.add(1, 0.04)
    assert planner.plan(0.025).exit == 0


def _drive(planner, remaining, frames, speed_factor):
    """Plan and 'run' frames on a GPU ``speed_factor`` times slower than profiled."""
    exits = []
    for _ in range(frames):
        k = planner.plan(remaining).exit
        planner.observe(k, MEDIANS[k] * speed_factor)
        exits.append(k)
    return exits


def test_a_throttled_gpu_moves_every_exit_and_the_plan_recovers_after():
    planner = Planner(_profile(), quantile=0.5, adapt_rate=0.2)
    remaining = 0.050  # fits exit 3 (0.045) at full speed
    assert _drive(planner, remaining, 5, 1.0) == [3] * 5 and planner.slowdown == 1.0
    # Throttled to 1.5x: exit 3 now takes 0.0675; the plan falls to exit 2 (0.045).
    throttled = _drive(planner, remaining, 40, 1.5)
    assert throttled[-10:] == [2] * 10 and planner.slowdown == pytest.approx(1.5, rel=0.01)
    # Exit 4 never ran, yet its prediction rose with the others.
    assert planner.predicted()[4] == pytest.approx(0.060 * 1.5, rel=0.01)
    # Back to full speed: only exit 2 runs, and that is enough to bring exit 3 back.
    recovered = _drive(planner, remaining, 40, 1.0)
    assert recovered[-10:] == [3] * 10 and planner.slowdown == pytest.approx(1.0, rel=0.01)


def test_observations_that_say_nothing_leave_the_slowdown_alone():
    planner = Planner(_profile(), adapt_rate=0.5)
    for value in (float('nan'), float('inf'), 0.0, -0.01):
        assert planner.observe(1, value) == 1.0
    empty = Planner(LatencyProfile(2), adapt_rate=0.5)  # no samples: no reference median
    assert empty.observe(0, 0.01) == 1.0
    assert Planner(_profile()).observe(1, 0.04) == 1.0  # adapt_rate 0: never adapts
    # One absurd sample moves the factor at most to the limit, weighted by the rate.
    assert planner.observe(0, 1e6) == pytest.approx(10.0 ** 0.5)


def test_the_adaptation_rate_is_checked():
    with pytest.raises(ConfigError, match='adaptation rate'):
        Planner(_profile(), adapt_rate=1.5)


def test_fixed_policy_always_runs_its_exit_and_says_if_it_is_late():
    profile = _profile()
    planner = Planner(profile, fixed_exit=-1)
    plan = planner.plan(1.0)
    assert plan.exit == 4 and not plan.late
    plan = planner.plan(0.001)
    assert plan.exit == 4 and plan.late and not plan.skipped
    assert Planner(profile, fixed_exit=1).plan(0.0).exit == 1


@pytest.mark.parametrize('kwargs, match', [
    ({'fixed_exit': 5}, 'does not exist'),
    ({'fixed_exit': -2}, 'does not exist'),
    ({'when_none_fits': 'panic'}, 'best_effort or skip'),
    ({'quantile': 1.5}, 'quantile'),
])
def test_bad_planner_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Planner(_profile(), **kwargs)
