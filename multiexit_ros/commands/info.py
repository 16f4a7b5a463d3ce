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
"""Print per-exit parameters, FLOPs and network latency of a model."""

import json

from .common import add_model_arguments, load_model, parse_size
from ..errors import ConfigError
from ..progress import bar


def add_arguments(parser):
    """Add this command's arguments."""
    add_model_arguments(parser)
    parser.add_argument('--size', default='360x480', help='input HxW (default 360x480)')
    parser.add_argument('--repeat', type=int, default=10, help='timed passes per exit')
    parser.add_argument('--no-latency', action='store_true', help='skip the timing')
    parser.add_argument('--json', action='store_true', help='print JSON instead of a table')
    parser.add_argument('--no-progress', action='store_true',
                        help='no progress bar (there is none when stderr is not a terminal)')


def run(args) -> int:
    """Measure and print."""
    from ..model import exit_costs, exit_latencies

    size = parse_size(args.size)
    if args.repeat < 1 and not args.no_latency:
        raise ConfigError(f'--repeat must be at least 1 (or use --no-latency), got {args.repeat}')
    model, meta = load_model(args)
    costs = exit_costs(model, size)
    lat = [None] * len(costs)
    if not args.no_latency:
        with bar(len(costs) * (args.repeat + 2), 'timing exits',
                 not args.no_progress) as progress:
            lat = exit_latencies(model, size, args.repeat, progress=progress.update)
    rows = [dict(c.to_dict(), latency_ms=t) for c, t in zip(costs, lat)]
    if args.json:
        print(json.dumps({'size': list(size), 'device': args.device, 'exits': rows}, indent=2))
        return 0
    source = args.model or (f'preset {args.preset} (untrained)' if args.preset else 'shipped')
    print(f'model: {source}; input {size[0]}x{size[1]} on {args.device}')
    print(f'{"exit":>4} {"stride":>6} {"params":>10} {"GFLOPs":>8} {"net ms":>8}')
    for r in rows:
        ms = '-' if r['latency_ms'] is None else f'{r["latency_ms"]:.1f}'
        print(f'{r["exit"]:>4} {r["stride"]:>6} {r["params"]:>10,} {r["flops"] / 1e9:>8.2f} '
              f'{ms:>8}')
    if meta is not None and meta.metrics.get('miou'):
        print('val mIoU per exit: ' + ', '.join(f'{v:.3f}' for v in meta.metrics['miou']))
    return 0
