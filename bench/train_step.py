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
"""Training-step time of every routing strategy as a ratio to joint; writes results/.

Each strategy runs on the same batch, in both implementations (``gate``: one forward
pass; ``rerun``: each block once per stream, the simple reference), and the timed
steps are interleaved (in a shuffled order each round) so that all of them see the
same machine load.

Usage: python bench/train_step.py [--preset small] [--size 180x240] [--batch 4]
"""

import argparse
import json
from pathlib import Path
import random
import time

import torch

from multiexit_ros.machine import machine_info
from multiexit_ros.model import MultiExitSegNet, preset
from multiexit_ros.train.losses import exit_losses
from multiexit_ros.train.routed import RoutedNet
from multiexit_ros.train.routing import RoutingStrategy

STRATEGIES = {
    'joint': RoutingStrategy('joint'),
    'joint again (noise floor)': RoutingStrategy('joint'),
    'local': RoutingStrategy('local'),
    'grouped (2 groups)': RoutingStrategy('grouped', num_groups=2),
    'grouped (2) + final': RoutingStrategy('grouped', num_groups=2, include_final=True),
    'overlap s=2': RoutingStrategy('overlap', window=2),
    'overlap s=2 + final': RoutingStrategy('overlap', window=2, include_final=True),
    'overlap s=3': RoutingStrategy('overlap', window=3),
    'joint + distill': RoutingStrategy('joint', distill=0.5, temperature=2.0),
    'overlap s=3 + final + distill': RoutingStrategy('overlap', window=3, include_final=True,
                                                     distill=0.5, temperature=2.0),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--preset', default='small')
    parser.add_argument('--size', default='180x240')
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--repeat', type=int, default=9)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads (1: process CPU time is robust to other load)')
    parser.add_argument('--out', default=str(Path(__file__).parent / 'results'))
    args = parser.parse_args()
    h, w = (int(v) for v in args.size.split('x'))
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    clock = time.perf_counter if device.type == 'cuda' else time.process_time
    torch.manual_seed(0)
    net = MultiExitSegNet(preset(args.preset)).to(device).train()
    x = torch.randn(args.batch, 3, h, w, device=device)
    target = torch.randint(0, 11, (args.batch, h, w), device=device)
    opt = torch.optim.SGD(net.parameters(), lr=1e-9, momentum=0.9)
    runs = {(name, mode): RoutedNet(net, s, mode) for name, s in STRATEGIES.items()
            for mode in ('gate', 'rerun')
            if mode == 'gate' or max(map(len, RoutedNet(net, s).plan)) > 1}

    def step(key):
        routed = runs[key]
        if device.type == 'cuda':
            torch.cuda.synchronize()
        t = clock()
        loss, _ = exit_losses(routed(x), target, routed.strategy, 255)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == 'cuda':
            torch.cuda.synchronize()
        return clock() - t

    for key in runs:   # warm-up
        step(key)
    times = {key: [] for key in runs}
    order = list(runs)
    rng = random.Random(0)
    for _ in range(args.repeat):
        rng.shuffle(order)  # a fresh order each round: no strategy always follows another
        for key in order:
            times[key].append(step(key))
    # Best of the interleaved repeats: the least disturbed by other load on the machine.
    med = {key: min(v) for key, v in times.items()}
    base = med[('joint', 'gate')]
    rows = []
    for name, s in STRATEGIES.items():
        gate = med[(name, 'gate')]
        rerun = med.get((name, 'rerun'))
        rows.append({'strategy': name, 'routing': s.describe(net.num_exits),
                     'gate_ms': round(gate * 1e3, 2), 'gate_vs_joint': round(gate / base, 3),
                     'rerun_ms': None if rerun is None else round(rerun * 1e3, 2),
                     'rerun_vs_joint': None if rerun is None else round(rerun / base, 3),
                     'gate_vs_rerun': None if rerun is None else round(gate / rerun, 3)})
        print(f'{name:32s} gate {gate * 1e3:8.1f} ms ({gate / base:.2f}x joint)' + (
            '' if rerun is None else f'  rerun {rerun * 1e3:8.1f} ms ({rerun / base:.2f}x)'))
    tag = f'{args.preset}_{args.device.split(":")[0]}'
    result = {'benchmark': 'train_step', 'preset': args.preset, 'size': [h, w],
              'batch': args.batch, 'device': args.device, 'repeat': args.repeat,
              'threads': torch.get_num_threads(), 'machine': machine_info(),
              'date': time.strftime('%Y-%m-%d %H:%M:%S'), 'rows': rows}
    lines = [f'# Training step time per routing strategy ({args.preset}, {h}x{w}, batch '
             f'{args.batch}, {args.device})', '',
             f'Machine: {result["machine"]}', '',
             'One step = forward of every exit, losses, backward, SGD update; best of '
             f'{args.repeat} interleaved steps after warm-up, measured as process CPU '
             f'time with {args.threads} thread(s) on a CPU (wall time on CUDA). '
             '`gate`: one forward pass with per-stream gradient gates (used for '
             'training); `rerun`: each block re-run once per gradient stream '
             '(reference). `-`: only one stream crosses every block, so both are the '
             'same plain pass. `joint again` runs the very same computation as '
             '`joint`: its ratio shows the noise floor of this machine.', '',
             '| strategy | gate ms | gate / joint | rerun ms | rerun / joint | gate / rerun |',
             '|---|---:|---:|---:|---:|---:|']
    for r in rows:
        f = (lambda v: '-' if v is None else f'{v}')
        lines.append(f'| {r["strategy"]} | {r["gate_ms"]} | {r["gate_vs_joint"]} | '
                     f'{f(r["rerun_ms"])} | {f(r["rerun_vs_joint"])} | {f(r["gate_vs_rerun"])} |')
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f'train_step_{tag}.json').write_text(json.dumps(result, indent=2) + '\n')
    (out / f'train_step_{tag}.md').write_text('\n'.join(lines) + '\n')
    print(f'wrote {out}/train_step_{tag}.md')


if __name__ == '__main__':
    main()
