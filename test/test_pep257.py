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
"""Docstring conventions (pep257), as ament_pep257 checks them.

ament_pep257 checks every pydocstyle code but a few by default, Google-style sections
(``Args:``, ``Returns:``) included, which the pep257 convention leaves alone. This
package writes Google-style sections, so the test asks for the pep257 convention with
ament's own exceptions, under ``colcon test`` (ament_pep257) and elsewhere (pydocstyle).
"""

import subprocess
import sys

import pytest

from conftest import REPO

SOURCES = ['multiexit_ros', 'test', 'launch', 'bench', 'setup.py']
# ament_pep257's defaults: no docstring required on every definition, and the
# D203/D212 pair resolved as PEP 257 does.
AMENT_IGNORE = 'D100,D101,D102,D103,D104,D105,D106,D107,D203,D212,D404'


def _ament_ignores() -> list:
    """Codes outside the pep257 convention, plus ament's exceptions."""
    from pydocstyle.violations import conventions, ErrorRegistry

    outside = set(ErrorRegistry.get_error_codes()) - set(conventions.pep257)
    return sorted(outside | set(AMENT_IGNORE.split(',')))


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257():
    try:
        from ament_pep257.main import main
    except ImportError:
        main = None
    if main is not None:
        argv = [str(REPO / s) for s in SOURCES] + ['--ignore', *_ament_ignores()]
        assert main(argv=argv) == 0, 'Found code style errors'
        return
    if subprocess.run([sys.executable, '-m', 'pydocstyle', '--version'],
                      capture_output=True).returncode:
        pytest.skip('neither ament_pep257 nor pydocstyle is installed')
    proc = subprocess.run([sys.executable, '-m', 'pydocstyle', '--convention=pep257',
                           f'--add-ignore={AMENT_IGNORE}',
                           *SOURCES], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_ament_ignore_list_is_the_pep257_convention():
    """The list handed to ament_pep257 selects what the pydocstyle run checks."""
    pytest.importorskip('pydocstyle')
    from pydocstyle.violations import conventions, ErrorRegistry

    checked = set(ErrorRegistry.get_error_codes()) - set(_ament_ignores())
    assert checked == set(conventions.pep257) - set(AMENT_IGNORE.split(','))
    assert 'D213' not in checked and 'D407' not in checked and 'D401' in checked
