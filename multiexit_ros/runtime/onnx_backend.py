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
"""ONNX export of a multi-exit network and an ONNX Runtime backend for the engine.

The export keeps incremental execution: one graph per block (features in, features
out) and one per exit head (block features in, logits at the head's own resolution
out), all with static shapes for one input size, plus ``manifest.json`` (graph order,
input size, normalization, labels, opset, model identity). :class:`OrtNetwork` runs
such a folder behind the same ``begin`` / ``advance`` interface as
:class:`~multiexit_ros.model.MultiExitSegNet`, so the engine swaps one for the other.

Graphs are written by PyTorch's TorchScript-based exporter (``dynamo=False``), which
needs only the ``onnx`` extra (no onnxscript). The pyramid pooling of the last head
uses adaptive average pooling, which that exporter cannot write when the map is not a
multiple of the bins; at export it is replaced by the same averages written as two
constant matrix products (static shapes make them exact up to float rounding).

On CUDA the sessions use the TensorRT (when installed) and CUDA execution providers
with IO binding: the input is bound from the torch tensor's device memory, block
features stay on the device as ONNX Runtime values between graphs, and the logits
are written into a torch tensor on the device.
"""

import copy
from dataclasses import dataclass
import hashlib
import json
import logging
import os
from pathlib import Path
import shutil
import tempfile
from typing import Optional, Sequence
import warnings

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from ..errors import ConfigError, MultiExitError

__all__ = ['ExportError', 'MANIFEST', 'OPSET', 'OrtBackend', 'OrtModule', 'OrtNetwork',
           'cache_root', 'check_inputs', 'export_onnx', 'read_manifest', 'require_onnxruntime',
           'verify_export']

_log = logging.getLogger(__name__)

MANIFEST = 'manifest.json'
FORMAT = 'multiexit_ros/onnx'
VERSION = 1
OPSET = 17
INSTALL = "pip install -e '.[onnx]' -c requirements/constraints.txt"
MIN_AGREEMENT = 0.999


class ExportError(MultiExitError):
    """An exported graph disagrees with PyTorch, or the export cannot be written."""


def require_onnxruntime():
    """Return the ``onnxruntime`` module.

    Raises:
        ConfigError: It is not installed (one line saying how to install the extra).
    """
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(f'engine backend onnxruntime needs the onnx extra: {INSTALL}') \
            from None
    return onnxruntime


class _StaticPyramidPooling(nn.Module):
    """A PyramidPooling whose adaptive averages are constant matrix products.

    Same weights and same arithmetic as the module it wraps, for one fixed map size.
    """

    def __init__(self, context: nn.Module, size: Sequence[int]):
        super().__init__()
        self.branches = context.branches
        self.fuse = context.fuse
        self.bins = context.bins
        self.size = tuple(int(v) for v in size)
        for b in self.bins:
            self.register_buffer(f'rows{b}', _pool_matrix(self.size[0], b))
            self.register_buffer(f'cols{b}', _pool_matrix(self.size[1], b).t().contiguous())

    def forward(self, x):
        pooled = []
        for b, conv in zip(self.bins, self.branches):
            p = getattr(self, f'rows{b}') @ (x @ getattr(self, f'cols{b}'))
            pooled.append(F.interpolate(F.relu(conv(p)), size=self.size, mode='bilinear',
                                        align_corners=False))
        return self.fuse(torch.cat([x] + pooled, dim=1))


def _pool_matrix(n: int, bins: int) -> torch.Tensor:
    """(bins, n) averaging matrix of adaptive average pooling along one axis."""
    m = torch.zeros(bins, n)
    for i in range(bins):
        lo, hi = (i * n) // bins, -((-(i + 1) * n) // bins)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


class _HeadGraph(nn.Module):
    """An exit head returning logits at its own resolution (what one head graph holds)."""

    def __init__(self, head: nn.Module, feature_size: Sequence[int]):
        super().__init__()
        head = copy.deepcopy(head)
        if hasattr(head.context, 'bins'):
            size = (feature_size[0], feature_size[1])
            for _ in head.down:  # each stride-2 3x3 convolution: ceil(n / 2)
                size = ((size[0] + 1) // 2, (size[1] + 1) // 2)
            head.context = _StaticPyramidPooling(head.context, size)
        self.head = head

    def forward(self, x):
        return self.head(x, None)


def _export_graph(module: nn.Module, x: torch.Tensor, path: Path, opset: int):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the exporter's deprecation notices
        torch.onnx.export(module, (x,), str(path), dynamo=False, opset_version=opset,
                          input_names=['features'], output_names=['out'],
                          do_constant_folding=True)


def export_onnx(model, out_dir, input_size: Sequence[int], *, mean, std, labels,
                identity: Optional[dict] = None, opset: int = OPSET) -> dict:
    """Write one ONNX graph per block and per exit head, and the manifest, to ``out_dir``.

    Args:
        model: A :class:`~multiexit_ros.model.MultiExitSegNet` (not modified).
        out_dir: Folder to write (created; files of an earlier export are replaced).
        input_size: Network input (H, W) the graphs are fixed to.
        mean: Normalization mean (RGB in [0, 1]), recorded in the manifest.
        std: Normalization standard deviation, recorded in the manifest.
        labels: The :class:`~multiexit_ros.labels.LabelSet`, recorded in the manifest.
        identity: Model identity (name, hashes) recorded in the manifest.
        opset: ONNX opset.

    Returns:
        The manifest.

    Raises:
        ExportError: PyTorch cannot export a graph.
    """
    import importlib.util
    if importlib.util.find_spec('onnx') is None:  # torch.onnx writes through it
        raise ConfigError(f'ONNX export needs the onnx package of the onnx extra: {INSTALL}')
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    net = copy.deepcopy(model).float().cpu().eval()
    h, w = (int(v) for v in input_size)
    graphs = []
    with torch.inference_mode(False), torch.no_grad():
        x = torch.zeros(1, net.config.in_channels, h, w)
        for k, (block, head) in enumerate(zip(net.blocks, net.heads)):
            feature = block(x)
            head_graph = _HeadGraph(head, feature.shape[-2:]).eval()
            logits = head_graph(feature)
            names = (f'block_{k}.onnx', f'head_{k}.onnx')
            try:
                _export_graph(block, x, out / names[0], opset)
                _export_graph(head_graph, feature, out / names[1], opset)
            except Exception as err:  # noqa: B902 - the exporter raises many kinds
                msg = str(err).strip().splitlines()[0] if str(err).strip() else ''
                raise ExportError(f'exit {k}: torch.onnx cannot export it '
                                  f'({type(err).__name__}: {msg})') from None
            graphs.append({'exit': k, 'block': names[0], 'head': names[1],
                           'input_shape': list(x.shape),
                           'feature_shape': list(feature.shape),
                           'logits_shape': list(logits.shape)})
            x = feature
    manifest = {
        'format': FORMAT, 'version': VERSION, 'opset': int(opset),
        'exporter': f'torch.onnx (TorchScript, dynamo=False), torch {torch.__version__}',
        'input_size': [h, w], 'in_channels': net.config.in_channels,
        'num_exits': net.num_exits, 'num_classes': net.config.num_classes,
        'input': 'rgb / 255, minus mean, divided by std, NCHW float32',
        'normalization': {'mean': [float(v) for v in mean], 'std': [float(v) for v in std]},
        'labels': {'name': labels.name, 'classes': list(labels.classes),
                   'palette': [list(c) for c in labels.palette],
                   'ignore_index': labels.ignore_index},
        'model': dict(identity or {}),
        'graph_io': {'input': 'features', 'output': 'out'},
        'graphs': graphs,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + '\n', encoding='utf-8')
    return manifest


def read_manifest(folder) -> dict:
    """Read and check an export folder's manifest.

    Raises:
        ConfigError: The folder or manifest is missing, not JSON, or incomplete.
    """
    folder = Path(folder)
    path = folder / MANIFEST
    if not folder.is_dir():
        raise ConfigError(f'ONNX export folder {folder} does not exist')
    try:
        data = json.loads(path.read_text(encoding='utf-8'))
    except FileNotFoundError:
        raise ConfigError(f'{folder} is not an ONNX export of multiexit (no {MANIFEST}; '
                          'write one with multiexit export)') from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ConfigError(f'{path}: unreadable manifest ({err})') from None
    try:
        if data['format'] != FORMAT or data['version'] != VERSION:
            raise ConfigError(f'{path}: format {data["format"]!r} version {data["version"]}, '
                              f'expected {FORMAT!r} version {VERSION}')
        graphs = data['graphs']
        if len(graphs) != int(data['num_exits']) or not graphs:
            raise ConfigError(f'{path}: {len(graphs)} graphs for {data["num_exits"]} exits')
        for k, g in enumerate(graphs):
            if g['exit'] != k:
                raise ConfigError(f'{path}: graph {k} is listed as exit {g["exit"]}')
            for key in ('block', 'head'):
                if not (folder / g[key]).is_file():
                    raise ConfigError(f'{path}: graph file {g[key]} is missing')
        tuple(int(v) for v in data['input_size'])
        data['normalization']['mean'], data['normalization']['std'], data['opset']
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ConfigError(f'{path}: incomplete manifest ({type(err).__name__}: {err})') \
            from None
    return data


def _providers(ort, device: torch.device, tensorrt: bool = True) -> list:
    if device.type != 'cuda':
        return ['CPUExecutionProvider']
    available = ort.get_available_providers()
    opts = {'device_id': device.index or 0}
    wanted = []
    if tensorrt and 'TensorrtExecutionProvider' in available:
        wanted.append(('TensorrtExecutionProvider', dict(opts)))
    if 'CUDAExecutionProvider' not in available:
        raise ConfigError(f'engine backend onnxruntime on {device}: this onnxruntime has no '
                          f'CUDA execution provider (has {available}); install '
                          'onnxruntime-gpu of the same version')
    wanted.append(('CUDAExecutionProvider', dict(opts)))
    wanted.append('CPUExecutionProvider')
    return wanted


@dataclass
class OrtRun:
    """State of an incremental pass: last block output, blocks run, output size."""

    feature: object
    depth: int
    size: tuple


class OrtNetwork:
    """Runs an export folder with ONNX Runtime like ``MultiExitSegNet.begin/advance``.

    Args:
        folder: What :func:`export_onnx` wrote.
        threads: Intra-op threads (0: ONNX Runtime's default).
        device: ``cpu`` or a CUDA device (CUDA / TensorRT providers, IO binding).

    Raises:
        ConfigError: The folder, its manifest or a graph is missing or corrupt, or the
            runtime is not installed.
    """

    def __init__(self, folder, threads: int = 1, device='cpu', tensorrt: bool = True):
        ort = require_onnxruntime()
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        self.device = torch.device(device)
        self.input_size = tuple(int(v) for v in self.manifest['input_size'])
        self.num_exits = int(self.manifest['num_exits'])
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = _providers(ort, self.device, tensorrt)
        self.blocks, self.heads = [], []
        for g in self.manifest['graphs']:
            for key, dest in (('block', self.blocks), ('head', self.heads)):
                path = self.folder / g[key]
                try:
                    dest.append(ort.InferenceSession(str(path), options, providers=providers))
                except Exception as err:  # noqa: B902 - onnxruntime's own exception types
                    first = (str(err).strip().splitlines() or [''])[0]
                    raise ConfigError(f'{path}: ONNX Runtime cannot load it '
                                      f'({type(err).__name__}: {first[:200]})') from None
        self.providers = self.blocks[0].get_providers()

    def begin(self, x: torch.Tensor) -> OrtRun:
        """Start a pass on a normalized (1, C, H, W) float32 input of the export's size."""
        if tuple(x.shape[-2:]) != self.input_size or x.shape[0] != 1:
            raise ConfigError(f'the ONNX export in {self.folder} takes 1x'
                              f'{self.input_size[0]}x{self.input_size[1]} inputs, got '
                              f'{tuple(x.shape)}')
        x = x.float().contiguous()
        if self.device.type != 'cuda':
            x = x.cpu().numpy()
        return OrtRun(feature=x, depth=0, size=tuple(self.input_size))

    def advance(self, run: OrtRun, exit_index: int, size=None) -> torch.Tensor:
        """Run the missing blocks up to ``exit_index`` and its head; as the model's advance.

        ``size`` None gives logits at the input size, ``False`` at the head's resolution.
        """
        if not run.depth - 1 <= exit_index < self.num_exits:
            raise ValueError(f'exit {exit_index} is not reachable from depth {run.depth} '
                             f'(exits 0..{self.num_exits - 1})')
        cuda = self.device.type == 'cuda'
        for k in range(run.depth, exit_index + 1):
            if cuda:
                run.feature = self._bound(self.blocks[k], run.feature)
            else:
                run.feature = self.blocks[k].run(None, {'features': run.feature})[0]
        run.depth = exit_index + 1
        if cuda:
            shape = self.manifest['graphs'][exit_index]['logits_shape']
            logits = torch.empty(shape, dtype=torch.float32, device=self.device)
            self._bound(self.heads[exit_index], run.feature, logits)
        else:
            logits = torch.from_numpy(
                self.heads[exit_index].run(None, {'features': run.feature})[0])
        if size is None:
            size = run.size
        if size and tuple(logits.shape[-2:]) != tuple(size):
            logits = F.interpolate(logits, size=tuple(size), mode='bilinear',
                                   align_corners=False)
        return logits

    def _bound(self, session, feature, out: Optional[torch.Tensor] = None):
        """Run one graph with IO binding on the device; returns the output (device-resident)."""
        binding = session.io_binding()
        index = self.device.index or 0
        if isinstance(feature, torch.Tensor):
            # ONNX Runtime reads on its own stream: torch's writes must be done first.
            torch.cuda.current_stream(self.device).synchronize()
            binding.bind_input('features', 'cuda', index, np.float32, list(feature.shape),
                               feature.data_ptr())
        else:
            binding.bind_ortvalue_input('features', feature)
        if out is None:
            binding.bind_output('out', 'cuda', index)
        else:
            binding.bind_output('out', 'cuda', index, np.float32, list(out.shape),
                                out.data_ptr())
        session.run_with_iobinding(binding)
        binding.synchronize_outputs()  # before torch reads the logits
        return out if out is not None else binding.get_outputs()[0]


def cache_root() -> Path:
    """Folder of exports made on the fly: ``$MULTIEXIT_CACHE_DIR`` or ~/.cache/multiexit_ros."""
    root = os.environ.get('MULTIEXIT_CACHE_DIR')
    return Path(root) if root else Path.home() / '.cache' / 'multiexit_ros'


def _model_key(model, input_size, opset) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([model.config.to_dict(), list(input_size), opset,
                              torch.__version__, VERSION], sort_keys=True).encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:20]


class OrtBackend:
    """The engine's ONNX Runtime backend: exports the model on first use and runs it.

    One export per network input size, kept in :func:`cache_root` ``/onnx/<key>`` where
    the key hashes the architecture, the weights, the size, the opset and the torch
    version, so a later start reuses it. A fresh export is checked against PyTorch
    (:func:`verify_export`) before it is used.
    """

    def __init__(self, model, threads: int, device, labels, mean, std, identity):
        require_onnxruntime()
        self._model = copy.deepcopy(model).float().cpu().eval()
        self._threads, self._device = threads, torch.device(device)
        self._meta = {'labels': labels, 'mean': mean, 'std': std, 'identity': identity}
        self._nets = {}
        self.num_exits = model.num_exits

    def network(self, input_size) -> OrtNetwork:
        """Return the :class:`OrtNetwork` for ``input_size``, exported and checked if needed."""
        input_size = tuple(int(v) for v in input_size)
        net = self._nets.get(input_size)
        if net is None:
            folder = cache_root() / 'onnx' / _model_key(self._model, input_size, OPSET)
            if not (folder / MANIFEST).is_file():
                _log.debug('exporting the model to ONNX for %dx%d into %s', *input_size,
                           folder)
                try:
                    folder.parent.mkdir(parents=True, exist_ok=True)
                    tmp = Path(tempfile.mkdtemp(prefix='.export_', dir=folder.parent))
                except OSError as err:
                    raise ConfigError(f'cannot write the ONNX cache {folder.parent} '
                                      f'({err.strerror or err}); set MULTIEXIT_CACHE_DIR to '
                                      'a writable folder') from None
                try:
                    export_onnx(self._model, tmp, input_size, **self._meta)
                    verify_export(self._model, tmp, check_inputs(input_size, 1),
                                  threads=self._threads)
                    try:
                        tmp.rename(folder)
                    except OSError:  # another process exported it meanwhile
                        pass
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
            net = self._nets[input_size] = OrtNetwork(folder, self._threads, self._device)
        return net

    def begin(self, x: torch.Tensor):
        """Start a pass (see :meth:`OrtNetwork.begin`)."""
        net = self.network(x.shape[-2:])
        return net, net.begin(x)

    def advance(self, run, exit_index: int, size=None) -> torch.Tensor:
        """Continue a pass (see :meth:`OrtNetwork.advance`)."""
        net, state = run
        return net.advance(state, exit_index, size)


def check_inputs(input_size, count: int = 4, images=None, mean=None, std=None) -> list:
    """Return normalized (1, 3, H, W) inputs to check an export on (``images`` or scenes)."""
    from ..data.synthetic import render_scene
    from ..model.checkpoint import IMAGENET_MEAN, IMAGENET_STD

    mean = torch.tensor(mean or IMAGENET_MEAN).reshape(1, 3, 1, 1)
    std = torch.tensor(std or IMAGENET_STD).reshape(1, 3, 1, 1)
    if images is None:
        images = [render_scene(seed, *input_size)[0] for seed in range(count)]
    out = []
    for img in images:
        x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
        if tuple(x.shape[-2:]) != tuple(input_size):
            x = F.interpolate(x, size=tuple(input_size), mode='bilinear', align_corners=False)
        out.append((x / 255.0 - mean) / std)
    return out


def verify_export(model, folder, inputs: list, threads: int = 1,
                  min_agreement: float = MIN_AGREEMENT) -> list:
    """Compare every exported exit with PyTorch on ``inputs``.

    Masks are taken at the input size (logits upsampled bilinearly, then argmax), as
    the engine makes them.

    Returns:
        Per exit: ``{'exit', 'max_abs_diff', 'agreement'}`` (worst over the inputs).

    Raises:
        ExportError: An exit's masks agree on fewer than ``min_agreement`` of the pixels,
            or its logits are not finite.
    """
    net = OrtNetwork(folder, threads)
    ref_model = copy.deepcopy(model).float().cpu().eval()
    rows = [{'exit': k, 'max_abs_diff': 0.0, 'agreement': 1.0}
            for k in range(net.num_exits)]
    with torch.no_grad():
        for x in inputs:
            ref_run, run = ref_model.begin(x), net.begin(x)
            for k in range(net.num_exits):
                ref = ref_model.advance(ref_run, k, False)
                got = net.advance(run, k, False)
                if ref.shape != got.shape:
                    raise ExportError(f'exit {k}: exported logits have shape '
                                      f'{tuple(got.shape)}, PyTorch {tuple(ref.shape)}')
                diff = float((ref - got).abs().max())
                size = tuple(x.shape[-2:])
                up = [F.interpolate(t, size=size, mode='bilinear', align_corners=False)
                      for t in (ref, got)]
                agree = float((up[0][0].argmax(0) == up[1][0].argmax(0)).float().mean())
                row = rows[k]
                row['max_abs_diff'] = max(row['max_abs_diff'], diff) if diff == diff \
                    else float('nan')
                row['agreement'] = min(row['agreement'], agree)
    for row in rows:
        if not row['agreement'] >= min_agreement or not np.isfinite(row['max_abs_diff']):
            raise ExportError(f'exit {row["exit"]} of the ONNX export in {folder} disagrees '
                              f'with PyTorch: masks agree on {row["agreement"]:.4%} of the '
                              f'pixels (need {min_agreement:.1%}), max |logit diff| '
                              f'{row["max_abs_diff"]:.3g}')
    return rows


class OrtModule:
    """A :class:`OrtBackend` that stands in for the network in evaluation code.

    Calling it returns every exit's logits at the input size, like the model's
    ``forward``; ``forward_exit`` and ``parameters`` are what latency timing uses.
    """

    def __init__(self, model, threads: int, labels, mean, std, identity=None):
        self._model = model
        self._backend = OrtBackend(model, threads, 'cpu', labels, mean, std, identity)
        self.config = model.config
        self.num_exits = model.num_exits

    def eval(self) -> 'OrtModule':
        """Return self (always in inference mode)."""
        return self

    def parameters(self):
        """Return the weights of the wrapped model (for their dtype and device)."""
        return self._model.parameters()

    def __call__(self, images: torch.Tensor) -> list:
        """Logits of every exit for a batch of normalized images, at the input size."""
        per_image = []
        for x in images.float().cpu():
            run = self._backend.begin(x[None])
            per_image.append([self._backend.advance(run, k) for k in range(self.num_exits)])
        return [torch.cat(z, 0) for z in zip(*per_image)]

    def forward_exit(self, x: torch.Tensor, exit_index: int, size=None) -> torch.Tensor:
        """Logits of one exit (the blocks it needs and its head)."""
        return self._backend.advance(self._backend.begin(x.float().cpu()), exit_index, size)
