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
"""ONNX export and the ONNX Runtime engine backend (skipped without the onnx extra)."""

import importlib.util
import json

import numpy as np
import pytest
import torch

from multiexit_ros.cli import main
from multiexit_ros.errors import ConfigError
from multiexit_ros.model import load_checkpoint
from multiexit_ros.replay.outbag import MASK_TOPIC
from multiexit_ros.replay.recording import Recording
from multiexit_ros.runtime import Engine
from multiexit_ros.runtime.onnx_backend import (_HeadGraph, OrtNetwork,
                                                read_manifest)
from replay_helpers import frames, replay_cli, write_profile, write_recording

# A marker, not a module-level importorskip: launch_testing's pytest plugin imports every
# test module under `colcon test`, and a skip raised at import would skip them all.
pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ('onnx', 'onnxruntime')),
    reason="the onnx extra is not installed (pip install -e '.[onnx]' -c "
           'requirements/constraints.txt)')

SIZE = '64x96'


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith('multiexit ') and 'error:' in err and '\n' not in err, err
    assert 'Traceback' not in err
    return err


@pytest.fixture(scope='module')
def exported(ckpt, tmp_path_factory):
    """Export the tiny checkpoint once (CLI, checked); return the folder."""
    out = tmp_path_factory.mktemp('onnx') / 'tiny_onnx'
    assert main(['export', str(ckpt), '--format', 'onnx', '--out', str(out), '--size', SIZE,
                 '--check-count', '2']) == 0
    return out


def test_export_writes_graphs_manifest_and_passes_the_check(exported, ckpt):
    manifest = read_manifest(exported)
    model, meta = load_checkpoint(ckpt)
    assert manifest['input_size'] == [64, 96] and manifest['opset'] == 17
    assert manifest['num_exits'] == model.num_exits == len(manifest['graphs'])
    assert manifest['labels']['classes'] == list(meta.labels.classes)
    assert manifest['normalization']['mean'] == pytest.approx(list(meta.mean))
    assert manifest['model']['tensors_sha256']
    for k, g in enumerate(manifest['graphs']):
        assert (exported / g['block']).is_file() and (exported / g['head']).is_file()
        assert g['logits_shape'][1] == meta.labels.num_classes
        assert g['logits_shape'][2:] == g['feature_shape'][2:]  # the head's own resolution
    rows = manifest['check']['exits']
    assert [r['exit'] for r in rows] == list(range(model.num_exits))
    assert all(r['agreement'] >= 0.999 and r['max_abs_diff'] < 1e-3 for r in rows)


def test_exported_graphs_run_incrementally_like_the_model(exported, ckpt):
    model, _ = load_checkpoint(ckpt)
    net = OrtNetwork(exported, threads=1)
    torch.manual_seed(1)
    x = torch.randn(1, 3, 64, 96)
    ref_run, run = model.begin(x), net.begin(x)
    with torch.no_grad():
        for k in (0, 2, model.num_exits - 1):  # skipping exits: blocks are not rerun
            ref = model.advance(ref_run, k)
            got = net.advance(run, k)
            assert got.shape == ref.shape == (1, 11, 64, 96)
            assert float((got - ref).abs().max()) < 1e-3
    with pytest.raises(ValueError):
        net.advance(run, 0)


def test_a_graph_that_disagrees_fails_the_export(ckpt, tmp_path, capsys, monkeypatch):
    def wrong(self, x):
        return -self.head(x, None)  # what is exported is no longer the model
    monkeypatch.setattr(_HeadGraph, 'forward', wrong)
    out = tmp_path / 'bad'
    assert main(['export', str(ckpt), '--out', str(out), '--size', SIZE,
                 '--check-count', '1']) == 1
    err = one_line_error(capsys)
    assert 'disagrees with PyTorch' in err and 'exit 0' in err


def test_engine_backends_give_the_same_masks(ckpt, monkeypatch, tmp_path):
    monkeypatch.setenv('MULTIEXIT_CACHE_DIR', str(tmp_path / 'cache'))
    ref = Engine.from_checkpoint(ckpt, backend='torch', threads=1)
    ort = Engine.from_checkpoint(ckpt, backend='onnxruntime', threads=1)
    assert ort.backend == 'onnxruntime' and torch.get_num_threads() == 1
    for img in frames(2, seed=3):
        run = ort.begin(img)
        for k in range(ref.num_exits):
            a = ref.infer(img, k).mask
            b = ort.infer(img, k).mask
            assert a.shape == b.shape == img.shape[:2]
            assert (a == b).mean() >= 0.999
            assert (ort.advance(run, k) == a).mean() >= 0.999
    assert list((tmp_path / 'cache' / 'onnx').iterdir())  # exported once, cached


def _masks(bag) -> list:
    with Recording(bag) as rec:
        return [np.frombuffer(bytes(m.data), np.uint8).reshape(m.height, m.width)
                for _, _, m in rec.messages([MASK_TOPIC])]


def test_replay_with_onnxruntime_gives_the_same_masks_as_torch(ckpt, tmp_path, monkeypatch):
    monkeypatch.setenv('MULTIEXIT_CACHE_DIR', str(tmp_path / 'cache'))
    rec = write_recording(tmp_path / 'rec', speeds=[0, 2, 5, 10, 20, 30, 10, 0])
    profile = write_profile(tmp_path / 'p.json', [5, 10, 15, 20, 25], device='cpu')
    masks = {}
    for backend in ('torch', 'onnxruntime'):
        out = tmp_path / backend
        assert replay_cli(rec, out, ckpt, profile, '--device', 'cpu', '--write-bag',
                          '--param', f'engine.backend={backend}',
                          '--param', 'engine.threads=1') == 0
        masks[backend] = _masks(out / 'replay_bag')
    assert len(masks['torch']) == len(masks['onnxruntime']) == 8
    agree = np.mean([(a == b).mean() for a, b in zip(masks['torch'], masks['onnxruntime'])])
    assert agree >= 0.999


def test_missing_or_corrupt_export_is_a_one_line_error(exported, tmp_path):
    with pytest.raises(ConfigError, match='does not exist'):
        OrtNetwork(tmp_path / 'nowhere')
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ConfigError, match='no manifest.json'):
        OrtNetwork(empty)
    broken = tmp_path / 'broken'
    broken.mkdir()
    (broken / 'manifest.json').write_text('{not json', encoding='utf-8')
    with pytest.raises(ConfigError, match='unreadable manifest'):
        OrtNetwork(broken)
    manifest = json.loads((exported / 'manifest.json').read_text(encoding='utf-8'))
    del manifest['graphs'][1]
    (broken / 'manifest.json').write_text(json.dumps(manifest), encoding='utf-8')
    with pytest.raises(ConfigError, match='graphs for'):
        OrtNetwork(broken)
    corrupt = tmp_path / 'corrupt'
    corrupt.mkdir()
    for f in exported.iterdir():
        (corrupt / f.name).write_bytes(f.read_bytes())
    (corrupt / 'head_1.onnx').write_bytes(b'\x00garbage' * 10)
    with pytest.raises(ConfigError, match='head_1.onnx: ONNX Runtime cannot load it') as err:
        OrtNetwork(corrupt)
    assert '\n' not in str(err.value)
    with pytest.raises(ConfigError, match='takes 1x64x96'):
        OrtNetwork(exported).begin(torch.zeros(1, 3, 32, 32))


@pytest.mark.parametrize('argv, expect', [
    (['--check-count', '0'], '--check-count'),
    (['--opset', '7'], '--opset'),
    (['--size', '4x4'], 'size must be at least'),
    (['--check-images', '/nonexistent/frames'], '--check-images'),
])
def test_export_bad_arguments_are_one_line_errors(ckpt, tmp_path, capsys, argv, expect):
    assert main(['export', str(ckpt), '--out', str(tmp_path / 'o'), *argv]) == 1
    assert expect in one_line_error(capsys)


def test_export_of_a_missing_checkpoint_is_a_one_line_error(tmp_path, capsys):
    assert main(['export', str(tmp_path / 'none.safetensors'), '--out',
                 str(tmp_path / 'o')]) == 1
    one_line_error(capsys)


def test_an_unwritable_cache_is_a_one_line_error(ckpt, tmp_path, monkeypatch):
    blocker = tmp_path / 'file'
    blocker.write_text('not a folder', encoding='utf-8')
    monkeypatch.setenv('MULTIEXIT_CACHE_DIR', str(blocker))
    with pytest.raises(ConfigError, match='cannot write the ONNX cache'):
        Engine.from_checkpoint(ckpt, backend='onnxruntime', input_size=(64, 96))
