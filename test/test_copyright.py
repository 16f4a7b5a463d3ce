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
"""Every source file carries the copyright and licence header, as ament_copyright checks."""

import pytest

from conftest import REPO

SOURCES = ['multiexit_ros', 'test', 'launch', 'bench']


@pytest.mark.copyright
@pytest.mark.linter
def test_copyright():
    try:
        from ament_copyright.main import main
    except ImportError:
        main = None
    if main is not None:
        assert main(argv=[str(REPO / s) for s in SOURCES + ['setup.py']]) == 0, \
            'Found errors'
        return
    files = [REPO / 'setup.py'] + [p for s in SOURCES for p in (REPO / s).rglob('*.py')]
    bad = []
    for path in files:
        head = path.read_text(encoding='utf-8')[:1000]
        if not head.startswith('# Copyright ') or \
                'Licensed under the Apache License, Version 2.0' not in head:
            bad.append(str(path.relative_to(REPO)))
    assert not bad, f'files without the Apache-2.0 header: {bad}'
