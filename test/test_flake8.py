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
"""flake8 as ament_flake8 runs it: its plugins and rules, with the project's setup.cfg.

Under ``colcon test`` ament_flake8 runs with setup.cfg's [flake8] section (ament's own
configuration plus the package's import group); elsewhere flake8 with the same plugins
(pinned in requirements/constraints.txt) reads the same section.
"""

import shutil
import subprocess
import sys

import pytest

from conftest import REPO

SOURCES = [s for s in ['multiexit_ros', 'test', 'launch', 'bench', 'setup.py']
           if (REPO / s).exists()]
CONFIG = REPO / 'setup.cfg'


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8():
    try:
        from ament_flake8.main import main_with_errors
    except ImportError:
        main_with_errors = None
    if main_with_errors is not None:
        rc, errors = main_with_errors(argv=['--config', str(CONFIG),
                                            *[str(REPO / s) for s in SOURCES]])
        assert rc == 0, f'Found {len(errors)} code style errors / warnings:\n' + '\n'.join(errors)
        return
    if shutil.which('flake8') is None and subprocess.run(
            [sys.executable, '-m', 'flake8', '--version'], capture_output=True).returncode:
        pytest.skip('neither ament_flake8 nor flake8 is installed')
    proc = subprocess.run([sys.executable, '-m', 'flake8', f'--config={CONFIG}', *SOURCES],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
