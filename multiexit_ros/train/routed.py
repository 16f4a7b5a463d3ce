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
"""Exact loss routing in one forward pass: a gradient gate per block.

Exits are grouped into *streams* by the first block their loss reaches (see
:meth:`RoutingStrategy.starts`). A stream's gradient must flow down to its start block and
stop there, so at a block boundary the gradients of different streams must stay apart.

:class:`RoutedNet` runs every block once. Where only one stream crosses a block (joint,
local and grouped routing) the block is an ordinary autograd node whose input is
detached at the stream's start, which costs nothing extra. Where several streams cross
a block (overlap routing, ``include_final``) the block runs inside :class:`_StreamGate`:
its forward computes the block once and hands each stream its own copy of the output;
its backward takes one gradient per stream, computes the vector-Jacobian product of each
on the saved graph, returns each stream's input gradient separately and sums the
parameter gradients. The forward is a single pass, so batch-norm running statistics
update once per step, and a single ``loss.backward()`` runs everything, so
DistributedDataParallel and mixed precision work unchanged.

``mode='rerun'`` is the simple reference: each block runs once per stream on a detached
copy, as the authors' code does (extra runs leave batch-norm statistics untouched).
"""

from contextlib import contextmanager

import torch
from torch import nn

from .routing import RoutingStrategy

__all__ = ['MODES', 'RoutedNet', 'frozen_bn_stats', 'stream_plan']

MODES = ('gate', 'rerun')


def stream_plan(starts: list) -> list:
    """For each block ``b``, the sorted starts of the streams that cross it."""
    n = len(starts)
    return [sorted({starts[k] for k in range(b, n) if starts[k] <= b}) for b in range(n)]


@contextmanager
def frozen_bn_stats(module: nn.Module):
    """Run ``module`` without updating batch-norm running statistics."""
    saved = []
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            saved.append((m, m.momentum, None if m.num_batches_tracked is None
                          else m.num_batches_tracked.clone()))
            m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum, tracked in saved:
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


class _StreamGate(torch.autograd.Function):
    """Run a block once; keep the gradients of several streams apart in backward.

    Inputs: the block, the number of output streams, the number of passing streams
    ``P``, then ``P`` stream tensors (equal values, different histories), then the
    block's parameters. Outputs: one copy of the block's output per stream; the first
    ``P`` continue the passing streams, an extra last one starts a stream here.
    """

    @staticmethod
    def forward(ctx, block, n_out, n_pass, *args):
        ctx.set_materialize_grads(False)
        xs, params = args[:n_pass], args[n_pass:]
        leaf = xs[0].detach().requires_grad_(True)
        with torch.enable_grad():
            out = block(leaf)
        ctx.graph = (leaf, out, params, n_pass)
        return tuple(out.detach() for _ in range(n_out))

    @staticmethod
    def backward(ctx, *grads):
        leaf, out, params, n_pass = ctx.graph
        ctx.graph = None
        trainable = [i for i, p in enumerate(params) if p.requires_grad]
        dparams = [None] * len(params)
        dxs = [None] * n_pass
        todo = [i for i, g in enumerate(grads) if g is not None]
        for n, i in enumerate(todo):
            wants_x = i < n_pass and ctx.needs_input_grad[3 + i]
            inputs = ([leaf] if wants_x else []) + [params[j] for j in trainable]
            got = torch.autograd.grad(out, inputs, grads[i], retain_graph=n < len(todo) - 1,
                                      allow_unused=True)
            if wants_x:
                dxs[i], got = got[0], got[1:]
            for j, g in zip(trainable, got):
                if g is not None:
                    dparams[j] = g if dparams[j] is None else dparams[j] + g
        return (None, None, None, *dxs, *dparams)


class RoutedNet(nn.Module):
    """A :class:`MultiExitSegNet` whose exit losses reach only their routed blocks.

    ``forward(x)`` returns the same logits as the network's own forward; only the
    gradients differ. Wrap this module (not the bare network) in DistributedDataParallel.

    Args:
        net: The multi-exit network (its parameters are shared, not copied).
        strategy: The routing.
        mode: ``gate`` (one forward pass) or ``rerun`` (the simple reference).
    """

    def __init__(self, net: nn.Module, strategy: RoutingStrategy, mode: str = 'gate'):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f'routing mode must be one of {MODES}, got {mode!r}')
        self.net = net
        self.strategy = strategy.validate(net.num_exits)
        self.mode = mode
        self.starts = strategy.starts(net.num_exits)
        self.plan = stream_plan(self.starts)
        self.trained = strategy.trained_exits(net.num_exits)

    def forward(self, x) -> list:
        """Logits at the input resolution, with routed gradients.

        Without gradients: every exit (the network's own forward). With gradients: the
        exits up to the last one whose loss weight is above 0 (later blocks would
        receive no gradient, so they do not run).
        """
        if not torch.is_grad_enabled():
            return self.net(x)
        size = x.shape[-2:]
        prev = x.detach()     # f_(b-1) without history: the input of a stream starting at b
        streams = {}          # start -> f_(b-1) carrying that stream's history
        logits = []
        pairs = list(zip(self.net.blocks, self.net.heads))[:self.trained]
        for b, (block, head) in enumerate(pairs):
            outs = self._block(b, block, prev, streams)
            logits.append(head(outs[self.starts[b]], size))
            prev = outs[self.starts[b]].detach()
            streams = outs
        return logits

    def _block(self, b, block, prev, streams) -> dict:
        plan = self.plan[b]
        if len(plan) == 1:
            a = plan[0]
            return {a: block(streams[a] if a < b else prev)}
        if self.mode == 'rerun':
            outs = {}
            for i, a in enumerate(plan):
                inp = streams[a] if a < b else prev
                if i == 0:
                    outs[a] = block(inp)
                else:  # same values again: leave the running statistics alone
                    with frozen_bn_stats(block):
                        outs[a] = block(inp)
            return outs
        passing = [a for a in plan if a < b]   # sorted, so a starting stream comes last
        outs = _StreamGate.apply(block, len(plan), len(passing),
                                 *(streams[a] for a in passing), *block.parameters())
        return dict(zip(plan, outs))
