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
"""Docstring conventions (pep257), as ament_pep257 checks them."""

import subprocess
import sys

import pytest

from conftest import REPO

SOURCES = ['multiexit_ros', 'test', 'launch', 'bench', 'setup.py']
# ament_pep257's defaults: no docstring required on every definition, and the
# D203/D212 pair resolved as PEP 257 does.
AMENT_IGNORE = 'D100,D101,D102,D103,D104,D105,D106,D107,D203,D212,D404'


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257():
    try:
        from ament_pep257.main import main
    except ImportError:
        main = None
    if main is not None:
        assert main(argv=[str(REPO / s) for s in SOURCES]) == 0, 'Found code style errors'
        return
    if subprocess.run([sys.executable, '-m', 'pydocstyle', '--version'],
                      capture_output=True).returncode:
        pytest.skip('neither ament_pep257 nor pydocstyle is installed')
    proc = subprocess.run([sys.executable, '-m', 'pydocstyle', '--convention=pep257',
                           f'--add-ignore={AMENT_IGNORE}',
                           *SOURCES], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
