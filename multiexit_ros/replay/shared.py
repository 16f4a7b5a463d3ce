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
"""One network pass per frame, shared by every policy of a replay.

All policies segment the same frames at various exits. :class:`SharedEngine` stands in
for the runtime's :class:`~multiexit_ros.runtime.Engine` in each policy's pipeline: the
first request for a frame starts an incremental pass (:meth:`Engine.begin`), and every
exit up to the one requested is produced once, in order, and kept until the replay
says the frame is done. A policy asking for exit 3 after another asked for exit 1
costs blocks 2-3 and their heads, not a new pass.

Latency in this mode comes from the latency profile (``simulate_latency``): the time
one shared pass takes says nothing about what one policy's pass would take.
"""

import logging
from typing import Optional, Sequence

__all__ = ['SharedEngine']

_LOG = logging.getLogger(__name__)


class _Entry:
    __slots__ = ('run', 'masks')

    def __init__(self, run):
        self.run = run
        self.masks = []


class SharedEngine:
    """An engine proxy that computes each frame's exits once.

    Args:
        engine: The real engine (its other attributes are passed through).
        share: False passes every call straight to ``engine`` (no sharing; each call is
            an end-to-end pass, timed as on the node).
    """

    def __init__(self, engine, share: bool = True):
        self._engine = engine
        self._share = share
        self._cache = {}
        self.current: Optional[int] = None  # the frame the next calls are about
        self.passes = 0                      # incremental passes started
        self.exits_computed = 0              # exit heads run through the shared path
        self.requests = 0                    # masks asked for

    def __getattr__(self, name):
        """Pass everything else through to the real engine."""
        return getattr(self._engine, name)

    def _entry(self, image, out_size) -> _Entry:
        key = (self.current, tuple(out_size) if out_size else None)
        entry = self._cache.get(key)
        if entry is None:
            entry = self._cache[key] = _Entry(self._engine.begin(image, out_size))
            self.passes += 1
        return entry

    def mask(self, image, exit_index: int, out_size: Optional[Sequence[int]] = None):
        """Return exit ``exit_index``'s mask of the current frame (computed at most once)."""
        self.requests += 1
        entry = self._entry(image, out_size)
        while len(entry.masks) <= exit_index:
            entry.masks.append(self._engine.advance(entry.run, len(entry.masks)))
            self.exits_computed += 1
        return entry.masks[exit_index]

    def infer(self, image, exit_index: int, out_size: Optional[Sequence[int]] = None):
        """Engine.infer: the shared mask (a copy), latency 0 (taken from the profile)."""
        if not self._share or self.current is None:
            return self._engine.infer(image, exit_index, out_size)
        from ..runtime.engine import InferResult

        self._engine._check_exit(exit_index)
        return InferResult(self.mask(image, exit_index, out_size).copy(), 0.0)

    def release(self, index: int):
        """Forget frame ``index``'s features and masks."""
        for key in [k for k in self._cache if k[0] == index]:
            del self._cache[key]
