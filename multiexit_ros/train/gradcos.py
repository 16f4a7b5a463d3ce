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
"""Gradient conflict between exits: how far later exits pull a block from its own exit.

For block ``b`` let ``g_k(b)`` be the gradient of exit ``k``'s loss with respect to the
block's parameters, as the plain (joint) backward computes it. Block ``b`` feeds exits
``b..N-1``; the block-dependent losses of Han et al. cut some of the later ones off.
That can only help exit ``b`` where the later exits pull the other way, so the logger
records, for every block but the last,

- ``own_vs_later[b]``: cos(g_b(b), sum over k > b of g_k(b)), and
- ``pairs[b][j]``: cos(g_b(b), g_(b+1+j)(b)), exit by exit.

A cosine near +1 means no conflict (the later exits want the same change); near 0 or
negative, a conflict the routing can relieve. Batch-norm running statistics are left
untouched and nothing random is drawn, so logging does not change the training.
"""

import torch

from .losses import per_exit_losses
from .routed import frozen_bn_stats

__all__ = ['cosine', 'gradient_cosines']


def cosine(a: torch.Tensor, b: torch.Tensor):
    """Cosine of two flat vectors, or None when either is zero."""
    na, nb = a.norm(), b.norm()
    if na == 0 or nb == 0:
        return None
    return float(torch.dot(a, b) / (na * nb))


def gradient_cosines(net, images, target, strategy, ignore_index: int,
                     weight: torch.Tensor = None) -> dict:
    """Per-block cosines between an exit's own gradient and the later exits' (see module).

    Args:
        net: A :class:`MultiExitSegNet` (in training mode, as during training).
        images: (B, 3, H, W) normalised batch.
        target: (B, H, W) labels.
        strategy: The routing strategy; only its distillation setting is used, so that
            each exit's loss is the one being trained.
        ignore_index: Unlabelled label.
        weight: Optional class weights of the cross-entropy.

    Returns:
        ``{'own_vs_later': [...], 'pairs': [[...], ...]}`` (N-1 entries each; None where
        a gradient is zero).
    """
    n = net.num_exits
    with torch.enable_grad(), frozen_bn_stats(net):
        logits = net(images)
        losses = per_exit_losses(logits, target, strategy, ignore_index, weight)
        params = [[p for p in block.parameters() if p.requires_grad] for block in net.blocks]
        # grads[k][b]: exit k's gradient on block b (b <= k), flattened.
        grads = []
        for k, loss in enumerate(losses):
            flat = [p for b in range(k + 1) for p in params[b]]
            got = torch.autograd.grad(loss, flat, retain_graph=k < n - 1, allow_unused=True)
            per_block, i = [], 0
            for b in range(k + 1):
                parts = [torch.zeros_like(p) if g is None else g
                         for p, g in zip(params[b], got[i:i + len(params[b])])]
                per_block.append(torch.cat([t.reshape(-1) for t in parts]).double())
                i += len(params[b])
            grads.append(per_block)
    own_vs_later, pairs = [], []
    for b in range(n - 1):
        own = grads[b][b]
        later = [grads[k][b] for k in range(b + 1, n)]
        own_vs_later.append(cosine(own, torch.stack(later).sum(0)))
        pairs.append([cosine(own, g) for g in later])
    return {'own_vs_later': own_vs_later, 'pairs': pairs}
