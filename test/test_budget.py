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
"""Speed to latency budget: both policies, frame age, and untrustworthy speeds."""

import math

import pytest

from multiexit_ros.errors import ConfigError
from multiexit_ros.runtime import (blind_distance_budget, BudgetConfig, frame_budget,
                                   speed_budget, SpeedTracker, table_budget)


@pytest.mark.parametrize('speed, expected', [
    (10.0, 0.1),     # 1 m at 10 m/s
    (20.0, 0.05),
    (0.0, 0.2),      # standing still: the maximum
    (2.0, 0.2),      # 0.5 s clamped to the maximum
    (200.0, 0.015),  # 5 ms clamped to the minimum
])
def test_blind_distance_budget_at_known_speeds(speed, expected):
    config = BudgetConfig(blind_distance_m=1.0, min_budget_s=0.015, max_budget_s=0.2)
    assert speed_budget(speed, config) == pytest.approx(expected)
    assert blind_distance_budget(speed, 1.0, 0.015, 0.2) == pytest.approx(expected)


def test_blind_distance_scales_with_the_distance():
    assert blind_distance_budget(10.0, 3.0, 0.0, 1.0) == pytest.approx(0.3)


@pytest.mark.parametrize('speed, expected', [
    (0.0, 0.2), (2.5, 0.15), (5.0, 0.1), (10.0, 0.075), (30.0, 0.025),
    (-1.0, 0.2),   # below the first point: clamped to it
    (90.0, 0.025),  # beyond the last point: clamped to it
])
def test_table_budget_interpolates_linearly_and_clamps_at_the_ends(speed, expected):
    speeds, budgets = [0.0, 5.0, 15.0, 30.0], [0.2, 0.1, 0.05, 0.025]
    assert table_budget(speed, speeds, budgets) == pytest.approx(expected)
    config = BudgetConfig(policy='table', table_speeds_mps=speeds, table_budgets_s=budgets,
                          min_budget_s=0.0, max_budget_s=1.0)
    assert speed_budget(max(speed, 0.0), config) == pytest.approx(expected)


def test_table_budget_stays_within_min_and_max():
    config = BudgetConfig(policy='table', table_speeds_mps=[0.0, 10.0],
                          table_budgets_s=[0.5, 0.001], min_budget_s=0.01, max_budget_s=0.3)
    assert speed_budget(0.0, config) == pytest.approx(0.3)
    assert speed_budget(10.0, config) == pytest.approx(0.01)


def test_single_point_table_is_constant():
    assert table_budget(7.0, [3.0], [0.04]) == pytest.approx(0.04)


def test_unknown_speed_gives_the_minimum_for_both_policies():
    for policy in ('blind_distance', 'table'):
        config = BudgetConfig(policy=policy, min_budget_s=0.03)
        assert speed_budget(None, config) == 0.03


def test_frame_age_and_reserve_are_subtracted():
    remaining, age = frame_budget(0.1, stamp=10.0, now=10.03, reserve_s=0.002)
    assert age == pytest.approx(0.03)
    assert remaining == pytest.approx(0.068)
    remaining, age = frame_budget(0.05, stamp=10.0, now=10.2, reserve_s=0.0)
    assert remaining == pytest.approx(-0.15)  # an old frame has no time left


def test_stamp_from_the_future_counts_as_age_zero():
    remaining, age = frame_budget(0.1, stamp=11.0, now=10.0, reserve_s=0.01)
    assert age == 0.0
    assert remaining == pytest.approx(0.09)


def test_tracker_without_speed_reports_worst_case():
    tracker = SpeedTracker(timeout_s=0.5)
    reading = tracker.reading(now=5.0)
    assert reading.speed_mps is None and reading.last_mps is None
    assert 'no speed' in reading.reason


def test_tracker_fresh_then_stale():
    tracker = SpeedTracker(timeout_s=0.5)
    assert tracker.update(12.0, stamp=100.0, now=100.0)
    assert tracker.reading(now=100.4).speed_mps == 12.0
    stale = tracker.reading(now=100.6)
    assert stale.speed_mps is None
    assert stale.last_mps == 12.0 and stale.age_s == pytest.approx(0.6)
    assert 'stale' in stale.reason


@pytest.mark.parametrize('bad', [math.nan, math.inf, -math.inf, -0.1, 'fast', None])
def test_bad_speed_is_rejected_and_the_last_good_value_kept(bad, caplog):
    tracker = SpeedTracker(timeout_s=1.0)
    assert tracker.update(8.0, stamp=1.0, now=1.0)
    with caplog.at_level('WARNING'):
        assert tracker.update(bad, stamp=1.1, now=1.1) is False
    assert 'rejected speed' in caplog.text
    assert tracker.reading(now=1.2).speed_mps == 8.0
    assert tracker.rejected == 1


def test_non_finite_stamp_is_rejected():
    tracker = SpeedTracker(timeout_s=1.0)
    assert tracker.update(3.0, stamp=math.nan, now=1.0) is False
    assert tracker.reading(now=1.0).speed_mps is None


def test_missing_stamp_is_stamped_on_receipt():
    tracker = SpeedTracker(timeout_s=0.5)
    assert tracker.update(4.0, stamp=None, now=50.0)
    assert tracker.reading(now=50.5).speed_mps == 4.0
    assert tracker.reading(now=50.51).speed_mps is None  # stale 0.5 s after receipt


def test_out_of_order_speed_does_not_replace_a_newer_one():
    tracker = SpeedTracker(timeout_s=1.0)
    tracker.update(10.0, stamp=2.0, now=2.0)
    assert tracker.update(1.0, stamp=1.5, now=2.1)
    assert tracker.reading(now=2.1).speed_mps == 10.0


@pytest.mark.parametrize('kwargs, match', [
    ({'min_budget_s': 0.3, 'max_budget_s': 0.2}, 'larger than'),
    ({'table_speeds_mps': [0.0, 1.0], 'table_budgets_s': [0.1]}, 'equal length'),
    ({'table_speeds_mps': [0.0, 5.0, 5.0], 'table_budgets_s': [0.1, 0.1, 0.1]},
     'strictly increasing'),
    ({'policy': 'random'}, 'budget.policy'),
    ({'blind_distance_m': -1.0}, 'budget.blind_distance_m'),
    ({'min_budget_s': math.nan}, 'must be a number'),
])
def test_bad_budget_config_is_a_config_error(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        BudgetConfig(**kwargs)
