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
"""The policies a replay compares, each a :class:`PerceptionPipeline` of its own.

``speed`` is the product (the deepest exit that fits the speed budget); ``exit0`` ...
``exit{N-2}`` always run one exit; ``final`` always runs the last exit (the fixed
policy of the last exit, so it is not listed twice). All share one
:class:`~multiexit_ros.replay.shared.SharedEngine`.
"""

from dataclasses import dataclass, replace
import logging
from typing import Optional

from ..errors import ConfigError

__all__ = ['build_engine', 'build_policies', 'load_profile', 'policy_names', 'PolicySpec']

_LOG = logging.getLogger(__name__)


@dataclass
class PolicySpec:
    """One compared policy."""

    name: str         # speed, exit0 .., final
    config: object    # its PipelineConfig


def policy_names(num_exits: int) -> list:
    """Return every policy name for a model with ``num_exits`` exits, product first."""
    return ['speed'] + [f'exit{k}' for k in range(num_exits - 1)] + ['final']


def build_engine(config, preset: Optional[str] = None, seed: int = 0):
    """Build the runtime engine from ``config`` (or an untrained ``preset`` network).

    Raises:
        CheckpointError: The model cannot be loaded (the message says how to get one).
        ConfigError: Bad device or settings.
    """
    from .. import default_model_path
    from ..errors import CheckpointError
    from ..runtime import Engine

    if preset:
        import torch

        from ..model import MultiExitSegNet, preset as make_preset
        torch.manual_seed(seed)
        return Engine(MultiExitSegNet(make_preset(preset)), device=config.device,
                      precision=config.precision,
                      allow_cpu_fallback=config.allow_cpu_fallback)
    if not config.model_path and not default_model_path().is_file():
        raise CheckpointError(
            f'the shipped model is missing ({default_model_path()}); train it with '
            f'`multiexit train` (see the README), or pass --model FILE (or --preset tiny '
            f'for an untrained network)')
    return Engine.from_config(config)


def load_profile(path, engine):
    """Load a latency profile for ``engine``'s model; its device may differ (a target).

    Raises:
        ConfigError: Missing or invalid file, or made for another model.
    """
    from ..runtime import LatencyProfile

    profile = LatencyProfile.load(path)
    # No device or precision check: a CPU replay may evaluate a GPU deployment.
    profile.check_compatible(engine.num_exits, model=engine.model_id, source=str(path))
    return profile


def _copy(profile):
    from ..runtime import LatencyProfile

    return LatencyProfile.from_dict(profile.to_dict())


def build_policies(engine, base_config, profile, names=None) -> list:
    """Return [(PolicySpec, PerceptionPipeline)] for the requested policy names.

    Raises:
        ConfigError: An unknown policy name.
    """
    from ..runtime import PerceptionPipeline

    n = engine.num_exits
    known = policy_names(n)
    names = list(dict.fromkeys(names)) if names else known  # each policy once
    unknown = [p for p in names if p not in known]
    if unknown:
        raise ConfigError(f'unknown policy {unknown[0]!r}; this model has {", ".join(known)}')
    out = []
    for name in names:
        if name == 'speed':
            cfg = replace(base_config, policy='speed')
        else:
            k = n - 1 if name == 'final' else int(name[4:])
            cfg = replace(base_config, policy='fixed', fixed_exit=k)
        out.append((PolicySpec(name, cfg), PerceptionPipeline(engine, cfg, _copy(profile))))
    return out
