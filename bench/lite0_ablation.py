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
"""Ablate the shipped lite0 recipe: the generated share and the class weights.

Each arm is the recipe of ``config/train/shipped_camvid_lite0.yaml`` with one change,
trained under the same seed and a short step budget, and validated on CamVid val at
360x480 against the full-resolution labels. One seed and a short budget: a screening
of large effects, not a measurement of small ones.

Usage (the committed results came from this command):
    python bench/lite0_ablation.py --data ../shared/data/camvid --steps 300 --jobs 3

Finished arms are kept in ``<work>/<arm>/``; running the command again resumes them.
"""

import argparse
from concurrent.futures import ProcessPoolExecutor
import os
from pathlib import Path
import sys
import time

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from multiexit_ros.machine import machine_info, write_results  # noqa: E402

RECIPE = ROOT / 'config' / 'train' / 'shipped_camvid_lite0.yaml'
ARMS = {  # name: overrides of the recipe
    'recipe (CamVid + 1/3 generated, ENet weights)': [],
    'CamVid only': ['data.dataset=camvid', 'data.val_dataset=camvid'],
    'no class weights': ['optim.class_weights=none'],
}


def run_arm(job: dict) -> dict:
    """Train one arm in this process and return its last validation metrics."""
    import torch

    from multiexit_ros.train.config import load_config
    from multiexit_ros.train.trainer import train

    torch.set_num_threads(job['threads'])
    config = load_config(RECIPE, [
        f'data.root={job["data"]}', f'run.out={job["out"]}', f'optim.steps={job["steps"]}',
        f'optim.warmup={max(job["steps"] // 16, 1)}', f'run.val_every={job["steps"]}',
        *job['overrides']])
    start = time.time()
    metrics = train(config, progress=False)
    seconds = time.time() - start  # of this invocation: a finished arm is only reloaded
    return {'arm': job['arm'], 'overrides': job['overrides'], 'miou': metrics['miou'],
            'pixel_accuracy': metrics['pixel_accuracy'], 'seconds': seconds,
            'generated_miou': generated_miou(Path(job['out']) / 'last.safetensors')}


def generated_miou(checkpoint: Path) -> list:
    """Per-exit mIoU on the 64 generated validation scenes (the demo's kind of input)."""
    from torch.utils.data import DataLoader

    from multiexit_ros.data import build_dataset, Transform
    from multiexit_ros.model import load_checkpoint
    from multiexit_ros.train.evaluate import confusions, summarize

    import torch

    model, meta = load_checkpoint(checkpoint)
    data = build_dataset('generated', None, 'val', Transform(
        size=meta.input_size, mean=meta.mean, std=meta.std, resize_label=False),
        generated_count=64, generated_size=meta.input_size)
    cms = confusions(model, DataLoader(data, 4), 11, data.labels.ignore_index,
                     torch.device('cpu'))
    return summarize(cms)['miou']


def report(rows: list, args, info: dict) -> str:
    """Markdown table of per-exit mIoU, with each arm's difference to the recipe."""
    base = rows[0]['miou']
    n = len(base)
    lines = ['# lite0 recipe ablation (CamVid val, 360x480, full-resolution labels)', '',
             f'Machine: {info}', '',
             f'Recipe: `{RECIPE.relative_to(ROOT)}` with optim.steps={args.steps} '
             f'(warm-up {max(args.steps // 16, 1)}), seed 0, one run per arm, {args.jobs} '
             f'arms at a time. One seed and a short budget: differences of a point or two '
             f'are within what a second seed could change.', '',
             '| arm | ' + ' | '.join(f'exit {k}' for k in range(n)) + ' | mean |',
             '|---|' + '---:|' * (n + 1)]
    for r in rows:
        cells = [f'{v:.3f} ({v - b:+.3f})' if r is not rows[0] else f'{v:.3f}'
                 for v, b in zip(r['miou'], base)]
        mean = sum(r['miou']) / n
        lines.append(f'| {r["arm"]} | ' + ' | '.join(cells) + f' | {mean:.3f} |')
    lines += ['', "The same checkpoints on 64 generated validation scenes (the demo drive's "
              'kind of input), mIoU per exit:', '',
              '| arm | ' + ' | '.join(f'exit {k}' for k in range(n)) + ' | mean |',
              '|---|' + '---:|' * (n + 1)]
    for r in rows:
        g = r['generated_miou']
        lines.append(f'| {r["arm"]} | ' + ' | '.join(f'{v:.3f}' for v in g)
                     + f' | {sum(g) / n:.3f} |')
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', default=str(ROOT.parent / 'shared' / 'data' / 'camvid'))
    parser.add_argument('--steps', type=int, default=300)
    parser.add_argument('--jobs', type=int, default=3)
    parser.add_argument('--work', default=str(ROOT / 'runs' / 'lite0_ablation'))
    parser.add_argument('--out', default=str(ROOT / 'bench' / 'results'))
    args = parser.parse_args()
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    jobs = [{'arm': arm, 'overrides': o, 'data': args.data, 'steps': args.steps,
             'threads': threads, 'out': str(Path(args.work) / f'arm{i}')}
            for i, (arm, o) in enumerate(ARMS.items())]
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(run_arm, jobs))
    info = machine_info()
    info['torch_threads'] = threads
    text = report(rows, args, info)
    path = write_results(args.out, 'lite0_ablation_cpu',
                         {'machine': info, 'steps': args.steps, 'arms': rows}, text)
    print(text)
    print(f'wrote {path}')


if __name__ == '__main__':
    main()
