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
"""Device, precision, image validation and model identity helpers of the engine."""

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, ImageError
from ..labels import CAMVID, CITYSCAPES, LabelSet

__all__ = ['as_image', 'checkpoint_identity', 'default_labels', 'model_identity',
           'PRECISIONS', 'resolve_device']

_log = logging.getLogger(__name__)
PRECISIONS = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}


def resolve_device(name: str, allow_cpu_fallback: bool = False) -> torch.device:
    """Turn a device name into a usable :class:`torch.device`.

    ``auto`` is CUDA where it is available, else the CPU.

    Raises:
        ConfigError: Unknown name, or CUDA requested where there is none (unless
            ``allow_cpu_fallback``, which then gives the CPU with a warning).
    """
    if name == 'auto':
        name = 'cuda' if torch.cuda.is_available() else 'cpu'
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f'unknown device {name!r} (use auto, cuda, cuda:N or cpu)') from err
    if device.type == 'cpu':
        return device
    if device.type != 'cuda':
        raise ConfigError(f'device {name!r} is not supported (use cuda, cuda:N or cpu)')
    if not torch.cuda.is_available():
        if allow_cpu_fallback:
            _log.warning('device %s requested but CUDA is not available: running on the CPU '
                         '(allow_cpu_fallback is set)', name)
            return torch.device('cpu')
        raise ConfigError(f'device {name!r} requested but CUDA is not available here; use '
                          f'the cpu device (or, for the node and replay, allow_cpu_fallback)')
    index = 0 if device.index is None else device.index
    if index >= torch.cuda.device_count():
        raise ConfigError(f'device {name!r} requested but only {torch.cuda.device_count()} '
                          f'CUDA device(s) exist')
    return torch.device('cuda', index)


def as_image(image, channels: int = 3) -> np.ndarray:
    """Validate a camera image and return it as contiguous (H, W, C) uint8, C 1 or 3.

    Args:
        image: (H, W, 3) RGB or (H, W) / (H, W, 1) mono, uint8.
        channels: Input channels of the model (3: mono images are replicated later).

    Raises:
        ImageError: Not an array, not uint8, or a shape that is not an image.
    """
    if not isinstance(image, np.ndarray):
        raise ImageError(f'image must be a numpy array, got {type(image).__name__}')
    if image.dtype != np.uint8:
        raise ImageError(f'image must be uint8, got {image.dtype}')
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3):
        raise ImageError(f'image must be HxWx3 RGB or HxW mono, got shape {image.shape}')
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ImageError(f'image is empty (shape {image.shape})')
    if channels == 1 and image.shape[2] != 1:
        raise ImageError(f'the model expects mono images, got shape {image.shape}')
    return np.ascontiguousarray(image)


def default_labels(num_classes: int) -> LabelSet:
    """Label set for a model without metadata: CamVid or Cityscapes by class count."""
    for labels in (CAMVID, CITYSCAPES):
        if labels.num_classes == num_classes:
            return labels
    rng = np.random.default_rng(num_classes)
    palette = tuple(tuple(int(v) for v in c) for c in rng.integers(0, 256, (num_classes, 3)))
    return LabelSet(name=f'classes{num_classes}',
                    classes=tuple(f'class_{i}' for i in range(num_classes)),
                    palette=palette, ignore_index=255)


def model_identity(model, name: str = 'model object') -> dict:
    """Identify a model by name and a hash of its architecture."""
    arch = json.dumps(model.config.to_dict(), sort_keys=True).encode()
    return {'name': name, 'architecture_sha256': hashlib.sha256(arch).hexdigest()}


def checkpoint_identity(path, model) -> dict:
    """Identify a checkpoint: file name, tensor hash from its metadata, architecture hash."""
    from safetensors import safe_open

    ident = model_identity(model, Path(path).name)
    try:
        with safe_open(str(path), 'pt') as f:
            doc = json.loads((f.metadata() or {}).get('multiexit_ros', '{}'))
        ident['tensors_sha256'] = doc.get('tensors_sha256')
    except Exception as err:  # noqa: B902 (the checkpoint loaded; identity is best effort)
        _log.debug('no tensor hash for %s: %s', path, err)
    return ident
