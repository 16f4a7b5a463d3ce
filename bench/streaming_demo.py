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
"""The demo's streaming comparison, generated drive and CamVid val, with one profile.

Runs what ``multiexit demo`` runs (same drive, same budget derived from the latency
profile), with one latency profile measured once at the start of the run (or given with
--profile) and shared by every replay, so the two sources are compared under identical
latencies. For each source and policy: streaming mIoU (query at the frame's stamp, and at
its deadline), per-frame mIoU, deadline misses, drops and mean mask age.

Then a budget *learnt from replays* is tried against the blind-distance budget: the
fixed-exit policies are replayed on a different generated drive (world seed 8), each
speed band gets the exit with the best mean streaming mIoU there, and the band's budget
becomes that exit's need (a ``table`` budget); it is evaluated on the demo drive.

Writes results/streaming_demo_<device>.{json,md} and the profile used.

Usage (repository root, after ``make venv``):
    .venv/bin/python bench/streaming_demo.py [--model FILE] [--threads 1]
        [--camvid ../shared/data/camvid/val] [--profile FILE]
"""

import argparse
from dataclasses import replace
import json
import logging
import os
from pathlib import Path
import tempfile
import time

import numpy as np

from multiexit_ros.machine import machine_info, write_results
from multiexit_ros.replay import replay, ReplayOptions
from multiexit_ros.replay.demo import ARRIVAL_DELAY_S, build_drive, speed_profile
from multiexit_ros.replay.demo import TOP_SPEED_MPS
from multiexit_ros.replay.demo_budget import calibrate_budget, camera_rate
from multiexit_ros.replay.policies import build_engine, load_profile
from multiexit_ros.runtime import measure_profile, PipelineConfig

ROOT = Path(__file__).resolve().parent.parent
BANDS_MPS = [0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0]
COLUMNS = ('streaming_miou', 'streaming_miou_deadline', 'miou', 'deadline_miss_rate',
           'dropped', 'frames', 'mean_mask_age_ms', 'streaming_no_mask', 'exit_histogram')


def run_replay(drive, out, config, query, policies=()):
    return replay(ReplayOptions(recording=drive, out_dir=out, config=config, plots=False,
                                progress=False, policies=list(policies),
                                streaming_query=query))


def compare(drive, work, config, policies=()):
    """Per policy: the figures of both streaming queries (one replay per query)."""
    frame = run_replay(drive, work / 'frame', config, 'frame', policies)
    deadline = run_replay(drive, work / 'deadline', config, 'deadline', policies)
    rows = []
    for p, d in zip(frame['policies'], deadline['policies']):
        row = {k: p.get(k) for k in COLUMNS if k in p}
        row.update(policy=p['policy'], streaming_miou_deadline=d['streaming_miou'],
                   mean_mask_age_deadline_ms=d['mean_mask_age_ms'])
        rows.append(row)
    return {'summary': frame, 'rows': rows}


def band_scores(frames_jsonl: Path, n_exits: int, frames: int, hz: float) -> dict:
    """{(speed band, exit): [per-frame streaming mIoU of that fixed policy]}."""
    scores = {}
    for line in frames_jsonl.read_text().splitlines():
        rec = json.loads(line)
        band = int(np.searchsorted(BANDS_MPS, speed_profile(rec['frame'] / hz, frames / hz),
                                   side='right')) - 1
        for name, p in rec['policies'].items():
            if name != 'speed' and p.get('stream_miou') is not None:
                k = n_exits - 1 if name == 'final' else int(name[4:])
                scores.setdefault((band, k), []).append(p['stream_miou'])
    return scores


def oracle(scores: dict, n_exits: int) -> dict:
    """Best exit per speed band chosen on the evaluated drive itself (an upper bound).

    Figures are means of per-frame streaming mIoU (not the pooled mIoU of the tables).
    """
    bands = sorted({b for b, _ in scores})
    total, count, best = 0.0, 0, []
    for band in bands:
        means = {k: np.mean(v) for (b, k), v in scores.items() if b == band}
        k = max(means, key=means.get)
        best.append(k)
        total += means[k] * len(scores[(band, k)])
        count += len(scores[(band, k)])
    fixed = {k: np.mean([x for (b, j), v in scores.items() if j == k for x in v])
             for k in range(n_exits)}
    top = max(fixed, key=fixed.get)
    return {'best_exit_per_band': best, 'oracle_mean_frame_miou': total / count,
            'best_fixed_exit': top, 'best_fixed_mean_frame_miou': fixed[top],
            'gain_points': 100 * (total / count - fixed[top])}


def learn_table(drive, work, config, need, frames, hz):
    """Per speed band, the exit whose fixed policy streams best; return table params."""
    summary = run_replay(drive, work / 'learn', config, 'frame', _fixed(len(need)))
    scores = band_scores(work / 'learn' / 'frames.jsonl', len(need), frames, hz)
    best = []
    for band in range(len(BANDS_MPS) - 1):
        means = {k: np.mean(v) for (b, k), v in scores.items() if b == band}
        best.append(max(means, key=means.get) if means else 0)
    speeds = [(a + b) / 2 for a, b in zip(BANDS_MPS, BANDS_MPS[1:])]
    budgets = [need[k] for k in best]
    return ({'budget.policy': 'table', 'budget.table_speeds_mps': speeds,
             'budget.table_budgets_s': budgets,
             'budget.min_budget_s': min(budgets), 'budget.max_budget_s': max(budgets)},
            {'bands_mps': BANDS_MPS, 'best_exit': best, 'budgets_s': budgets,
             'learnt_on': summary['recording']})


def _fixed(n):
    return [f'exit{k}' for k in range(n - 1)] + ['final']


def _pct(v):
    return '-' if v is None else f'{100 * v:.1f}%'


def table(rows) -> str:
    lines = ['| policy | streaming mIoU (frame time) | streaming mIoU (deadline) | '
             'per-frame mIoU | deadline miss | dropped | mean mask age (ms) | exits |',
             '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |']
    for r in rows:
        age = r.get('mean_mask_age_ms')
        lines.append(
            f'| {r["policy"]} | {_pct(r["streaming_miou"])} | '
            f'{_pct(r["streaming_miou_deadline"])} | {_pct(r["miou"])} | '
            f'{_pct(r["deadline_miss_rate"])} | {r["dropped"]} / {r["frames"]} | '
            f'{"-" if age is None else f"{age:.0f}"} | '
            f'{" ".join(map(str, r["exit_histogram"]))} |')
    return '\n'.join(lines) + '\n'


def verdict(rows) -> dict:
    speed = next(r for r in rows if r['policy'] == 'speed')
    fixed = [r for r in rows if r['policy'] in ('final',) or r['policy'][4:].isdigit()]
    best = max(fixed, key=lambda r: r['streaming_miou'] or 0.0)
    margin = 100 * ((speed['streaming_miou'] or 0.0) - (best['streaming_miou'] or 0.0))
    miss = speed['deadline_miss_rate'] or 0.0
    return {'best_fixed': best['policy'], 'margin_points': margin,
            'speed_miss_rate': miss, 'met': margin >= 2.0 and miss <= 0.01}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', default='', help='checkpoint (default: the shipped model)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads (default 1: steadier on a shared machine)')
    parser.add_argument('--frames', type=int, default=300)
    parser.add_argument('--hz', type=float,
                        help='camera rate (default: as the demo, from the profile)')
    parser.add_argument('--camvid', default=str(ROOT.parent / 'shared/data/camvid/val'),
                        help='CamVid val frames (SegNet layout; labels from valannot)')
    parser.add_argument('--profile', help='use this latency profile instead of measuring')
    parser.add_argument('--samples', type=int, default=100,
                        help='profile samples per exit (round-robin over the exits)')
    parser.add_argument('--out', default=str(ROOT / 'bench' / 'results'))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch
    torch.set_num_threads(args.threads)
    config = PipelineConfig.from_params({
        'model_path': args.model, 'device': args.device,
        'precision': 'fp32' if args.device == 'cpu' else 'fp16'})
    engine = build_engine(config)
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.profile:
            profile = load_profile(args.profile, engine)
        else:
            profile = measure_profile(engine, (360, 480), 5, args.samples)
        device = 'cpu' if args.device == 'cpu' else 'cuda'
        profile_path = profile.save(Path(args.out) / f'streaming_demo_profile_{device}.json')
        calib = calibrate_budget(profile, config.latency_quantile, ARRIVAL_DELAY_S,
                                 config.budget.output_reserve_s, TOP_SPEED_MPS)
        hz = args.hz or camera_rate(calib)
        drives = {'generated': build_drive(work / 'generated', args.frames, hz)}
        if Path(args.camvid).is_dir():
            drives['camvid_val'] = build_drive(work / 'camvid_val', args.frames, hz,
                                               source=args.camvid)
        demo = PipelineConfig.from_params(dict(
            replace(config, profile_path=str(profile_path)).to_params(), **calib.params))
        results = {'benchmark': 'streaming_demo', 'machine': machine_info(),
                   'threads': args.threads, 'load_average_start': load_start,
                   'model': args.model or 'shipped (models/multiexit_camvid.safetensors)',
                   'frames': args.frames, 'hz': hz,
                   'profile_source': (f'given: {args.profile}' if args.profile else
                                      'measured at the start of this run'),
                   'profile_p50_ms': [profile.p50(k) * 1e3 for k in range(profile.num_exits)],
                   'profile_p95_ms': [profile.p95(k) * 1e3 for k in range(profile.num_exits)],
                   'budget': calib.params, 'budget_words': calib.describe(),
                   'budget_notes': calib.notes, 'sources': {}}
        t0 = time.perf_counter()
        for name, info in drives.items():
            got = compare(work / name, work / f'out_{name}', demo)
            results['sources'][name] = {'drive': info['source'], 'rows': got['rows'],
                                        'verdict': verdict(got['rows'])}
            scores = band_scores(work / f'out_{name}' / 'frame' / 'frames.jsonl',
                                 profile.num_exits, info['frames'], hz)
            results['sources'][name]['oracle'] = oracle(scores, profile.num_exits)
        build_drive(work / 'learn', args.frames, hz, seed=8)
        params, learnt = learn_table(work / 'learn', work, demo, calib.need_s, args.frames, hz)
        learnt_cfg = PipelineConfig.from_params(dict(demo.to_params(), **params))
        got = compare(work / 'generated', work / 'out_learnt', learnt_cfg, ['speed'])
        row = next(r for r in got['rows'] if r['policy'] == 'speed')
        row['policy'] = 'speed (learnt table)'
        learnt['row'] = row
        results['learnt_budget'] = learnt
        results['replay_s'] = time.perf_counter() - t0
        results['load_average_end'] = os.getloadavg()
    write_results(args.out, f'streaming_demo_{device}', results, markdown(results))
    print(markdown(results))


def markdown(r) -> str:
    m = r['machine']
    out = [f'# Streaming evaluation of the demo drive ({r["model"]})', '',
           f'Machine: {m.get("cpu")}, {m.get("cores")} cores, torch {m.get("torch")}, '
           f'{r["threads"]} thread(s); **shared** with other jobs (load average '
           f'{r["load_average_start"][0]:.1f} at the start, {r["load_average_end"][0]:.1f} '
           f'at the end), so absolute latencies are indicative only.', '',
           f'Drive: {r["frames"]} frames at {r["hz"]:g} Hz (CamVid: its val frames, up to '
           f'that many), standstill -> 130 km/h -> standstill, as `multiexit demo`. One '
           f'latency profile ({r["profile_source"]}) for every replay (p50 per exit: '
           f'{", ".join(f"{v:.1f}" for v in r["profile_p50_ms"])} ms; p95: '
           f'{", ".join(f"{v:.1f}" for v in r["profile_p95_ms"])} ms).', '',
           f'{r["budget_words"]}.', '']
    out += [f'Note: {n}.' for n in r['budget_notes']]
    out += ['', 'Streaming mIoU scores each labelled frame against the most recent mask '
            'finished by its stamp (frame time) or by stamp + speed budget (deadline); no '
            'mask yet counts as all wrong. Mean mask age: frame-time query.', '']
    for name, s in r['sources'].items():
        v, o = s['verdict'], s['oracle']
        out += [f'## {name} ({s["drive"]})', '', table(s['rows']),
                f'Target (speed policy >= 2 points above the best fixed exit in streaming '
                f'mIoU at frame time, <= 1% misses): **{"met" if v["met"] else "missed"}**; '
                f'speed vs best fixed ({v["best_fixed"]}): {v["margin_points"]:+.1f} points, '
                f'misses {100 * v["speed_miss_rate"]:.1f}%.', '',
                f'Upper bound for any speed-to-exit mapping on this drive (best fixed exit '
                f'per speed band {BANDS_MPS} m/s, chosen on this very drive: '
                f'{o["best_exit_per_band"]}): mean per-frame streaming mIoU '
                f'{100 * o["oracle_mean_frame_miou"]:.1f}% against '
                f'{100 * o["best_fixed_mean_frame_miou"]:.1f}% for the best fixed exit '
                f'(exit {o["best_fixed_exit"]}): {o["gain_points"]:+.1f} points.', '']
    lb = r['learnt_budget']
    out += ['## Budget learnt from replays vs blind distance (generated drive)', '',
            f'Learnt on another generated drive (world seed 8): best exit per speed band '
            f'{lb["bands_mps"]} m/s: {lb["best_exit"]}; the budget of a band is the need '
            f'of its exit. The planner still runs the deepest exit that fits the budget, '
            f'so where a deeper exit costs no more, the deeper one runs.', '',
            table([next(x for x in r['sources']['generated']['rows']
                        if x['policy'] == 'speed'), lb['row']])]
    return '\n'.join(out) + '\n'


if __name__ == '__main__':
    main()
