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
"""Checkpoints: bit-exact round trip and clear errors on bad files."""

import json
import struct

import pytest
import torch

from multiexit_ros.errors import CheckpointError
from multiexit_ros.labels import CAMVID, LabelSet
from multiexit_ros.model import (CheckpointMeta, load_checkpoint, MultiExitSegNet, preset,
                                 read_meta, save_checkpoint)


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(1)
    net = MultiExitSegNet(preset('tiny'))
    with torch.no_grad():  # non-trivial batch-norm statistics
        net.train()(torch.randn(2, 3, 32, 32))
    meta = CheckpointMeta(model=net.config, labels=CAMVID, input_size=(360, 480),
                          training={'strategy': 'overlap', 'window': 2},
                          metrics={'miou': [0.1, 0.2, 0.3, 0.4, 0.5]})
    path = save_checkpoint(tmp_path / 'm.safetensors', net, meta)
    return path, net.eval(), meta


def test_round_trip_is_bit_exact(saved):
    path, net, meta = saved
    loaded, loaded_meta = load_checkpoint(path)
    ref, got = net.state_dict(), loaded.state_dict()
    assert ref.keys() == got.keys()
    for k in ref:
        assert torch.equal(ref[k], got[k]), k
    assert loaded_meta == meta
    assert not loaded.training
    x = torch.randn(1, 3, 40, 56)
    with torch.no_grad():
        for a, b in zip(net(x), loaded(x)):
            assert torch.equal(a, b)
    assert read_meta(path) == meta


def test_saving_twice_gives_identical_files(saved, tmp_path):
    path, net, meta = saved
    again = save_checkpoint(tmp_path / 'again.safetensors', net, meta)
    assert again.read_bytes() == path.read_bytes()


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match='checkpoint not found'):
        load_checkpoint(tmp_path / 'nope.safetensors')


@pytest.mark.parametrize('keep', [0, 5, 100, -10])
def test_truncated_file(saved, keep):
    path, _, _ = saved
    blob = path.read_bytes()
    path.write_bytes(blob[:keep] if keep >= 0 else blob[:keep])
    with pytest.raises(CheckpointError, match='truncated|corrupt'):
        load_checkpoint(path)


def test_flipped_weight_byte_is_detected(saved):
    path, _, _ = saved
    blob = bytearray(path.read_bytes())
    blob[-3] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match='SHA-256'):
        load_checkpoint(path)


def test_file_cut_inside_the_tensor_data_says_truncated(saved):
    path, _, _ = saved
    blob = path.read_bytes()
    path.write_bytes(blob[:len(blob) * 2 // 3])
    with pytest.raises(CheckpointError, match=r'truncated checkpoint \(tensor data has \d+ of'):
        load_checkpoint(path)


@pytest.mark.parametrize('content', [b'model: small\n', b'not a checkpoint at all' * 10])
def test_other_file_is_not_called_truncated(tmp_path, content):
    path = tmp_path / 'm.safetensors'
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match='not a checkpoint \\(not a safetensors file\\)'):
        load_checkpoint(path)


def test_folder_is_not_called_missing(tmp_path):
    with pytest.raises(CheckpointError, match='is a folder, not a checkpoint file'):
        load_checkpoint(tmp_path)


def test_garbage_header(tmp_path):
    path = tmp_path / 'bad.safetensors'
    path.write_bytes(struct.pack('<Q', 4) + b'{{{{' + b'\0' * 16)
    with pytest.raises(CheckpointError, match='corrupt checkpoint header'):
        load_checkpoint(path)


def test_foreign_safetensors_file(tmp_path):
    import safetensors.torch
    path = tmp_path / 'foreign.safetensors'
    safetensors.torch.save_file({'w': torch.zeros(3)}, str(path))
    with pytest.raises(CheckpointError, match='not a multiexit_ros checkpoint'):
        load_checkpoint(path)


def _rewrite_meta(path, edit):
    """Rewrite the metadata JSON of a checkpoint, keeping its tensors and hash."""
    import safetensors.torch
    tensors = safetensors.torch.load_file(str(path))
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        doc = json.loads(json.loads(f.read(n))['__metadata__']['multiexit_ros'])
    edit(doc)
    safetensors.torch.save_file(tensors, str(path), metadata={'multiexit_ros': json.dumps(doc)})


def test_architecture_mismatch(saved):
    path, _, _ = saved

    def widen(doc):
        doc['model']['channels'][2] += 4
    _rewrite_meta(path, widen)
    with pytest.raises(CheckpointError, match='tensor blocks.2.*needs'):
        load_checkpoint(path)


def test_label_count_mismatch(saved):
    path, _, _ = saved
    _rewrite_meta(path, lambda doc: doc['labels']['classes'].pop())
    with pytest.raises(CheckpointError, match='10 classes but 11 palette colours'):
        load_checkpoint(path)

    def drop_class(doc):
        doc['labels']['palette'].pop()
    _rewrite_meta(path, drop_class)
    with pytest.raises(CheckpointError, match='10 class names for a model of 11 classes'):
        load_checkpoint(path)


def test_unsupported_version(saved):
    path, _, _ = saved
    _rewrite_meta(path, lambda doc: doc.update(version=99))
    with pytest.raises(CheckpointError, match='version 99 is not supported'):
        read_meta(path)


def test_meta_model_must_match_saved_model(tmp_path):
    net = MultiExitSegNet(preset('tiny'))
    meta = CheckpointMeta(model=preset('small'), labels=CAMVID)
    with pytest.raises(CheckpointError, match='differs'):
        save_checkpoint(tmp_path / 'x.safetensors', net, meta)


def test_failed_save_keeps_the_previous_file(saved, monkeypatch):
    path, net, meta = saved
    before = path.read_bytes()
    bad = CheckpointMeta(model=net.config, labels=LabelSet('x', ('a',), ((0, 0, 0),), 255))
    monkeypatch.setattr('safetensors.torch.save', lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        save_checkpoint(path, net, bad)
    assert path.read_bytes() == before
