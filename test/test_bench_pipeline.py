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
"""The pipeline overhead benchmark runs and writes its results."""

import json
import os
import subprocess
import sys

from conftest import REPO


def test_pipeline_overhead_bench_writes_json_and_markdown(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, str(REPO / 'bench' / 'pipeline_overhead.py'), '--preset', 'tiny',
         '--sizes', '40x56,36x50', '--device', 'cpu', '--samples', '3', '--warmup', '1',
         '--threads', '1', '--out', str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / 'pipeline_overhead_cpu.json').read_text())
    rows = results['modes'][0]['exits']
    assert [(r['size'], r['exit']) for r in rows] == [
        (s, k) for s in ([40, 56], [36, 50]) for k in range(5)]
    for r in rows:
        assert r['n'] == 3 and r['overhead_ratio'] > 0 and r['threads'] == 1
        assert r['pipeline_p99_over_p50'] >= 1.0
        assert set(r['stages_p50_ms']) >= {'resize', 'preprocess', 'network', 'postprocess',
                                           'ref_upsample', 'ref_argmax', 'ref_copy'}
    assert len(results['targets']) == 10
    markdown = (tmp_path / 'pipeline_overhead_cpu.md').read_text()
    assert '## GPU' in markdown and '| 1 | 36x50 | 4 |' in markdown and 'Stages' in markdown
