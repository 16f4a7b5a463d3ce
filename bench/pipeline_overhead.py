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
"""Pipeline overhead per exit: the bare network against the whole perception pipeline.

Usage: PYTHONPATH=. python bench/pipeline_overhead.py [--model PATH | --preset NAME]
       [--sizes 360x480,720x1280] [--threads 1,2] [--image PATH] [--samples 40]
       [--device cpu|cuda] [--precision fp16] [--cuda-graphs] [--backend NAME]

- network: ``Engine.network``, the engine's own network call: the normalized input
  tensor already on the device to one exit's logits at the head's own resolution (no
  upsampling);
- pipeline: ``PerceptionPipeline.process``, uint8 camera image on the host to the uint8
  mask on the host at the camera size (validation, resize, normalization, network,
  upsampling, argmax, copies, planning and bookkeeping).

By default the shipped model runs at its trained input size (from the checkpoint), on
a camera image of each size (a CamVid frame with ``--image``, else a generated scene)
resized to that size. ``--preset`` runs random weights at the camera size instead (the
GPU check at 1024x2048). Every exit, camera size and thread count is measured side by
side, interleaved in one run, so that load drifts hit them alike. On the CPU the run
also times the stages: preprocessing (the resize alone, then with normalization),
network and post-processing (upsampling fused with argmax) of the engine's path, and
the stages of the reference path (float conversion and resize, normalization,
``F.interpolate`` to the camera size, argmax, copy to uint8 numpy), which is what the
pipeline ran before the fused path. With --cuda-graphs on CUDA, both are measured
eagerly and with CUDA graphs. Targets: pipeline / network <= 1.10 (every exit, 1 thread
on the CPU; the final exit at 1024x2048 on a GPU), pipeline p99/p50 <= 1.25 on a GPU.
"""

import argparse
import os
from pathlib import Path
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from multiexit_ros import default_model_path
from multiexit_ros.machine import machine_info, write_results
from multiexit_ros.model import MultiExitSegNet, preset
from multiexit_ros.runtime import Engine, LatencyProfile, PerceptionPipeline, PipelineConfig

OVERHEAD_TARGET = 1.10  # pipeline / network
TAIL_TARGET = 1.25      # pipeline p99 / p50 at the final exit, GPU

CPU_STAGES = ('resize', 'preprocess', 'network', 'postprocess')
REF_STAGES = ('ref_float_resize', 'ref_normalize', 'ref_upsample', 'ref_argmax',
              'ref_copy')


def _quantile(values, q):
    return float(np.quantile(np.asarray(values), q))


def _set_threads(n):
    torch.set_num_threads(n)
    try:
        import cv2
        cv2.setNumThreads(n)
    except ImportError:
        pass


def _camera_image(path, size):
    """Return a uint8 RGB camera frame of ``size``: ``path`` resized, else a scene."""
    import cv2

    if path:
        image = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    else:
        from multiexit_ros.data.synthetic import render_scene
        image = render_scene(0, *size)[0]
    if tuple(image.shape[:2]) != tuple(size):
        image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(image)


def _engine(args, graphs, threads=0):
    kwargs = {'device': args.device, 'precision': args.precision,
              'channels_last': not args.no_channels_last, 'cuda_graphs': graphs,
              'threads': threads}
    if args.resize_uint8:
        kwargs['resize_uint8'] = True  # the engine's option (masks may differ slightly)
    kwargs['backend'] = args.backend
    if args.preset:
        torch.manual_seed(0)
        return Engine(MultiExitSegNet(preset(args.preset)), **kwargs)
    return Engine.from_checkpoint(args.model or default_model_path(), **kwargs)


def _network_fn(engine, x, k, graphs):
    """Return a callable running the bare network for exit k (captured when ``graphs``)."""
    if not graphs:
        return lambda: engine.network(x, k)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            engine.network(x, k)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = engine.network(x, k)

    def replay():
        graph.replay()
        return out
    return replay


_CLOCK = time.perf_counter  # --clock cpu: time.process_time


def _timed(fn, cuda=False):
    """Run ``fn`` and return (seconds, its result)."""
    if not cuda:
        t0 = _CLOCK()
        out = fn()
        return _CLOCK() - t0, out
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    out = fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3, out


def _resize_only(engine, img, in_size):
    """Return the resize step of the engine's CPU preprocessing alone (None: none)."""
    if tuple(img.shape[:2]) == tuple(in_size):
        return None
    if engine.resize_uint8:
        import cv2
        return lambda: cv2.resize(img, (in_size[1], in_size[0]),
                                  interpolation=cv2.INTER_LINEAR)
    raw = torch.empty(img.shape, dtype=torch.float32)
    small = torch.empty((*in_size, img.shape[2]), dtype=torch.float32)

    def resize():
        raw.copy_(torch.from_numpy(img))
        torch._C._nn.upsample_bilinear2d(raw.permute(2, 0, 1)[None], in_size, False, None,
                                         None, out=small.permute(2, 0, 1)[None])
    return resize


def _reference_stages(engine, img, logits, in_size, out_size, times):
    """Time the reference path stage by stage (what the pipeline ran before)."""
    def float_resize():
        x = torch.from_numpy(img).permute(2, 0, 1).unsqueeze(0).float()
        if tuple(x.shape[-2:]) != tuple(in_size):
            x = F.interpolate(x, size=in_size, mode='bilinear', align_corners=False)
        return x

    def normalize(x):
        x = torch.addcmul(engine._bias, x, engine._scale)
        memory = torch.channels_last if engine.channels_last else torch.contiguous_format
        return x.to(engine.dtype, memory_format=memory)

    t, x = _timed(float_resize)
    times['ref_float_resize'].append(t)
    t, x = _timed(lambda: normalize(x))
    times['ref_normalize'].append(t)
    t, up = _timed(lambda: F.interpolate(logits, size=out_size, mode='bilinear',
                                         align_corners=False))
    times['ref_upsample'].append(t)
    t, idx = _timed(lambda: up[0].max(0).indices)
    times['ref_argmax'].append(t)
    t, _ = _timed(lambda: idx.to(torch.uint8).numpy())
    times['ref_copy'].append(t)


def measure(args, sizes, threads, graphs):
    """Measure every (threads, size, exit) in one mode, interleaved; returns the rows.

    One engine per thread count: ONNX Runtime fixes a session's threads when it is made
    (``engine.threads``), PyTorch's are set before every sample as well.
    """
    engines = {t: _engine(args, graphs, t) for t in threads}
    engine = engines[threads[0]]
    cuda = engine.device.startswith('cuda')
    n = engine.num_exits
    dummy = LatencyProfile.from_samples([[0.0]] * n)  # fixed policy: no planning needed
    pipes = {t: [PerceptionPipeline(e, PipelineConfig(
        device=args.device, policy='fixed', fixed_exit=k, profile_update=False), dummy)
        for k in range(n)] for t, e in engines.items()}
    memory = torch.channels_last if engine.channels_last else torch.contiguous_format
    cases = {}
    with torch.inference_mode():
        for size in sizes:
            img = _camera_image(args.image, size)
            in_size = engine.input_size_for(size)
            x = engine._preprocess(torch.from_numpy(img).to(engine.device), in_size)
            x = x.to(engine.dtype, memory_format=memory).clone()
            nets = {t: [_network_fn(e, x, k, graphs and cuda) for k in range(n)]
                    for t, e in engines.items()}
            cases[size] = (img, in_size, nets, _resize_only(engine, img, in_size))
        keys = [(t, s, k) for t in threads for s in sizes for k in range(n)]
        times = {key: {name: [] for name in ('network', 'pipeline', 'engine_reported')
                       + (() if cuda else CPU_STAGES + REF_STAGES)} for key in keys}
        for i in range(args.warmup + args.samples):
            for key in keys:
                t, size, k = key
                _set_threads(t)
                engine = engines[t]
                img, in_size, nets, resize = cases[size]
                nets = nets[t]
                row = times[key] if i >= args.warmup else \
                    {name: [] for name in times[key]}  # warm-up: discarded
                tn, logits = _timed(nets[k], cuda)
                row['network'].append(tn)
                t0 = _CLOCK()
                result = pipes[t][k].process(img, stamp=float(i), now=float(i))
                row['pipeline'].append(_CLOCK() - t0)
                row['engine_reported'].append(result.record.actual_s)
                if result.mask is None or result.mask.shape != img.shape[:2]:
                    raise RuntimeError(f'no mask of the camera size for exit {k}')
                if cuda:
                    continue
                row['resize'].append(_timed(resize)[0] if resize else 0.0)
                row['preprocess'].append(_timed(
                    lambda: engine._preprocess_cpu(img, in_size, reuse=True))[0])
                # The network's logits above come from the same input values (the
                # reference preprocessing and the engine's are equal), reused here.
                row['postprocess'].append(_timed(
                    lambda: engine._postprocess(logits, size))[0])
                _reference_stages(engine, img, logits, in_size, size, row)
    rows = []
    for (t, size, k), row in times.items():
        net50, pipe50 = statistics.median(row['network']), statistics.median(row['pipeline'])
        out = {'threads': t, 'size': list(size), 'exit': k, 'n': len(row['network']),
               'network_p50_ms': net50 * 1e3,
               'network_p99_ms': _quantile(row['network'], 0.99) * 1e3,
               'pipeline_p50_ms': pipe50 * 1e3,
               'pipeline_p99_ms': _quantile(row['pipeline'], 0.99) * 1e3,
               'engine_reported_p50_ms': statistics.median(row['engine_reported']) * 1e3,
               'overhead_ratio': pipe50 / net50,
               'network_p99_over_p50': _quantile(row['network'], 0.99) / net50,
               'pipeline_p99_over_p50': _quantile(row['pipeline'], 0.99) / pipe50}
        if not cuda:
            stages = {name: statistics.median(row[name]) * 1e3
                      for name in CPU_STAGES + REF_STAGES}
            ref_post = sum(stages[s] for s in ('ref_upsample', 'ref_argmax', 'ref_copy'))
            out['stages_p50_ms'] = stages
            out['postprocess_over_reference'] = stages['postprocess'] / ref_post
            out['reference_pipeline_estimate_ms'] = sum(stages[s] for s in REF_STAGES) \
                + net50 * 1e3
        rows.append(out)
    return {'mode': 'cuda_graphs' if graphs and cuda else 'eager', 'device': engine.device,
            'precision': engine.precision, 'backend': engine.backend,
            'channels_last': engine.channels_last,
            'fused_upsample': engine.fused_upsample, 'resize_uint8': engine.resize_uint8,
            'input_size': list(engine.input_size_for(sizes[0])), 'exits': rows}


def _targets(mode, cuda) -> list:
    """Say whether one mode meets the targets (every exit on the CPU at 1 thread)."""
    out = []
    for r in mode['exits']:
        if cuda and r['exit'] != len({x['exit'] for x in mode['exits']}) - 1:
            continue
        if not cuda and r['threads'] != 1:
            continue
        out.append({'mode': mode['mode'], 'threads': r['threads'], 'size': r['size'],
                    'exit': r['exit'], 'overhead_ratio': r['overhead_ratio'],
                    'overhead_met': r['overhead_ratio'] <= OVERHEAD_TARGET,
                    'p99_over_p50': r['pipeline_p99_over_p50'],
                    'tail_met': r['pipeline_p99_over_p50'] <= TAIL_TARGET if cuda else None})
    return out


def _load(values):
    return ', '.join(f'{v:.1f}' for v in values)


def _markdown(results, args):
    cuda = args.device.startswith('cuda')
    model = f'preset {args.preset} (random weights)' if args.preset else \
        f'`{results["model"]}`'
    lines = [f'# Pipeline overhead per exit: {model}, {args.device}', '',
             f'Machine: {results["machine"]}', '', f'Date: {results["date"]}', '',
             "Network: `Engine.network`, the normalized input on the device to one exit's "
             "logits at the head's own resolution (no upsampling). Pipeline: "
             '`PerceptionPipeline.process` (fixed exit), the uint8 camera image on the host '
             'to the uint8 mask at the camera size. Every exit, camera size and thread '
             f'count interleaved in one run; {args.samples} samples each after '
             f'{args.warmup} warm-up rounds. Clock: '
             + ('CPU time of the process (`--clock cpu`: the work done; with one thread '
                'unaffected by other jobs sharing the cores, which wall time on this '
                'machine is not)' if args.clock == 'cpu' else 'wall time') + '. Camera image: '
             f'{results["image"]}. Load average (1, 5, 15 min) before '
             f'{_load(results["load_before"])}, after {_load(results["load_after"])}: '
             'the machine is shared with other jobs; medians are reported and the tails '
             '(p99) show that sharing.', '']
    for mode in results['modes']:
        lines += [f'## {mode["mode"]}: {mode["device"]}, {mode["precision"]}, backend '
                  f'{mode["backend"]}, network input '
                  f'{mode["input_size"][0]}x{mode["input_size"][1]}', '',
                  '| threads | camera | exit | network p50 ms | pipeline p50 ms | '
                  'pipeline / network | pipeline p99/p50 | network p99/p50 |',
                  '|---:|---:|---:|---:|---:|---:|---:|---:|']
        lines += [f'| {r["threads"]} | {r["size"][0]}x{r["size"][1]} | {r["exit"]} | '
                  f'{r["network_p50_ms"]:.2f} | {r["pipeline_p50_ms"]:.2f} | '
                  f'**{r["overhead_ratio"]:.3f}** | {r["pipeline_p99_over_p50"]:.2f} | '
                  f'{r["network_p99_over_p50"]:.2f} |' for r in mode['exits']]
        lines.append('')
        if cuda:
            continue
        lines += ['### Stages (p50 ms)', '',
                  'Engine path: `resize` (the resize alone, included in `preprocess`), '
                  '`preprocess` (resize and normalization, `Engine._preprocess_cpu`), '
                  '`network`, `postprocess` (fused upsampling and argmax to a fresh uint8 '
                  'mask, `Engine._postprocess`). Reference path (the pipeline before the '
                  'fused path): float conversion and resize, normalization, `F.interpolate` '
                  'to the camera size, argmax, copy to uint8 numpy; `post / ref` is '
                  'postprocess over the last three.', '',
                  '| threads | camera | exit | resize | preprocess | network | postprocess '
                  '| ref float+resize | ref normalize | ref upsample | ref argmax | ref copy '
                  '| post / ref |',
                  '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|']
        for r in mode['exits']:
            s = r['stages_p50_ms']
            lines.append(
                f'| {r["threads"]} | {r["size"][0]}x{r["size"][1]} | {r["exit"]} | '
                + ' | '.join(f'{s[name]:.2f}' for name in CPU_STAGES + REF_STAGES)
                + f' | {r["postprocess_over_reference"]:.3f} |')
        lines.append('')
    targets = results.get('targets', [])
    if targets:
        met = [t for t in targets if t['overhead_met']]
        lines += ['## Targets', '',
                  f'pipeline / network <= {OVERHEAD_TARGET}: met in {len(met)} of '
                  f'{len(targets)} cases ' + ('(final exit)' if cuda else
                                              '(every exit and camera size, 1 thread)')
                  + '.', '']
        lines += [f'- {t["mode"]}, {t["size"][0]}x{t["size"][1]}, exit {t["exit"]}: '
                  f'{t["overhead_ratio"]:.3f} ' + ('met' if t['overhead_met'] else 'MISSED')
                  + (f'; p99/p50 {t["p99_over_p50"]:.2f} '
                     + ('met' if t['tail_met'] else 'MISSED') if cuda else '')
                  for t in targets]
        lines.append('')
    if not cuda:
        lines += ['## GPU', '', 'Not measured here. Targets at 1024x2048 on a GPU: pipeline '
                  '/ network <= 1.10 at the final exit, pipeline p99/p50 <= 1.25. To '
                  'measure, with and without CUDA graphs in one run (`make gpu-check`):', '',
                  '```bash', 'PYTHONPATH=. python bench/pipeline_overhead.py --device cuda '
                  '--preset base --size 1024x2048 --precision fp16 --cuda-graphs', '```', '']
    return '\n'.join(lines)


def _sizes(text):
    return [tuple(int(v) for v in item.lower().split('x')) for item in text.split(',')]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', default='', help='checkpoint; default: the shipped one')
    parser.add_argument('--preset', default='',
                        help='random weights of this preset at the camera size instead')
    parser.add_argument('--sizes', '--size', dest='sizes', default='360x480,720x1280',
                        help='camera HxW, comma-separated')
    parser.add_argument('--threads', default='1,2',
                        help='PyTorch (and OpenCV) CPU threads, comma-separated')
    parser.add_argument('--image', default='',
                        help='camera frame (resized to each size); default: a generated '
                             'scene')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--precision', default='fp16', choices=['fp16', 'bf16', 'fp32'])
    parser.add_argument('--backend', default='auto',
                        help='engine.backend: auto (the default: onnxruntime on the CPU when '
                             'installed), torch or onnxruntime')
    parser.add_argument('--no-channels-last', action='store_true')
    parser.add_argument('--resize-uint8', action='store_true',
                        help="the engine's resize_uint8 option (CPU)")
    parser.add_argument('--cuda-graphs', action='store_true',
                        help='also measure with CUDA graphs (both modes in one run)')
    parser.add_argument('--clock', default='wall', choices=['wall', 'cpu'],
                        help='CPU device: wall time, or the CPU time of the process (all '
                             'its threads; with 1 thread the work done, unaffected by '
                             'other jobs taking the cores)')
    parser.add_argument('--samples', type=int, default=40)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--out', default=str(Path(__file__).parent / 'results'))
    args = parser.parse_args()
    global _CLOCK
    if args.clock == 'cpu':
        _CLOCK = time.process_time
    sizes = _sizes(args.sizes)
    cuda = args.device.startswith('cuda')
    threads = [int(v) for v in args.threads.split(',')] if not cuda else \
        [torch.get_num_threads()]
    modes = [False, True] if args.cuda_graphs and cuda else [False]
    results = {'benchmark': 'pipeline_overhead', 'preset': args.preset,
               'model': '' if args.preset else
               str(args.model or 'models/' + default_model_path().name),
               'image': args.image or 'generated scene (seed 0)', 'clock': args.clock,
               'sizes': [list(s) for s in sizes], 'threads': threads,
               'samples': args.samples, 'warmup': args.warmup, 'machine': machine_info(),
               'date': time.strftime('%Y-%m-%d %H:%M:%S'), 'load_before': os.getloadavg()}
    results['modes'] = [measure(args, sizes, threads, g) for g in modes]
    results['load_after'] = os.getloadavg()
    results['targets'] = [t for mode in results['modes'] for t in _targets(mode, cuda)]
    for mode in results['modes']:
        for r in mode['exits']:
            print(f'{mode["mode"]} {r["threads"]} thread(s) {r["size"][0]}x{r["size"][1]} '
                  f'exit {r["exit"]}: network {r["network_p50_ms"]:.2f} ms, pipeline '
                  f'{r["pipeline_p50_ms"]:.2f} ms, ratio {r["overhead_ratio"]:.3f}')
    stem = f'pipeline_overhead_{args.device.split(":")[0]}'
    path = write_results(args.out, stem, results, _markdown(results, args))
    print(f'wrote {path} and .md')


if __name__ == '__main__':
    main()
