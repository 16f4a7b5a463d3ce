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
"""Progress bars for long steps: shown on a terminal, quiet otherwise.

Library functions take a plain ``progress(n)`` callback (n steps done) and know nothing
of bars; the commands make the bar with :func:`bar` and pass its ``update``.
"""

import sys

__all__ = ['bar', 'enabled']


def enabled(wanted: bool = True, stream=None) -> bool:
    """Whether to draw a bar: wanted (no ``--no-progress``) and stderr is a terminal."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, 'isatty', None)
    return bool(wanted and isatty is not None and isatty())


def bar(total, desc: str, wanted: bool = True, unit: str = 'pass'):
    """Return a tqdm bar on stderr, disabled unless :func:`enabled` (a no-op then)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled(wanted), leave=False,
                file=sys.stderr, dynamic_ncols=True)
