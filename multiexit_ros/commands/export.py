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
"""Export a model to ONNX: one graph per block and per exit head, and a manifest.

The graphs keep incremental execution (block k's features feed block k+1 and head k;
each head returns logits at its own resolution). After writing, every exit is run
with ONNX Runtime against PyTorch on real images (CamVid val frames from the
reference data when present, else generated scenes): the export fails unless the
masks agree on at least 99.9% of the pixels. Needs the onnx extra
(``pip install -e '.[onnx]'``).
"""

import json
from pathlib import Path

from .common import check_output_folder, parse_size
from .. import share_dir
from ..errors import ConfigError

REFERENCE_FRAMES = Path('shared') / 'data' / 'camvid' / 'val'


def add_arguments(parser):
    """Add this command's arguments."""
    parser.add_argument('model', nargs='?', default=None,
                        help='checkpoint (.safetensors); default: the shipped model')
    parser.add_argument('--format', default='onnx', choices=['onnx'], help='only onnx')
    parser.add_argument('--out', required=True, help='folder to write the graphs into')
    parser.add_argument('--size', default=None,
                        help="network input HxW (default: the checkpoint's training size, "
                             'else 352x480)')
    parser.add_argument('--opset', type=int, default=None, help='ONNX opset (default 17)')
    parser.add_argument('--check-images', default=None,
                        help='folder of RGB frames to check the export on (default: '
                             '../shared/data/camvid/val beside the repository when '
                             'present, else generated scenes)')
    parser.add_argument('--check-count', type=int, default=4,
                        help='images to check every exit on (default 4)')
    parser.add_argument('--json', action='store_true', help='print the result as JSON')


def _check_images(args, input_size) -> tuple:
    """Return (images or None for generated scenes, words saying which)."""
    from ..data.base import read_rgb

    folder = Path(args.check_images) if args.check_images else \
        share_dir().parent / REFERENCE_FRAMES
    if not folder.is_dir():
        if args.check_images:
            raise ConfigError(f'--check-images {folder} is not a folder')
        return None, f'{args.check_count} generated scenes'
    files = sorted(p for p in folder.iterdir()
                   if p.suffix.lower() in ('.png', '.jpg', '.jpeg'))[:args.check_count]
    if not files:
        raise ConfigError(f'--check-images {folder}: no .png or .jpg frames')
    return [read_rgb(p) for p in files], f'{len(files)} frames of {folder}'


def run(args) -> int:
    """Export, check and print."""
    from .. import default_model_path
    from ..model import load_checkpoint
    from ..runtime.device import checkpoint_identity
    from ..runtime.onnx_backend import (check_inputs, export_onnx, OPSET,
                                        require_onnxruntime, verify_export)

    if args.check_count < 1:
        raise ConfigError(f'--check-count must be at least 1, got {args.check_count}')
    opset = OPSET if args.opset is None else args.opset
    if not 13 <= opset <= 20:
        raise ConfigError(f'--opset must be in [13, 20], got {opset}')
    out = check_output_folder(args.out)
    require_onnxruntime()
    path = Path(args.model) if args.model else default_model_path()
    model, meta = load_checkpoint(path, 'cpu')
    size = parse_size(args.size) if args.size else tuple(meta.input_size or (352, 480))
    images, words = _check_images(args, size)
    manifest = export_onnx(model, out, size, mean=meta.mean, std=meta.std,
                           labels=meta.labels, identity=checkpoint_identity(path, model),
                           opset=opset)
    rows = verify_export(model, out, check_inputs(size, args.check_count, images,
                                                  meta.mean, meta.std))
    manifest['check'] = {'images': words, 'exits': rows}
    (out / 'manifest.json').write_text(json.dumps(manifest, indent=2) + '\n',
                                       encoding='utf-8')
    if args.json:
        print(json.dumps({'out': str(out), 'opset': opset, 'input_size': list(size),
                          'check': manifest['check']}, indent=2))
        return 0
    print(f'exported {path} to {out}: {2 * len(rows)} ONNX graphs (opset {opset}, input '
          f'{size[0]}x{size[1]}), checked on {words}')
    print(f'{"exit":>4} {"max |logit diff|":>17} {"mask agreement":>15}')
    for r in rows:
        print(f'{r["exit"]:>4} {r["max_abs_diff"]:>17.2e} {r["agreement"]:>15.4%}')
    return 0
