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

import pytest

from multiexit_ros.cli import main
from replay_helpers import frames, tiny_checkpoint, write_recording

GENERATED = ['--dataset', 'generated', '--count', '1', '--size', '48x64',
             '--latency-repeat', '0']
TRAIN = ['--preset', 'tiny', '--dataset', 'generated', '--steps', '1', '--batch-size', '1',
         '--device', 'cpu', '--no-progress', '--set', 'data.size=[48,64]',
         '--set', 'data.crop=[32,32]', '--set', 'data.generated_count=1',
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
