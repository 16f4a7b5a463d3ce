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
"""What the ROS node does with each message, without ROS.

The node (``node.py``) only wires these to rclpy: a one-slot latest-frame buffer
between the camera callback and the inference callback, the per-frame work (decode,
run the pipeline, build the output messages), the speed handling, and the contents of
the diagnostics message. Tests drive them with rosbags message objects.
"""

from dataclasses import dataclass
import logging
import math
import threading
import time
from typing import Any, Callable, Optional

from .errors import MultiExitError
from .messages import (array_to_image, compressed_to_array, image_to_array, MAX_IMAGE_PIXELS,
                       speed_from_msg, stamp_to_sec)

__all__ = ['FrameHandler', 'FrameOutput', 'LatestFrameBuffer', 'Throttle',
           'diagnostic_report']

_log = logging.getLogger(__name__)


class LatestFrameBuffer:
    """A one-slot buffer: a newer frame replaces the one still waiting (latest wins).

    The camera callback puts, the inference callback takes; both may run on different
    threads. A frame replaced before it was taken counts as dropped.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._item = None
        self.received = 0  # frames put
        self.dropped = 0  # frames replaced before they were taken

    def put(self, item) -> bool:
        """Store ``item``; return True when it replaced a frame that was still waiting."""
        with self._lock:
            replaced = self._item is not None
            self._item = item
            self.received += 1
            self.dropped += int(replaced)
            return replaced

    def take(self):
        """Remove and return the waiting frame, or None when there is none."""
        with self._lock:
            item, self._item = self._item, None
            return item

    @property
    def pending(self) -> bool:
        """Whether a frame is waiting."""
        with self._lock:
            return self._item is not None


class Throttle:
    """Let one message through per ``period`` seconds and count the ones held back."""

    def __init__(self, period: float, clock: Callable[[], float] = time.monotonic):
        self.period = period
        self._clock = clock
        self._last = -math.inf
        self._held = 0

    def __call__(self, log: Callable[[str], Any], text: str) -> bool:
        """Log ``text`` (with the number held back since the last one) if the period passed."""
        now = self._clock()
        if now - self._last < self.period:
            self._held += 1
            return False
        if self._held:
            text += f' ({self._held} more since the last report)'
        self._last, self._held = now, 0
        log(text)
        return True


@dataclass
class FrameOutput:
    """The messages to publish for one frame (None: nothing to publish)."""

    mask: Any  # mono8 Image with the camera header; None when the frame was skipped
    color: Any  # rgb8 Image, or None when not requested or skipped
    decision: Any  # the pipeline's Decision record


class FrameHandler:
    """Decode a camera or speed message, run the pipeline on it and build the outputs.

    Bad images and speeds are counted and logged (throttled) and never raise, so the
    node keeps running. Errors that are not bad input (bugs, CUDA failures) propagate.

    Args:
        pipeline: a ``PerceptionPipeline`` (``process``, ``update_speed``).
        image_class: the Image message class to build outputs with.
        compressed: whether camera messages are CompressedImage.
        speed_type: one of ``messages.SPEED_TYPES``.
        clock: the node's time in seconds (ROS time, so simulated time works).
        warn: where warnings go (the node's logger).
        log_period_s: least seconds between two warnings of one kind.
        max_pixels: largest camera image accepted (height x width); None: the
            pipeline config's ``max_image_megapixels``.
    """

    def __init__(self, pipeline, image_class, *, compressed: bool = False,
                 speed_type: str = 'std_msgs/msg/Float32',
                 clock: Callable[[], float] = time.time,
                 warn: Callable[[str], Any] = _log.warning, log_period_s: float = 5.0,
                 max_pixels: Optional[int] = None):
        self.pipeline = pipeline
        if max_pixels is None:
            config = getattr(pipeline, 'config', None)
            max_pixels = getattr(config, 'max_image_pixels', MAX_IMAGE_PIXELS)
        self.max_pixels = max_pixels
        self.image_class = image_class
        self.compressed = compressed
        self.speed_type = speed_type
        self.clock = clock
        self.warn = warn
        self.image_throttle = Throttle(log_period_s)
        self.speed_throttle = Throttle(log_period_s)
        self.rejected = 0  # camera messages that could not be decoded or processed
        self.rejected_speeds = 0  # speed messages the pipeline refused (NaN, inf, ...)

    def set_log_period(self, seconds: float) -> None:
        """Change the least time between two warnings of one kind."""
        self.image_throttle.period = self.speed_throttle.period = seconds

    def handle_frame(self, msg, color: bool = False) -> Optional[FrameOutput]:
        """Process one camera message.

        Args:
            msg: an Image (or CompressedImage when ``compressed``) message.
            color: also build the rgb8 colour mask.

        Returns:
            The outputs to publish, or None when the message was rejected.
        """
        try:
            decode = compressed_to_array if self.compressed else image_to_array
            image = decode(msg, self.max_pixels)
            stamp = stamp_to_sec(msg.header.stamp)
            result = self.pipeline.process(image, stamp, self.clock(), color=color)
        except MultiExitError as exc:
            self.rejected += 1
            self.image_throttle(self.warn, f'camera frame rejected: {exc}')
            return None
        if result.mask is None:  # skipped by the planner (counted by the pipeline)
            return FrameOutput(None, None, result.record)
        mask = array_to_image(result.mask, 'mono8', msg.header, self.image_class)
        color_msg = None
        if color and result.color is not None:
            color_msg = array_to_image(result.color, 'rgb8', msg.header, self.image_class)
        return FrameOutput(mask, color_msg, result.record)

    def handle_speed(self, msg) -> bool:
        """Pass one speed message to the pipeline; return False when it was rejected."""
        try:
            speed, stamp = speed_from_msg(msg, self.speed_type)
            ok = self.pipeline.update_speed(speed, stamp, self.clock())
        except MultiExitError as exc:
            ok, speed = False, exc
        if not ok:
            self.rejected_speeds += 1
            self.speed_throttle(self.warn, f'speed rejected: {speed} (the last good speed '
                                           'is kept until it goes stale)')
        return ok

    def counters(self) -> dict:
        """Return the handler's counts."""
        return {'frames_rejected': self.rejected, 'speeds_rejected': self.rejected_speeds}


def _fmt(value) -> str:
    if value is None:
        return ''
    if isinstance(value, float):
        return f'{value:.6g}'
    if isinstance(value, (list, tuple)):
        return ', '.join(_fmt(v) for v in value)
    return str(value)


def _ms(value) -> str:
    return 'n/a' if value is None else f'{value * 1e3:.1f} ms'


def diagnostic_report(stats: dict, counters: dict, previous: Optional[dict] = None) -> tuple:
    """Summarize the pipeline and node state for one diagnostics message.

    Args:
        stats: ``PerceptionPipeline.stats()``.
        counters: the node's counts (frames received, dropped, rejected, ...).
        previous: ``{**stats, **counters}`` of the last report, to tell new problems
            from old ones (None for the first report).

    Returns:
        ``(level, message, values)``: level 0 (OK) or 1 (WARN: new deadline misses,
        rejected frames or rejected speeds since the last report), a one-line summary
        (exit, budget, latency, device, and the new problems), and (key, text) pairs of
        every stat and counter.
    """
    merged = {**stats, **counters}
    previous = previous or {}
    problems = []
    for key in ('deadline_misses', 'frames_rejected', 'speeds_rejected'):
        new = merged.get(key, 0) - previous.get(key, 0)
        if new > 0:
            problems.append(f'{new} new {key.replace("_", " ")}')
    exits = len(merged.get('exit_counts') or []) or '?'
    last_exit = merged.get('last_exit')
    summary = (f'exit {"none" if last_exit is None else last_exit}/{exits}, budget '
               f'{_ms(merged.get("budget_s"))}, latency p50 {_ms(merged.get("latency_p50_s"))}'
               f' p99 {_ms(merged.get("latency_p99_s"))}, on {merged.get("device", "?")}')
    message = '; '.join([summary] + problems)
    return (1 if problems else 0), message, [(k, _fmt(v)) for k, v in merged.items()]
