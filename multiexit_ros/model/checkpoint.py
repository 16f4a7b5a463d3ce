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
"""Checkpoints: one safetensors file that rebuilds the model from itself alone.

The file holds the weights as safetensors (no pickle, so loading an untrusted file
cannot run code) and, in the safetensors header's metadata under the key
``multiexit_ros``, a JSON document with the architecture, labels, input
normalization, training strategy, validation metrics and a SHA-256 of the tensor
bytes. Loading checks every part and raises :class:`CheckpointError` with a one-line
message on a missing, truncated, corrupt or mismatched file.
"""

from dataclasses import dataclass, field
import hashlib
import json
import os
from pathlib import Path
import struct

import safetensors.torch
import torch

from .config import ModelConfig
from .network import MultiExitSegNet
from ..errors import CheckpointError, MultiExitError
from ..labels import LabelSet

__all__ = ['CheckpointMeta', 'FORMAT', 'input_normalization', 'VERSION', 'load_checkpoint',
           'read_meta', 'save_checkpoint']

FORMAT = 'multiexit_ros/checkpoint'
VERSION = 1
_KEY = 'multiexit_ros'
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# EfficientNet-Lite's ImageNet weights expect pixels mapped to about [-1, 1]
# ((v - 127) / 128 in 8-bit values): checked against the stem's batch-norm statistics.
LITE_MEAN = (127 / 255,) * 3
LITE_STD = (128 / 255,) * 3


def input_normalization(config) -> tuple:
    """(mean, std) a network of ``config`` is trained with (its trunk's convention)."""
    if config.trunk == 'efficientnet_lite0':
        return LITE_MEAN, LITE_STD
    return IMAGENET_MEAN, IMAGENET_STD


@dataclass
class CheckpointMeta:
    """Everything in a checkpoint besides the weights.

    Attributes:
        model: Architecture that the weights belong to.
        labels: Class names, palette and ignore label.
        mean: Per-channel mean of RGB scaled to [0, 1], subtracted before the network.
        std: Per-channel standard deviation, divided after the mean.
        input_size: (H, W) the model was trained at, or None.
        training: Training strategy and settings (free-form, JSON-ready).
        metrics: Validation metrics, e.g. ``{'miou': [per exit], ...}`` (JSON-ready).
    """

    model: ModelConfig
    labels: LabelSet
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    input_size: tuple = None
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready dictionary (without the tensor hash, added when saving)."""
        return {
            'format': FORMAT,
            'version': VERSION,
            'model': self.model.to_dict(),
            'labels': {'name': self.labels.name, 'classes': list(self.labels.classes),
                       'palette': [list(c) for c in self.labels.palette],
                       'ignore_index': self.labels.ignore_index},
            'normalization': {'mean': list(self.mean), 'std': list(self.std),
                              'input_scale': 'rgb / 255'},
            'input_size': list(self.input_size) if self.input_size else None,
            'training': self.training,
            'metrics': self.metrics,
        }

    @classmethod
    def from_dict(cls, data: dict) -> 'CheckpointMeta':
        """Validate and build from :meth:`to_dict` output.

        Raises:
            CheckpointError: A field is missing or invalid.
        """
        try:
            if data.get('format') != FORMAT:
                raise CheckpointError(f'format is {data.get("format")!r}, not {FORMAT!r}')
            if data.get('version') != VERSION:
                raise CheckpointError(f'format version {data.get("version")!r} is not '
                                      f'supported (this package reads {VERSION})')
            model = ModelConfig.from_dict(data['model'])
            lab = data['labels']
            labels = LabelSet(name=str(lab['name']), classes=tuple(lab['classes']),
                              palette=tuple(tuple(int(v) for v in c) for c in lab['palette']),
                              ignore_index=int(lab['ignore_index']))
            if labels.num_classes != model.num_classes:
                raise CheckpointError(f'{labels.num_classes} class names for a model of '
                                      f'{model.num_classes} classes')
            if any(len(c) != 3 or not all(0 <= v <= 255 for v in c) for c in labels.palette):
                raise CheckpointError('palette colours must be three values in 0..255')
            norm = data['normalization']
            mean, std = tuple(float(v) for v in norm['mean']), tuple(float(v) for v in norm['std'])
            if len(mean) != model.in_channels or len(std) != model.in_channels:
                raise CheckpointError('normalization needs one mean and std per input channel')
            if min(std) <= 0:
                raise CheckpointError(f'normalization std must be positive, got {std}')
            size = data.get('input_size')
            return cls(model=model, labels=labels, mean=mean, std=std,
                       input_size=tuple(int(v) for v in size) if size else None,
                       training=dict(data.get('training') or {}),
                       metrics=dict(data.get('metrics') or {}))
        except CheckpointError:
            raise
        except MultiExitError as err:
            raise CheckpointError(str(err)) from err
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise CheckpointError(f'invalid metadata ({type(err).__name__}: {err})') from err


def save_checkpoint(path, model: MultiExitSegNet, meta: CheckpointMeta) -> Path:
    """Write ``model`` and ``meta`` to ``path`` atomically.

    The file is written beside the target and renamed over it, so an interrupted save
    never leaves a half-written checkpoint where a good one was.

    Returns:
        The path written.
    """
    path = Path(path)
    if meta.model != model.config:
        raise CheckpointError('metadata model config differs from the model being saved')
    tensors = {k: v.detach().to('cpu', torch.float32 if v.is_floating_point() else v.dtype)
               .contiguous() for k, v in model.state_dict().items()}
    doc = meta.to_dict()
    # The tensor byte layout does not depend on the metadata, so hash a first
    # serialization's data section and store that hash in the final one.
    first = safetensors.torch.save(tensors, metadata={_KEY: json.dumps(doc)})
    doc['tensors_sha256'] = hashlib.sha256(_split(first, path)[1]).hexdigest()
    blob = safetensors.torch.save(tensors, metadata={_KEY: json.dumps(doc)})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_bytes(blob)
    os.replace(tmp, path)
    return path


def _split(blob: bytes, path) -> tuple:
    """Split a safetensors file into (header dict, data section bytes)."""
    text = blob[:1] in (b'{', b'[', b'"') or blob[:1].isspace()
    if text and (len(blob) < 8 or 8 + struct.unpack('<Q', blob[:8])[0] > len(blob)):
        # A safetensors file starts with the header's 8-byte length, not with JSON text.
        raise CheckpointError(f'{path}: not a checkpoint (a JSON or text file, not a '
                              'safetensors file)')
    if len(blob) < 8:
        raise CheckpointError(f'{path}: truncated checkpoint ({len(blob)} bytes)')
    (n,) = struct.unpack('<Q', blob[:8])
    if len(blob) > 8 and blob[8:9] != b'{':  # a safetensors header is a JSON object
        raise CheckpointError(f'{path}: not a checkpoint (not a safetensors file)')
    if 8 + n > len(blob):
        raise CheckpointError(f'{path}: truncated checkpoint (header says {n} bytes, '
                              f'file has {len(blob) - 8})')
    try:
        header = json.loads(blob[8:8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f'{path}: corrupt checkpoint header ({err})') from err
    if not isinstance(header, dict):
        raise CheckpointError(f'{path}: corrupt checkpoint header (not a mapping)')
    return header, blob[8 + n:]


def _data_size(header: dict):
    """Bytes of tensor data the header describes, or None when it does not say."""
    try:
        return max((int(v['data_offsets'][1]) for k, v in header.items()
                    if k != '__metadata__'), default=0)
    except (TypeError, KeyError, IndexError, ValueError):
        return None


def _read(path) -> tuple:
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f'{path} is a folder, not a checkpoint file')
    if not path.is_file():
        raise CheckpointError(f'checkpoint not found: {path}')
    try:
        blob = path.read_bytes()
    except OSError as err:
        raise CheckpointError(f'cannot read checkpoint {path}: {err.strerror}') from err
    header, data = _split(blob, path)
    raw = (header.get('__metadata__') or {}).get(_KEY)
    if raw is None:
        raise CheckpointError(f'{path}: not a multiexit_ros checkpoint (no {_KEY!r} metadata)')
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as err:
        raise CheckpointError(f'{path}: corrupt checkpoint metadata ({err})') from err
    if not isinstance(doc, dict):
        raise CheckpointError(f'{path}: corrupt checkpoint metadata (not a mapping)')
    return path, blob, header, doc, data


def read_meta(path) -> CheckpointMeta:
    """Read and validate a checkpoint's metadata without building the model."""
    path, _, _, doc, _ = _read(path)
    try:
        return CheckpointMeta.from_dict(doc)
    except CheckpointError as err:
        raise CheckpointError(f'{path}: {err}') from err


def load_checkpoint(path, device='cpu') -> tuple:
    """Rebuild the model saved at ``path``.

    Args:
        path: Checkpoint file.
        device: Where to put the model.

    Returns:
        (model in eval mode, :class:`CheckpointMeta`).

    Raises:
        CheckpointError: Missing, truncated, corrupt or mismatched file.
    """
    path, blob, header, doc, data = _read(path)
    try:
        meta = CheckpointMeta.from_dict(doc)
    except CheckpointError as err:
        raise CheckpointError(f'{path}: {err}') from err
    expected = doc.get('tensors_sha256')
    needed = _data_size(header)
    if needed is not None and len(data) < needed:
        raise CheckpointError(f'{path}: truncated checkpoint (tensor data has {len(data)} of '
                              f'{needed} bytes)')
    if hashlib.sha256(data).hexdigest() != expected:
        raise CheckpointError(f'{path}: corrupt checkpoint (tensor data does not match its '
                              f'SHA-256)')
    try:
        tensors = safetensors.torch.load(blob)
    except Exception as err:  # noqa: B902 (safetensors raises its own untyped errors)
        raise CheckpointError(f'{path}: corrupt checkpoint ({err})') from err
    model = MultiExitSegNet(meta.model)
    want = model.state_dict()
    missing = sorted(set(want) - set(tensors))
    extra = sorted(set(tensors) - set(want))
    if missing or extra:
        raise CheckpointError(
            f'{path}: weights do not match the architecture in its metadata '
            f'({len(missing)} missing, e.g. {missing[:2]}; {len(extra)} unexpected, '
            f'e.g. {extra[:2]})')
    for name, ref in want.items():
        got = tensors[name]
        if got.shape != ref.shape or got.dtype != ref.dtype:
            raise CheckpointError(
                f'{path}: tensor {name} is {tuple(got.shape)} {got.dtype}, the architecture '
                f'needs {tuple(ref.shape)} {ref.dtype}')
    model.load_state_dict(tensors)
    return model.to(device).eval(), meta
