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
"""Simulated time: when each frame reaches the network, as on the car.

The node keeps one frame in a one-slot buffer and processes frames one at a time
(latest frame wins). :class:`NodeTimeline` replays that for one policy: frames arrive at
their recorded times; while the network is busy with a frame (for that frame's latency,
measured or taken from a latency profile) a newer arrival waits in the slot and
replaces whatever waited there, which is then counted as dropped. When the network
becomes free it takes the waiting frame at once. Every frame ends as exactly one of
``processed``, ``dropped`` or ``rejected`` (undecodable, or skipped by the planner),
each with a reason.
"""

from bisect import bisect_right
from dataclasses import dataclass, field
import math
from typing import Callable, Optional

import numpy as np

__all__ = ['Frame', 'NodeTimeline', 'Outcome', 'SpeedLog']

PROCESSED, DROPPED, REJECTED = 'processed', 'dropped', 'rejected'


@dataclass
class Frame:
    """One camera message of the recording.

    Attributes:
        index: Position among the camera messages (0-based).
        arrival: Recorded (receive) time in seconds: when the node would get it.
        stamp: Header stamp in seconds (capture time; the frame's age counts from it).
        image: Decoded RGB (H, W, 3) or mono (H, W) uint8; None when undecodable.
        error: Why it could not be decoded ('' when it could).
        stamp_ns: Header stamp in integer nanoseconds (exact, for matching labels).
    """

    index: int
    arrival: float
    stamp: float
    image: Optional[np.ndarray] = None
    error: str = ''
    stamp_ns: int = 0


@dataclass
class Outcome:
    """What one policy did with one frame."""

    status: str                        # processed, dropped or rejected
    reason: str                        # why, in words
    start: Optional[float] = None      # when the network took it (s, recorded clock)
    finish: Optional[float] = None     # when its mask was ready
    exit: Optional[int] = None         # exit run (processed frames)
    latency_s: Optional[float] = None  # time the network was busy with it
    decision: dict = field(default_factory=dict)  # the runtime's Decision, as a dict
    mask: Optional[np.ndarray] = None  # (H, W) class ids, processed frames only

    def record(self) -> dict:
        """JSON-ready dictionary without the mask."""
        d = {'status': self.status, 'reason': self.reason, 'start': self.start,
             'finish': self.finish, 'exit': self.exit, 'latency_s': self.latency_s}
        d.update({k: v for k, v in self.decision.items() if k not in d and k != 'stamp'})
        return d


class SpeedLog:
    """Speed messages in recorded-time order, read by every policy at its own pace."""

    def __init__(self):
        self.times, self.values = [], []

    def add(self, t: float, speed: float, stamp: Optional[float]):
        """Append one speed message received at recorded time ``t``."""
        self.times.append(t)
        self.values.append((speed, stamp, t))

    def upto(self, start: int, t: float) -> tuple:
        """Return (messages after index ``start`` with time <= ``t``, new index)."""
        end = bisect_right(self.times, t, lo=start)
        return self.values[start:end], end

    def at(self, t: float) -> Optional[float]:
        """Return the last speed received at or before ``t`` (None before the first)."""
        i = bisect_right(self.times, t)
        return self.values[i - 1][0] if i else None


class NodeTimeline:
    """One policy's node: a busy network and a one-slot, latest-frame-wins buffer.

    Args:
        name: Policy name.
        process: ``process(frame, now) -> Outcome`` runs the policy on a frame taken by
            the network at time ``now``; the outcome's ``latency_s`` is how long the
            network stays busy (0 for rejected frames).
        speeds: The shared :class:`SpeedLog`.
        feed_speed: ``feed_speed(speed, stamp, now)`` hands one speed message to the
            policy; called for every message up to the time a frame is taken.
        done: ``done(frame, outcome)`` receives every frame's final outcome.
    """

    def __init__(self, name: str, process: Callable, speeds: SpeedLog, feed_speed: Callable,
                 done: Callable):
        self.name = name
        self._process = process
        self._speeds = speeds
        self._feed = feed_speed
        self._done = done
        self._speed_index = 0
        self.busy_until = -math.inf
        self.waiting: Optional[Frame] = None
        self.counts = {PROCESSED: 0, DROPPED: 0, REJECTED: 0}

    def _start(self, frame: Frame, now: float):
        pending, self._speed_index = self._speeds.upto(self._speed_index, now)
        for speed, stamp, t in pending:
            self._feed(speed, stamp, t)
        if frame.image is None:
            out = Outcome(REJECTED, frame.error or 'undecodable image', start=now, finish=now,
                          latency_s=0.0)
        else:
            out = self._process(frame, now)
        out.start = now
        busy = out.latency_s or 0.0
        out.finish = now + busy
        self.busy_until = now + busy
        self.counts[out.status] += 1
        self._done(frame, out)

    def advance(self, t: float):
        """Let the network take the waiting frame if it becomes free by time ``t``."""
        if self.waiting is not None and self.busy_until <= t:
            frame, self.waiting = self.waiting, None
            self._start(frame, max(self.busy_until, frame.arrival))

    def arrive(self, frame: Frame):
        """Deliver a frame at its arrival time."""
        self.advance(frame.arrival)
        if self.waiting is None and self.busy_until <= frame.arrival:
            self._start(frame, frame.arrival)
            return
        if self.waiting is not None:
            old = self.waiting
            self.counts[DROPPED] += 1
            self._done(old, Outcome(DROPPED, f'replaced by frame {frame.index} while the '
                                             f'network was busy'))
        self.waiting = frame

    def finish(self):
        """End of the recording: the waiting frame (if any) is still processed."""
        self.advance(math.inf)
