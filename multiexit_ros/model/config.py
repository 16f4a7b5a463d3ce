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
"""Architecture configuration of the multi-exit segmentation network, and its presets."""

from dataclasses import asdict, dataclass, fields, replace

from ..errors import ConfigError

__all__ = ['ModelConfig', 'PRESETS', 'preset', 'TRUNKS']

TRUNKS = ('resnet', 'efficientnet_lite0')


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a :class:`~multiexit_ros.model.MultiExitSegNet`.

    Block ``k`` is followed by exit ``k``; exits are numbered from 0 and the last one is
    the full model.
    """

    num_classes: int = 11            # CamVid's 11 classes by default
    trunk: str = 'resnet'            # resnet (the blocks below) | efficientnet_lite0
    in_channels: int = 3             # RGB input
    stem_channels: int = 16          # width of the two stride-2 stem convolutions (in block 0)
    channels: tuple = (32, 48, 96, 128, 160)  # output width of each block
    depths: tuple = (1, 2, 2, 2, 2)  # residual units per block
    strides: tuple = (1, 2, 2, 2, 1)  # downsampling at each block's entry; the stem adds 4x
    dilations: tuple = (1, 1, 1, 1, 2)  # dilation of each block's units (grow context cheaply)
    head_channels: int = 32          # width of every exit head, or one width per exit
    head_max_levels: int = 3         # most down/up levels of a head's encoder-decoder
    head_context_stride: int = 32    # heads downsample until this total stride (ADP-C's idea)
    final_context: bool = True       # pyramid pooling on the last exit only

    def __post_init__(self):
        for name in ('channels', 'depths', 'strides', 'dilations'):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        n = len(self.channels)
        if n < 1:
            raise ConfigError('model config: at least one block is needed')
        for name in ('depths', 'strides', 'dilations'):
            if len(getattr(self, name)) != n:
                raise ConfigError(
                    f'model config: {name} has {len(getattr(self, name))} entries, '
                    f'channels has {n}')
        if any(s not in (1, 2) for s in self.strides):
            raise ConfigError(f'model config: strides must be 1 or 2, got {self.strides}')
        if any(d < 1 for d in self.depths + self.dilations):
            raise ConfigError('model config: depths and dilations must be >= 1')
        if isinstance(self.head_channels, (list, tuple)):
            object.__setattr__(self, 'head_channels', tuple(int(v) for v in self.head_channels))
            if len(self.head_channels) != n:
                raise ConfigError(f'model config: head_channels has {len(self.head_channels)} '
                                  f'entries, channels has {n}')
        if min(self.channels + (self.stem_channels,) + self.head_widths()) < 1:
            raise ConfigError('model config: every width must be >= 1')
        if self.trunk not in TRUNKS:
            raise ConfigError(f'model config: unknown trunk {self.trunk!r}; choose one of '
                              f'{list(TRUNKS)}')
        if self.trunk == 'efficientnet_lite0':
            self._check_lite()
        if self.num_classes < 1 or self.num_classes > 255:
            raise ConfigError(
                f'model config: num_classes must be in 1..255 (masks are uint8), '
                f'got {self.num_classes}')

    def head_widths(self) -> tuple:
        """Width of each exit head."""
        if isinstance(self.head_channels, tuple):
            return self.head_channels
        return (int(self.head_channels),) * len(self.channels)

    def _check_lite(self):
        """Check that widths and strides are those of the Lite units in each block."""
        from .efficientnet import LITE0_STEM, lite_block_layout

        layout = lite_block_layout(self.depths)
        channels = tuple(c for _, _, c, _ in layout)
        if self.channels != channels or self.stem_channels != LITE0_STEM:
            raise ConfigError(f'model config: efficientnet_lite0 with depths {list(self.depths)} '
                              f'has channels {list(channels)} and stem_channels {LITE0_STEM}')
        if self.block_strides() != tuple(s for *_, s in layout) or set(self.dilations) != {1}:
            raise ConfigError(f'model config: efficientnet_lite0 with depths '
                              f'{list(self.depths)} has block strides '
                              f'{[s for *_, s in layout]} and no dilation')
        if self.in_channels != 3:
            raise ConfigError('model config: efficientnet_lite0 takes RGB (in_channels 3)')

    @property
    def num_exits(self) -> int:
        """Number of blocks, which is the number of exits."""
        return len(self.channels)

    def block_strides(self) -> tuple:
        """Total stride of each block's output relative to the input image."""
        out, total = [], 4
        for s in self.strides:
            total *= s
            out.append(total)
        return tuple(out)

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, data: dict) -> 'ModelConfig':
        """Build from :meth:`to_dict` output; unknown keys are an error."""
        if not isinstance(data, dict):
            raise ConfigError(f'model config must be a mapping, got {type(data).__name__}')
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f'model config: unknown keys {unknown}')
        try:
            return cls(**data)
        except (TypeError, ValueError) as err:
            raise ConfigError(f'model config: {err}') from err


PRESETS = {
    # Unit tests on a CPU: a few thousand parameters.
    'tiny': ModelConfig(stem_channels=8, channels=(8, 12, 16, 16, 24), depths=(1, 1, 1, 1, 1),
                        head_channels=8, head_max_levels=2),
    # The CPU demo and the shipped model: fast enough on two cores at 360x480.
    'small': ModelConfig(stem_channels=16, channels=(24, 32, 64, 96, 128),
                         depths=(1, 1, 2, 2, 1), head_channels=24),
    # Real time on a data-centre or in-car GPU at 1024x2048 in half precision.
    'base': ModelConfig(),
    # An ImageNet-pretrainable EfficientNet-Lite0 trunk with exits at strides 4, 8, 16, 16
    # and 32: the shipped model. Exit 0 follows the first stride-4 unit so that it costs
    # under a fifth of the final exit.
    'lite0': ModelConfig(trunk='efficientnet_lite0', stem_channels=32,
                         channels=(24, 40, 80, 112, 320), depths=(2, 3, 3, 3, 5),
                         strides=(1, 2, 2, 1, 2), dilations=(1, 1, 1, 1, 1),
                         head_channels=(24, 32, 64, 96, 128)),
    # More depth and more exits, for GPU training studies.
    'large': ModelConfig(stem_channels=32, channels=(48, 64, 128, 192, 256, 256),
                         depths=(2, 2, 3, 3, 2, 2), strides=(1, 2, 2, 2, 1, 1),
                         dilations=(1, 1, 1, 1, 2, 4), head_channels=48),
}


def preset(name: str, **overrides) -> ModelConfig:
    """Return a preset configuration, optionally with fields replaced.

    Raises:
        ConfigError: The preset or an override is unknown or invalid.
    """
    if name not in PRESETS:
        raise ConfigError(f'unknown model preset {name!r}; choose one of {sorted(PRESETS)}')
    try:
        return replace(PRESETS[name], **overrides)
    except TypeError as err:
        raise ConfigError(f'model preset {name!r}: {err}') from err
