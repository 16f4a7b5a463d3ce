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
"""Latency profiles: quantiles, the bounded window, JSON files, measuring, the command."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import REPO
from multiexit_ros.errors import ConfigError
from multiexit_ros.model import MultiExitSegNet, preset
from multiexit_ros.runtime import Engine, LatencyProfile, measure_profile


pytestmark = pytest.mark.usefixtures('one_torch_thread')


def _random_profile(seed=0, exits=3, n=40):
    rng = np.random.default_rng(seed)
    return LatencyProfile.from_samples(
        [list(rng.gamma(4.0, 0.005 * (k + 1), n)) for k in range(exits)], window=64,
        device='cpu', precision='fp32', resolution=[48, 64],
        model={'name': 'x', 'architecture_sha256': 'abc'})


@pytest.mark.parametrize('q', [0.0, 0.1, 0.5, 0.95, 0.99, 1.0])
def test_quantiles_match_numpy(q):
    profile = _random_profile()
    for k in range(profile.num_exits):
        assert profile.quantile(k, q) == pytest.approx(np.quantile(profile.samples(k), q))
    assert profile.p50(1) == pytest.approx(np.median(profile.samples(1)))
    assert profile.p99(2) == pytest.approx(np.quantile(profile.samples(2), 0.99))


def test_window_keeps_only_the_newest_samples():
    profile = LatencyProfile(2, window=3)
    for v in (1.0, 2.0, 3.0, 4.0):
        profile.add(0, v)
    assert profile.samples(0) == [2.0, 3.0, 4.0] and profile.n(0) == 3
    assert profile.p50(0) == 3.0
    assert profile.n(1) == 0 and math.isinf(profile.p95(1))
    profile.window = 2
    assert profile.samples(0) == [3.0, 4.0]


def test_online_update_moves_the_quantiles():
    profile = LatencyProfile.from_samples([[0.01] * 10], window=10)
    before = profile.p95(0)
    for _ in range(5):
        profile.add(0, 0.03)
    assert profile.p95(0) > before
    assert profile.add(0, math.nan) is False and profile.add(0, -1.0) is False
    assert profile.n(0) == 10


def test_save_and_load_round_trip(tmp_path):
    profile = _random_profile()
    path = profile.save(tmp_path / 'sub' / 'profile.json')
    data = json.loads(path.read_text())
    assert data['device'] == 'cpu' and data['resolution'] == [48, 64]
    assert [row['n'] for row in data['summary']] == [40, 40, 40]
    loaded = LatencyProfile.load(path)
    assert loaded.num_exits == 3 and loaded.window == 64
    assert loaded.model == profile.model and loaded.created == profile.created
    for k in range(3):
        assert loaded.samples(k) == pytest.approx(profile.samples(k), abs=1e-9)
    assert not list(tmp_path.glob('sub/*.tmp'))


@pytest.mark.parametrize('content, match', [
    (None, 'not found'),
    ('{"format": "multiexit_ros/latency_profile", ', 'corrupt'),
    ('{"format": "something else"}', 'not a latency profile'),
    ('{"format": "multiexit_ros/latency_profile", "version": 9}', 'version 9'),
    ('{"format": "multiexit_ros/latency_profile", "version": 1, "samples_s": []}',
     'non-empty'),
    ('{"format": "multiexit_ros/latency_profile", "version": 1, "samples_s": [[0.1, NaN]]}',
     'exit 0'),
    ('{"format": "multiexit_ros/latency_profile", "version": 1, "samples_s": [[0.1], '
     '["x"]]}', 'exit 1'),
])
def test_bad_profile_files_give_one_line_errors(tmp_path, content, match):
    path = tmp_path / 'profile.json'
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=match) as info:
        LatencyProfile.load(path)
    assert '\n' not in str(info.value)


def test_compatibility_checks(caplog):
    profile = _random_profile()
    profile.check_compatible(3, 'cpu', 'fp32', {'architecture_sha256': 'abc'}, (48, 64))
    with pytest.raises(ConfigError, match='3 exits, the model has 5'):
        profile.check_compatible(5)
    with pytest.raises(ConfigError, match='another architecture'):
        profile.check_compatible(3, model={'architecture_sha256': 'def'})
    with pytest.raises(ConfigError, match='measured on cpu, running on cuda:0'):
        profile.check_compatible(3, device='cuda:0')
    with pytest.raises(ConfigError, match='measured in fp32'):
        profile.check_compatible(3, precision='fp16')
    with caplog.at_level('WARNING'):
        profile.check_compatible(3, resolution=(96, 128))
    assert 'measured at [48, 64]' in caplog.text


def test_measure_profile_through_the_engine():
    torch.manual_seed(0)
    engine = Engine(MultiExitSegNet(preset('tiny')))
    profile = measure_profile(engine, (40, 56), warmup=1, samples=3)
    assert profile.num_exits == engine.num_exits
    assert all(profile.n(k) == 3 for k in range(profile.num_exits))
    assert all(0 < profile.p50(k) < 10 for k in range(profile.num_exits))
    assert profile.device == 'cpu' and profile.precision == 'fp32'
    assert profile.resolution == [40, 56] and profile.input_size == [32, 64]
    assert profile.model['architecture_sha256'] == engine.model_id['architecture_sha256']
    with pytest.raises(ConfigError, match='samples >= 1'):
        measure_profile(engine, (40, 56), samples=0)


def test_profile_command_writes_a_loadable_file(tmp_path):
    out = tmp_path / 'tiny.json'
    proc = subprocess.run(
        [sys.executable, '-m', 'multiexit_ros', 'profile', '--preset', 'tiny', '--device',
         'cpu', '--size', '48x64', '--warmup', '1', '--samples', '2', '-o', str(out)],
        capture_output=True, text=True, cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr
    assert 'p95 ms' in proc.stdout and str(out) in proc.stdout
    profile = LatencyProfile.load(out)
    assert profile.num_exits == 5 and profile.n(4) == 2
    assert profile.model['name'] == 'preset:tiny'


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine without CUDA')
def test_profile_command_without_cuda_is_a_one_line_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, '-m', 'multiexit_ros', 'profile', '--preset', 'tiny', '--device',
         'cuda', '-o', str(tmp_path / 'p.json')], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1
    assert proc.stderr.count('\n') == 1 and 'CUDA is not available' in proc.stderr
    assert not (tmp_path / 'p.json').exists()
