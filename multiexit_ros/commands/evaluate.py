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
"""Evaluate every exit of a model: mIoU, pixel accuracy, per-class IoU and latency.

Writes metrics.json, metrics.md and accuracy_vs_latency.png to --out (when given) and
prints a per-exit table.
"""

from .common import add_engine_arguments, apply_threads, check_output_folder, parse_size
from ..progress import bar


def add_arguments(parser):
    """Add this command's arguments."""
    parser.add_argument('--model', help='checkpoint (.safetensors); default: the shipped model')
    parser.add_argument('--dataset', required=True,
                        help='camvid, cityscapes, folder or generated (or a + mix)')
    parser.add_argument('--data', default='', help='dataset folder (not for generated)')
    parser.add_argument('--split', default='val', help='split name (default val)')
    parser.add_argument('--out', help='folder for metrics.json, metrics.md and the plot')
    parser.add_argument('--size', help="evaluate at HxW (default: the checkpoint's "
                                       'training size, else as stored)')
    parser.add_argument('--label-size', choices=('full', 'input'), default='full',
                        help='score against the labels at their own resolution (full, the '
                             'default: predictions are upsampled to it) or labels shrunk to '
                             'the network input (input)')
    parser.add_argument('--device', default='cpu', help='torch device (cpu, cuda, cuda:1)')
    parser.add_argument('--batch-size', type=int, default=1,
                        help='images per forward pass (default 1)')
    parser.add_argument('--limit', type=int, default=0,
                        help='evaluate only the first N images (default 0: all images)')
    parser.add_argument('--no-progress', action='store_true',
                        help='no progress bar (there is none when stderr is not a terminal)')
    parser.add_argument('--count', type=int, default=64, help='generated scenes to use')
    parser.add_argument('--latency-repeat', type=int, default=5,
                        help='timed passes per exit (0: skip the latency)')
    parser.add_argument('--workers', type=int, default=0, help='data-loading processes')
    add_engine_arguments(parser)


def _counted(iterable, update):
    for item in iterable:
        yield item
        update(1)


def run(args) -> int:
    """Evaluate and report."""
    import torch
    from torch.utils.data import DataLoader, Subset

    from .. import default_model_path
    from ..data import build_dataset, Transform
    from ..errors import ConfigError, DatasetError
    from ..model import exit_costs, exit_latencies, load_checkpoint
    from ..train.evaluate import collate_eval, confusions, summarize, write_report
    from ..runtime.device import resolve_device
    from ..runtime.engine import resolve_backend

    for name, least in (('batch_size', 1), ('workers', 0), ('limit', 0)):
        if getattr(args, name) < least:
            raise ConfigError(f'--{name.replace("_", "-")} must be at least {least}, got '
                              f'{getattr(args, name)}')
    if args.out:
        check_output_folder(args.out)
    device = resolve_device(args.device)
    apply_threads(args.threads)
    path = args.model or default_model_path()
    model, meta = load_checkpoint(path, device)
    net = model
    if resolve_backend(args.backend, device) == 'onnxruntime':
        from ..runtime.onnx_backend import OrtModule
        if device.type != 'cpu':
            raise ConfigError('evaluate --backend onnxruntime runs on the CPU only')
        net = OrtModule(model, args.threads, meta.labels, meta.mean, meta.std)
    size = parse_size(args.size) if args.size else meta.input_size
    gen_size = size or (360, 480)
    dataset = build_dataset(args.dataset, args.data, args.split,
                            Transform(size=size, mean=meta.mean, std=meta.std,
                                      resize_label=args.label_size != 'input'),
                            generated_count=args.count, generated_size=gen_size)
    labels = dataset.labels
    if labels.classes != meta.labels.classes:
        raise DatasetError(f'dataset {args.dataset} has classes {labels.name} '
                           f'({labels.num_classes}), the model predicts {meta.labels.name} '
                           f'({meta.labels.num_classes})')
    if args.limit:
        dataset = Subset(dataset, range(min(args.limit, len(dataset))))
    loader = DataLoader(dataset, args.batch_size, num_workers=args.workers,
                        collate_fn=collate_eval)
    wanted = not args.no_progress
    with bar(len(loader), 'evaluating', wanted, unit='batch') as progress:
        cms = confusions(net, loader, labels.num_classes, labels.ignore_index, device,
                         progress=lambda it: _counted(it, progress.update))
    timing_size = size or tuple(dataset[0][1].shape)
    latency = None
    if args.latency_repeat > 0:
        with bar(model.num_exits * (args.latency_repeat + 2), 'timing exits',
                 wanted) as progress:
            latency = exit_latencies(net, timing_size, repeat=args.latency_repeat,
                                     progress=progress.update)
    flops = [c.flops / 1e9 for c in exit_costs(model, timing_size)]
    with torch.no_grad():
        result = summarize(cms, list(labels.classes), latency, flops)
    result = {'model': str(path), 'dataset': args.dataset, 'split': args.split,
              'images': len(dataset), 'size': list(timing_size), 'device': str(device),
              'backend': 'onnxruntime' if net is not model else 'torch',
              'threads': args.threads,
              **result}
    print(f'{path} on {args.dataset}/{args.split} ({len(dataset)} images, '
          f'{timing_size[0]}x{timing_size[1]}, {device})')
    print(f'{"exit":>4} {"mIoU":>7} {"pix acc":>8} {"ms":>8} {"GFLOPs":>7}')
    for e in result['exits']:
        ms = '-' if e.get('latency_ms') is None else f'{e["latency_ms"]:.1f}'
        miou = '-' if e['miou'] is None else f'{e["miou"]:.4f}'
        acc = '-' if e['pixel_accuracy'] is None else f'{e["pixel_accuracy"]:.4f}'
        print(f'{e["exit"]:>4} {miou:>7} {acc:>8} {ms:>8} {e["gflops"]:>7.2f}')
    if args.out:
        for p in write_report(args.out, result, f'{meta.labels.name} model, '
                                                f'{args.dataset}/{args.split}'):
            print(f'wrote {p}')
    return 0
