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
"""Long steps show progress on a terminal and stay quiet otherwise; profile without CUDA."""

import io
import json

import pytest

from multiexit_ros.cli import main
from multiexit_ros.progress import enabled
from replay_helpers import frames, write_recording


class Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self):
        return True


def test_bars_only_on_a_terminal_and_when_wanted():
    assert enabled(True, Terminal())
    assert not enabled(False, Terminal())
    assert not enabled(True, io.StringIO())


@pytest.mark.parametrize('argv, desc', [
    (['info', '--preset', 'tiny', '--size', '32x32', '--repeat', '1'], 'timing exits'),
    (['profile', '--preset', 'tiny', '--device', 'cpu', '--size', '32x32', '--warmup', '0',
      '--samples', '2', '-o', '{tmp}/p.json'], 'profiling'),
])
@pytest.mark.parametrize('quiet', [False, True])
def test_info_and_profile_show_a_bar_on_a_terminal(tmp_path, monkeypatch, capsys, argv, desc,
                                                   quiet):
    term = Terminal()
    monkeypatch.setattr('sys.stderr', term)
    argv = [a.format(tmp=tmp_path) for a in argv] + (['--no-progress'] if quiet else [])
    assert main(argv) == 0
    assert (desc in term.getvalue()) is not quiet


def test_replay_start_up_profiling_shows_a_bar(tmp_path, monkeypatch):
    rec = write_recording(tmp_path / 'bag', images=frames(2))
    term = Terminal()
    monkeypatch.setattr('sys.stderr', term)
    assert main(['replay', str(rec), '--preset', 'tiny', '--out', str(tmp_path / 'o'),
                 '--no-plots', '--policies', 'final', '--param', 'profile_samples=1',
                 '--param', 'profile_warmup=0']) == 0
    assert 'profiling latency' in term.getvalue() and 'replay' in term.getvalue()


def test_nothing_but_messages_on_stderr_when_not_a_terminal(tmp_path, capsys):
    assert main(['info', '--preset', 'tiny', '--size', '32x32', '--repeat', '1']) == 0
    assert 'timing exits' not in capsys.readouterr().err


def test_profile_without_cuda_runs_on_the_cpu_and_says_so_first(tmp_path, capsys,
                                                                monkeypatch):
    monkeypatch.setattr('torch.cuda.is_available', lambda: False)
    out = tmp_path / 'p.json'
    assert main(['profile', '--preset', 'tiny', '--size', '32x32', '--warmup', '0',
                 '--samples', '1', '-o', str(out), '--no-progress']) == 0
    first = capsys.readouterr().err.splitlines()[0]
    assert 'no CUDA device' in first and 'CPU' in first
    assert json.loads(out.read_text())['device'] == 'cpu'


def test_evaluate_shows_a_bar_and_says_what_limit_0_means(tmp_path, monkeypatch, capsys):
    from replay_helpers import tiny_checkpoint

    ckpt = tiny_checkpoint(tmp_path / 'tiny.safetensors')
    term = Terminal()
    monkeypatch.setattr('sys.stderr', term)
    assert main(['evaluate', '--model', str(ckpt), '--dataset', 'generated', '--count', '2',
                 '--size', '32x32', '--latency-repeat', '1']) == 0
    assert 'evaluating' in term.getvalue() and 'timing exits' in term.getvalue()
    monkeypatch.undo()
    with pytest.raises(SystemExit):
        main(['evaluate', '--help'])
    assert '(default 0: all images)' in ' '.join(capsys.readouterr().out.split())
