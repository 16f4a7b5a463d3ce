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
"""Loss routing: reach matrices, and exact gradients against a brute-force reference."""

import random

import pytest
import torch

from multiexit_ros.errors import ConfigError
from multiexit_ros.model import MultiExitSegNet, preset
from multiexit_ros.train.losses import exit_losses
from multiexit_ros.train.routed import RoutedNet, stream_plan
from multiexit_ros.train.routing import RoutingStrategy


def _rows(strategy, n):
    return [''.join('x' if r else '.' for r in row) for row in strategy.reach(n)]


def test_reach_matrices_of_the_named_strategies():
    assert _rows(RoutingStrategy('joint'), 4) == ['x...', 'xx..', 'xxx.', 'xxxx']
    assert _rows(RoutingStrategy('local'), 4) == ['x...', '.x..', '..x.', '...x']
    # The authors' 7-block overlap with s=3, with and without the final exit's full reach.
    assert _rows(RoutingStrategy('overlap', window=3), 7) == [
        'x......', 'xx.....', 'xxx....', '.xxx...', '..xxx..', '...xxx.', '....xxx']
    assert _rows(RoutingStrategy('overlap', window=3, include_final=True), 7)[-1] == 'xxxxxxx'
    # The authors' grouping of 7 blocks into 3 + 4.
    assert _rows(RoutingStrategy('grouped', num_groups=2), 7) == [
        'x......', 'xx.....', 'xxx....', '...x...', '...xx..', '...xxx.', '...xxxx']
    explicit = RoutingStrategy('grouped', groups='0-1,2-4', include_final=True)
    assert _rows(explicit, 5) == ['x....', 'xx...', '..x..', '..xx.', 'xxxxx']
    assert explicit.groups == ((0, 1), (2, 3, 4))
    assert RoutingStrategy.from_dict(explicit.to_dict()) == explicit
    # Window 1 is local, a window as long as the network is joint.
    assert _rows(RoutingStrategy('overlap', window=1), 5) == _rows(RoutingStrategy('local'), 5)
    assert _rows(RoutingStrategy('overlap', window=5), 5) == _rows(RoutingStrategy('joint'), 5)


def test_stream_plan_merges_streams_where_it_can():
    assert stream_plan(RoutingStrategy('joint').starts(4)) == [[0]] * 4
    assert stream_plan(RoutingStrategy('grouped', groups='0-1,2-3').starts(4)) == [
        [0], [0], [2], [2]]
    assert stream_plan(RoutingStrategy('overlap', window=2).starts(4)) == [
        [0], [0, 1], [1, 2], [2]]  # block 3 is reached by exit 3 only


@pytest.mark.parametrize('kwargs, match', [
    ({'name': 'greedy'}, 'unknown routing strategy'),
    ({'name': 'overlap', 'window': 0}, 'window'),
    ({'name': 'grouped', 'groups': '0-1,3-4'}, 'consecutive'),
    ({'name': 'grouped', 'num_groups': 9}, '9 groups'),
    ({'weights': (1, 1)}, '2 weights'),
    ({'weights': (1, -1, 1, 1, 1)}, 'weights'),
    ({'temperature': 0}, 'temperature'),
])
def test_bad_strategies_are_rejected_clearly(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        RoutingStrategy(**kwargs).validate(5)


def _config(n, classes=4):
    strides = (1,) + tuple(2 if i < 3 else 1 for i in range(1, n))
    return preset('tiny', channels=tuple(4 + 2 * i for i in range(n)), depths=(1,) * n,
                  strides=strides, dilations=(1,) * n, head_channels=4, num_classes=classes,
                  final_context=n % 2 == 0)


def _reference_grads(net, x, target, strategy):
    """Sum over exits of one autograd.grad each, restricted to the blocks it may reach."""
    n, ignore = net.num_exits, 255
    starts, weights = strategy.starts(n), strategy.exit_weights(n)
    with torch.no_grad():
        feats = [x]
        for block in net.blocks:
            feats.append(block(feats[-1]))
        teacher = net.heads[-1](feats[-1], x.shape[-2:])
    total = {name: torch.zeros_like(p) for name, p in net.named_parameters()}
    names = {id(p): name for name, p in net.named_parameters()}
    for k in range(n):
        f = feats[starts[k]]
        params = list(net.heads[k].parameters())
        for b in range(starts[k], k + 1):
            f = net.blocks[b](f)
            params += list(net.blocks[b].parameters())
        logits = [torch.zeros(1)] * n
        logits[k] = net.heads[k](f, x.shape[-2:])
        if k < n - 1:
            logits[-1] = teacher
        one = RoutingStrategy(distill=strategy.distill, temperature=strategy.temperature)
        loss = weights[k] * _exit_loss(logits, k, target, one, ignore)
        for p, g in zip(params, torch.autograd.grad(loss, params, allow_unused=True)):
            if g is not None:
                total[names[id(p)]] += g
    return total


def _exit_loss(logits, k, target, strategy, ignore):
    from multiexit_ros.train.losses import distillation_loss, segmentation_ce
    loss = segmentation_ce(logits[k], target, ignore)
    if strategy.distill and k < len(logits) - 1:
        loss = loss + strategy.distill * distillation_loss(
            logits[k], logits[-1], target, ignore, strategy.temperature)
    return loss


def _random_strategy(rng, n):
    name = rng.choice(['joint', 'local', 'grouped', 'grouped', 'overlap', 'overlap'])
    kwargs = {'include_final': rng.random() < 0.5,
              'distill': rng.choice([0.0, 0.0, 0.7, 2.0]),
              'temperature': rng.choice([1.0, 3.0])}
    if rng.random() < 0.5:
        kwargs['weights'] = tuple(round(rng.uniform(0.2, 2.0), 2) for _ in range(n))
    if name == 'overlap':
        kwargs['window'] = rng.randint(1, n + 1)
    elif name == 'grouped' and rng.random() < 0.5:
        cuts = sorted(rng.sample(range(1, n), rng.randint(0, n - 1))) if n > 1 else []
        bounds = [0] + cuts + [n]
        kwargs['groups'] = [list(range(a, b)) for a, b in zip(bounds, bounds[1:])]
    elif name == 'grouped':
        kwargs['num_groups'] = rng.randint(1, n)
    return RoutingStrategy(name, **kwargs)


CASES = [(seed, n) for seed, n in enumerate([1, 2, 3, 3, 4, 4, 5, 5, 5, 6, 6, 7])]


@pytest.mark.parametrize('seed, n', CASES)
@pytest.mark.parametrize('mode', ['gate', 'rerun'])
def test_routed_gradients_match_brute_force_reference(seed, n, mode):
    rng = random.Random(seed)
    strategy = _random_strategy(rng, n)
    torch.manual_seed(seed)
    net = MultiExitSegNet(_config(n)).double()
    # Train-mode batch norm (batch statistics in the graph) for half the cases.
    net.train(seed % 2 == 0)
    for m in net.modules():  # non-trivial residual branches and BN parameters
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
            torch.nn.init.uniform_(m.bias, -0.2, 0.2)
    x = torch.randn(2, 3, 24, 40, dtype=torch.float64)
    target = torch.randint(0, 4, (2, 24, 40))
    target[0, :5] = 255
    routed = RoutedNet(net, strategy, mode)
    net.zero_grad(set_to_none=True)
    loss, per_exit = exit_losses(routed(x), target, strategy, 255)
    loss.backward()
    expected = _reference_grads(net, x, target, strategy)
    reach = strategy.reach(n)
    for name, p in net.named_parameters():
        got = torch.zeros_like(p) if p.grad is None else p.grad
        assert torch.allclose(got, expected[name], rtol=1e-7, atol=1e-10), (
            f'{strategy.describe(n)}: {name} differs by {(got - expected[name]).abs().max()}')
    for k in range(n):  # the reference is not trivially zero where the routing reaches
        b = max(i for i in range(n) if reach[k][i])
        assert any(expected[nm].abs().sum() > 0 for nm in expected
                   if nm.startswith(f'blocks.{b}.'))
    assert per_exit.shape == (n,) and torch.isfinite(per_exit).all()


@pytest.mark.parametrize('mode', ['gate', 'rerun'])
def test_routing_updates_batch_norm_statistics_once_per_step(mode):
    torch.manual_seed(0)
    plain = MultiExitSegNet(preset('tiny')).train()
    routed_net = MultiExitSegNet(preset('tiny')).train()
    routed_net.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 32)
    plain(x)
    strategy = RoutingStrategy('overlap', window=3, include_final=True)
    logits = RoutedNet(routed_net, strategy, mode)(x)
    with torch.no_grad():
        same = plain.eval()(x)
    for a, b in zip(plain.state_dict().values(), routed_net.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(logits, MultiExitSegNet.forward(routed_net.train(), x)):
        assert torch.allclose(a, b, atol=1e-6)
    assert len(same) == len(logits)
