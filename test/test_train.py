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
"""`multiexit train` and `multiexit evaluate`: configs, resuming, torchrun, reports."""

import json
import os
from pathlib import Path
import subprocess
import sys

import pytest
import safetensors.torch

from multiexit_ros.cli import main
from multiexit_ros.errors import ConfigError
from multiexit_ros.model import read_meta
from multiexit_ros.train.config import load_config
from multiexit_ros.train.trainer import train

REPO = Path(__file__).resolve().parent.parent
TINY = ['--preset', 'tiny', '--dataset', 'generated', '--batch-size', '2', '--no-progress',
        '--set', 'data.size=[48,64]', '--set', 'data.crop=[48,48]',
        '--set', 'data.generated_count=8', '--set', 'data.generated_val_count=3',
        '--set', 'data.workers=0', '--set', 'run.val_batch_size=1']


def test_config_file_flags_and_overrides(tmp_path):
    path = tmp_path / 'c.yaml'
    path.write_text('model: tiny\nrouting: {name: grouped, groups: [[0, 1], [2, 3, 4]]}\n'
                    'optim: {lr: 0.05}\n')
    config = load_config(path, ['optim.lr=0.1', 'routing.include_final=true',
                                'data.crop=[32, 48]'])
    assert config.model == 'tiny' and config.optim.lr == 0.1
    assert config.routing.groups == ((0, 1), (2, 3, 4)) and config.routing.include_final
    assert config.data.crop == (32, 48)
    for bad, match in [(['optim.lr_max=1'], 'unknown keys'), (['optim.lr'], 'KEY=VALUE|key='),
                       (['routing.name=fancy'], 'unknown routing'),
                       (['run.routing_mode=fast'], 'routing_mode')]:
        with pytest.raises(ConfigError, match=match):
            load_config(path, bad)
    with pytest.raises(ConfigError, match='not found'):
        load_config(tmp_path / 'missing.yaml')


def test_example_configs_load():
    for path in sorted((REPO / 'config' / 'train').glob('*.yaml')):
        config = load_config(path)
        config.routing.validate(5)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(['train', '--dataset', 'camvid', '--data', str(tmp_path / 'nope'),
                 '--out', str(tmp_path / 'o'), *TINY[4:]]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'CamVid folder not found' in err[0]


def _config(tmp_path, name, steps, **run):
    sets = [f'run.out={tmp_path / name}', f'optim.steps={steps}', 'run.val_every=2',
            'routing.name=overlap', 'routing.window=2', 'routing.include_final=true',
            'routing.distill=0.5', 'model=tiny', 'data.dataset=generated', 'optim.batch_size=2',
            'data.size=[48,64]', 'data.crop=[48,48]', 'data.generated_count=6',
            'data.generated_val_count=2', 'data.workers=0', 'run.val_batch_size=1']
    sets += [f'run.{k}={v}' for k, v in run.items()]
    return load_config(None, sets)


def test_interrupted_training_resumes_exactly(tmp_path):
    train(_config(tmp_path, 'straight', 4), progress=False)
    train(_config(tmp_path, 'resumed', 4, stop_after=3), progress=False)
    first = read_meta(tmp_path / 'resumed' / 'last.safetensors')
    assert first.training['steps'] == 3
    metrics = train(_config(tmp_path, 'resumed', 4), progress=False)
    a = safetensors.torch.load_file(tmp_path / 'straight' / 'last.safetensors')
    b = safetensors.torch.load_file(tmp_path / 'resumed' / 'last.safetensors')
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] == b[k]).all(), k
    meta = read_meta(tmp_path / 'resumed' / 'last.safetensors')
    assert meta.training['steps'] == 4 and meta.training['strategy']['name'] == 'overlap'
    assert meta.metrics['miou'] == metrics['miou'] and len(meta.metrics['miou']) == 5
    lines = (tmp_path / 'resumed' / 'metrics.jsonl').read_text().splitlines()
    assert [json.loads(line)['step'] for line in lines] == [2, 3, 4]


@pytest.mark.slow
def test_torchrun_two_processes_match_single_process_evaluation(tmp_path):
    out = tmp_path / 'ddp'
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get('PYTHONPATH', '')]))
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
           '-m', 'multiexit_ros', 'train', *TINY, '--steps', '3', '--val-every', '3',
           '--strategy', 'overlap', '--window', '2', '--include-final',
           '--set', 'data.generated_val_count=5', '--device', 'cpu', '--out', str(out)]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    meta = read_meta(out / 'last.safetensors')
    assert meta.training['steps'] == 3
    report = tmp_path / 'report'
    assert main(['evaluate', '--model', str(out / 'last.safetensors'), '--dataset', 'generated',
                 '--split', 'val', '--count', '5', '--out', str(report),
                 '--latency-repeat', '1']) == 0
    result = json.loads((report / 'metrics.json').read_text())
    assert result['images'] == 5
    assert result['miou'] == meta.metrics['miou']
    assert result['pixel_accuracy'] == meta.metrics['pixel_accuracy']
    assert (report / 'metrics.md').read_text().count('| exit') >= 1
    assert (report / 'accuracy_vs_latency.png').read_bytes()[:4] == b'\x89PNG'
    assert all(e['latency_ms'] > 0 for e in result['exits'])
