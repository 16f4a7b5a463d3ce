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
"""What the block-dependent-loss study needs: named groupings and exit-alone ceilings.

Also the gradient-cosine logger and the paired statistics of bench/block_losses.py.
"""

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from multiexit_ros.errors import ConfigError
from multiexit_ros.model import load_checkpoint, MultiExitSegNet, preset
from multiexit_ros.train.config import load_config
from multiexit_ros.train.gradcos import gradient_cosines
from multiexit_ros.train.losses import exit_losses, segmentation_ce
from multiexit_ros.train.routed import RoutedNet
from multiexit_ros.train.routing import RoutingStrategy
from multiexit_ros.train.trainer import train

REPO = Path(__file__).resolve().parent.parent


def test_the_authors_grouping_is_available_by_name():
    authors = RoutingStrategy('grouped', groups='authors')
    assert authors.group_list(5) == ((0, 1, 2), (3, 4))
    assert authors.starts(5) == [0, 0, 0, 3, 3]
    assert RoutingStrategy('grouped', groups='authors', num_groups=3).group_list(7) == (
        (0, 1, 2), (3, 4), (5, 6))
    assert RoutingStrategy('grouped').group_list(5) == ((0, 1), (2, 3, 4))
    assert RoutingStrategy('grouped', groups='late').group_list(5) == ((0, 1), (2, 3, 4))
    assert RoutingStrategy.from_dict(authors.to_dict()) == authors
    config = load_config(None, ['routing.name=grouped', 'routing.groups=authors'])
    assert config.routing.group_list(5) == ((0, 1, 2), (3, 4))
    assert 'groups=[[0, 1, 2], [3, 4]]' in authors.describe(5)
    with pytest.raises(ConfigError, match='grouped strategy'):
        RoutingStrategy('overlap', groups='authors')


def _net(n=5, seed=0):
    torch.manual_seed(seed)
    net = MultiExitSegNet(preset('tiny')).double()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
            torch.nn.init.uniform_(m.bias, -0.2, 0.2)
    return net


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 32, 40, generator=g, dtype=torch.float64)
    target = torch.randint(0, 4, (2, 32, 40), generator=g)
    target[0, :4] = 255
    return x, target


def test_exit_alone_trains_and_runs_only_its_blocks_and_head():
    net, (x, target) = _net(), _batch()
    strategy = RoutingStrategy('joint', weights=(0, 1, 0, 0, 0))
    routed = RoutedNet(net, strategy)
    calls = []
    for b, block in enumerate(net.blocks):
        block.register_forward_hook(lambda *_, b=b: calls.append(b))
    logits = routed(x)
    assert len(logits) == 2 and calls == [0, 1]      # blocks 2..4 never run
    loss, per_exit = exit_losses(logits, target, strategy, 255, num_exits=5)
    loss.backward()
    assert per_exit.shape == (2,)
    # The same gradients as exit 1's loss alone on the plain network.
    got = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    net.zero_grad(set_to_none=True)
    segmentation_ce(net(x)[1], target, 255).backward()
    for name, p in net.named_parameters():
        reference = torch.zeros_like(p) if p.grad is None else p.grad
        assert torch.allclose(got.get(name, torch.zeros_like(p)), reference), name
        if name.startswith(('blocks.2', 'blocks.3', 'blocks.4', 'heads.2', 'heads.3')):
            assert name not in got
    assert any(got[n].abs().sum() > 0 for n in got if n.startswith('blocks.0'))
    with torch.no_grad():
        assert len(routed(x)) == 5                     # inference still has every exit


def test_exit_alone_rejects_what_it_cannot_train():
    with pytest.raises(ConfigError, match='all 0'):
        RoutingStrategy('joint', weights=(0, 0, 0)).validate(3)
    with pytest.raises(ConfigError, match='distillation'):
        RoutingStrategy('joint', weights=(1, 0, 0), distill=0.3).validate(3)
    with pytest.raises(ConfigError, match='grad_cosine_every'):
        load_config(None, ['run.grad_cosine_every=-1'])


def _cos(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_gradient_cosines_match_a_computation_by_hand():
    net, (x, target) = _net(seed=3), _batch(seed=3)
    net.train()
    strategy = RoutingStrategy('overlap', distill=0.5, temperature=2.0)
    stats = [m.running_mean.clone() for m in net.modules()
             if isinstance(m, torch.nn.BatchNorm2d)]
    got = gradient_cosines(net, x, target, strategy, 255)
    # By hand: one plain backward per exit, the block's .grad read out and compared.
    n = net.num_exits
    grads = {}
    for k in range(n):
        net.zero_grad(set_to_none=True)
        logits = net(x)
        loss = segmentation_ce(logits[k], target, 255)
        if k < n - 1:
            teacher = torch.softmax(logits[-1].detach() / 2.0, 1)
            log_q = torch.log_softmax(logits[k] / 2.0, 1)
            kl = (teacher * (teacher.log() - log_q)).sum(1)
            valid = target != 255
            loss = loss + 0.5 * (kl * valid).sum() / valid.sum()
        loss.backward()
        for b in range(k + 1):
            grads[k, b] = np.concatenate([
                (p.grad if p.grad is not None else torch.zeros_like(p)).numpy().ravel()
                for p in net.blocks[b].parameters()])
    for b in range(n - 1):
        later = sum(grads[k, b] for k in range(b + 1, n))
        assert got['own_vs_later'][b] == pytest.approx(_cos(grads[b, b], later), abs=1e-6)
        for j, k in enumerate(range(b + 1, n)):
            # (the distillation term is computed in float32, as in training)
            assert got['pairs'][b][j] == pytest.approx(_cos(grads[b, b], grads[k, b]),
                                                       abs=1e-6)
    assert len(got['own_vs_later']) == n - 1
    assert all(-1 <= c <= 1 for c in got['own_vs_later'])
    # The hand computation ran the network in training mode; the logger did not move
    # the statistics: compare against a fresh copy of the same initialisation.
    fresh = [m.running_mean for m in _net(seed=3).modules()
             if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(torch.equal(a, b) for a, b in zip(stats, fresh))


def _tiny_config(tmp_path, name, *extra):
    return load_config(None, [
        f'run.out={tmp_path / name}', 'optim.steps=3', 'run.val_every=3', 'model=tiny',
        'data.dataset=generated', 'optim.batch_size=2', 'data.size=[48,64]',
        'data.crop=[48,48]', 'data.generated_count=6', 'data.generated_val_count=2',
        'data.workers=0', 'run.val_batch_size=1', 'routing.name=overlap', *extra])


def test_logging_gradient_cosines_leaves_the_training_unchanged(tmp_path):
    train(_tiny_config(tmp_path, 'plain'), progress=False)
    train(_tiny_config(tmp_path, 'logged', 'run.grad_cosine_every=2'), progress=False)
    records = [json.loads(line) for line in
               (tmp_path / 'logged' / 'grad_cosine.jsonl').read_text().splitlines()]
    assert [r['step'] for r in records] == [0, 2, 3]
    assert all(len(r['own_vs_later']) == 4 and len(r['pairs'][0]) == 4 for r in records)
    assert not (tmp_path / 'plain' / 'grad_cosine.jsonl').exists()
    a, _ = load_checkpoint(tmp_path / 'plain' / 'last.safetensors')
    b, _ = load_checkpoint(tmp_path / 'logged' / 'last.safetensors')
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_an_exit_alone_run_leaves_the_later_blocks_untouched(tmp_path):
    states = []
    for lr in ('0.01', '0.05'):
        train(_tiny_config(tmp_path, lr, 'routing.name=joint', f'optim.lr={lr}',
                           'routing.weights=[1,0,0,0,0]'), progress=False)
        states.append(load_checkpoint(tmp_path / lr / 'last.safetensors')[0].state_dict())
    a, b = states
    # Same seed, same initialisation: only what exit 0 trains depends on the lr.
    for name in a:
        same = torch.equal(a[name], b[name])
        if name.startswith(('blocks.0.', 'heads.0.', 'stem')) and 'num_batches' not in name:
            continue
        assert same, f'{name} changed although exit 0 alone cannot reach it'
    assert not all(torch.equal(a[n], b[n]) for n in a if n.startswith('blocks.0.'))
    assert not all(torch.equal(a[n], b[n]) for n in a if n.startswith('heads.0.'))


def _bench():
    spec = importlib.util.spec_from_file_location('block_losses',
                                                  REPO / 'bench' / 'block_losses.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_paired_confidence_interval_by_hand():
    bench = _bench()
    # differences 0.02, 0.04, 0.00, 0.02: mean 0.02, sd sqrt(0.0008/3), t(3) = 3.182446
    lo, mean, hi = bench.paired_ci([0.52, 0.54, 0.50, 0.52], [0.50, 0.50, 0.50, 0.50])
    half = 3.182446 * math.sqrt(0.0008 / 3) / 2
    assert mean == pytest.approx(0.02)
    assert lo == pytest.approx(0.02 - half, abs=1e-5)
    assert hi == pytest.approx(0.02 + half, abs=1e-5)
    assert bench.t_critical(1) == pytest.approx(12.7062, abs=1e-3)
    assert bench.t_critical(30) == pytest.approx(2.0423, abs=1e-3)
