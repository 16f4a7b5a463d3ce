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
"""The perception pipeline end to end on the CPU with a tiny untrained network."""

import json
import math

import numpy as np
import pytest
import torch

from multiexit_ros.errors import ConfigError, ImageError
from multiexit_ros.labels import CAMVID
from multiexit_ros.model import CheckpointMeta, MultiExitSegNet, preset, save_checkpoint
from multiexit_ros.runtime import BudgetConfig, LatencyProfile, PerceptionPipeline, \
    PipelineConfig

LATENCY = [0.010, 0.020, 0.030, 0.045, 0.060]  # hand-written profile, one value per exit


pytestmark = pytest.mark.usefixtures('one_torch_thread')


@pytest.fixture(scope='module')
def engine(tiny_engine):
    return tiny_engine


def _profile():
    return LatencyProfile.from_samples([[v] * 8 for v in LATENCY], window=8, device='cpu',
                                       precision='fp32')


def _config(**kwargs):
    budget = BudgetConfig(blind_distance_m=1.0, min_budget_s=0.015, max_budget_s=0.2,
                          output_reserve_s=0.002, speed_timeout_s=0.5)
    return PipelineConfig(**{'device': 'cpu', 'simulate_latency': True, 'budget': budget,
                             **kwargs})


def _image(h=48, w=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_budget_from_speed_and_age_picks_the_exit(engine):
    pipe = PerceptionPipeline(engine, _config(), _profile())
    assert pipe.update_speed(20.0, stamp=100.0, now=100.0)
    result = pipe.process(_image(), stamp=100.0, now=100.005, color=True)
    rec = result.record
    # 1 m / 20 m/s = 50 ms, minus 5 ms of age and 2 ms of reserve: 43 ms -> exit 2 (30 ms).
    assert rec.speed_budget_s == pytest.approx(0.05)
    assert rec.age_s == pytest.approx(0.005) and rec.budget_s == pytest.approx(0.043)
    assert result.exit == rec.exit == 2
    assert rec.predicted_s == pytest.approx(0.030) and rec.actual_s == pytest.approx(0.030)
    assert rec.deadline_met and not rec.late and not rec.skipped
    assert rec.speed_mps == 20.0 and rec.stamp == 100.0
    assert result.mask.shape == (48, 64) and result.mask.dtype == np.uint8
    assert np.array_equal(result.color, CAMVID.palette_array()[result.mask])
    assert json.loads(json.dumps(rec.to_dict()))['exit'] == 2


@pytest.mark.parametrize('speed, expected_exit', [(0.0, 4), (10.0, 4), (20.0, 3),
                                                  (40.0, 1), (80.0, 0)])
def test_faster_means_shallower(engine, speed, expected_exit):
    pipe = PerceptionPipeline(engine, _config(), _profile())
    pipe.update_speed(speed, stamp=None, now=5.0)
    assert pipe.process(_image(), stamp=5.0, now=5.0).exit == expected_exit


@pytest.mark.parametrize('speed_at', [None, 0.0])  # never received / received long ago
def test_missing_or_stale_speed_uses_the_worst_case(engine, speed_at):
    pipe = PerceptionPipeline(engine, _config(), _profile())
    if speed_at is not None:
        pipe.update_speed(1.0, stamp=speed_at, now=speed_at)  # would allow the last exit
    result = pipe.process(_image(), stamp=1.0, now=1.0)
    assert result.record.speed_mps is None
    assert result.record.speed_budget_s == pytest.approx(0.015)
    assert result.exit == 0
    assert ('stale' if speed_at is not None else 'no speed') in result.record.reason


def test_rejected_speed_keeps_the_last_good_value(engine):
    pipe = PerceptionPipeline(engine, _config(), _profile())
    pipe.update_speed(20.0, stamp=1.0, now=1.0)
    assert pipe.update_speed(math.nan, stamp=1.1, now=1.1) is False
    assert pipe.update_speed(-3.0, stamp=1.1, now=1.1) is False
    assert pipe.process(_image(), stamp=1.2, now=1.2).record.speed_mps == 20.0


def test_old_frame_best_effort_is_late_and_misses_its_deadline(engine):
    pipe = PerceptionPipeline(engine, _config(), _profile())
    pipe.update_speed(10.0, stamp=10.0, now=10.0)
    result = pipe.process(_image(), stamp=9.85, now=10.0)  # 150 ms old, budget 100 ms
    rec = result.record
    assert result.exit == 0 and result.mask is not None
    assert rec.late and not rec.deadline_met and rec.budget_s < 0
    stats = pipe.stats()
    assert (stats['late'], stats['deadline_misses'], stats['skipped']) == (1, 1, 0)


def test_old_frame_skip_publishes_nothing_and_is_counted(engine):
    pipe = PerceptionPipeline(engine, _config(when_none_fits='skip'), _profile())
    pipe.update_speed(10.0, stamp=10.0, now=10.0)
    result = pipe.process(_image(), stamp=9.85, now=10.0, color=True)
    assert result.mask is None and result.color is None and result.exit is None
    assert result.record.skipped and not result.record.deadline_met
    assert result.record.actual_s is None
    stats = pipe.stats()
    assert (stats['frames'], stats['processed'], stats['skipped']) == (1, 0, 1)
    assert stats['deadline_misses'] == 0


def test_fixed_policy_ignores_the_budget(engine):
    pipe = PerceptionPipeline(engine, _config(policy='fixed', fixed_exit=1), _profile())
    pipe.update_speed(80.0, stamp=0.0, now=0.0)
    rec = pipe.process(_image(), stamp=0.0, now=0.0).record
    assert rec.exit == 1 and rec.late and not rec.deadline_met  # 20 ms > 13 ms left
    pipe = PerceptionPipeline(engine, _config(policy='fixed'), _profile())
    assert pipe.process(_image(), stamp=0.0, now=0.0).exit == 4


def test_simulated_replay_is_deterministic_with_a_shared_engine(engine):
    def drive(pipe):
        out = []
        for i in range(6):
            t = 10.0 + 0.1 * i
            pipe.update_speed(5.0 * i, stamp=t, now=t)
            r = pipe.process(_image(seed=i), stamp=t - 0.004 * i, now=t)
            out.append((r.record.to_dict(), r.mask))
        return out

    speed = [PerceptionPipeline(engine, _config(), _profile()) for _ in range(2)]
    fixed = PerceptionPipeline(engine, _config(policy='fixed'), _profile())
    a, b, c = drive(speed[0]), drive(speed[1]), drive(fixed)
    assert [d for d, _ in a] == [d for d, _ in b]
    assert all(np.array_equal(m1, m2) for (_, m1), (_, m2) in zip(a, b))
    assert len({d['exit'] for d, _ in a}) > 1 and {d['exit'] for d, _ in c} == {4}
    assert speed[0].profile.samples(4) == [0.060] * 8  # simulation never updates the profile


def test_measured_latency_scales_the_plan_online(engine):
    profile = _profile()
    pipe = PerceptionPipeline(engine, _config(simulate_latency=False), profile)
    pipe.update_speed(0.0, stamp=0.0, now=0.0)
    rec = pipe.process(_image(), stamp=0.0, now=0.0).record
    assert rec.exit == 4 and rec.actual_s > 0
    assert rec.deadline_met == (rec.actual_s <= rec.budget_s)
    # One observation moves the common slowdown factor by the configured rate ...
    ratio = min(max(rec.actual_s / 0.060, 0.1), 10.0)  # within the factor's limits
    expected = math.exp(0.1 * math.log(ratio))
    assert pipe.planner.slowdown == pytest.approx(expected)
    assert pipe.stats()['latency_slowdown'] == pytest.approx(expected)
    assert pipe.planner.predicted()[2] == pytest.approx(profile.quantile(2, 0.95) * expected)
    # ... and leaves the (shareable) profile itself untouched.
    assert profile.samples(4) == [0.060] * 8
    frozen = PerceptionPipeline(engine, _config(simulate_latency=False, profile_update=False),
                                _profile())
    frozen.process(_image(), stamp=0.0, now=0.0)
    assert frozen.planner.slowdown == 1.0


def test_mono_images_output_size_and_stats(engine):
    pipe = PerceptionPipeline(engine, _config(output_height=24, output_width=40), _profile())
    result = pipe.process(_image()[:, :, 1], stamp=0.0, now=0.0, color=True)
    assert result.mask.shape == (24, 40) and result.color.shape == (24, 40, 3)
    stats = pipe.stats()
    assert stats['frames'] == stats['processed'] == 1 and stats['device'] == 'cpu'
    assert stats['last_exit'] == result.exit and stats['latency_p50_s'] > 0
    assert sum(stats['exit_counts']) == 1 and len(stats['predicted_s']) == 5
    assert (pipe.num_exits, pipe.device, pipe.labels) == (5, 'cpu', CAMVID)
    pipe.warmup((30, 40), passes=1)
    assert pipe.stats()['frames'] == 1  # warm-up frames are not counted


def test_bad_image_is_an_image_error_and_not_counted(engine):
    pipe = PerceptionPipeline(engine, _config(), _profile())
    with pytest.raises(ImageError):
        pipe.process(np.zeros((8, 8, 3), np.uint16), stamp=0.0, now=0.0)
    assert pipe.stats()['frames'] == 0


def test_profile_with_other_exits_is_refused(engine):
    profile = LatencyProfile.from_samples([[0.01], [0.02]])
    with pytest.raises(ConfigError, match='2 exits, the model has 5'):
        PerceptionPipeline(engine, _config(), profile)
    with pytest.raises(ConfigError, match='output_height and output_width'):
        PerceptionPipeline(engine, _config(output_height=10), _profile())


def test_from_config_with_a_checkpoint_and_a_profile_file(tmp_path):
    torch.manual_seed(2)
    model = MultiExitSegNet(preset('tiny'))
    path = save_checkpoint(tmp_path / 'tiny.safetensors', model,
                           CheckpointMeta(model=model.config, labels=CAMVID))
    profile_path = _profile().save(tmp_path / 'profile.json')
    config = _config(model_path=str(path), profile_path=str(profile_path),
                     profile_window=4)
    pipe = PerceptionPipeline.from_config(config)
    assert pipe.profile.window == 4 and pipe.profile.p50(3) == pytest.approx(0.045)
    assert pipe.process(_image(), stamp=0.0, now=0.0).mask.shape == (48, 64)
    # Without a profile file, one is measured at start-up.
    measured = PerceptionPipeline.from_config(
        _config(model_path=str(path), profile_samples=2, profile_warmup=0), (48, 64))
    assert measured.profile.n(0) == 2 and measured.profile.resolution == [48, 64]
    with pytest.raises(ConfigError, match='latency profile not found'):
        PerceptionPipeline.from_config(_config(model_path=str(path),
                                               profile_path=str(tmp_path / 'none.json')))
