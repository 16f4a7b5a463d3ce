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
"""NCHW against NHWC (channels-last) on the CPU: a training step and a final-exit pass.

Both layouts of each preset are timed in interleaved rounds, so they see the same load.
Training: forward of every exit, the sum of their means, backward (batch ``--batch`` at
``--crop``). Inference: the final exit of one image at ``--size``, no gradients.

Usage: python bench/memory_format.py [--presets small,lite0] [--threads 2]
"""

import argparse
from pathlib import Path
import statistics
import sys
import time

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from multiexit_ros.machine import machine_info, write_results  # noqa: E402
from multiexit_ros.model import MultiExitSegNet, preset  # noqa: E402

FORMATS = {'NCHW': torch.contiguous_format, 'NHWC': torch.channels_last}


def _train_step(net, x):
    net.zero_grad(set_to_none=True)
    sum(z.mean() for z in net(x)).backward()


@torch.no_grad()
def _infer(net, x):
    net.forward_exit(x, net.num_exits - 1)


def _size(text):
    h, w = text.lower().split('x')
    return int(h), int(w)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--presets', default='small,lite0')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--crop', default='240x320')
    parser.add_argument('--size', default='360x480')
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--out', default=str(ROOT / 'bench' / 'results'))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = {'machine': machine_info(), 'batch': args.batch, 'crop': args.crop,
               'size': args.size, 'presets': {}}
    lines = ['# NCHW vs NHWC on the CPU', '', f'Machine: {results["machine"]}', '',
             f'Median of {args.rounds} interleaved rounds after one warm-up. Training step: '
             f'batch {args.batch} at {args.crop}, every exit, backward. Inference: the final '
             f'exit, one image at {args.size}.', '',
             '| preset | task | NCHW ms | NHWC ms | NHWC / NCHW |', '|---|---|---:|---:|---:|']
    for name in args.presets.split(','):
        net = MultiExitSegNet(preset(name))
        tasks = {'training step': (_train_step, torch.randn(args.batch, 3, *_size(args.crop)),
                                   True),
                 'inference': (_infer, torch.randn(1, 3, *_size(args.size)), False)}
        row = {}
        for task, (fn, x, train) in tasks.items():
            net.train(train)
            times = {f: [] for f in FORMATS}
            for r in range(args.rounds + 1):
                for label, fmt in FORMATS.items():
                    net.to(memory_format=fmt)
                    xx = x.contiguous(memory_format=fmt)
                    t0 = time.perf_counter()
                    fn(net, xx)
                    if r:  # round 0 warms up
                        times[label].append((time.perf_counter() - t0) * 1e3)
            med = {f: statistics.median(v) for f, v in times.items()}
            row[task] = med
            lines.append(f'| {name} | {task} | {med["NCHW"]:.0f} | {med["NHWC"]:.0f} | '
                         f'{med["NHWC"] / med["NCHW"]:.2f} |')
        results['presets'][name] = row
    text = '\n'.join(lines)
    path = write_results(args.out, 'memory_format_cpu', results, text)
    print(text)
    print(f'wrote {path}')


if __name__ == '__main__':
    main()
