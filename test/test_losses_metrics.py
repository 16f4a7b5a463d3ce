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
"""Losses and the confusion matrix on tiny hand-computed examples."""

import math

import numpy as np
import pytest
import torch

from multiexit_ros.train.losses import distillation_loss, exit_losses, segmentation_ce
from multiexit_ros.train.metrics import ConfusionMatrix
from multiexit_ros.train.routing import RoutingStrategy


def _logits(*pixels):
    """(1, K, 1, P) logits from per-pixel class scores."""
    return torch.tensor(pixels, dtype=torch.float64).T[None, :, None, :]


def test_cross_entropy_averages_over_labelled_pixels_only():
    z = _logits([0.0, math.log(3)], [5.0, -5.0], [1.0, 1.0])
    target = torch.tensor([[[1, 9, 0]]])   # middle pixel ignored
    # pixel 0: p(1) = 3/4; pixel 2: p(0) = 1/2
    want = (-math.log(3 / 4) - math.log(1 / 2)) / 2
    assert segmentation_ce(z, target, 9).item() == pytest.approx(want)
    assert segmentation_ce(z, torch.full((1, 1, 3), 9), 9).item() == 0.0


def test_distillation_is_kl_of_tempered_softmaxes_without_t_squared():
    student = _logits([0.0, 0.0], [2.0, 0.0])
    teacher = _logits([math.log(3), 0.0], [0.0, 0.0])
    target = torch.tensor([[[0, 7]]])    # second pixel ignored
    # T = 1: p = (3/4, 1/4), q = (1/2, 1/2)
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert distillation_loss(student, teacher, target, 7).item() == pytest.approx(kl)
    # T = 2 halves the logits: p = (sqrt3, 1) / (sqrt3 + 1), q stays uniform.
    s = math.sqrt(3)
    p = (s / (s + 1), 1 / (s + 1))
    kl2 = sum(pi * math.log(pi / 0.5) for pi in p)
    assert distillation_loss(student, teacher, target, 7, 2.0).item() == pytest.approx(kl2)


def test_exit_losses_weights_and_distillation():
    torch.manual_seed(0)
    logits = [torch.randn(2, 3, 4, 5, requires_grad=True) for _ in range(3)]
    target = torch.randint(0, 3, (2, 4, 5))
    strategy = RoutingStrategy(weights=(0.5, 1.0, 2.0), distill=0.3, temperature=2.0)
    total, per_exit = exit_losses(logits, target, strategy, 255)
    ce = [segmentation_ce(z, target, 255) for z in logits]
    kd = [distillation_loss(z, logits[2], target, 255, 2.0) for z in logits[:2]]
    assert per_exit[2].item() == pytest.approx(ce[2].item())   # no self-distillation
    assert per_exit[0].item() == pytest.approx((ce[0] + 0.3 * kd[0]).item())
    assert total.item() == pytest.approx(0.5 * per_exit[0].item() + per_exit[1].item()
                                         + 2 * per_exit[2].item())
    total.backward()  # distillation does not train the final exit
    only_ce = torch.autograd.grad(2 * segmentation_ce(logits[2], target, 255), logits[2])[0]
    assert torch.allclose(logits[2].grad, only_ce)


def test_confusion_matrix_counts_ious_and_accuracy():
    cm = ConfusionMatrix(3, ignore_index=255)
    target = np.array([[0, 0, 1, 1], [2, 2, 255, 7]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 2, 2]])
    cm.update(pred, target)
    assert cm.matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert cm.total == 6 and cm.pixel_accuracy() == pytest.approx(4 / 6)
    assert cm.iou() == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert cm.miou() == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    twin = ConfusionMatrix(3, 255).update(torch.from_numpy(pred), torch.from_numpy(target))
    assert np.array_equal(twin.matrix, cm.matrix)
    cm.merge(twin)
    assert cm.total == 12
    absent = ConfusionMatrix(4, 255).update(pred, target)
    assert math.isnan(absent.iou()[3]) and absent.miou() == pytest.approx(cm.miou())
    d = absent.to_dict(['a', 'b', 'c', 'd'])
    assert d['iou']['d'] is None and d['pixels'] == 6
