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
"""Per-exit evaluation: confusion matrices, metrics, latency, and the written report."""

import json
import logging
from pathlib import Path

import numpy as np
import torch

from .distributed import all_reduce_sum
from .metrics import ConfusionMatrix
from ..errors import DatasetError

__all__ = ['collate_eval', 'confusions', 'summarize', 'write_report']

log = logging.getLogger(__name__)


def collate_eval(batch: list) -> tuple:
    """Stack (image, label) pairs; labels kept at their own size must agree in a batch.

    Raises:
        DatasetError: Two labels of one batch differ in size (one line saying what to do).
    """
    sizes = sorted({'x'.join(map(str, label.shape)) for _, label in batch})
    if len(sizes) > 1:
        raise DatasetError(
            f'labels of one evaluation batch differ in size ({sizes[0]} vs {sizes[1]}): '
            f'evaluate with batch size 1, or score at the input size (data.val_full_labels '
            f'false, evaluate --label-size input)')
    return torch.utils.data.default_collate(batch)


@torch.no_grad()
def confusions(model, loader, num_classes: int, ignore_index: int, device,
               amp: bool = False, channels_last: bool = False, progress=None) -> list:
    """Confusion matrix of every exit over ``loader`` (summed over torchrun processes).

    Args:
        model: A :class:`MultiExitSegNet` (set to eval mode here).
        loader: Batches of (images, labels).
        num_classes: Number of classes.
        ignore_index: Label to skip.
        device: Where the model is.
        amp: Run the network in float16 autocast (CUDA).
        channels_last: Feed channels-last images.
        progress: Optional callable wrapping ``loader`` (e.g. tqdm).
    """
    model.eval()
    cms = None
    for images, labels in (progress(loader) if progress else loader):
        images = images.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        labels = labels.to(device, non_blocking=True)
        with torch.autocast(device.type, enabled=amp and device.type == 'cuda'):
            logits = model(images)
        if cms is None:
            cms = [ConfusionMatrix(num_classes, ignore_index) for _ in logits]
        for cm, z in zip(cms, logits):
            if z.shape[-2:] != labels.shape[-2:]:  # labels kept at their own resolution
                z = torch.nn.functional.interpolate(z.float(), size=labels.shape[-2:],
                                                    mode='bilinear', align_corners=False)
            cm.update(z.argmax(1), labels)
    if cms is None:
        cms = [ConfusionMatrix(num_classes, ignore_index) for _ in range(model.num_exits)]
    counts = torch.from_numpy(np.stack([cm.matrix for cm in cms])).to(device)
    counts = all_reduce_sum(counts).cpu().numpy()
    for cm, m in zip(cms, counts):
        cm.matrix = m.astype(np.int64)
    return cms


def summarize(cms: list, class_names=None, latency_ms=None, gflops=None) -> dict:
    """Per-exit metrics as a JSON-ready dict with ``miou`` and ``pixel_accuracy`` lists."""
    exits = []
    for k, cm in enumerate(cms):
        row = {'exit': k, **cm.to_dict(class_names)}
        if latency_ms is not None:
            row['latency_ms'] = round(float(latency_ms[k]), 4)
        if gflops is not None:
            row['gflops'] = round(float(gflops[k]), 4)
        exits.append(row)
    return {'miou': [e['miou'] for e in exits],
            'pixel_accuracy': [e['pixel_accuracy'] for e in exits],
            'exits': exits}


def write_report(out_dir, result: dict, title: str = 'Per-exit evaluation') -> list:
    """Write ``metrics.json``, ``metrics.md`` and ``accuracy_vs_latency.png``.

    Each file is written beside its target and renamed, so a failure leaves no
    half-written report. Returns the written paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [_atomic(out / 'metrics.json', json.dumps(result, indent=2) + '\n')]
    exits = result['exits']
    names = list(exits[0]['iou']) if exits else []
    lines = [f'# {title}', '']
    for key in ('model', 'dataset', 'split', 'images', 'size', 'device'):
        if key in result:
            lines.append(f'- {key}: {result[key]}')
    lines += ['', '| exit | mIoU | pixel acc | latency ms | GFLOPs |',
              '|---:|---:|---:|---:|---:|']
    for e in exits:
        lines.append(f'| {e["exit"]} | {_f(e["miou"])} | {_f(e["pixel_accuracy"])} | '
                     f'{_f(e.get("latency_ms"), 2)} | {_f(e.get("gflops"), 2)} |')
    lines += ['', '## IoU per class', '', '| class | ' + ' | '.join(
        f'exit {e["exit"]}' for e in exits) + ' |', '|---|' + '---:|' * len(exits)]
    for name in names:
        lines.append(f'| {name} | ' + ' | '.join(_f(e['iou'][name]) for e in exits) + ' |')
    written.append(_atomic(out / 'metrics.md', '\n'.join(lines) + '\n'))
    if exits and all(e.get('latency_ms') is not None for e in exits):
        written.append(_plot(out / 'accuracy_vs_latency.png', exits, title))
    return written


def _f(v, digits=4):
    return '-' if v is None else f'{v:.{digits}f}'


def _atomic(path: Path, text: str) -> Path:
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(text)
    tmp.replace(path)
    return path


def _plot(path: Path, exits: list, title: str) -> Path:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    xs = [e['latency_ms'] for e in exits]
    ys = [e['miou'] if e['miou'] is not None else float('nan') for e in exits]
    ax.plot(xs, ys, 'o-')
    for e, x, y in zip(exits, xs, ys):
        ax.annotate(f'exit {e["exit"]}', (x, y), textcoords='offset points', xytext=(4, 4))
    ax.set_xlabel('network latency per frame (ms)')
    ax.set_ylabel('mIoU')
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(path.stem + '.tmp.png')
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path
