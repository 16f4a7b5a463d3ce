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
"""The package imports without ROS, and the command-line tool answers."""

import subprocess
import sys

from conftest import REPO


def test_import_without_rclpy():
    code = ('import sys; sys.modules["rclpy"] = None; import multiexit_ros, '
            'multiexit_ros.cli, multiexit_ros.model; print(multiexit_ros.__version__)')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()


def test_cli_info_runs_on_a_preset():
    proc = subprocess.run([sys.executable, '-m', 'multiexit_ros', 'info', '--preset', 'tiny',
                           '--size', '64x96', '--repeat', '1'],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert 'GFLOPs' in proc.stdout
    assert len([ln for ln in proc.stdout.splitlines() if ln.strip()[:1].isdigit()]) == 5


def test_cli_reports_a_bad_checkpoint_in_one_line(tmp_path):
    bad = tmp_path / 'bad.safetensors'
    bad.write_bytes(b'not a checkpoint')
    proc = subprocess.run([sys.executable, '-m', 'multiexit_ros', 'info', '--model', str(bad)],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1
    assert proc.stderr.count('\n') == 1 and 'Traceback' not in proc.stderr
    assert 'bad.safetensors' in proc.stderr


def test_cli_names_a_missing_runtime_dependency():
    code = ('import sys; sys.modules["safetensors"] = None; from multiexit_ros.cli import main; '
            'sys.exit(main(["info", "--preset", "tiny"]))')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          cwd=REPO)
    assert proc.returncode == 1
    assert "missing dependency 'safetensors'" in proc.stderr
    assert 'Traceback' not in proc.stderr
