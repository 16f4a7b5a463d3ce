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
"""Bad input to every ``multiexit`` command: one line on stderr, exit status 1."""

import shutil
import subprocess
import sys

import pytest

from conftest import REPO
from multiexit_ros.cli import main
from replay_helpers import frames, tiny_checkpoint, write_recording

GENERATED = ['--dataset', 'generated', '--count', '1', '--size', '48x64',
             '--latency-repeat', '0']
TRAIN = ['--preset', 'tiny', '--dataset', 'generated', '--steps', '1', '--batch-size', '2',
         '--device', 'cpu', '--no-progress', '--set', 'data.size=[48,64]',
         '--set', 'data.crop=[32,32]', '--set', 'data.generated_count=2',
         '--set', 'data.generated_val_count=1', '--set', 'data.workers=0']


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp('model') / 'tiny.safetensors')


def one_line_error(capsys, command):
    err = capsys.readouterr().err.strip()
    assert err.startswith(f'multiexit {command}: error: ') and '\n' not in err, err
    return err


@pytest.mark.parametrize('argv', [
    ['replay', '{bag}', '--model', '{ckpt}', '--out', '{file}'],
    ['demo', '--preset', 'tiny', '--frames', '2', '--size', '48x64', '--out', '{file}'],
    ['evaluate', '--model', '{ckpt}', *GENERATED, '--out', '{file}/sub'],
    ['train', *TRAIN, '--out', '{file}'],
    ['profile', '--preset', 'tiny', '--device', 'cpu', '--size', '48x64', '--output',
     '{file}/profile.json'],
])
def test_output_folder_that_is_a_file(tmp_path, ckpt, capsys, argv):
    file = tmp_path / 'a_file'
    file.write_text('keep me')
    bag = write_recording(tmp_path / 'bag', images=frames(2))
    argv = [a.format(bag=bag, ckpt=ckpt, file=file) for a in argv]
    assert main(argv) == 1
    assert f'{file} is not a folder' in one_line_error(capsys, argv[0])
    assert file.read_text() == 'keep me'


def test_profile_output_that_is_a_folder(tmp_path, capsys):
    assert main(['profile', '--preset', 'tiny', '--device', 'cpu', '--size', '48x64',
                 '--output', str(tmp_path)]) == 1
    assert 'is a folder; give a file name' in one_line_error(capsys, 'profile')


def test_output_folder_that_cannot_be_created(tmp_path, capsys):
    out = '/proc/multiexit_test/out'  # nobody, root included, creates folders in /proc
    assert main(['demo', '--preset', 'tiny', '--frames', '2', '--size', '48x64',
                 '--no-progress', '--out', out]) == 1
    assert '/proc' in one_line_error(capsys, 'demo')


def test_demo_keeps_the_earlier_drive_when_the_settings_are_bad(tmp_path, capsys):
    drive = tmp_path / 'demo' / 'drive'
    drive.mkdir(parents=True)
    (drive / 'metadata.yaml').write_text('kept')
    bad_yaml = tmp_path / 'bad.yaml'
    bad_yaml.write_text('budget: [')
    for bad in (['--size', '10'], ['--config', str(bad_yaml)], ['--hz', '0']):
        assert main(['demo', '--out', str(tmp_path / 'demo'), '--preset', 'tiny', *bad]) == 1
        one_line_error(capsys, 'demo')
        assert (drive / 'metadata.yaml').read_text() == 'kept', bad


@pytest.mark.parametrize('argv, expect', [
    (['info', '--preset', 'tiny', '--device', 'bogus', '--no-latency'],
     "unknown device 'bogus'"),
    (['evaluate', '--model', '{ckpt}', *GENERATED, '--device', 'bogus'],
     "unknown device 'bogus'"),
    (['train', *TRAIN, '--device', 'bogus', '--out', '{tmp}/run'], "unknown device 'bogus'"),
    (['info', '--preset', 'tiny', '--repeat', '0'], '--repeat must be at least 1'),
    (['evaluate', '--model', '{ckpt}', *GENERATED, '--batch-size', '0'],
     '--batch-size must be at least 1'),
    (['evaluate', '--model', '{ckpt}', *GENERATED, '--workers', '-1'],
     '--workers must be at least 0'),
    (['evaluate', '--model', '{ckpt}', *GENERATED, '--limit', '-1'],
     '--limit must be at least 0'),
])
def test_bad_device_and_counts(tmp_path, ckpt, capsys, argv, expect):
    argv = [a.format(ckpt=ckpt, tmp=tmp_path) for a in argv]
    assert main(argv) == 1
    assert expect in one_line_error(capsys, argv[0])


@pytest.mark.parametrize('command', ['train', 'replay'])
@pytest.mark.parametrize('text, expect', [
    (b'\xff\xfe\x00 not text', 'not a YAML text file'),
    (b'budget: [', 'YAML'),
])
def test_bad_yaml_config(tmp_path, ckpt, capsys, command, text, expect):
    config = tmp_path / 'config.yaml'
    config.write_bytes(text)
    extra = (['--print-config'] if command == 'train' else
             [str(write_recording(tmp_path / 'bag', images=frames(2))), '--model', str(ckpt)])
    assert main([command, '--config', str(config), *extra]) == 1
    assert expect in one_line_error(capsys, command)


@pytest.mark.parametrize('override, expect', [
    ('optim.lr=[', 'cannot parse value (expected the node content'),
    ('optim.momentum=abc', "optim.momentum must be a number, got 'abc'"),
    ('optim.steps=2.5', 'optim.steps must be a whole number, got 2.5'),
    ('optim.lr=.nan', 'optim.lr must be a finite number'),
    ('data.flip=maybe', "data.flip must be true or false, got 'maybe'"),
    ('data.jitter=abc', "data.jitter must be a number, got 'abc'"),
    ('routing.window=abc', "routing.window must be a whole number, got 'abc'"),
    ('routing=5', "config section 'routing' must be a mapping"),
    ('data.workers=-1', 'data.workers >= 0'),
    ('run.val_batch_size=0', 'run.val_batch_size must be >= 1'),
    ('data.size=[0,0]', 'data.size must be two whole numbers >= 8'),
])
def test_bad_training_settings(capsys, override, expect):
    assert main(['train', '--set', override, '--print-config']) == 1
    assert expect in one_line_error(capsys, 'train')


def test_small_learning_rate_flag_is_a_number(capsys):
    assert main(['train', '--lr', '0.00001', '--print-config']) == 0
    assert 'lr: 1.0e-05' in capsys.readouterr().out


def test_diverging_training_is_one_line(tmp_path, capsys):
    assert main(['train', *TRAIN, '--steps', '2', '--lr', '1e30', '--out',
                 str(tmp_path / 'run')]) == 1
    assert 'the training diverged' in one_line_error(capsys, 'train')


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp('train') / 'run'
    assert main(['train', *TRAIN, '--out', str(out)]) == 0
    return out


@pytest.mark.parametrize('change, expect', [
    (lambda out: (out / 'train_state.pt').write_bytes(b'garbage'), 'corrupt training state'),
    (lambda out: (out / 'last.safetensors').write_bytes(b'garbage'), 'cannot resume'),
    (lambda out: None, 'another model architecture'),
    (lambda out: None, 'another optimizer'),
])
def test_resuming_a_run_that_does_not_fit(trained, tmp_path, capsys, change, expect):
    out = tmp_path / 'run'
    shutil.copytree(trained, out)
    change(out)
    argv = ['train', *TRAIN, '--steps', '2', '--out', str(out)]
    if 'architecture' in expect:
        argv += ['--preset', 'small']
    if 'optimizer' in expect:
        argv += ['--set', 'optim.optimizer=adamw']
    assert main(argv) == 1
    err = one_line_error(capsys, 'train')
    assert expect in err and '--no-resume' in err


def test_unreadable_image_in_a_loader_worker_is_one_line(tmp_path, ckpt):
    import cv2
    import numpy as np

    for name in ('val', 'valannot'):
        (tmp_path / name).mkdir()
    for i in range(2):
        cv2.imwrite(str(tmp_path / 'val' / f'f{i}.png'), np.zeros((48, 64, 3), np.uint8))
        cv2.imwrite(str(tmp_path / 'valannot' / f'f{i}.png'), np.zeros((48, 64), np.uint8))
    (tmp_path / 'val' / 'f1.png').write_bytes(b'\x89PNG cut short')
    # In a process of its own: torch takes seconds to stop a worker that failed.
    proc = subprocess.run(
        [sys.executable, '-m', 'multiexit_ros', 'evaluate', '--model', str(ckpt),
         '--dataset', 'camvid', '--data', str(tmp_path), '--latency-repeat', '0',
         '--workers', '1'], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    err = proc.stderr.strip()
    assert err == f'multiexit evaluate: error: {tmp_path}/val/f1.png: not a readable image'


@pytest.mark.parametrize('size, expect', [
    ('360', 'HEIGHTxWIDTH'), ('4.5x6', 'HEIGHTxWIDTH'), ('48x64x3', 'HEIGHTxWIDTH'),
    ('4x4', 'at least 8x8'), ('0x64', 'at least 8x8'),
    ('100000x100000', 'at most 8192x8192'),  # was a failed 120 GB allocation
])
def test_bad_size_strings(capsys, size, expect):
    assert main(['info', '--preset', 'tiny', '--no-latency', '--size', size]) == 1
    assert expect in one_line_error(capsys, 'info')
