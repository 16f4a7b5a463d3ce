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
"""Without PyTorch, test modules that need it are skipped with a reason, not errors.

A ROS 2 machine may run ``colcon test`` before PyTorch is installed; the lint tests
must still run there. PyTorch is hidden from a child pytest by a None in sys.modules.
"""

import subprocess
import sys

from conftest import REPO

HIDE = ("import sys; sys.modules['torch'] = None; sys.modules['safetensors'] = None; "
        'import pytest; sys.exit(pytest.main(sys.argv[1:]))')


def _pytest(*args):
    return subprocess.run([sys.executable, '-c', HIDE, '-p', 'no:cacheprovider', *args],
                          cwd=REPO, capture_output=True, text=True, timeout=600)


def test_the_whole_suite_collects_without_torch():
    proc = _pytest('-q', '--collect-only', 'test')
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert 'error' not in proc.stdout.splitlines()[-1]


def test_modules_needing_torch_skip_with_the_reason_and_the_rest_runs():
    proc = _pytest('-q', '-rs', 'test/test_engine.py', 'test/test_node_logic.py',
                   'test/test_budget.py', 'test/test_copyright.py')
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-2000:]
    assert 'SKIPPED' in out and 'test_engine.py' in out and 'needs torch' in out
    assert ' passed' in out.splitlines()[-1] and 'skipped' in out.splitlines()[-1]
