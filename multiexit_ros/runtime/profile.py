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
"""Measured per-exit latency: what the planner predicts from.

A :class:`LatencyProfile` keeps, per exit, a bounded window of latency samples in
seconds, each the whole time to produce that exit's mask from the camera image (upload,
normalization, resizing, blocks 0..k, head k, upsampling, argmax, download). The
window is bounded: adding samples pushes the oldest out. Online, the planner does not
add samples here; it scales the whole profile by a slowdown factor learnt from observed
latencies (:class:`~multiexit_ros.runtime.Planner`), so when the GPU throttles or gets
busier every exit's prediction rises and the planner picks shallower exits.
"""

from collections import deque
import datetime
import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from ..errors import ConfigError

__all__ = ['FORMAT', 'LatencyProfile', 'measure_profile']

FORMAT = 'multiexit_ros/latency_profile'
VERSION = 1
_log = logging.getLogger(__name__)


class LatencyProfile:
    """Per-exit latency samples with quantiles and JSON persistence.

    Args:
        num_exits: Number of exits of the model.
        window: Most samples kept per exit (the oldest are dropped first).
        device: Device the samples were measured on (``cuda:0``, ``cpu``).
        precision: ``fp16``, ``bf16`` or ``fp32``.
        resolution: Camera image (H, W) the samples were measured at.
        input_size: Network input (H, W).
        model: Model identity (checkpoint name, tensor hash, architecture hash).
        created: ISO time of measurement; now when None.
        extra: Free-form JSON-ready details (e.g. ``cuda_graphs``).
    """

    def __init__(self, num_exits: int, window: int = 256, *, device: str = '',
                 precision: str = '', resolution: Optional[Sequence[int]] = None,
                 input_size: Optional[Sequence[int]] = None, model: Optional[dict] = None,
                 created: Optional[str] = None, extra: Optional[dict] = None):
        if num_exits < 1 or window < 1:
            raise ConfigError(f'latency profile needs at least one exit and a window of at '
                              f'least one sample (got {num_exits} exits, window {window})')
        self._samples = [deque(maxlen=int(window)) for _ in range(num_exits)]
        self._sorted: list = [None] * num_exits
        self.device = device
        self.precision = precision
        self.resolution = list(resolution) if resolution else None
        self.input_size = list(input_size) if input_size else None
        self.model = dict(model or {})
        self.created = created or datetime.datetime.now().astimezone().isoformat(
            timespec='seconds')
        self.extra = dict(extra or {})

    @classmethod
    def from_samples(cls, samples: Sequence[Sequence[float]], window: Optional[int] = None,
                     **info) -> 'LatencyProfile':
        """Build from per-exit lists of latencies in seconds (hand-written profiles, tests)."""
        window = window or max(max((len(s) for s in samples), default=1), 1)
        profile = cls(len(samples), window, **info)
        for k, values in enumerate(samples):
            profile.extend(k, values)
        return profile

    @property
    def num_exits(self) -> int:
        """Return the number of exits."""
        return len(self._samples)

    @property
    def window(self) -> int:
        """Most samples kept per exit."""
        return self._samples[0].maxlen

    @window.setter
    def window(self, size: int):
        if size < 1:
            raise ConfigError(f'latency profile window must be at least 1, got {size}')
        self._samples = [deque(s, maxlen=int(size)) for s in self._samples]
        self._sorted = [None] * self.num_exits

    def add(self, exit_index: int, seconds: float) -> bool:
        """Add one observed latency; non-finite or negative values are ignored (False)."""
        if not math.isfinite(seconds) or seconds < 0.0:
            _log.warning('ignored latency sample %r for exit %d', seconds, exit_index)
            return False
        self._samples[exit_index].append(float(seconds))
        self._sorted[exit_index] = None
        return True

    def extend(self, exit_index: int, values: Sequence[float]):
        """Add several latencies to one exit."""
        for v in values:
            self.add(exit_index, v)

    def samples(self, exit_index: int) -> list:
        """Return the samples of an exit, oldest first."""
        return list(self._samples[exit_index])

    def n(self, exit_index: int) -> int:
        """Return the number of samples of an exit."""
        return len(self._samples[exit_index])

    def quantile(self, exit_index: int, q: float) -> float:
        """Latency quantile ``q`` in [0, 1] of an exit (linear interpolation); inf if empty."""
        ordered = self._sorted[exit_index]
        if ordered is None:
            ordered = self._sorted[exit_index] = sorted(self._samples[exit_index])
        if not ordered:
            return math.inf
        pos = min(max(q, 0.0), 1.0) * (len(ordered) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(ordered) - 1)
        return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)

    def p50(self, exit_index: int) -> float:
        """Median latency of an exit."""
        return self.quantile(exit_index, 0.5)

    def p95(self, exit_index: int) -> float:
        """95th percentile latency of an exit."""
        return self.quantile(exit_index, 0.95)

    def p99(self, exit_index: int) -> float:
        """99th percentile latency of an exit."""
        return self.quantile(exit_index, 0.99)

    def summary(self) -> list:
        """Per exit: ``{'exit', 'n', 'p50_s', 'p95_s', 'p99_s'}``."""
        return [{'exit': k, 'n': self.n(k), 'p50_s': self.p50(k), 'p95_s': self.p95(k),
                 'p99_s': self.p99(k)} for k in range(self.num_exits)]

    def to_dict(self) -> dict:
        """JSON-ready dictionary (the samples and a summary for humans)."""
        return {'format': FORMAT, 'version': VERSION, 'created': self.created,
                'device': self.device, 'precision': self.precision,
                'resolution': self.resolution, 'input_size': self.input_size,
                'model': self.model, 'window': self.window, 'extra': self.extra,
                'summary': self.summary(),
                'samples_s': [self.samples(k) for k in range(self.num_exits)]}

    @classmethod
    def from_dict(cls, data: dict, source: str = 'latency profile') -> 'LatencyProfile':
        """Validate and build from :meth:`to_dict` output.

        Raises:
            ConfigError: Wrong format or version, or invalid samples.
        """
        if not isinstance(data, dict) or data.get('format') != FORMAT:
            raise ConfigError(f'{source}: not a latency profile (format is not {FORMAT!r})')
        if data.get('version') != VERSION:
            raise ConfigError(f'{source}: latency profile version {data.get("version")!r} is '
                              f'not supported (this package reads {VERSION})')
        samples = data.get('samples_s')
        if not isinstance(samples, list) or not samples or not all(
                isinstance(s, list) and s for s in samples):
            raise ConfigError(f'{source}: latency profile needs a non-empty list of samples '
                              f'for every exit')
        for k, values in enumerate(samples):
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and
                       math.isfinite(v) and v >= 0 for v in values):
                raise ConfigError(f'{source}: exit {k} has a latency sample that is not a '
                                  f'finite non-negative number')
        try:
            window = int(data.get('window') or max(len(s) for s in samples))
            return cls.from_samples(
                samples, window=window, device=str(data.get('device') or ''),
                precision=str(data.get('precision') or ''),
                resolution=data.get('resolution'), input_size=data.get('input_size'),
                model=data.get('model'), created=data.get('created'),
                extra=data.get('extra'))
        except (TypeError, ValueError) as err:
            raise ConfigError(f'{source}: invalid latency profile ({err})') from err

    def save(self, path) -> Path:
        """Write JSON atomically (beside the target, then renamed over it)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + '.tmp')
        doc = self.to_dict()
        samples = doc.pop('samples_s')
        # Readable header, then one compact line of samples per exit.
        rows = ',\n'.join('  ' + json.dumps([round(v, 9) for v in s]) for s in samples)
        text = json.dumps(doc, indent=1)[:-2] + ',\n "samples_s": [\n' + rows + '\n ]\n}\n'
        tmp.write_text(text, encoding='utf-8')
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path) -> 'LatencyProfile':
        """Read a profile written by :meth:`save`.

        Raises:
            ConfigError: Missing, unreadable or invalid file.
        """
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f'latency profile not found: {path} (write one with '
                              f'`multiexit profile`)')
        try:
            data = json.loads(path.read_text(encoding='utf-8'))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ConfigError(f'{path}: corrupt latency profile ({err})') from err
        return cls.from_dict(data, str(path))

    def check_compatible(self, num_exits: int, device: str = None, precision: str = None,
                         model: dict = None, resolution: Sequence[int] = None,
                         source: str = 'latency profile'):
        """Raise if this profile cannot predict for a model on a device; warn on lesser gaps.

        A different number of exits, architecture, device type or precision makes the
        numbers meaningless (error); other weights of the same architecture or another
        camera resolution only shift them (warning; the online slowdown factor corrects).

        Raises:
            ConfigError: The profile does not fit.
        """
        hint = '; measure a new one with `multiexit profile`'
        if num_exits != self.num_exits:
            raise ConfigError(f'{source} has {self.num_exits} exits, the model has '
                              f'{num_exits}{hint}')
        arch, mine = (model or {}).get('architecture_sha256'), self.model.get(
            'architecture_sha256')
        if arch and mine and arch != mine:
            raise ConfigError(f'{source} was measured for another architecture{hint}')
        if device and self.device and device.split(':')[0] != self.device.split(':')[0]:
            raise ConfigError(f'{source} was measured on {self.device}, running on '
                              f'{device}{hint}')
        if precision and self.precision and precision != self.precision:
            raise ConfigError(f'{source} was measured in {self.precision}, running in '
                              f'{precision}{hint}')
        weights, mine = (model or {}).get('tensors_sha256'), self.model.get('tensors_sha256')
        if weights and mine and weights != mine:
            _log.warning('%s was measured with other weights of the same architecture',
                         source)
        if resolution and self.resolution and list(resolution) != list(self.resolution):
            _log.warning('%s was measured at %s, images are %s; latencies will be off until '
                         'the online slowdown factor catches up', source, self.resolution,
                         list(resolution))


def measure_profile(engine, size: Sequence[int], warmup: int = 5, samples: int = 30,
                    out_size: Optional[Sequence[int]] = None,
                    window: Optional[int] = None, seed: int = 0,
                    progress: Optional[Callable[[int], Any]] = None) -> LatencyProfile:
    """Measure every exit's latency through ``engine`` on a generated driving scene.

    Exits are measured round-robin (exit 0, 1, ..., N-1, 0, ...) so that a slow drift
    (clocks ramping up, another process) affects every exit alike; each pass is a fresh
    end-to-end :meth:`Engine.infer`, so a sample is exactly what a frame costs.

    Args:
        engine: The :class:`~multiexit_ros.runtime.Engine` to measure.
        size: Camera image (H, W).
        warmup: Untimed passes per exit first (also captures CUDA graphs).
        samples: Timed passes per exit.
        out_size: Mask (H, W); None is the image size.
        window: Profile window; None keeps at least ``samples``.
        seed: Seed of the generated scene.
        progress: Called with 1 after every pass ((warmup + samples) x exits in all).

    Returns:
        The measured profile.
    """
    from ..data.synthetic import render_scene

    if samples < 1 or warmup < 0:
        raise ConfigError(f'profiling needs samples >= 1 and warmup >= 0, got {samples} '
                          f'and {warmup}')
    h, w = (int(v) for v in size)
    # A driving scene, not noise: the CPU post-processing costs more where classes change
    # (:mod:`.postprocess`), and noise would make every cell a class boundary.
    image = render_scene(seed, h, w)[0]
    profile = LatencyProfile(
        engine.num_exits, max(window or 0, samples), device=engine.device,
        precision=engine.precision, resolution=[h, w],
        input_size=list(engine.input_size_for((h, w))), model=engine.model_id,
        extra={'backend': getattr(engine, 'backend', 'torch'),
               'threads': getattr(engine, 'threads', 0),
               'cuda_graphs': engine.cuda_graphs, 'channels_last': engine.channels_last,
               'warmup': warmup, 'out_size': list(out_size) if out_size else None})
    step = progress or (lambda n: None)
    for _ in range(warmup):
        for k in range(engine.num_exits):
            engine.infer(image, k, out_size)
            step(1)
    for _ in range(samples):
        for k in range(engine.num_exits):
            profile.add(k, engine.infer(image, k, out_size).latency_s)
            step(1)
    _log.info('measured latency profile on %s at %dx%d: %s', engine.device, h, w,
              ', '.join(f'exit {k} p50 {profile.p50(k) * 1e3:.1f} ms'
                        for k in range(engine.num_exits)))
    return profile
