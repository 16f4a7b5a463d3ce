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
"""Streaming quality: hand-computable cases, first on the scorer, then on real replays."""

import json
from pathlib import Path

import numpy as np
import pytest

from multiexit_ros.replay import replay, ReplayOptions
from multiexit_ros.replay.streaming import StreamingQuality, StreamingScorer
from multiexit_ros.replay.timing import Frame
from multiexit_ros.runtime import PipelineConfig
from multiexit_ros.runtime.config import BudgetConfig
from replay_helpers import frames, write_profile, write_recording

PERIOD = 0.1  # the helpers' recordings run at 10 Hz


def frame(i):
    return Frame(i, i * PERIOD, i * PERIOD, None, '', 0)


def constant(value):
    return np.full((2, 2), value, np.uint8)


def test_scorer_charges_a_policy_that_drops_every_other_frame():
    # Even frames show class 0 everywhere, odd frames class 1. 'all' segments every
    # frame perfectly and at once; 'half' does the same for even frames only.
    scorer = StreamingScorer(['all', 'half'], num_classes=3)
    for i in range(4):
        label = constant(i % 2)
        scorer.add_mask('all', i, i * PERIOD, i * PERIOD, label)
        if i % 2 == 0:
            scorer.add_mask('half', i, i * PERIOD, i * PERIOD, label)
        got = scorer.score(frame(i), label)
        assert got['all']['stream_from'] == i
        assert got['half']['stream_from'] == i - i % 2
    assert scorer.summary('all')['streaming_miou'] == 1.0
    # class 0: 8 right, 8 of class 1 held as 0 -> IoU 8/16; class 1: never right -> 0
    half = scorer.summary('half')
    assert half['streaming_miou'] == pytest.approx(0.25)
    assert half['streaming_pixel_accuracy'] == pytest.approx(0.5)
    # held masks are 0 s old at even frames and one period old at odd ones
    assert half['mean_mask_age_ms'] == pytest.approx(50.0)
    assert scorer.summary('all')['mean_mask_age_ms'] == 0.0


def test_scorer_one_frame_late_scores_the_previous_mask():
    scorer = StreamingScorer(['late'], num_classes=4)
    labels = [constant(0), constant(1), np.array([[1, 1], [2, 2]], np.uint8)]
    for i, label in enumerate(labels):
        scorer.add_mask('late', i, i * PERIOD, i * PERIOD + 0.05, label)  # 50 ms latency
    got = [scorer.score(frame(i), label)['late'] for i, label in enumerate(labels)]
    assert [g['stream_from'] for g in got] == [None, 0, 1]
    # frame 1 holds frame 0's mask (all 0) against all 1: 0; frame 2 holds all 1 against
    # half 1, half 2: class 1 IoU 2/4, class 2 IoU 0 -> 0.25
    assert [g['stream_miou'] for g in got] == [0.0, 0.0, 0.25]
    assert [g['stream_age_ms'] for g in got] == [None, pytest.approx(100), pytest.approx(100)]
    summary = scorer.summary('late')
    assert summary['streaming_no_mask'] == 1 and summary['streaming_frames'] == 3


def test_scorer_no_mask_yet_is_every_pixel_wrong():
    q = StreamingQuality(3, ignore_index=2)
    q.update(None, np.array([[0, 1], [2, 2]], np.uint8))  # the 2s are ignored
    assert q.miou() == 0.0 and q.pixel_accuracy() == 0.0
    assert q.missed.tolist() == [1, 1, 0]


def test_scorer_deadline_query_waits_for_the_budget():
    scorer = StreamingScorer(['p'], num_classes=2, query='deadline',
                             budget_of=lambda f: 0.06)
    scorer.add_mask('p', 0, 0.0, 0.05, constant(1))
    assert scorer.score(frame(0), constant(1))['p']['stream_from'] == 0
    scorer.add_mask('p', 1, 0.1, 0.17, constant(0))  # 70 ms: after the deadline
    assert scorer.score(frame(1), constant(0))['p']['stream_from'] == 0


def test_scorer_never_uses_a_later_frame():
    scorer = StreamingScorer(['p'], num_classes=2, query='deadline',
                             budget_of=lambda f: 1.0)
    scorer.add_mask('p', 1, 0.1, 0.12, constant(1))
    assert scorer.score(frame(0), constant(1))['p']['stream_from'] is None


# ---- replays of real recordings with known latencies ------------------------------------

@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    """Return an untrained tiny network whose masks vary from frame to frame.

    With its initial classifier biases it paints every frame one class, so masks of
    different frames could not tell a late mask from a fresh one; without them they can.
    """
    import torch

    from multiexit_ros.labels import CAMVID
    from multiexit_ros.model import CheckpointMeta, MultiExitSegNet, preset, save_checkpoint

    torch.manual_seed(0)
    cfg = preset('tiny')
    model = MultiExitSegNet(cfg)
    for head in model.heads:
        torch.nn.init.zeros_(head.classifier.bias)
    path = tmp_path_factory.mktemp('model') / 'tiny.safetensors'
    return save_checkpoint(path, model, CheckpointMeta(model=cfg, labels=CAMVID))


@pytest.fixture(scope='module')
def scene(ckpt):
    """Eight random frames and the final exit's mask of each."""
    from multiexit_ros.runtime import Engine

    images = frames(8, seed=5)
    engine = Engine.from_checkpoint(ckpt, device='cpu')
    masks = [engine.infer(img, engine.num_exits - 1).mask for img in images]
    assert all((a != b).any() for a, b in zip(masks, masks[1:]))  # or the tests say little
    return images, masks


def run(tmp_path, ckpt, images, labels, ms, **kw):
    rec = write_recording(tmp_path / 'bag', images=images, labels=labels)
    budget = kw.pop('budget', BudgetConfig())
    config = PipelineConfig(model_path=str(ckpt), device='cpu', precision='fp32',
                            profile_path=str(write_profile(tmp_path / 'p.json', ms)),
                            budget=budget)
    out = tmp_path / 'out'
    summary = replay(ReplayOptions(recording=rec, out_dir=out, config=config, plots=False,
                                   progress=False, policies=['exit0', 'final'], **kw))
    rows = sorted((json.loads(line) for line in
                   (Path(out) / 'frames.jsonl').read_text().split('\n') if line),
                  key=lambda r: r['frame'])
    final = next(p for p in summary['policies'] if p['policy'] == 'final')
    return summary, final, [r['policies']['final'] for r in rows]


def expected(pairs, num_classes=11, ignore=11):
    """Streaming mIoU of (held mask or None, label) pairs, counted independently."""
    from multiexit_ros.train.metrics import ConfusionMatrix

    matrix, missed = ConfusionMatrix(num_classes, ignore), np.zeros(num_classes)
    for mask, label in pairs:
        if mask is None:
            valid = label[label != ignore]
            missed += np.bincount(valid, minlength=num_classes)[:num_classes]
        else:
            matrix.update(mask, label)
    m = matrix.matrix.astype(float)
    tp = np.diag(m)
    union = m.sum(0) + m.sum(1) + missed - tp
    return float(np.nanmean(np.where(union > 0, tp / np.maximum(union, 1), np.nan)))


def test_labels_equal_to_final_masks_with_zero_latency_score_full(tmp_path, ckpt, scene):
    images, masks = scene
    summary, final, rows = run(tmp_path, ckpt, images, masks, [0, 0, 0, 0, 0])
    assert final['miou'] == 1.0 and final['streaming_miou'] == 1.0
    assert [r['stream_from'] for r in rows] == list(range(8))
    assert final['mean_mask_age_ms'] == 0.0 and final['streaming_no_mask'] == 0
    assert summary['streaming_query'] == 'frame'
    exit0 = next(p for p in summary['policies'] if p['policy'] == 'exit0')
    assert exit0['streaming_miou'] == pytest.approx(exit0['miou'])  # fresh masks: same pixels


def test_masks_one_frame_late_score_the_previous_frames_mask(tmp_path, ckpt, scene):
    images, masks = scene
    labels = [None] + masks[1:]  # frame 0 unlabelled: nothing is scored before a mask
    summary, final, rows = run(tmp_path, ckpt, images, labels, [50] * 5)  # half a period
    assert final['processed'] == 8 and final['dropped'] == 0 and final['miou'] == 1.0
    scored = rows[1:]
    assert [r['stream_from'] for r in scored] == list(range(7))
    for i, r in enumerate(scored, start=1):
        assert r['stream_miou'] == pytest.approx(expected([(masks[i - 1], masks[i])]))
        assert r['stream_age_ms'] == pytest.approx(100.0)
    want = expected([(masks[i - 1], masks[i]) for i in range(1, 8)])
    assert final['streaming_miou'] == pytest.approx(want, abs=1e-12)
    assert final['streaming_miou'] < 1.0  # the frames differ, so lateness costs
    assert final['mean_mask_age_ms'] == pytest.approx(100.0)


def test_no_mask_yet_scores_zero(tmp_path, ckpt, scene):
    images, masks = scene
    summary, final, rows = run(tmp_path, ckpt, images[:2], [masks[0], None], [50] * 5)
    assert final['miou'] == 1.0  # its own mask, once ready, is perfect
    for p in summary['policies']:
        assert p['streaming_miou'] == 0.0 and p['streaming_pixel_accuracy'] == 0.0
        assert p['streaming_no_mask'] == 1 and p['mean_mask_age_ms'] is None
    assert rows[0]['stream_from'] is None and rows[0]['stream_miou'] == 0.0


def test_dropping_every_other_frame_is_charged(tmp_path, ckpt, scene):
    images, masks = scene
    # final takes 190 ms at 10 Hz: frames 0 [0, .19], 1 [.19, .38], 3 [.38, .57],
    # 5 [.57, .76], 7 [.76, .95] are processed; 2, 4 and 6 are replaced while waiting.
    summary, final, rows = run(tmp_path, ckpt, images, masks, [1, 2, 3, 4, 190])
    assert final['dropped'] == 3 and final['miou'] == 1.0  # per-frame: drops are free
    held = [None, None, 0, 0, 1, 1, 3, 3]
    assert [r['stream_from'] for r in rows] == held
    want = expected([(None if h is None else masks[h], masks[i]) for i, h in enumerate(held)])
    assert final['streaming_miou'] == pytest.approx(want, abs=1e-12)
    assert final['streaming_miou'] < 0.7
    assert final['streaming_no_mask'] == 2
    ages = [100 * (i - h) for i, h in enumerate(held) if h is not None]
    assert final['mean_mask_age_ms'] == pytest.approx(np.mean(ages))


def test_deadline_query_takes_masks_ready_within_the_budget(tmp_path, ckpt, scene):
    images, masks = scene
    budget = BudgetConfig(min_budget_s=0.08, max_budget_s=0.08)  # no speed: the minimum
    summary, final, rows = run(tmp_path, ckpt, images, masks, [50] * 5, budget=budget,
                               streaming_query='deadline')
    assert summary['streaming_query'] == 'deadline'
    assert [r['stream_from'] for r in rows] == list(range(8))
    assert final['streaming_miou'] == 1.0
    assert final['mean_mask_age_ms'] == pytest.approx(80.0)  # query at stamp + 80 ms


def test_without_labels_agreement_with_final_is_streaming_too(tmp_path, ckpt, scene):
    images, masks = scene
    summary, final, rows = run(tmp_path, ckpt, images, None, [50] * 5)
    assert summary['quality_reference'] == 'final_exit'
    assert final['miou'] == 1.0
    assert [r['stream_from'] for r in rows] == [None] + list(range(7))
    want = expected([(None, masks[0])] + [(masks[i - 1], masks[i]) for i in range(1, 8)],
                    ignore=None)
    assert final['streaming_miou'] == pytest.approx(want, abs=1e-12)


# ---- the demo's budget, derived from a profile ------------------------------------------

class _Profile:
    """A profile whose every quantile of exit k is ``ms[k]``."""

    def __init__(self, ms):
        self.ms = ms
        self.num_exits = len(ms)

    def quantile(self, k, q):
        return self.ms[k] / 1e3


def test_demo_budget_fits_every_exit_standing_and_early_ones_at_top_speed():
    from multiexit_ros.replay.demo_budget import calibrate_budget, camera_rate
    from multiexit_ros.runtime.budget import speed_budget

    calib = calibrate_budget(_Profile([10, 20, 40, 80]), 0.95, arrival_delay_s=0.003,
                             reserve_s=0.002, top_speed_mps=36.0, margin=0.0)
    assert calib.need_s == pytest.approx([0.015, 0.025, 0.045, 0.085])
    budget = BudgetConfig(**{k.split('.')[1]: v for k, v in calib.params.items()})
    # all four fit standing, even after waiting for one 80 ms pass of the final exit
    assert speed_budget(0.0, budget) == pytest.approx(0.085 + 0.080)
    assert speed_budget(36.0, budget) == pytest.approx(0.025)    # exits 0 and 1
    assert speed_budget(None, budget) == pytest.approx(0.015)    # stale: exit 0 still fits
    assert calib.notes == [] and 'exits 0, 1 fit' in calib.describe()
    assert camera_rate(calib) == 50.0  # 20 ms per frame: exits 0 and 1 keep up, 2, 3 do not


def test_demo_budget_says_when_exits_cost_the_same():
    from multiexit_ros.replay.demo_budget import calibrate_budget

    calib = calibrate_budget(_Profile([10, 12, 9, 11, 12.5]), 0.95, 0.003, 0.002, 36.0)
    assert len(calib.notes) == 1 and 'exit(s) 2, 3 need no more time' in calib.notes[0]
    # the final exit, a little slower, is still kept out at top speed (half-way margin)
    assert calib.top_budget_s == pytest.approx((0.017 + 0.0175) / 2)
    assert 'exits 0, 1, 2, 3 fit' in calib.describe()


def test_demo_budget_stays_within_the_parameter_ranges():
    from multiexit_ros.replay.demo_budget import calibrate_budget

    calib = calibrate_budget(_Profile([4000, 4500, 5000]), 0.95, 0.003, 0.002, 36.0)
    budget = BudgetConfig(**{k.split('.')[1]: v for k, v in calib.params.items()})
    assert budget.blind_distance_m == 100.0 and budget.max_budget_s == 10.0
    assert any('clamped' in n for n in calib.notes)


def test_demo_with_the_demo_target_profile_and_budget_options(tmp_path, capsys):
    from multiexit_ros.cli import main
    from multiexit_ros.replay.demo_budget import calibrate_budget
    from multiexit_ros.runtime import LatencyProfile

    base = ['demo', '--frames', '6', '--size', '48x64', '--preset', 'tiny', '--no-progress',
            '--no-plots', '--profile', 'demo-target']
    assert main(base + ['--out', str(tmp_path / 'a')]) == 0
    printed = capsys.readouterr().out
    assert 'latency: demo target device' in printed and 'budget from the profile' in printed
    summary = json.loads((tmp_path / 'a' / 'replay' / 'summary.json').read_text())
    profile = LatencyProfile.load(tmp_path / 'a' / 'demo_target_profile.json')
    calib = calibrate_budget(profile, 0.95, 0.003, 0.002, 130 / 3.6)
    assert summary['budget']['blind_distance_m'] == pytest.approx(
        calib.params['budget.blind_distance_m'])
    assert all(p['streaming_miou'] is not None for p in summary['policies'])
    for budget in ('auto', 'config'):  # an explicit --param wins either way
        out = tmp_path / budget
        assert main(base + ['--out', str(out), '--budget', budget,
                            '--param', 'budget.blind_distance_m=2.5', '--hz', '10']) == 0
        summary = json.loads((out / 'replay' / 'summary.json').read_text())
        assert summary['budget']['blind_distance_m'] == 2.5
    assert '10 Hz' in capsys.readouterr().out
