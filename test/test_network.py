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
"""The multi-exit network: shapes, incremental execution, gradients and costs."""

import pytest
import torch

from multiexit_ros.errors import ConfigError
from multiexit_ros.model import exit_costs, ModelConfig, MultiExitSegNet, preset

CONFIGS = {
    'tiny': preset('tiny'),
    'tiny-3-blocks': preset('tiny', channels=(8, 16, 16), depths=(1, 1, 2),
                            strides=(1, 2, 2), dilations=(1, 1, 1), num_classes=5),
    'tiny-7-blocks-no-context': preset(
        'tiny', channels=(8, 16, 16, 24, 24, 32, 32), depths=(1,) * 7,
        strides=(1, 2, 1, 2, 2, 1, 1), dilations=(1, 1, 1, 1, 1, 2, 4), final_context=False,
        num_classes=19),
    'small': preset('small'),
}


def _net(config, seed=0):
    torch.manual_seed(seed)
    return MultiExitSegNet(config).eval()


@pytest.mark.parametrize('name', sorted(CONFIGS))
@pytest.mark.parametrize('size', [(64, 96), (45, 61)])
def test_every_exit_has_full_resolution_logits(name, size):
    config = CONFIGS[name]
    net = _net(config)
    with torch.no_grad():
        outs = net(torch.randn(2, 3, *size))
    assert len(outs) == config.num_exits == net.num_exits
    for out in outs:
        assert out.shape == (2, config.num_classes, *size)
        assert out.dtype == torch.float32
        assert torch.isfinite(out).all()


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_incremental_execution_equals_full_forward_exactly(name):
    net = _net(CONFIGS[name])
    x = torch.randn(1, 3, 64, 80)
    with torch.no_grad():
        full = net(x)
        run = net.begin(x)
        # Stop after exit 0, then continue to later exits without recomputing.
        stepwise = [net.advance(run, k) for k in range(net.num_exits)]
        assert run.depth == net.num_exits
        for k in range(net.num_exits):
            assert torch.equal(net.forward_exit(x, k), full[k])
            assert torch.equal(stepwise[k], full[k])
        # Skipping exits continues from the stored block output.
        run = net.begin(x)
        first = net.advance(run, 0)
        last = net.advance(run, net.num_exits - 1)
    assert torch.equal(first, full[0]) and torch.equal(last, full[-1])


def test_incremental_does_not_recompute_blocks():
    net = _net(CONFIGS['tiny'])
    calls = [0] * net.num_exits
    for k, block in enumerate(net.blocks):
        block.register_forward_hook(lambda *_, k=k: calls.__setitem__(k, calls[k] + 1))
    with torch.no_grad():
        run = net.begin(torch.randn(1, 3, 32, 32))
        for k in range(net.num_exits):
            net.advance(run, k)
    assert calls == [1] * net.num_exits


def test_advance_refuses_going_backwards():
    net = _net(CONFIGS['tiny'])
    with torch.no_grad():
        run = net.begin(torch.randn(1, 3, 32, 32))
        net.advance(run, 2)
        net.advance(run, 2)  # the same exit again is allowed: its block output is kept
        with pytest.raises(ValueError, match='not reachable'):
            net.advance(run, 0)
        with pytest.raises(ValueError, match='not reachable'):
            net.advance(run, net.num_exits)


def test_advance_can_leave_upsampling_to_the_caller():
    net = _net(CONFIGS['tiny'])
    with torch.no_grad():
        low = net.advance(net.begin(torch.randn(1, 3, 64, 64)), 1, size=False)
    assert low.shape[-2:] == (8, 8)  # exit 1 sits at stride 8


@pytest.mark.parametrize('name', ['tiny', 'tiny-3-blocks'])
def test_forward_backward_reaches_every_parameter(name):
    net = _net(CONFIGS[name]).train()
    x = torch.randn(2, 3, 48, 64)
    target = torch.randint(0, net.config.num_classes, (2, 48, 64))
    target[:, :4] = 255
    loss = sum(torch.nn.functional.cross_entropy(o, target, ignore_index=255)
               for o in net(x))
    loss.backward()
    for name_, p in net.named_parameters():
        assert p.grad is not None, name_
        assert torch.isfinite(p.grad).all(), name_


@pytest.mark.parametrize('name', sorted(CONFIGS) + ['base', 'large'])
def test_per_exit_costs_are_measured_and_increase(name):
    net = _net(CONFIGS[name] if name in CONFIGS else preset(name))
    costs = exit_costs(net, (128, 160))
    assert [c.exit for c in costs] == list(range(net.num_exits))
    flops = [c.flops for c in costs]
    assert all(a < b for a, b in zip(flops, flops[1:])), flops
    params = [c.params for c in costs]
    heads = [sum(p.numel() for p in h.parameters()) for h in net.heads]
    assert params[-1] == sum(p.numel() for p in net.blocks.parameters()) + heads[-1]
    assert all(c.block_flops > 0 and c.head_flops > 0 for c in costs)
    # FLOPs scale with the image area: a measurement, not a formula of the config.
    bigger = exit_costs(net, (256, 320))
    ratios = [b.flops / a.flops for a, b in zip(costs, bigger)]
    assert all(3.5 < r < 4.5 for r in ratios), ratios


def test_config_round_trip_and_validation():
    config = CONFIGS['tiny-7-blocks-no-context']
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match='depths has 2 entries'):
        ModelConfig(channels=(8, 8, 8), depths=(1, 1), strides=(1, 2, 2), dilations=(1, 1, 1))
    with pytest.raises(ConfigError, match='strides must be 1 or 2'):
        preset('tiny', strides=(1, 3, 2, 2, 1))
    with pytest.raises(ConfigError, match='unknown keys'):
        ModelConfig.from_dict({'channels': [8], 'colour': 'red'})
    with pytest.raises(ConfigError, match='unknown model preset'):
        preset('huge')
