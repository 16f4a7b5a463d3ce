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
"""Fused upsampling + argmax against F.interpolate + argmax, and the CPU engine's buffers."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from multiexit_ros.model import MultiExitSegNet, preset
from multiexit_ros.runtime import Engine
from multiexit_ros.runtime.postprocess import axis_table, reference_mask, UpsampleArgmax

pytestmark = pytest.mark.usefixtures('one_torch_thread')

SIZES = [  # (h, w) logits -> (H, W) mask
    ((90, 120), (360, 480)), ((12, 15), (720, 1280)), ((23, 30), (100, 77)),
    ((45, 60), (20, 30)), ((7, 9), (7, 50)), ((1, 1), (5, 5)), ((3, 1), (1, 9)),
    ((5, 5), (5, 5)), ((2, 3), (1, 1)), ((1, 7), (13, 1)), ((17, 13), (41, 29)),
]


def _check(logits, size):
    """Fused mask equals the reference except at float-rounding ties of the reference."""
    up = F.interpolate(logits, size=size, mode='bilinear', align_corners=False)[0]
    ref = up.max(0).indices.numpy()
    got = UpsampleArgmax()(logits, size)
    assert got.shape == tuple(size) and got.dtype == np.uint8
    top2 = up.topk(min(2, up.shape[0]), 0).values
    gap = (top2[0] - top2[-1]).numpy() if up.shape[0] > 1 else np.ones(size)
    tol = 1e-5 * max(float(logits.abs().max()), 1e-30)
    differ = got != ref
    assert not (differ & (gap > tol)).any(), f'{differ.sum()} pixels differ'
    assert differ.mean() < 1e-4
    return int(differ.sum())


def _smooth(k, h, w, seed, layout=torch.contiguous_format):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(1, k, 3, 4, generator=g) * 4
    x = F.interpolate(coarse, size=(h, w), mode='bilinear', align_corners=False)
    return x.contiguous(memory_format=layout)


@pytest.mark.parametrize('in_size, out_size', SIZES)
def test_random_logits_match_the_reference(in_size, out_size):
    g = torch.Generator().manual_seed(sum(in_size) + sum(out_size))
    _check(torch.randn(1, 11, *in_size, generator=g) * 3, out_size)


@pytest.mark.parametrize('in_size, out_size', SIZES)
def test_structured_logits_match_the_reference(in_size, out_size):
    for seed, layout in ((0, torch.contiguous_format), (1, torch.channels_last)):
        _check(_smooth(11, *in_size, seed, layout), out_size)


def test_real_like_logits_are_identical():
    # Smooth class fields with sharp boundaries, like a network's: no pixel differs.
    for seed in range(3):
        assert _check(_smooth(11, 45, 60, seed) * 10, (720, 1280)) == 0
        assert _check(_smooth(5, 12, 15, seed), (360, 480)) == 0


def test_all_corners_agree_and_all_disagree():
    agree = torch.zeros(1, 4, 10, 12)
    agree[0, 2] = 1.0  # class 2 everywhere
    assert (UpsampleArgmax()(agree, (37, 53)) == 2).all()
    checker = torch.zeros(1, 2, 10, 12)
    ii, jj = torch.meshgrid(torch.arange(10), torch.arange(12), indexing='ij')
    checker[0, 0] = ((ii + jj) % 2).float()
    checker[0, 1] = 1 - checker[0, 0]  # neighbouring corners always disagree
    _check(checker, (37, 53))
    _check(checker + 0.3 * torch.randn(1, 2, 10, 12), (41, 61))


def test_ties_go_to_the_lowest_class():
    tied = torch.zeros(1, 3, 4, 5)  # all classes equal everywhere, as argmax: class 0
    assert (UpsampleArgmax()(tied, (9, 11)) == 0).all()
    two = torch.zeros(1, 3, 4, 5)
    two[0, 1:] = 1.0  # classes 1 and 2 tied above 0
    assert (UpsampleArgmax()(two, (9, 11)) == 1).all()


def test_a_wrong_fused_mask_would_be_caught():
    # The check itself must be able to fail: a mask with one changed pixel in a
    # clear region is rejected.
    logits = _smooth(11, 12, 15, 0) * 10
    fused = UpsampleArgmax()
    good = fused(logits, (100, 120))
    ref = reference_mask(logits, (100, 120)).numpy()
    assert np.array_equal(good, ref)
    bad = good.copy()
    bad[50, 60] = (bad[50, 60] + 1) % 11
    assert not np.array_equal(bad, ref)


@pytest.mark.parametrize('n_in, n_out', [(90, 360), (15, 1280), (60, 20), (7, 7), (1, 5),
                                         (120, 1280), (23, 100)])
def test_axis_table_matches_interpolate(n_in, n_out):
    # One axis of F.interpolate on a ramp gives i0 + w1 * (i1 - i0) exactly enough.
    i0, i1, w1 = axis_table(n_in, n_out)
    assert (i0 >= 0).all() and (i1 < n_in).all() and (i1 - i0 <= 1).all()
    assert ((w1 >= 0) & (w1 <= 1)).all() and (np.diff(i0) >= 0).all()
    ramp = torch.arange(n_in, dtype=torch.float32).reshape(1, 1, 1, n_in) ** 2
    ref = F.interpolate(ramp, size=(1, n_out), mode='bilinear', align_corners=False)[0, 0, 0]
    v = ramp[0, 0, 0].numpy()
    ours = v[i0] * (1 - w1) + v[i1] * w1
    assert np.allclose(ours, ref.numpy(), rtol=1e-6, atol=1e-4)


def test_out_buffer_is_used_and_fresh_masks_do_not_alias():
    fused = UpsampleArgmax()
    a = _smooth(11, 12, 15, 0)
    b = -a  # a different mask at the same size
    first = fused(a, (60, 80))
    kept = first.copy()
    second = fused(b, (60, 80))
    assert np.array_equal(first, kept)  # the earlier mask was not overwritten
    assert not np.shares_memory(first, second) and not np.array_equal(first, second)
    buf = np.full((60, 80), 77, np.uint8)
    assert fused(a, (60, 80), out=buf) is buf and np.array_equal(buf, kept)
    with pytest.raises(ValueError):
        fused(a, (60, 80), out=np.empty((60, 81), np.uint8))


def _engine(**kwargs):
    torch.manual_seed(0)
    return Engine(MultiExitSegNet(preset('tiny')), channels_last=True, **kwargs)


@pytest.mark.parametrize('size', [(64, 96), (72, 100), (45, 61)])
def test_engine_cpu_path_equals_the_reference_path(size):
    fused, ref = _engine(input_size=(64, 96)), _engine(input_size=(64, 96),
                                                       fused_upsample=False)
    image = np.random.default_rng(size[0]).integers(0, 256, (*size, 3), dtype=np.uint8)
    for k in range(fused.num_exits):
        with torch.inference_mode():
            x = ref._preprocess(torch.from_numpy(image), (64, 96))
            expected = ref._mask(ref.model.forward_exit(x, k, size)).numpy()
        assert np.array_equal(fused.infer(image, k).mask, expected)
        assert np.array_equal(ref.infer(image, k).mask, expected)


def test_engine_preprocessing_has_the_reference_values():
    engine = _engine(input_size=(64, 96))
    for size in ((64, 96), (130, 170)):
        image = np.random.default_rng(1).integers(0, 256, (*size, 3), dtype=np.uint8)
        with torch.inference_mode():
            ref = engine._preprocess(torch.from_numpy(image), (64, 96))
            got = engine._preprocess_cpu(image, (64, 96), reuse=True)
        assert torch.equal(got, ref)
        assert got.is_contiguous(memory_format=torch.channels_last)


def test_engine_masks_and_runs_are_not_overwritten_by_later_calls():
    engine = _engine(input_size=(64, 96))
    rng = np.random.default_rng(2)
    a, b = (rng.integers(0, 256, (64, 96, 3), dtype=np.uint8) for _ in range(2))
    first = engine.infer(a, 4).mask
    kept = first.copy()
    engine.infer(b, 4)
    assert np.array_equal(first, kept)
    # An incremental run keeps its own input while infer() reuses its buffers.
    run = engine.begin(a)
    engine.infer(b, 0)
    assert np.array_equal(engine.advance(run, 4), kept)


def test_resize_uint8_is_an_option_with_nearly_the_same_input():
    exact, fast = _engine(input_size=(64, 96)), _engine(input_size=(64, 96),
                                                        resize_uint8=True)
    image = np.random.default_rng(3).integers(0, 256, (128, 192, 3), dtype=np.uint8)
    with torch.inference_mode():
        a = exact._preprocess_cpu(image, (64, 96))
        b = fast._preprocess_cpu(image, (64, 96))
    assert not torch.equal(a, b)  # a different input: hence an option, off by default
    step = float(exact._scale.max())  # one grey level, normalized
    assert float((a - b).abs().max()) <= 0.51 * step * 1.001
