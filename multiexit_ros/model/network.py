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
"""The multi-exit semantic segmentation network.

Blocks B0..B(N-1) run in sequence; exit head k reads only the output of block k and
predicts full-resolution class logits. A runtime can stop after any exit and later
continue from where it stopped (:meth:`MultiExitSegNet.begin` / :meth:`advance`).
"""

from dataclasses import dataclass
import math

import torch
from torch import nn
import torch.nn.functional as F

from .config import ModelConfig
from .efficientnet import lite_block_layout, LiteBlock

__all__ = ['ExitHead', 'ExitRun', 'MultiExitSegNet']


class ConvBNReLU(nn.Sequential):
    """Convolution, batch norm, ReLU."""

    def __init__(self, cin, cout, kernel=3, stride=1, dilation=1):
        pad = dilation * (kernel - 1) // 2
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, pad, dilation=dilation, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class ResidualUnit(nn.Module):
    """Two 3x3 convolutions with an identity shortcut (a ResNet basic block)."""

    def __init__(self, channels, dilation=1):
        super().__init__()
        self.conv1 = ConvBNReLU(channels, channels, 3, dilation=dilation)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, dilation, dilation=dilation,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        nn.init.zeros_(self.bn2.weight)  # start as identity: deep stacks train from step 0

    def forward(self, x):
        return F.relu(x + self.bn2(self.conv2(self.conv1(x))))


class Block(nn.Module):
    """One backbone block: an entry convolution (downsampling or widening) and units."""

    def __init__(self, cin, cout, stride, depth, dilation, stem_channels=None):
        super().__init__()
        if stem_channels is not None:  # block 0 owns the stem: two stride-2 convolutions
            entry = [ConvBNReLU(cin, stem_channels, 3, 2),
                     ConvBNReLU(stem_channels, cout, 3, 2 * stride)]
        elif stride != 1 or cin != cout:
            entry = [ConvBNReLU(cin, cout, 3, stride)]
        else:
            entry = []
        self.entry = nn.Sequential(*entry)
        self.units = nn.Sequential(*[ResidualUnit(cout, dilation) for _ in range(depth)])

    def forward(self, x):
        return self.units(self.entry(x))


class PyramidPooling(nn.Module):
    """A small pyramid pooling context module (average pools at 1x1, 2x2 and 4x4)."""

    def __init__(self, channels, bins=(1, 2, 4)):
        super().__init__()
        branch = max(channels // 4, 1)
        self.bins = bins
        # No batch norm on pooled maps: a 1x1 map of batch 1 has no statistics to take.
        self.branches = nn.ModuleList(nn.Conv2d(channels, branch, 1) for _ in bins)
        self.fuse = ConvBNReLU(channels + branch * len(bins), channels, 1)

    def forward(self, x):
        size = x.shape[-2:]
        pooled = [F.interpolate(F.relu(conv(F.adaptive_avg_pool2d(x, b))), size=size,
                                mode='bilinear', align_corners=False)
                  for b, conv in zip(self.bins, self.branches)]
        return self.fuse(torch.cat([x] + pooled, dim=1))


class ExitHead(nn.Module):
    """A light encoder-decoder exit head.

    Early blocks give high-resolution features with a small receptive field; a 1x1
    classifier on them sees too little context (the point ADP-C makes for dense
    prediction). The head therefore downsamples its input a few times and decodes
    back with skip connections before classifying, then upsamples the logits to the
    requested size.
    """

    def __init__(self, cin, channels, num_classes, levels, context=False):
        super().__init__()
        self.proj = ConvBNReLU(cin, channels, 1)
        self.down = nn.ModuleList(ConvBNReLU(channels, channels, 3, 2) for _ in range(levels))
        # Decoder convolutions run from the coarsest level back to the input resolution;
        # the last one, at the input resolution, is 1x1 so that a head on early,
        # high-resolution features stays cheap next to the blocks it follows.
        self.up = nn.ModuleList(ConvBNReLU(channels, channels, 1 if i == levels - 1 else 3)
                                for i in range(levels))
        self.context = PyramidPooling(channels) if context else nn.Identity()
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x, size=None):
        """Logits (B, classes, *size) from block features (B, C, h, w); size None keeps h, w."""
        x = self.proj(x)                                         # (B, h, H/s, W/s)
        skips = []
        for down in self.down:
            skips.append(x)
            x = down(x)                                          # halves H and W
        x = self.context(x)
        for up, skip in zip(self.up, reversed(skips)):
            x = up(skip + F.interpolate(x, size=skip.shape[-2:], mode='bilinear',
                                        align_corners=False))
        logits = self.classifier(x)                              # (B, K, H/s, W/s)
        if size is not None and tuple(logits.shape[-2:]) != tuple(size):
            logits = F.interpolate(logits, size=tuple(size), mode='bilinear',
                                   align_corners=False)
        return logits


@dataclass
class ExitRun:
    """State of an incremental pass: the last block output and how many blocks ran."""

    feature: torch.Tensor
    depth: int
    size: tuple


class MultiExitSegNet(nn.Module):
    """Multi-exit semantic segmentation network built from a :class:`ModelConfig`.

    ``forward`` returns the logits of every exit (training and evaluation); a runtime
    uses :meth:`begin` and :meth:`advance` to run only as deep as it can afford.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        blocks, heads = [], []
        cin = config.in_channels
        strides = config.block_strides()
        layout = lite_block_layout(config.depths) if config.trunk != 'resnet' else None
        for k, (cout, stride, depth, dilation) in enumerate(zip(
                config.channels, config.strides, config.depths, config.dilations)):
            if config.trunk == 'efficientnet_lite0':
                start, end, _, _ = layout[k]
                blocks.append(LiteBlock(start, end, config.in_channels))
            else:
                blocks.append(Block(cin, cout, stride, depth, dilation,
                                    stem_channels=config.stem_channels if k == 0 else None))
            levels = int(round(math.log2(max(config.head_context_stride / strides[k], 1))))
            levels = min(max(levels, 1), config.head_max_levels)
            last = k == config.num_exits - 1
            heads.append(ExitHead(cout, config.head_widths()[k], config.num_classes, levels,
                                  context=last and config.final_context))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.heads = nn.ModuleList(heads)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')

    @property
    def num_exits(self) -> int:
        """Number of exits (equal to the number of blocks)."""
        return len(self.blocks)

    def forward(self, x, return_features=False):
        """Run every block and every exit.

        Args:
            x: Normalized images (B, C, H, W).
            return_features: Also return the output of every block.

        Returns:
            The list of exit logits, each (B, classes, H, W); with ``return_features``,
            the pair (logits, features).
        """
        size = x.shape[-2:]
        logits, features = [], []
        for block, head in zip(self.blocks, self.heads):
            x = block(x)
            features.append(x)
            logits.append(head(x, size))
        return (logits, features) if return_features else logits

    def begin(self, x) -> ExitRun:
        """Start an incremental pass on normalized images (B, C, H, W)."""
        return ExitRun(feature=x, depth=0, size=tuple(x.shape[-2:]))

    def advance(self, run: ExitRun, exit_index: int, size=None) -> torch.Tensor:
        """Compute the blocks still missing up to ``exit_index`` and that exit's head.

        Blocks computed by earlier calls on the same ``run`` are not recomputed.

        Args:
            run: State from :meth:`begin`, updated in place.
            exit_index: Exit to produce, at least ``run.depth - 1``.
            size: Output (H, W); None gives the input size, ``False`` the head's own
                resolution (upsampling left to the caller).

        Returns:
            Logits (B, classes, H, W).
        """
        if not run.depth - 1 <= exit_index < self.num_exits:
            raise ValueError(f'exit {exit_index} is not reachable from depth {run.depth} '
                             f'(exits 0..{self.num_exits - 1})')
        for k in range(run.depth, exit_index + 1):
            run.feature = self.blocks[k](run.feature)
        run.depth = exit_index + 1
        if size is None:
            size = run.size
        return self.heads[exit_index](run.feature, size or None)

    def forward_exit(self, x, exit_index: int, size=None) -> torch.Tensor:
        """Logits of one exit, computing only the blocks it needs."""
        return self.advance(self.begin(x), exit_index, size)
