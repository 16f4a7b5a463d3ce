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
"""Argument helpers shared by the subcommands."""

import os
from pathlib import Path
import tempfile

from ..errors import ConfigError

__all__ = ['add_engine_arguments', 'add_model_arguments', 'apply_threads', 'check_output_file',
           'check_output_folder', 'load_model', 'parse_size']

MAX_SIDE = 8192  # pixels, as the pipeline's input and output sizes


def parse_size(text: str) -> tuple:
    """Parse ``HxW`` (e.g. ``360x480``) into (H, W)."""
    try:
        h, w = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise ConfigError(f'size must look like HEIGHTxWIDTH (e.g. 360x480), got {text!r}')
    if h < 8 or w < 8:
        raise ConfigError(f'size must be at least 8x8, got {text!r}')
    if h > MAX_SIDE or w > MAX_SIDE:
        raise ConfigError(f'size must be at most {MAX_SIDE}x{MAX_SIDE}, got {text!r}')
    return h, w


def check_output_folder(path, option: str = '--out') -> Path:
    """Check before any work that the output folder ``path`` can be created or written.

    Raises:
        ConfigError: ``path`` or one of its parents is a file, or the nearest existing
            folder is not writable.
    """
    path = Path(path)
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        where = '' if existing == path else f': {existing}'
        raise ConfigError(f'{option} {path}{where} is not a folder')
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f'{option} {path}: {existing} is not writable')
    try:  # os.access says yes to root everywhere: try it (and leave nothing behind)
        os.rmdir(tempfile.mkdtemp(prefix='.multiexit_check_', dir=existing))
    except OSError as err:
        raise ConfigError(f'{option} {path}: cannot write in {existing} '
                          f'({err.strerror or err})') from None
    return path


def check_output_file(path, option: str = '--output') -> Path:
    """Check before any work that the output file ``path`` can be written.

    Raises:
        ConfigError: ``path`` is a folder, or its folder cannot be created or written.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f'{option} {path} is a folder; give a file name')
    check_output_folder(path.parent, option)
    return path


def add_model_arguments(parser, preset_default=None):
    """Add ``--model`` / ``--preset`` and ``--device``."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--model', help='checkpoint file (.safetensors); default: the shipped '
                                       'model')
    group.add_argument('--preset', default=preset_default,
                       help='build an untrained network from a preset (tiny, small, lite0, base, '
                            'large) instead of loading a checkpoint')
    parser.add_argument('--device', default='cpu', help='torch device (cpu, cuda, cuda:1)')


def load_model(args) -> tuple:
    """Return (model, meta or None) from ``--model`` or ``--preset``, on ``--device``."""
    import torch

    from .. import default_model_path
    from ..model import load_checkpoint, MultiExitSegNet, preset
    from ..runtime.device import resolve_device

    device = resolve_device(args.device)
    if getattr(args, 'preset', None):
        torch.manual_seed(0)
        return MultiExitSegNet(preset(args.preset)).to(device).eval(), None
    return load_checkpoint(args.model or default_model_path(), device)


def add_engine_arguments(parser):
    """Add ``--backend`` and ``--threads`` (the pipeline's engine.backend / engine.threads)."""
    parser.add_argument('--backend', default='auto', choices=['auto', 'torch', 'onnxruntime'],
                        help='network runtime (default auto: onnxruntime on the CPU when '
                             'installed, else torch)')
    parser.add_argument('--threads', type=int, default=1,
                        help='intra-op CPU threads of torch and ONNX Runtime (default 1; 0: '
                             "the libraries' default)")


def apply_threads(threads: int):
    """Check ``--threads`` and set torch's intra-op threads (0 leaves the default)."""
    if threads < 0:
        raise ConfigError(f'--threads must be at least 0, got {threads}')
    if threads:
        import torch
        torch.set_num_threads(threads)
