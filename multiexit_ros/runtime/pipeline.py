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
"""The perception pipeline: the one object the ROS node and the replay both drive.

Per frame: speed -> budget (minus the frame's age and the output reserve) -> the
planner picks the deepest exit predicted to fit -> the engine produces that exit's mask
at the camera's (or the configured) resolution -> the decision is recorded and the
measured latency feeds the profile.
"""

from collections import deque
from dataclasses import dataclass
import logging
from typing import Optional

import numpy as np

from .budget import frame_budget, speed_budget, SpeedTracker
from .config import PipelineConfig
from .device import as_image
from .engine import Engine
from .planner import Decision, Planner
from .profile import LatencyProfile, measure_profile
from ..errors import ConfigError
from ..labels import colorize

__all__ = ['FrameResult', 'PerceptionPipeline', 'load_or_measure_profile']

_log = logging.getLogger(__name__)


@dataclass
class FrameResult:
    """The outcome of one frame.

    Attributes:
        mask: (H, W) uint8 class ids at the output resolution; None when skipped.
        color: (H, W, 3) uint8 RGB rendering of the mask, when requested.
        exit: Exit that produced the mask; None when skipped.
        record: The :class:`Decision` with budget, prediction and timing.
    """

    mask: Optional[np.ndarray]
    color: Optional[np.ndarray]
    exit: Optional[int]
    record: Decision


def load_or_measure_profile(config: PipelineConfig, engine: Engine,
                            image_size=None) -> LatencyProfile:
    """Load ``config.profile_path`` (checked against the engine) or measure a profile.

    Measuring needs the camera size; ``image_size`` None uses the engine's input size,
    or 480x640 when that is automatic.

    Raises:
        ConfigError: The profile file is missing, invalid or does not fit the engine.
    """
    if config.profile_path:
        profile = LatencyProfile.load(config.profile_path)
        profile.check_compatible(engine.num_exits, engine.device, engine.precision,
                                 engine.model_id, image_size, source=config.profile_path)
    else:
        size = image_size or engine.input_size or (480, 640)
        _log.info('no latency profile given: measuring one at %dx%d (%d samples per exit)',
                  size[0], size[1], config.profile_samples)
        out = (config.output_height, config.output_width) if config.output_height else None
        profile = measure_profile(engine, size, config.profile_warmup,
                                  config.profile_samples, out_size=out)
    profile.window = config.profile_window
    return profile


class PerceptionPipeline:
    """Image, stamp and speed in; mask, chosen exit and timing record out.

    Args:
        engine: The inference engine (may be shared by several pipelines).
        config: Planning and budget settings (the engine's own settings are not
            re-read from it).
        profile: Latency profile the planner predicts from; it is read, never
            modified (online, the planner scales it by a slowdown factor learnt from
            observed latencies unless ``config.profile_update`` is off or
            ``config.simulate_latency`` on), so pipelines may share one.

    Raises:
        ConfigError: The profile does not match the engine's exits, or a setting is bad.
    """

    def __init__(self, engine: Engine, config: PipelineConfig, profile: LatencyProfile):
        profile.check_compatible(engine.num_exits)
        if (config.output_height == 0) != (config.output_width == 0):
            raise ConfigError(f'set both output_height and output_width, or neither (got '
                              f'{config.output_height}x{config.output_width})')
        self.engine = engine
        self.config = config
        self.profile = profile
        adapt = config.profile_update_rate if config.profile_update else 0.0
        self.planner = Planner(profile, config.latency_quantile, config.when_none_fits,
                               config.fixed_exit if config.policy == 'fixed' else None,
                               adapt_rate=0.0 if config.simulate_latency else adapt)
        self.speed = SpeedTracker(config.budget.speed_timeout_s)
        self._out_size = ((config.output_height, config.output_width)
                          if config.output_height else None)
        self._palette = engine.labels.palette_array()
        self._latencies = deque(maxlen=1000)  # recent actual latencies, for stats()
        self._counts = {'frames': 0, 'processed': 0, 'skipped': 0, 'late': 0,
                        'deadline_misses': 0}
        self._exit_counts = [0] * engine.num_exits
        self._last: Optional[Decision] = None

    @classmethod
    def from_config(cls, config: PipelineConfig, image_size=None) -> 'PerceptionPipeline':
        """Load the model, build the engine and load (or measure) the latency profile.

        Args:
            config: The configuration.
            image_size: Camera (H, W) for start-up profiling, when known.

        Raises:
            MultiExitError: Missing or bad checkpoint, profile or setting.
        """
        engine = Engine.from_config(config)
        pipeline = cls(engine, config, load_or_measure_profile(config, engine, image_size))
        if image_size and config.profile_path:
            pipeline.warmup(image_size)  # measuring a profile has warmed up already
        return pipeline

    def warmup(self, image_size, passes: int = 2):
        """Run every exit on a blank image of ``image_size`` (H, W) before real frames.

        The first passes at a new size are slow (allocations, cuDNN autotuning, CUDA graph
        capture); call this once the camera size is known, before the first frame.
        """
        self.engine.warmup(image_size, passes, self._out_size)

    @property
    def labels(self):
        """Class names and palette of the model."""
        return self.engine.labels

    @property
    def num_exits(self) -> int:
        """Return the number of exits."""
        return self.engine.num_exits

    @property
    def device(self) -> str:
        """Device the engine runs on."""
        return self.engine.device

    def update_speed(self, speed_mps: float, stamp: Optional[float], now: float) -> bool:
        """Take the vehicle's speed (m/s); False if rejected (NaN, inf, negative).

        Args:
            speed_mps: Speed magnitude.
            stamp: Time of the measurement; None stamps it with ``now``.
            now: Current time (s).
        """
        return self.speed.update(speed_mps, stamp, now)

    def process(self, image: np.ndarray, stamp: float, now: float,
                color: bool = False) -> FrameResult:
        """Segment one frame at the deepest exit that fits its budget.

        Args:
            image: (H, W, 3) uint8 RGB or (H, W) uint8 mono.
            stamp: Image header stamp (s).
            now: Current time (s), same clock as ``stamp``.
            color: Also return the colour rendering of the mask.

        Returns:
            The :class:`FrameResult`.

        Raises:
            ImageError: The image is not a valid uint8 image.
        """
        image = as_image(image, self.engine.in_channels)
        cfg = self.config
        reading = self.speed.reading(now)
        budget = speed_budget(reading.speed_mps, cfg.budget)
        remaining, age = frame_budget(budget, stamp, now, cfg.budget.output_reserve_s)
        plan = self.planner.plan(remaining)
        reason = plan.reason + (f'; {reading.reason}' if reading.reason else '')
        mask = colour = None
        actual = None
        if not plan.skipped:
            result = self.engine.infer(image, plan.exit, self._out_size)
            mask = result.mask
            if cfg.simulate_latency:
                actual = self.profile.p50(plan.exit)
            else:
                actual = result.latency_s
                self.planner.observe(plan.exit, actual)
            if color:
                colour = colorize(mask, self._palette)
        met = actual is not None and actual <= remaining
        record = Decision(stamp=float(stamp), budget_s=remaining, age_s=age,
                          speed_mps=reading.speed_mps, exit=plan.exit,
                          predicted_s=plan.predicted_s, actual_s=actual, deadline_met=met,
                          late=plan.late, skipped=plan.skipped, reason=reason,
                          speed_budget_s=budget)
        self._count(record)
        return FrameResult(mask=mask, color=colour, exit=plan.exit, record=record)

    def _count(self, record: Decision):
        c = self._counts
        c['frames'] += 1
        self._last = record
        if record.skipped:
            c['skipped'] += 1
            return
        c['processed'] += 1
        c['late'] += record.late
        c['deadline_misses'] += not record.deadline_met
        self._exit_counts[record.exit] += 1
        self._latencies.append(record.actual_s)

    def stats(self) -> dict:
        """Diagnostics: counters, last budget and exit, recent latency p50/p99, device.

        ``deadline_misses`` counts processed frames whose mask came after the budget;
        skipped frames are counted apart.
        """
        lat = sorted(self._latencies)

        def q(p):
            return lat[min(int(p * len(lat)), len(lat) - 1)] if lat else None

        last = self._last
        return dict(self._counts, device=self.device, precision=self.engine.precision,
                    policy=self.config.policy, budget_policy=self.config.budget.policy,
                    budget_s=last.budget_s if last else None,
                    speed_budget_s=last.speed_budget_s if last else None,
                    speed_mps=last.speed_mps if last else None,
                    last_exit=last.exit if last else None,
                    last_reason=last.reason if last else '',
                    latency_p50_s=q(0.5), latency_p99_s=q(0.99),
                    exit_counts=list(self._exit_counts),
                    predicted_s=self.planner.predicted(),
                    latency_slowdown=self.planner.slowdown,
                    simulate_latency=self.config.simulate_latency)
