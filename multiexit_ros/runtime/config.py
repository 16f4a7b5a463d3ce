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
"""Runtime configuration: one set of flat dotted names for ROS parameters, YAML and code.

Every field carries ``metadata`` with a description and either a ``range`` (lo, hi) or
``choices``; :func:`param_specs` walks the dataclasses so the ROS node can declare its
parameters and the README can list them without repeating a single name.
"""

from dataclasses import dataclass, field, fields, is_dataclass
import math
from pathlib import Path
from typing import Any, Optional

from ..errors import ConfigError

__all__ = ['BudgetConfig', 'EngineConfig', 'ParamSpec', 'PipelineConfig', 'param_specs']


def _f(default, description, *, range=None, choices=None, factory=None):  # noqa: A002
    meta = {'description': description}
    if range is not None:
        meta['range'] = range
    if choices is not None:
        meta['choices'] = list(choices)
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class BudgetConfig:
    """How the vehicle's speed becomes a per-frame latency budget."""

    policy: str = _f('blind_distance', 'speed to budget: blind_distance (d / v) or table',
                     choices=('blind_distance', 'table'))
    blind_distance_m: float = _f(1.0, 'metres the vehicle may travel while a frame is '
                                      'processed (blind_distance policy)', range=(0.01, 100.0))
    min_budget_s: float = _f(0.015, 'smallest budget; also the worst case used when the '
                                    'speed is stale or missing', range=(0.0, 10.0))
    max_budget_s: float = _f(0.2, 'largest budget (standing still)', range=(0.0, 10.0))
    table_speeds_mps: list = _f(None, 'table policy: speeds (m/s), strictly increasing',
                                range=(0.0, 200.0), factory=lambda: [0.0, 5.0, 15.0, 30.0])
    table_budgets_s: list = _f(None, 'table policy: budget (s) at each speed, interpolated '
                                     'linearly', range=(0.0, 10.0),
                               factory=lambda: [0.2, 0.1, 0.05, 0.025])
    output_reserve_s: float = _f(0.002, 'time kept back for publishing the result',
                                 range=(0.0, 1.0))
    speed_timeout_s: float = _f(0.5, 'a speed older than this is stale (worst-case budget)',
                                range=(0.001, 3600.0))

    def __post_init__(self):
        _check_fields(self, 'budget.')
        if self.min_budget_s > self.max_budget_s:
            raise ConfigError(f'budget.min_budget_s ({self.min_budget_s}) is larger than '
                              f'budget.max_budget_s ({self.max_budget_s})')
        speeds, budgets = self.table_speeds_mps, self.table_budgets_s
        if len(speeds) != len(budgets) or not speeds:
            raise ConfigError(f'budget.table_speeds_mps ({len(speeds)} values) and '
                              f'budget.table_budgets_s ({len(budgets)} values) must be '
                              f'non-empty and of equal length')
        if any(b <= a for a, b in zip(speeds, speeds[1:])):
            raise ConfigError(f'budget.table_speeds_mps must be strictly increasing, got '
                              f'{speeds}')


@dataclass
class EngineConfig:
    """How the network is executed: which runtime, how many CPU threads."""

    backend: str = _f('auto', 'network runtime: torch, onnxruntime (the model exported to '
                              'ONNX on first use, cached) or auto (onnxruntime on the CPU '
                              'when installed, else torch)',
                      choices=('auto', 'torch', 'onnxruntime'))
    threads: int = _f(1, 'intra-op CPU threads of torch and ONNX Runtime; 0: the library '
                         'default (one per core)', range=(0, 1024))

    def __post_init__(self):
        _check_fields(self, 'engine.')


@dataclass
class PipelineConfig:
    """Everything the perception pipeline needs: model, device, planning and budget."""

    model_path: str = _f('', 'checkpoint (.safetensors); empty: the shipped model')
    profile_path: str = _f('', 'latency profile JSON (multiexit profile); empty: measure '
                               'at start-up')
    device: str = _f('cuda', 'torch device: cuda, cuda:N or cpu')
    allow_cpu_fallback: bool = _f(False, 'run on the CPU when CUDA is missing instead of '
                                         'failing')
    precision: str = _f('fp16', 'GPU arithmetic (the CPU always uses fp32)',
                        choices=('fp16', 'bf16', 'fp32'))
    channels_last: bool = _f(True, 'NHWC memory layout (faster convolutions, on the CPU too)')
    cuda_graphs: bool = _f(False, 'replay one captured CUDA graph per exit (fixed image '
                                  'size only)')
    input_height: int = _f(0, 'network input height; 0: trained size, else the image '
                              'height rounded to a multiple of 32', range=(0, 8192))
    input_width: int = _f(0, 'network input width; 0 (with input_height 0): automatic',
                          range=(0, 8192))
    output_height: int = _f(0, 'mask height; 0: the camera image height', range=(0, 8192))
    output_width: int = _f(0, 'mask width; 0 (with output_height 0): the camera image '
                              'width', range=(0, 8192))
    max_image_megapixels: float = _f(64.0, 'largest camera image (height x width) '
                                           'converted, in megapixels; a bigger frame, or a '
                                           'JPEG/PNG header claiming more, is rejected '
                                           'before decoding', range=(0.01, 1000.0))
    policy: str = _f('speed', 'exit choice: speed (deepest exit that fits the budget) or '
                              'fixed', choices=('speed', 'fixed'))
    fixed_exit: int = _f(-1, 'exit of the fixed policy; -1: the last', range=(-1, 255))
    latency_quantile: float = _f(0.95, 'quantile of the latency profile the planner trusts',
                                 range=(0.0, 1.0))
    when_none_fits: str = _f('best_effort', 'no exit fits: best_effort (exit 0, flagged '
                                            'late) or skip (no mask)',
                             choices=('best_effort', 'skip'))
    profile_update: bool = _f(True, "scale every exit's predicted latency by a slowdown "
                                    'factor learnt from observed latencies (follows '
                                    'throttling and load)')
    profile_update_rate: float = _f(0.1, 'weight of each observed latency in the slowdown '
                                         'factor (moving average)', range=(0.0, 1.0))
    profile_window: int = _f(256, 'latency samples kept per exit of the profile (the most '
                                  'recent)', range=(1, 1000000))
    profile_warmup: int = _f(5, 'start-up profiling: untimed passes per exit',
                             range=(0, 10000))
    profile_samples: int = _f(30, 'start-up profiling: timed passes per exit',
                              range=(1, 100000))
    simulate_latency: bool = _f(False, "replay mode: take each frame's latency from the "
                                       'profile (median) instead of measuring it, and do '
                                       'not update the profile')
    budget: BudgetConfig = field(default_factory=BudgetConfig,
                                 metadata={'description': 'speed to budget'})
    engine: EngineConfig = field(default_factory=EngineConfig,
                                 metadata={'description': 'network runtime and threads'})

    def __post_init__(self):
        if isinstance(self.budget, dict):
            self.budget = BudgetConfig(**self.budget)
        if isinstance(self.engine, dict):
            self.engine = EngineConfig(**self.engine)
        _check_fields(self, '')

    @classmethod
    def from_params(cls, flat: dict) -> 'PipelineConfig':
        """Build from flat dotted names (``budget.policy``); nested mappings are accepted too.

        Raises:
            ConfigError: An unknown name, a value of the wrong type, out of range or not
                among the choices.
        """
        if not isinstance(flat, dict):
            raise ConfigError(f'pipeline parameters must be a mapping, got '
                              f'{type(flat).__name__}')
        flat = _flatten(flat)
        specs = {s.name: s for s in param_specs(cls)}
        unknown = sorted(set(flat) - set(specs))
        if unknown:
            raise ConfigError(f'unknown pipeline parameter(s) {unknown}; known: '
                              f'{sorted(specs)}')
        nested: dict = {}
        for name, value in flat.items():
            *parents, leaf = name.split('.')
            target = nested
            for p in parents:
                target = target.setdefault(p, {})
            target[leaf] = _coerce(specs[name], value)
        budget = BudgetConfig(**nested.pop('budget', {}))
        engine = EngineConfig(**nested.pop('engine', {}))
        return cls(budget=budget, engine=engine, **nested)

    @classmethod
    def from_yaml(cls, path) -> 'PipelineConfig':
        """Read a YAML file of parameters (flat, nested, or under ``ros__parameters``).

        Raises:
            ConfigError: The file is missing, not YAML, or holds a bad parameter.
        """
        import yaml

        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding='utf-8')) or {}
        except OSError as err:
            raise ConfigError(f'cannot read pipeline config {path}: {err.strerror}') from err
        except UnicodeDecodeError as err:
            raise ConfigError(f'{path}: not a YAML text file (not UTF-8: {err.reason})') from err
        except yaml.YAMLError as err:
            raise ConfigError(f'{path}: not valid YAML ({str(err).splitlines()[0]})') from err
        while isinstance(data, dict) and len(data) == 1:
            (key, inner), = data.items()
            if key == 'ros__parameters' or (isinstance(inner, dict) and
                                            'ros__parameters' in inner):
                data = inner
                continue
            break
        try:
            return cls.from_params(data)
        except ConfigError as err:
            raise ConfigError(f'{path}: {err}') from err

    @property
    def max_image_pixels(self) -> int:
        """``max_image_megapixels`` as a number of pixels."""
        return int(self.max_image_megapixels * 1e6)

    def to_params(self) -> dict:
        """Flat dotted names to values (lists copied)."""
        out = {}
        for spec in param_specs(type(self)):
            obj = self
            for part in spec.name.split('.'):
                obj = getattr(obj, part)
            out[spec.name] = list(obj) if isinstance(obj, list) else obj
        return out


@dataclass(frozen=True)
class ParamSpec:
    """One configurable parameter, as the ROS node declares it.

    Attributes:
        name: Flat dotted name (``budget.blind_distance_m``).
        default: Default value (a list of floats for list parameters).
        type: ``bool``, ``int``, ``float``, ``str`` or ``list`` (a list of floats).
        description: One line for humans.
        range: (lo, hi) inclusive bounds of a number (of every element of a list), or None.
        choices: Allowed strings, or None.
    """

    name: str
    default: Any
    type: type
    description: str
    range: Optional[tuple] = None
    choices: Optional[list] = None


_TYPES = {'str': str, 'bool': bool, 'int': int, 'float': float, 'list': list}


def param_specs(cls=PipelineConfig, prefix: str = '') -> list:
    """List the :class:`ParamSpec` of every leaf field of a config dataclass, in order."""
    specs = []
    for f in fields(cls):
        default = f.default_factory() if callable(f.default_factory) else f.default
        if is_dataclass(default):
            specs += param_specs(type(default), f'{prefix}{f.name}.')
            continue
        typ = _TYPES.get(f.type, f.type) if isinstance(f.type, str) else f.type
        specs.append(ParamSpec(name=prefix + f.name, default=default, type=typ,
                               description=f.metadata.get('description', ''),
                               range=f.metadata.get('range'),
                               choices=f.metadata.get('choices')))
    return specs


def _flatten(data: dict, prefix: str = '') -> dict:
    out = {}
    for key, value in data.items():
        name = f'{prefix}{key}'
        if isinstance(value, dict):
            out.update(_flatten(value, name + '.'))
        else:
            out[name] = value
    return out


def _coerce(spec: ParamSpec, value):
    """Convert ``value`` to the parameter's type without guessing (no '1' -> 1)."""
    bad = ConfigError(f'parameter {spec.name} must be {spec.type.__name__}, got '
                      f'{value!r} ({type(value).__name__})')
    if spec.type is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if spec.type is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise bad
        return value
    if spec.type is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if spec.type is list:
        if not isinstance(value, (list, tuple)) or any(
                isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
            raise ConfigError(f'parameter {spec.name} must be a list of numbers, got '
                              f'{value!r}')
        return [float(v) for v in value]
    if not isinstance(value, str):
        raise bad
    return value


def _check_fields(obj, prefix: str):
    """Check types loosely and ranges/choices strictly; raise ConfigError naming the field."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        name = prefix + f.name
        lo_hi, choices = f.metadata.get('range'), f.metadata.get('choices')
        if choices is not None and value not in choices:
            raise ConfigError(f'parameter {name} is {value!r}; choose one of {choices}')
        if lo_hi is None:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
                raise ConfigError(f'parameter {name} must be a number, got {v!r}')
            if not lo_hi[0] <= v <= lo_hi[1]:
                raise ConfigError(f'parameter {name} = {v} is outside [{lo_hi[0]}, '
                                  f'{lo_hi[1]}]')
