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
"""The network on the CPU per exit and backend: eager, fast torch, ONNX Runtime, compile.

Network = blocks 0..k and head k, logits at the head's own resolution, one image, as a
fresh pass per exit. Paths, timed in interleaved rounds on the same real images so that
they see the same load: ``eager`` (the engine's torch path: fp32, channels-last),
``torch_fast`` (BatchNorm folded into the convolutions, channels-last), ``onnxruntime``
(the ``multiexit export`` graphs, CPU execution provider) and, with ``--compile``,
``torch.compile`` of each exit. Each path's share of the measured FP32 peak: a large
matmul timed with the same thread count in the same run; exit FLOPs from
``multiexit_ros.model.cost``; GFLOP/s = FLOPs / median time. Masks (argmax at the head's
resolution) are compared with eager's.

Usage: python bench/backends.py [--sizes 360x480,480x640] [--threads 1,2] [--rounds 15]
"""

import argparse
import copy
from pathlib import Path
import statistics
import sys
import tempfile
import time

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from multiexit_ros.machine import machine_info, write_results  # noqa: E402
from multiexit_ros.model import exit_costs, load_checkpoint  # noqa: E402


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm2d that follows a Conv2d into it (a copy; eval statistics)."""
    model = copy.deepcopy(model).eval()

    def fold(conv, bn):
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        conv.weight.data = conv.weight.data * scale.reshape(-1, 1, 1, 1)
        bias = conv.bias.data if conv.bias is not None else torch.zeros_like(bn.running_mean)
        conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)

    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            children = list(module._modules.items())
            for (_, a), (name, b) in zip(children, children[1:]):
                if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                    fold(a, b)
                    module._modules[name] = nn.Identity()
        if isinstance(getattr(module, 'conv2', None), nn.Conv2d) and \
                isinstance(getattr(module, 'bn2', None), nn.BatchNorm2d):
            fold(module.conv2, module.bn2)
            module.bn2 = nn.Identity()
    return model


def peak_gflops(threads: int, n: int = 1536, repeat: int = 7) -> float:
    """Best GFLOP/s of an n x n x n fp32 matmul with ``threads`` torch threads."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float('inf')
    for _ in range(repeat):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def torch_exit(model):
    """Return run(x, k) -> logits at the head's resolution, a fresh pass of exit k."""
    def run(x, k):
        with torch.inference_mode():
            return model.advance(model.begin(x), k, False)
    return run


def ort_exit(folder, threads):
    """Return run(x, k) over ONNX Runtime sessions of an export folder."""
    from multiexit_ros.runtime.onnx_backend import OrtNetwork

    net = OrtNetwork(folder, threads)

    def run(x, k):
        return net.advance(net.begin(x), k, False)
    return run


def compiled_exit(model, size, log):
    """Return run(x, k) over one torch.compile'd module per exit (compile time logged)."""

    class Exit(nn.Module):

        def __init__(self, k):
            super().__init__()
            self.k = k

        def forward(self, x):
            return model.advance(model.begin(x), self.k, False)

    fns = {}

    def run(x, k):
        if k not in fns:
            fn = torch.compile(Exit(k))
            t0 = time.perf_counter()
            with torch.inference_mode():
                fn(x)
            log.append(f'torch.compile exit {k} at {size[0]}x{size[1]}: '
                       f'{time.perf_counter() - t0:.0f} s to compile')
            fns[k] = fn
        with torch.inference_mode():
            return fns[k](x)
    return run


def frames(size, count):
    """Real CamVid val frames when present, else generated scenes, normalized."""
    from multiexit_ros.runtime.onnx_backend import check_inputs
    from multiexit_ros.data.base import read_rgb

    folder = ROOT.parent / 'shared' / 'data' / 'camvid' / 'val'
    if folder.is_dir():
        files = sorted(folder.glob('*.png'))[:count]
        return check_inputs(size, images=[read_rgb(p) for p in files]), \
            f'{len(files)} CamVid val frames'
    return check_inputs(size, count), f'{count} generated scenes'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', default=str(ROOT / 'models' / 'multiexit_camvid.safetensors'))
    parser.add_argument('--sizes', default='', help="HxW list (default: the checkpoint's "
                                                    'input size and 480x640)')
    parser.add_argument('--threads', default='1,2')
    parser.add_argument('--rounds', type=int, default=15, help='timed rounds per path')
    parser.add_argument('--images', type=int, default=3)
    parser.add_argument('--compile', action='store_true', help='also time torch.compile')
    parser.add_argument('--out', default=str(ROOT / 'bench' / 'results'))
    args = parser.parse_args(argv)

    from multiexit_ros.runtime.device import checkpoint_identity
    from multiexit_ros.runtime.onnx_backend import export_onnx

    model, meta = load_checkpoint(args.model, 'cpu')
    model = model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    sizes = [tuple(int(v) for v in s.split('x')) for s in args.sizes.split(',') if s] or \
        [tuple(meta.input_size), (480, 640)]
    threads = [int(t) for t in args.threads.split(',')]
    eager = model.to(memory_format=torch.channels_last)
    fast = fold_batchnorm(model).to(memory_format=torch.channels_last)
    notes, results, tmp = [], [], tempfile.mkdtemp(prefix='backends_')
    peaks = {}
    for size in sizes:
        costs = exit_costs(model, size)
        folder = Path(tmp) / f'{size[0]}x{size[1]}'
        export_onnx(model, folder, size, mean=meta.mean, std=meta.std, labels=meta.labels,
                    identity=checkpoint_identity(args.model, model))
        inputs, words = frames(size, args.images)
        for t in threads:
            peaks[t] = max(peaks.get(t, 0.0), peak_gflops(t))
            torch.set_num_threads(t)
            paths = {'eager': torch_exit(eager), 'torch_fast': torch_exit(fast),
                     'onnxruntime': ort_exit(folder, t)}
            if args.compile:
                paths['torch_compile'] = compiled_exit(fast, size, notes)
            times = {(p, k): [] for p in paths for k in range(model.num_exits)}
            agree = {(p, k): 1.0 for p in paths for k in range(model.num_exits)}
            diff = {(p, k): 0.0 for p in paths for k in range(model.num_exits)}
            for k in range(model.num_exits):  # warm-up and mask check
                for x in inputs:
                    ref = paths['eager'](x.contiguous(memory_format=torch.channels_last), k)
                    for p, fn in paths.items():
                        z = fn(x.contiguous(memory_format=torch.channels_last), k)
                        agree[p, k] = min(agree[p, k], float(
                            (z[0].argmax(0) == ref[0].argmax(0)).float().mean()))
                        diff[p, k] = max(diff[p, k], float((z - ref).abs().max()))
            for r in range(args.rounds):
                x = inputs[r % len(inputs)].contiguous(memory_format=torch.channels_last)
                for k in range(model.num_exits):
                    for p, fn in paths.items():
                        t0 = time.perf_counter()
                        fn(x, k)
                        times[p, k].append(time.perf_counter() - t0)
            for k in range(model.num_exits):
                base = statistics.median(times['eager', k])
                for p in paths:
                    med = statistics.median(times[p, k])
                    gflops = costs[k].flops / med / 1e9
                    results.append({
                        'size': list(size), 'threads': t, 'exit': k, 'path': p,
                        'median_ms': med * 1e3, 'vs_eager': med / base,
                        'gflops': costs[k].flops / 1e9, 'gflop_per_s': gflops,
                        'peak_share': gflops / peaks[t], 'mask_agreement': agree[p, k],
                        'max_abs_logit_diff': diff[p, k]})
            print(f'{size} threads {t} done', flush=True)
    if not args.compile:
        notes.append('torch.compile not timed in this run (pass --compile): the issue '
                     'measured 1-6 min of compilation per exit on this machine')
    lines = [f'# Network per exit and backend on the CPU ({args.model.split("/")[-1]})', '',
             'Network = blocks 0..k + head k, logits at the head resolution, one image, '
             f'fresh pass per exit; median of {args.rounds} interleaved rounds on {words}. '
             'Peak: best n=1536 fp32 matmul in the same run: ' +
             ', '.join(f'{t} thread(s) {g:.1f} GFLOP/s' for t, g in sorted(peaks.items())) +
             '. `vs eager` < 1 is faster. Masks: argmax agreement with eager.', '',
             '| size | threads | exit | path | ms | vs eager | GFLOP/s | % of peak | '
             'masks | max logit diff |', '|---|---|---|---|---|---|---|---|---|---|']
    for r in results:
        lines.append(f'| {r["size"][0]}x{r["size"][1]} | {r["threads"]} | {r["exit"]} | '
                     f'{r["path"]} | {r["median_ms"]:.1f} | {r["vs_eager"]:.2f} | '
                     f'{r["gflop_per_s"]:.1f} | {r["peak_share"]:.0%} | '
                     f'{r["mask_agreement"]:.4%} | {r["max_abs_logit_diff"]:.1e} |')
    lines += [''] + [f'- {n}' for n in notes]
    info = machine_info()
    info['onnxruntime'] = __import__('onnxruntime').__version__
    path = write_results(args.out, 'backends_cpu',
                         {'machine': info, 'peak_gflop_per_s': peaks, 'rounds': args.rounds,
                          'images': words, 'notes': notes, 'results': results},
                         '\n'.join(lines) + f'\n\nMachine: {info}\n')
    print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
