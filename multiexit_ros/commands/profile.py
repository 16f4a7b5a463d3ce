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
"""Measure the per-exit latency profile of a model and write it as JSON.

Each sample is one end-to-end pass through the runtime engine (camera image in, mask
out) at the deployed resolution, precision and device, after warm-up. Pass the file to
the node or the replay as ``profile_path`` so that they need not measure at start-up.
"""

import json
import sys

from .common import add_engine_arguments, apply_threads, check_output_file, parse_size
from ..progress import bar


def add_arguments(parser):
    """Add this command's arguments."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--model', help='checkpoint file (.safetensors); default: the shipped '
                                       'model')
    group.add_argument('--preset', help='profile an untrained network built from a preset '
                                        '(tiny, small, lite0, base, large)')
    parser.add_argument('--device', default=None,
                        help='cuda, cuda:N or cpu (default: cuda, or the CPU where PyTorch '
                             'sees no CUDA device, said on the first line)')
    parser.add_argument('--allow-cpu-fallback', action='store_true',
                        help='use the CPU when CUDA is not available')
    parser.add_argument('--size', default='360x480', help='camera image HxW (default 360x480)')
    parser.add_argument('--input-size', default=None,
                        help='network input HxW (default: trained size, else the image size '
                             'rounded to a multiple of 32)')
    parser.add_argument('--output-size', default=None, help='mask HxW (default: image size)')
    parser.add_argument('--precision', default='fp16', choices=['fp16', 'bf16', 'fp32'],
                        help='GPU precision (the CPU always uses fp32)')
    parser.add_argument('--no-channels-last', action='store_true',
                        help='keep the NCHW layout (slower on the CPU and the GPU)')
    parser.add_argument('--cuda-graphs', action='store_true', help='one CUDA graph per exit')
    add_engine_arguments(parser)
    parser.add_argument('--warmup', type=int, default=10, help='untimed passes per exit')
    parser.add_argument('--samples', type=int, default=50, help='timed passes per exit')
    parser.add_argument('-o', '--output', default='latency_profile.json',
                        help='profile file to write (default latency_profile.json)')
    parser.add_argument('--json', action='store_true', help='print the summary as JSON')
    parser.add_argument('--no-progress', action='store_true',
                        help='no progress bar (there is none when stderr is not a terminal)')


def run(args) -> int:
    """Measure, write and print."""
    import torch

    from .. import default_model_path
    from ..model import MultiExitSegNet, preset
    from ..runtime import Engine, measure_profile
    from ..runtime.device import model_identity

    size = parse_size(args.size)
    check_output_file(args.output, '--output')
    apply_threads(args.threads)
    device = args.device
    if device is None:
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
        if device == 'cpu':
            print('multiexit profile: no CUDA device here, profiling on the CPU (fp32); give '
                  '--device cuda on the target machine', file=sys.stderr, flush=True)
    options = {'device': device, 'precision': args.precision,
               'channels_last': not args.no_channels_last, 'cuda_graphs': args.cuda_graphs,
               'allow_cpu_fallback': args.allow_cpu_fallback, 'backend': args.backend,
               'threads': args.threads}
    if args.input_size:
        options['input_size'] = parse_size(args.input_size)
    if args.preset:
        torch.manual_seed(0)
        model = MultiExitSegNet(preset(args.preset))
        engine = Engine(model, model_id=model_identity(model, f'preset:{args.preset}'),
                        **options)
    else:
        engine = Engine.from_checkpoint(args.model or default_model_path(), **options)
    out_size = parse_size(args.output_size) if args.output_size else None
    with bar((args.warmup + args.samples) * engine.num_exits, 'profiling',
             not args.no_progress) as progress:
        profile = measure_profile(engine, size, args.warmup, args.samples, out_size=out_size,
                                  progress=progress.update)
    path = profile.save(args.output)
    rows = profile.summary()
    if args.json:
        print(json.dumps({'path': str(path), 'device': engine.device,
                          'precision': engine.precision, 'backend': engine.backend,
                          'threads': engine.threads, 'exits': rows}, indent=2))
        return 0
    in_size = engine.input_size_for(size)
    print(f'latency profile: {profile.model.get("name")} on {engine.device} '
          f'({engine.backend}, {engine.threads or "default"} threads, {engine.precision}'
          f'{", CUDA graphs" if engine.cuda_graphs else ""}), image '
          f'{size[0]}x{size[1]}, network input {in_size[0]}x{in_size[1]}')
    print(f'{"exit":>4} {"n":>5} {"p50 ms":>8} {"p95 ms":>8} {"p99 ms":>8}')
    for r in rows:
        print(f'{r["exit"]:>4} {r["n"]:>5} {r["p50_s"] * 1e3:>8.2f} {r["p95_s"] * 1e3:>8.2f} '
              f'{r["p99_s"] * 1e3:>8.2f}')
    print(f'wrote {path}')
    return 0
