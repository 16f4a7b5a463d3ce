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
"""Per-exit losses: cross-entropy plus optional self-distillation from the last exit."""

import torch
import torch.nn.functional as F

from .routing import RoutingStrategy

__all__ = ['distillation_loss', 'enet_class_weights', 'exit_losses', 'per_exit_losses',
           'segmentation_ce']


def segmentation_ce(logits: torch.Tensor, target: torch.Tensor, ignore_index: int,
                    weight: torch.Tensor = None):
    """Cross-entropy averaged over labelled pixels (0 when a batch has none).

    Args:
        logits: (B, K, H, W).
        target: (B, H, W) int64 class ids; ``ignore_index`` marks unlabelled pixels.
        ignore_index: Label excluded from the loss.
        weight: Optional (K,) class weights; the mean is then weighted (each pixel counts
            as its class's weight), as ``torch.nn.CrossEntropyLoss`` does.
    """
    total = F.cross_entropy(logits.float(), target, weight=weight, ignore_index=ignore_index,
                            reduction='sum')
    valid = target != ignore_index
    if weight is None:
        return total / valid.sum().clamp(min=1)
    return total / weight[target[valid]].sum().clamp(min=1e-12)


def enet_class_weights(dataset, c: float = 1.02) -> torch.Tensor:
    """Class weights ``1 / ln(c + p_k)`` (as in ENet) from the class frequencies of ``dataset``.

    ``p_k`` is class k's share of the labelled pixels of every training label map (read
    once, without augmentation). Rare classes get weights up to ``1 / ln(c)`` (about 50).
    """
    labels = dataset.labels
    counts = torch.zeros(labels.num_classes, dtype=torch.float64)
    for part in getattr(dataset, 'datasets', [dataset]):
        for i in range(len(part)):
            _, label = part.read(i)
            values = torch.from_numpy(label.ravel()).long()
            values = values[values < labels.num_classes]
            counts += torch.bincount(values, minlength=labels.num_classes).double()
    p = counts / counts.sum().clamp(min=1)
    return (1.0 / torch.log(c + p)).float()


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, target: torch.Tensor,
                      ignore_index: int, temperature: float = 1.0):
    """KL(softmax(teacher / T) || softmax(student / T)) averaged over labelled pixels.

    The teacher is detached here. As in the authors' code there is no ``T**2`` factor.

    Args:
        student: Logits (B, K, H, W) of the exit being trained.
        teacher: Logits (B, K, H, W) of the last exit.
        target: (B, H, W) labels; pixels equal to ``ignore_index`` are left out.
        ignore_index: Label of unlabelled pixels.
        temperature: Softening temperature T.
    """
    log_q = F.log_softmax(student.float() / temperature, dim=1)
    log_p = F.log_softmax(teacher.detach().float() / temperature, dim=1)
    kl = F.kl_div(log_q, log_p, log_target=True, reduction='none').sum(1)    # (B, H, W)
    valid = target != ignore_index
    return (kl * valid).sum() / valid.sum().clamp(min=1)


def exit_losses(logits: list, target: torch.Tensor, strategy: RoutingStrategy,
                ignore_index: int, weight: torch.Tensor = None, num_exits: int = 0) -> tuple:
    """Weighted total loss and each exit's unweighted loss.

    Exit ``k``'s loss is ``CE_k + distill * KL_k`` (no distillation on the last exit,
    whose KL with itself is 0); the total is ``sum_k weight_k * loss_k``. ``logits`` may
    stop before the network's last exit when the later exits' weights are 0 (see
    :meth:`RoutingStrategy.trained_exits`); ``num_exits`` is then the network's count.

    Returns:
        (total loss tensor, detached tensor of per-exit losses, one per given exit).
    """
    weights = strategy.exit_weights(num_exits or len(logits))[:len(logits)]
    per_exit = per_exit_losses(logits, target, strategy, ignore_index, weight)
    total = sum(w * loss for w, loss in zip(weights, per_exit))
    return total, torch.stack([loss.detach() for loss in per_exit])


def per_exit_losses(logits: list, target: torch.Tensor, strategy: RoutingStrategy,
                    ignore_index: int, weight: torch.Tensor = None) -> list:
    """Each exit's loss ``CE_k + distill * KL_k`` (with its graph), unweighted."""
    per_exit = []
    for k, z in enumerate(logits):
        loss = segmentation_ce(z, target, ignore_index, weight)
        if strategy.distill and k < len(logits) - 1:
            loss = loss + strategy.distill * distillation_loss(
                z, logits[-1], target, ignore_index, strategy.temperature)
        per_exit.append(loss)
    return per_exit
