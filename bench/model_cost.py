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
"""Per-exit parameters, FLOPs and network latency of every preset; writes results/.

Usage: python bench/model_cost.py [--size 360x480] [--device cpu|cuda] [--out DIR]
"""

import argparse
from pathlib import Path
import time

import torch

from multiexit_ros.machine import machine_info, write_results
from multiexit_ros.model import exit_costs, exit_latencies, MultiExitSegNet, PRESETS


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', default='360x480')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--repeat', type=int, default=20)
    parser.add_argument('--presets', default=','.join(PRESETS))
    parser.add_argument('--out', default=str(Path(__file__).parent / 'results'))
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split('x'))
    results = {'benchmark': 'model_cost', 'size': list(size), 'device': args.device,
               'precision': 'fp32', 'machine': machine_info(),
               'date': time.strftime('%Y-%m-%d %H:%M:%S'), 'presets': {}}
    lines = [f'# Per-exit cost, input {size[0]}x{size[1]}, {args.device}, fp32', '',
             f'Machine: {results["machine"]}', '',
             'Latency: median of the network alone (blocks 0..k + head k), '
             f'{args.repeat} passes after warm-up, batch 1.', '']
    for name in args.presets.split(','):
        torch.manual_seed(0)
        net = MultiExitSegNet(PRESETS[name]).to(args.device).eval()
        costs = exit_costs(net, size)
        lat = exit_latencies(net, size, repeat=args.repeat, warmup=3)
        rows = [dict(c.to_dict(), latency_ms=round(t, 3)) for c, t in zip(costs, lat)]
        results['presets'][name] = rows
        lines += [f'## {name}', '', '| exit | stride | params | GFLOPs | latency ms |',
                  '|---:|---:|---:|---:|---:|']
        lines += [f'| {r["exit"]} | {r["stride"]} | {r["params"]:,} | {r["flops"] / 1e9:.3f} '
                  f'| {r["latency_ms"]:.2f} |' for r in rows]
        lines.append('')
        print(f'{name}: ' + ', '.join(f'exit {r["exit"]} {r["flops"] / 1e9:.2f} GFLOPs '
                                      f'{r["latency_ms"]:.1f} ms' for r in rows))
    stem = f'model_cost_{args.device.split(":")[0]}'
    path = write_results(args.out, stem, results, '\n'.join(lines))
    print(f'wrote {path} and .md')


if __name__ == '__main__':
    main()
