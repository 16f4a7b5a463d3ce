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
"""Reproduce the block-dependent-losses claim: per-exit mIoU of each routing strategy.

Trains the same network on the same data with the same seeds and step budget under
``joint``, ``grouped``, ``overlap`` (two windows), ``overlap`` + ``include_final``, then
the best of those with self-distillation, and reports per-exit mean and standard
deviation of validation mIoU over seeds.

Usage (the committed results came from this command):
    python bench/block_losses.py --data ../shared/data/camvid --size 180x240 \
        --steps 1000 --seeds 0,1,2 --jobs 2

Every finished run is kept in ``<out>/runs/*.json``; running the command again skips
them, so an interrupted experiment resumes where it stopped.
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

# name: routing section of the training config
STRATEGIES = {
    'joint': {'name': 'joint'},
    'grouped': {'name': 'grouped', 'num_groups': 2},
    'overlap_s2': {'name': 'overlap', 'window': 2},
    'overlap_s3': {'name': 'overlap', 'window': 3},
    'overlap_s2_final': {'name': 'overlap', 'window': 2, 'include_final': True},
}
DISTILL = {'distill': 0.3, 'temperature': 1.5}


def run_one(job: dict) -> dict:
    """Train one (strategy, seed) and return its final validation metrics."""
    import torch

    from multiexit_ros.train.config import TrainConfig
    from multiexit_ros.train.trainer import train

    torch.set_num_threads(job['threads'])
    h, w = job['size']
    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig.from_dict({
            'model': job['preset'],
            'data': {'dataset': 'camvid', 'root': job['data'], 'size': [h, w],
                     'crop': [h, w], 'scale': [0.75, 1.5], 'workers': 0},
            'routing': job['routing'],
            'optim': {'optimizer': 'sgd', 'lr': job['lr'], 'batch_size': job['batch'],
                      'steps': job['steps'], 'warmup': min(100, job['steps'] // 10)},
            'run': {'out': tmp, 'device': job['device'], 'val_every': job['steps'],
                    'seed': job['seed']},
        })
        t0 = time.time()
        metrics = train(config, resume=False, progress=False)
    result = {'strategy': job['strategy'], 'seed': job['seed'], 'routing': job['routing'],
              'miou': metrics['miou'], 'pixel_accuracy': metrics['pixel_accuracy'],
              'wall_s': round(time.time() - t0, 1)}
    path = Path(job['result'])
    path.with_suffix('.tmp').write_text(json.dumps(result, indent=1))
    path.with_suffix('.tmp').replace(path)
    print(f'{job["strategy"]} seed {job["seed"]}: mIoU per exit '
          + ' '.join(f'{v:.3f}' for v in result['miou']) + f' ({result["wall_s"]} s)',
          flush=True)
    return result


def _stats(values):
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, std


def summarize(results: list, order: list) -> dict:
    """Mean and std over seeds per exit and strategy, and each one's difference to joint."""
    table = {}
    for name in order:
        runs = [r for r in results if r['strategy'] == name]
        if not runs:
            continue
        per_exit = list(zip(*[r['miou'] for r in runs]))
        means_over_exits = [sum(r['miou']) / len(r['miou']) for r in runs]
        table[name] = {
            'seeds': sorted(r['seed'] for r in runs),
            'routing': runs[0]['routing'],
            'miou_mean': [_stats(v)[0] for v in per_exit],
            'miou_std': [_stats(v)[1] for v in per_exit],
            'exit_mean': _stats(means_over_exits),
            'per_seed': {r['seed']: r['miou'] for r in runs},
        }
    ref = table.get('joint')
    for entry in table.values():
        if ref is None:
            break
        n_a, n_b = len(entry['seeds']), len(ref['seeds'])
        entry['delta_vs_joint'] = [a - b for a, b in zip(entry['miou_mean'], ref['miou_mean'])]
        # Two standard errors of the difference of two means: "beyond seed noise".
        entry['noise_vs_joint'] = [
            2 * math.sqrt(sa ** 2 / n_a + sb ** 2 / n_b)
            for sa, sb in zip(entry['miou_std'], ref['miou_std'])]
    return table


def write_report(out: Path, table: dict, info: dict):
    """Write block_losses.json, block_losses.md and block_losses.png into ``out``."""
    (out / 'block_losses.json').write_text(json.dumps(dict(info, strategies=table), indent=2))
    n_exits = len(next(iter(table.values()))['miou_mean'])
    lines = [
        '# Block-dependent losses on CamVid: per-exit validation mIoU', '',
        f'Command: `{info["command"]}`', '',
        f'Machine: {info["machine"]}', '',
        f'Run time: {info["run_time_s"] / 60:.1f} min summed over {info["runs"]} runs '
        f'({info["jobs"]} in parallel, {info["threads"]} thread(s) each, device '
        f'{info.get("device", "cpu")}); the invocation that wrote this report took '
        f'{info["wall_s"] / 60:.1f} min (finished runs are reused, not rerun).', '',
        f'Setting: preset `{info["preset"]}`, CamVid train split ({info["train_images"]} '
        f'images) at {info["size"][0]}x{info["size"][1]}, batch {info["batch"]}, '
        f'{info["steps"]} SGD steps, lr {info["lr"]} (poly), seeds {info["seeds"]}; '
        f'validated on the val split (101 images) at the same size. Cells: mean ± std '
        f'over seeds; last column: mean over exits.', '',
        '| strategy | ' + ' | '.join(f'exit {k}' for k in range(n_exits)) + ' | mean |',
        '|---|' + '---:|' * (n_exits + 1)]
    for name, e in table.items():
        cells = [f'{m:.3f} ± {s:.3f}' for m, s in zip(e['miou_mean'], e['miou_std'])]
        lines.append(f'| {name} | ' + ' | '.join(cells)
                     + f' | {e["exit_mean"][0]:.3f} ± {e["exit_mean"][1]:.3f} |')
    lines += ['', 'Difference to `joint` per exit (mean mIoU); `*` marks a difference larger '
              'than two standard errors of the difference (beyond seed noise):', '',
              '| strategy | ' + ' | '.join(f'exit {k}' for k in range(n_exits)) + ' |',
              '|---|' + '---:|' * n_exits]
    for name, e in table.items():
        if name == 'joint' or 'delta_vs_joint' not in e:
            continue
        cells = [f'{d:+.3f}{"*" if abs(d) > z else ""}'
                 for d, z in zip(e['delta_vs_joint'], e['noise_vs_joint'])]
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    lines += ['', '## Verdict', '', info.get('verdict', ''), '',
              '![per-exit mIoU](block_losses.png)', '']
    (out / 'block_losses.md').write_text('\n'.join(lines))
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, e in table.items():
        ax.errorbar(range(n_exits), e['miou_mean'], yerr=e['miou_std'], marker='o',
                    capsize=3, label=name)
    ax.set_xlabel('exit')
    ax.set_ylabel('val mIoU')
    ax.set_xticks(range(n_exits))
    ax.set_title(f'CamVid val, {info["size"][0]}x{info["size"][1]}, '
                 f'{len(info["seeds"])} seeds (mean ± std)')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / 'block_losses.png', dpi=110)
    plt.close(fig)


def verdict(table: dict) -> str:
    """Say in words whether early exits beat joint beyond noise and the final one held."""
    ref = table['joint']
    n = len(ref['miou_mean'])
    out, holds = [], []
    for name, e in table.items():
        if name == 'joint':
            continue
        better = [k for k in range(n - 1)
                  if e['delta_vs_joint'][k] > e['noise_vs_joint'][k]]
        worse = [k for k in range(n - 1)
                 if -e['delta_vs_joint'][k] > e['noise_vs_joint'][k]]
        d_final, z_final = e['delta_vs_joint'][-1], e['noise_vs_joint'][-1]
        final = ('within noise' if abs(d_final) <= z_final else
                 'better beyond noise' if d_final > 0 else 'worse beyond noise')
        if better and not worse and final != 'worse beyond noise':
            holds.append(name)
        out.append(f'- `{name}`: early exits better than joint beyond noise: '
                   f'{better or "none"}; worse beyond noise: {worse or "none"}; final exit '
                   f'{d_final:+.3f} ({final}).')
    out.append('')
    out.append('The claim (some early exit better than `joint` beyond seed noise, none worse, '
               'and the final exit not worse) holds here for: '
               + (', '.join(f'`{n}`' for n in holds) if holds else 'none of the strategies')
               + '.')
    return '\n'.join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', default=str(ROOT.parent / 'shared' / 'data' / 'camvid'))
    parser.add_argument('--size', default='180x240')
    parser.add_argument('--preset', default='small')
    parser.add_argument('--steps', type=int, default=1000)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--lr', type=float, default=0.02)
    parser.add_argument('--seeds', default='0,1,2')
    parser.add_argument('--strategies', default=','.join(STRATEGIES))
    parser.add_argument('--no-distill', action='store_true',
                        help='skip the second phase (best strategy + self-distillation)')
    parser.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N')
    parser.add_argument('--jobs', type=int, default=2, help='runs in parallel')
    parser.add_argument('--threads', type=int, default=1, help='torch threads per run')
    parser.add_argument('--out', default=str(ROOT / 'bench' / 'results'))
    args = parser.parse_args()
    if not Path(args.data, 'train.txt').is_file():
        sys.exit(f'block_losses: error: no CamVid (SegNet layout) at {args.data}')
    size = [int(v) for v in args.size.split('x')]
    seeds = [int(s) for s in args.seeds.split(',')]
    out = Path(args.out)
    runs_dir = (out / 'block_losses_runs'
                / f'{args.preset}_{size[0]}x{size[1]}_b{args.batch}_{args.steps}steps_lr{args.lr}')
    runs_dir.mkdir(parents=True, exist_ok=True)
    base = {'data': args.data, 'size': size, 'preset': args.preset, 'steps': args.steps,
            'batch': args.batch, 'lr': args.lr, 'threads': args.threads,
            'device': args.device}
    t0 = time.time()

    def phase(strategies: dict) -> list:
        jobs = []
        for name, routing in strategies.items():
            for seed in seeds:
                path = runs_dir / f'{name}_seed{seed}.json'
                if path.is_file():
                    continue
                jobs.append(dict(base, strategy=name, routing=routing, seed=seed,
                                 result=str(path)))
        print(f'{len(jobs)} runs to do', flush=True)
        with ProcessPoolExecutor(args.jobs) as pool:
            list(pool.map(run_one, jobs))
        return [json.loads(p.read_text()) for p in sorted(runs_dir.glob('*.json'))]

    chosen = {n: STRATEGIES[n] for n in args.strategies.split(',')}
    results = phase(chosen)
    order = list(chosen)
    table = summarize(results, order)
    if not args.no_distill:
        best = max((n for n in table if n != 'joint'), key=lambda n: table[n]['exit_mean'][0])
        name = f'{best}+distill'
        results = phase({name: dict(chosen[best], **DISTILL)})
        order.append(name)
        table = summarize(results, order)
    info = {
        'benchmark': 'block_losses',
        'command': 'python bench/block_losses.py ' + ' '.join(sys.argv[1:]),
        'machine': machine_info(), 'date': time.strftime('%Y-%m-%d %H:%M:%S'),
        'wall_s': round(time.time() - t0, 1), 'runs': len(results), 'jobs': args.jobs,
        'threads': args.threads, 'device': args.device, 'preset': args.preset, 'size': size,
        'batch': args.batch,
        'steps': args.steps, 'lr': args.lr, 'seeds': seeds,
        'train_images': sum(1 for _ in open(Path(args.data, 'train.txt'))),
    }
    info['run_time_s'] = round(sum(r['wall_s'] for r in results), 1)
    info['verdict'] = verdict(table)
    write_report(out, table, info)
    for name, e in table.items():
        cells = zip(e['miou_mean'], e['miou_std'])
        print(f'{name:>22}: ' + ' '.join(f'{m:.3f}±{s:.3f}' for m, s in cells))
    print(info['verdict'])
    print(f'wrote {out / "block_losses.md"}')


if __name__ == '__main__':
    main()
