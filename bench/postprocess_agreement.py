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
"""Masks of the CPU fast paths against the reference, on CamVid val (shipped model).

Usage: PYTHONPATH=. python bench/postprocess_agreement.py [--data ../shared/data/camvid]
       [--limit N]

Per exit, on every val frame at its own size (360x480) and upscaled to 720x1280:
- fused: the engine's fused upsampling + argmax (the default) against ``F.interpolate``
  + argmax on the same logits: pixels that differ;
- resize_uint8 (an option, off by default): the 720x1280 frame resized as uint8 before
  normalization against the float resize: pixels that differ, and the mIoU of both
  against the val labels (masks at the label size, 360x480).
"""

import argparse
from pathlib import Path
import time

import numpy as np
import torch

from multiexit_ros import default_model_path
from multiexit_ros.machine import machine_info, write_results
from multiexit_ros.runtime import Engine
from multiexit_ros.runtime.postprocess import reference_mask


def _frames(root, limit):
    import cv2

    root = Path(root)
    names = sorted((root / 'val').glob('*.png'))[:limit or None]
    for path in names:
        image = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        label = cv2.imread(str(root / 'valannot' / path.name), cv2.IMREAD_GRAYSCALE)
        yield path.name, image, label


def _miou(conf):
    inter = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - np.diag(conf)
    present = union > 0
    return float((inter[present] / union[present]).mean())


def main():
    import cv2

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', default='')
    parser.add_argument('--data', default='../shared/data/camvid')
    parser.add_argument('--limit', type=int, default=0, help='first N val frames; 0: all')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--out', default=str(Path(__file__).parent / 'results'))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = args.model or default_model_path()
    exact = Engine.from_checkpoint(model, channels_last=True)
    fast = Engine.from_checkpoint(model, channels_last=True, resize_uint8=True)
    n, k_classes = exact.num_exits, exact.labels.num_classes
    fused_diff = {s: [0] * n for s in ('360x480', '720x1280')}
    pixels = dict.fromkeys(fused_diff, 0)
    u8_diff, u8_pixels = [0] * n, 0
    conf = {name: [np.zeros((k_classes, k_classes), np.int64) for _ in range(n)]
            for name in ('float_resize', 'resize_uint8')}
    frames = 0
    with torch.inference_mode():
        for _, image, label in _frames(args.data, args.limit):
            frames += 1
            big = cv2.resize(image, (1280, 720), interpolation=cv2.INTER_LINEAR)
            for key, img in (('360x480', image), ('720x1280', big)):
                size = img.shape[:2]
                run = exact.model.begin(exact._preprocess_cpu(img, exact.input_size))
                pixels[key] += size[0] * size[1]
                for k in range(n):
                    logits = exact.model.advance(run, k, False)
                    ref = reference_mask(logits, size).numpy()
                    fused_diff[key][k] += int((exact._postprocess(logits, size) != ref).sum())
            valid = label < k_classes
            u8_pixels += int(valid.sum())
            masks = {}
            for name, engine in (('float_resize', exact), ('resize_uint8', fast)):
                run = engine.begin(big, out_size=label.shape)
                masks[name] = [engine.advance(run, k) for k in range(n)]
            for k in range(n):
                for name in conf:
                    conf[name][k] += np.bincount(
                        label[valid].astype(np.int64) * k_classes + masks[name][k][valid],
                        minlength=k_classes * k_classes).reshape(k_classes, k_classes)
                u8_diff[k] += int((masks['resize_uint8'][k][valid]
                                   != masks['float_resize'][k][valid]).sum())
    results = {'benchmark': 'postprocess_agreement', 'model': str(model),
               'frames': frames, 'machine': machine_info(),
               'date': time.strftime('%Y-%m-%d %H:%M:%S'),
               'fused_vs_reference_differing_pixels': fused_diff, 'pixels': pixels,
               'resize_uint8_differing_pixels': u8_diff, 'label_pixels': u8_pixels,
               'miou': {name: [_miou(c) for c in conf[name]] for name in conf}}
    lines = ['# CPU fast paths against the reference masks (CamVid val, shipped model)', '',
             f'Machine: {results["machine"]}', '', f'Date: {results["date"]}', '',
             f'{frames} val frames; each at 360x480 and upscaled (bilinear) to 720x1280.', '',
             '## Fused upsampling + argmax (default) vs F.interpolate + argmax', '',
             '| exit | differing pixels 360x480 | differing pixels 720x1280 |',
             '|---:|---:|---:|']
    lines += [f'| {k} | {fused_diff["360x480"][k]} of {pixels["360x480"]} | '
              f'{fused_diff["720x1280"][k]} of {pixels["720x1280"]} |' for k in range(n)]
    lines += ['', '## resize_uint8 (option) vs the float resize, 720x1280 frames, masks '
              'at 360x480', '',
              '| exit | differing labelled pixels | mIoU float resize | mIoU resize_uint8 |',
              '|---:|---:|---:|---:|']
    lines += [f'| {k} | {u8_diff[k]} of {u8_pixels} ({100 * u8_diff[k] / u8_pixels:.3f}%) | '
              f'{results["miou"]["float_resize"][k]:.4f} | '
              f'{results["miou"]["resize_uint8"][k]:.4f} |' for k in range(n)]
    path = write_results(args.out, 'postprocess_agreement_cpu', results, '\n'.join(lines))
    print('\n'.join(lines[8:]))
    print(f'wrote {path} and .md')


if __name__ == '__main__':
    main()
