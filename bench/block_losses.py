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
"""Does block-dependent training help? Paired, seeded comparison with references.

Trains the same network on the same data with the same seeds and step budget under
every arm below and reports per-exit validation mIoU, each arm's paired difference to
``joint`` (same seed, same initialisation, same batches) with a 95% t confidence
interval, the "exit k alone" references (blocks 0..k plus head k trained by exit k
only: the headroom joint training leaves that exit; not a strict bound, since the later
exits' gradients can also help the early blocks), and the gradient cosines between
each block's own exit and the later exits during training (``run.grad_cosine_every``; see
``multiexit_ros/train/gradcos.py``).

Usage (the committed results came from these commands):
    python bench/block_losses.py --preset small --steps 400 --seeds 0,1,2,3  # default arms
    python bench/block_losses.py --preset lite0 --pretrained imagenet --optimizer adamw \
        --lr 0.001 --class-weights enet --steps 200 --seeds 0,1,2,3 \
        --arms joint,joint+distill,overlap_s2,overlap_s2_final+distill,alone_0,alone_1

Every finished run is kept in ``bench/results/block_losses_runs/<setting>/*.json``;
running the command again skips them, so an interrupted experiment resumes where it
stopped, and a report can be written from the runs finished so far (``--report-only``).
Runs go seed by seed (every arm of seed 0, then of seed 1, ...) so that a partial
experiment is still paired.
"""

import argparse
from concurrent.futures import ProcessPoolExecutor
import json
import math
from pathlib import Path
import sys
import tempfile
import time

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from multiexit_ros.machine import machine_info  # noqa: E402

DISTILL = {'distill': 0.3, 'temperature': 1.5}
# name: routing section of the training config
ARMS = {
    'joint': {'name': 'joint'},
    'joint+distill': dict({'name': 'joint'}, **DISTILL),
    'overlap_s2': {'name': 'overlap', 'window': 2},
    'overlap_s2+distill': dict({'name': 'overlap', 'window': 2}, **DISTILL),
    'overlap_s2_final': {'name': 'overlap', 'window': 2, 'include_final': True},
    'overlap_s2_final+distill': dict({'name': 'overlap', 'window': 2,
                                      'include_final': True}, **DISTILL),
    'grouped_authors': {'name': 'grouped', 'groups': 'authors'},
}
CEILINGS = ('alone_0', 'alone_1')   # exit k alone: weights one-hot at k
# What the committed small-network study ran (overlap_s2+distill left out for time).
DEFAULT_ARMS = ('joint', 'joint+distill', 'overlap_s2', 'overlap_s2_final',
                'overlap_s2_final+distill', 'grouped_authors') + CEILINGS


def arm_routing(name: str, num_exits: int = 5) -> dict:
    """Return the routing section of arm ``name`` (``alone_k``: exit k's loss only)."""
    if name.startswith('alone_'):
        k = int(name.split('_')[1])
        return {'name': 'joint', 'weights': [1.0 if i == k else 0.0 for i in range(num_exits)]}
    return ARMS[name]


def t_critical(df: int, confidence: float = 0.95) -> float:
    """Two-sided Student t critical value (bisection on the CDF; no SciPy needed)."""
    def density(x):
        c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
        return math.exp(c - (df + 1) / 2 * math.log1p(x * x / df))

    def cdf_from_zero(x, n=2000):  # Simpson's rule on [0, x]
        h = x / n
        total = density(0) + density(x)
        total += sum((4 if i % 2 else 2) * density(i * h) for i in range(1, n))
        return total * h / 3

    target = confidence / 2
    lo, hi = 0.0, 1000.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if cdf_from_zero(mid) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def paired_ci(a: list, b: list, confidence: float = 0.95) -> tuple:
    """(low, mean, high) of the mean of ``a[i] - b[i]``; t interval over the pairs."""
    d = [x - y for x, y in zip(a, b)]
    n = len(d)
    mean = sum(d) / n
    if n < 2:
        return (float('nan'), mean, float('nan'))
    sd = math.sqrt(sum((v - mean) ** 2 for v in d) / (n - 1))
    half = t_critical(n - 1, confidence) * sd / math.sqrt(n)
    return (mean - half, mean, mean + half)


def run_one(job: dict) -> dict:
    """Train one (arm, seed) and return its final validation metrics and cosine trace."""
    import torch

    from multiexit_ros.train.config import TrainConfig
    from multiexit_ros.train.trainer import train

    torch.set_num_threads(job['threads'])
    h, w = job['size']
    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig.from_dict({
            'model': job['preset'],
            'pretrained': job['pretrained'],
            'data': {'dataset': 'camvid', 'root': job['data'], 'size': [h, w],
                     'crop': [h, w], 'scale': [0.75, 1.5], 'workers': 0},
            'routing': job['routing'],
            'optim': {'optimizer': job['optimizer'], 'lr': job['lr'],
                      'batch_size': job['batch'], 'steps': job['steps'],
                      'warmup': min(100, job['steps'] // 10),
                      'class_weights': job['class_weights'],
                      'weight_decay': 0.01 if job['optimizer'] == 'adamw' else 1e-4},
            'run': {'out': tmp, 'device': job['device'], 'val_every': job['steps'],
                    'seed': job['seed'], 'grad_cosine_every': job['cos_every']},
        })
        t0 = time.time()
        metrics = train(config, resume=False, progress=False)
        wall = time.time() - t0
        cos_file = Path(tmp, 'grad_cosine.jsonl')
        cosines = ([json.loads(line) for line in cos_file.read_text().splitlines()]
                   if cos_file.is_file() else [])
    result = {'arm': job['arm'], 'seed': job['seed'], 'routing': job['routing'],
              'miou': metrics['miou'], 'pixel_accuracy': metrics['pixel_accuracy'],
              'grad_cosine': cosines, 'wall_s': round(wall, 1)}
    path = Path(job['result'])
    path.with_suffix('.tmp').write_text(json.dumps(result, indent=1))
    path.with_suffix('.tmp').replace(path)
    print(f'{job["arm"]} seed {job["seed"]}: mIoU per exit '
          + ' '.join(f'{v:.3f}' for v in result['miou']) + f' ({result["wall_s"]} s)',
          flush=True)
    return result


def _mean_sd(values):
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, sd


def summarize(results: list, order: list) -> dict:
    """Per arm: mean and sd per exit, and paired 95% CIs of the difference to joint."""
    table = {}
    for name in order:
        runs = {r['seed']: r for r in results if r['arm'] == name}
        if not runs:
            continue
        per_exit = list(zip(*[r['miou'] for r in runs.values()]))
        table[name] = {
            'seeds': sorted(runs),
            'routing': next(iter(runs.values()))['routing'],
            'miou_mean': [_mean_sd(v)[0] for v in per_exit],
            'miou_sd': [_mean_sd(v)[1] for v in per_exit],
            'per_seed': {s: runs[s]['miou'] for s in sorted(runs)},
            'wall_s': sum(r['wall_s'] for r in runs.values()),
            'cosine': _cosine_trace(list(runs.values())),
        }
    ref = table.get('joint')
    if ref is None:
        return table
    for name, entry in table.items():
        if name == 'joint':
            continue
        seeds = [s for s in entry['seeds'] if s in ref['per_seed']]
        entry['paired_seeds'] = seeds
        entry['vs_joint'] = [
            paired_ci([entry['per_seed'][s][k] for s in seeds],
                      [ref['per_seed'][s][k] for s in seeds])
            for k in range(len(entry['miou_mean']))]
    return table


def _cosine_trace(runs: list) -> dict:
    """Mean over seeds of cos(own exit, later exits) per block, at each logged step."""
    steps = {}
    for r in runs:
        for rec in r.get('grad_cosine', []):
            steps.setdefault(rec['step'], []).append(rec['own_vs_later'])
    out = {}
    for step in sorted(steps):
        blocks = list(zip(*steps[step]))
        out[step] = [None if any(v is None for v in b) else sum(b) / len(b) for b in blocks]
    return out


def _ci(c) -> str:
    lo, mean, hi = c
    mark = ' ▲' if lo > 0 else ' ▼' if hi < 0 else ''
    if math.isnan(lo):
        return f'{mean:+.3f}'
    return f'{mean:+.3f} [{lo:+.3f}, {hi:+.3f}]{mark}'


def verdict(table: dict) -> list:
    """Lines saying, per arm, what the paired intervals show for exits 0, 1 and the final."""
    lines = []
    n = len(table['joint']['miou_mean'])
    for name, e in table.items():
        if name == 'joint' or 'vs_joint' not in e or len(e['paired_seeds']) < 2:
            continue
        if name.startswith('alone_'):
            k = int(name.split('_')[1])
            lo, mean, hi = e['vs_joint'][k]
            lines.append(f'- `{name}` (exit {k} alone): {mean:+.3f} vs joint '
                         f'[{lo:+.3f}, {hi:+.3f}]: '
                         + (f'joint training costs exit {k} accuracy (headroom for routing)'
                            if lo > 0 else f'joint beats exit {k} trained alone (the later '
                            'exits help it: no headroom)' if hi < 0
                            else 'no difference detectable'))
            continue

        def word(k):
            lo, mean, hi = e['vs_joint'][k]
            return ('better' if lo > 0 else 'worse' if hi < 0 else 'no detectable change') + \
                f' ({mean:+.3f} [{lo:+.3f}, {hi:+.3f}])'
        lines.append(f'- `{name}`: exit 0 {word(0)}; exit 1 {word(1)}; final exit '
                     f'{word(n - 1)}.')
    return lines


def write_report(out: Path, stem: str, table: dict, info: dict):
    """Write ``<stem>.json``, ``<stem>.md`` and ``<stem>.png`` into ``out``."""
    (out / f'{stem}.json').write_text(json.dumps(dict(info, arms=table), indent=2))
    n = len(table['joint']['miou_mean'])
    exits = ' | '.join(f'exit {k}' for k in range(n))
    lines = [
        f'# Block-dependent losses, preset `{info["preset"]}`: per-exit CamVid val mIoU', '',
        f'Command: `{info["command"]}`', '',
        f'Machine: {info["machine"]}', '',
        f'Run time: {info["run_time_s"] / 60:.1f} min summed over {info["runs"]} runs '
        f'({info["jobs"]} at a time, {info["threads"]} thread(s) each, device '
        f'{info["device"]}).', '',
        f'Setting: preset `{info["preset"]}`'
        + (f' ({info["pretrained"]}-pretrained trunk)' if info['pretrained'] else '')
        + f', CamVid train split ({info["train_images"]} images) at '
        f'{info["size"][0]}x{info["size"][1]}, batch {info["batch"]}, {info["steps"]} '
        f'{info["optimizer"]} steps, lr {info["lr"]} (warm-up, poly), class weights '
        f'{info["class_weights"]}, seeds {info["seeds"]}; validated on the val split (101 '
        f'images) at that input size, scored against the full-resolution labels. '
        f'Distillation arms: lambda {DISTILL["distill"]}, T {DISTILL["temperature"]}. '
        '`alone_k`: blocks 0..k and head k trained by exit k only (the reference for the '
        'headroom of exit k).',
        '', '## Per-exit mIoU (mean ± sd over seeds)', '',
        f'| arm | {exits} | mean |', '|---|' + '---:|' * (n + 1)]
    for name, e in table.items():
        if name.startswith('alone_'):
            k = int(name.split('_')[1])
            cells = ['' if i != k else f'**{e["miou_mean"][i]:.3f} ± {e["miou_sd"][i]:.3f}**'
                     for i in range(n)]
            lines.append(f'| {name} | ' + ' | '.join(cells) + ' | |')
            continue
        cells = [f'{m:.3f} ± {s:.3f}' for m, s in zip(e['miou_mean'], e['miou_sd'])]
        lines.append(f'| {name} | ' + ' | '.join(cells)
                     + f' | {sum(e["miou_mean"]) / n:.3f} |')
    lines += ['', '## Paired difference to `joint` (same seeds), mean [95% t interval]', '',
              'Exits 0 and 1 are the primary endpoints, the final exit the secondary one. '
              '▲ / ▼: the interval excludes 0.', '',
              f'| arm | pairs | {exits} |', '|---|---:|' + '---:|' * n]
    for name, e in table.items():
        if 'vs_joint' not in e:
            continue
        if name.startswith('alone_'):
            k = int(name.split('_')[1])
            cells = [_ci(e['vs_joint'][i]) if i == k else '' for i in range(n)]
        else:
            cells = [_ci(c) for c in e['vs_joint']]
        lines.append(f'| {name} | {len(e["paired_seeds"])} | ' + ' | '.join(cells) + ' |')
    trace = table['joint']['cosine']
    if trace:
        lines += ['', '## Gradient conflict during `joint` training', '',
                  "cos(exit b's gradient, the sum of the later exits' gradients) on block "
                  "b's parameters, mean over seeds, on the training batch of that step "
                  '(+1: the later exits pull the same way; <= 0: conflict).', '',
                  '| step | ' + ' | '.join(f'block {b}' for b in range(n - 1)) + ' |',
                  '|---:|' + '---:|' * (n - 1)]
        for step, row in trace.items():
            lines.append(f'| {step} | ' + ' | '.join(
                '-' if v is None else f'{v:+.2f}' for v in row) + ' |')
    compared = [a for a in table if a != 'joint' and not a.startswith('alone_')]
    lines += ['', '## What the intervals say', '',
              f'{2 * len(compared)} primary comparisons ({len(compared)} arms x exits 0 and '
              f'1), each at 95%: about one in twenty intervals excludes 0 by chance alone, '
              f'so a single ▲ is weak evidence; a pattern across arms and exits is not.', '',
              *verdict(table), '',
              f'![per-exit mIoU]({stem}.png)', '']
    (out / f'{stem}.md').write_text('\n'.join(lines))
    _plot(out / f'{stem}.png', table, info)


def _plot(path, table, info):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    n = len(table['joint']['miou_mean'])
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.4))
    for name, e in table.items():
        if name.startswith('alone_'):
            k = int(name.split('_')[1])
            ax.errorbar([k], [e['miou_mean'][k]], yerr=[e['miou_sd'][k]], marker='*',
                        markersize=12, capsize=3, linestyle='none', label=name)
            continue
        ax.errorbar(range(n), e['miou_mean'], yerr=e['miou_sd'], marker='o', capsize=3,
                    label=name)
    ax.set_xlabel('exit')
    ax.set_ylabel('val mIoU')
    ax.set_xticks(range(n))
    ax.set_title(f'{info["preset"]}, CamVid val, {len(info["seeds"])} seeds (mean ± sd)')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    trace = table['joint']['cosine']
    for b in range(n - 1):
        steps = [s for s, row in trace.items() if row[b] is not None]
        bx.plot([int(s) for s in steps], [trace[s][b] for s in steps], marker='o',
                label=f'block {b}')
    bx.axhline(0, color='k', linewidth=0.8)
    bx.set_xlabel('training step')
    bx.set_ylabel('cos(own exit, later exits)')
    bx.set_title('gradient conflict under joint training')
    bx.grid(alpha=0.3)
    bx.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', default=str(ROOT.parent / 'shared' / 'data' / 'camvid'))
    parser.add_argument('--size', default='180x240')
    parser.add_argument('--preset', default='small')
    parser.add_argument('--pretrained', default='', help='imagenet for the lite0 trunk')
    parser.add_argument('--optimizer', default='sgd', choices=('sgd', 'adamw'))
    parser.add_argument('--lr', type=float, default=0.02)
    parser.add_argument('--class-weights', default='none', choices=('none', 'enet'))
    parser.add_argument('--steps', type=int, default=400)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--seeds', default='0,1,2,3')
    parser.add_argument('--arms', default=','.join(DEFAULT_ARMS),
                        help=f'comma-separated, from {list(ARMS) + list(CEILINGS)}')
    parser.add_argument('--cos-every', type=int, default=0,
                        help='gradient-cosine period in steps (default: steps / 4)')
    parser.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N')
    parser.add_argument('--jobs', type=int, default=1, help='runs in parallel')
    parser.add_argument('--threads', type=int, default=1, help='torch threads per run')
    parser.add_argument('--out', default=str(ROOT / 'bench' / 'results'))
    parser.add_argument('--report-only', action='store_true',
                        help='write the report from the runs finished so far')
    args = parser.parse_args()
    if not Path(args.data, 'train.txt').is_file():
        sys.exit(f'block_losses: error: no CamVid (SegNet layout) at {args.data}')
    arms = args.arms.split(',')
    unknown = [a for a in arms if a not in ARMS and a not in CEILINGS]
    if unknown or 'joint' not in arms:
        sys.exit(f'block_losses: error: unknown arms {unknown} (known: '
                 f'{list(ARMS) + list(CEILINGS)}); joint is the reference and must be in')
    size = [int(v) for v in args.size.split('x')]
    seeds = [int(s) for s in args.seeds.split(',')]
    out = Path(args.out)
    setting = (f'{args.preset}{"_" + args.pretrained if args.pretrained else ""}_'
               f'{size[0]}x{size[1]}_b{args.batch}_{args.steps}steps_{args.optimizer}'
               f'_lr{args.lr}_{args.class_weights}')
    runs_dir = out / 'block_losses_runs' / setting
    runs_dir.mkdir(parents=True, exist_ok=True)
    base = {'data': args.data, 'size': size, 'preset': args.preset, 'steps': args.steps,
            'batch': args.batch, 'lr': args.lr, 'threads': args.threads,
            'device': args.device, 'pretrained': args.pretrained,
            'optimizer': args.optimizer, 'class_weights': args.class_weights,
            'cos_every': args.cos_every or max(1, args.steps // 4)}
    t0 = time.time()
    jobs = []
    for seed in seeds:
        for name in arms:
            path = runs_dir / f'{name}_seed{seed}.json'
            if not path.is_file():
                cos = base['cos_every'] if name == 'joint' else 0
                jobs.append(dict(base, arm=name, routing=arm_routing(name), seed=seed,
                                 result=str(path), cos_every=cos))
    if not args.report_only and jobs:
        print(f'{len(jobs)} runs to do', flush=True)
        with ProcessPoolExecutor(args.jobs) as pool:
            list(pool.map(run_one, jobs))
    results = [json.loads(p.read_text()) for p in sorted(runs_dir.glob('*.json'))]
    results = [r for r in results if r['arm'] in arms and r['seed'] in seeds]
    table = summarize(results, arms)
    if 'joint' not in table:
        sys.exit('block_losses: error: no finished joint run to compare against yet')
    info = {
        'benchmark': 'block_losses',
        'command': 'python bench/block_losses.py ' + ' '.join(sys.argv[1:]),
        'machine': machine_info(), 'date': time.strftime('%Y-%m-%d %H:%M:%S'),
        'wall_s': round(time.time() - t0, 1), 'runs': len(results), 'jobs': args.jobs,
        'threads': args.threads, 'device': args.device, 'preset': args.preset,
        'pretrained': args.pretrained, 'size': size, 'batch': args.batch,
        'steps': args.steps, 'optimizer': args.optimizer, 'lr': args.lr,
        'class_weights': args.class_weights, 'seeds': sorted({r['seed'] for r in results}),
        'train_images': sum(1 for _ in open(Path(args.data, 'train.txt'))),
        'run_time_s': round(sum(r['wall_s'] for r in results), 1),
    }
    stem = f'block_losses_{args.preset}'
    write_report(out, stem, table, info)
    print('\n'.join(verdict(table)))
    print(f'wrote {out / (stem + ".md")}')


if __name__ == '__main__':
    main()
