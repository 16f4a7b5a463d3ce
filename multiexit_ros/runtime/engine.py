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
"""The inference engine: camera image in, class-id mask of a chosen exit out.

One interface, two paths. On the CPU (tests, machines without a GPU) everything runs
synchronously in fp32 and is timed with the host clock. On CUDA the image is staged in
a pinned host buffer and copied asynchronously; conversion to float, resizing and
normalization run on the GPU; the network runs in fp16 or bf16, channels-last; the
logits are upsampled and reduced by argmax on the GPU, so only the uint8 mask comes
back; time is measured with CUDA events. Optionally each exit is captured once as a
CUDA graph for a given image size and replayed (:mod:`.cuda`).

Masks: the exit's logits, at the head's own resolution, are upsampled bilinearly to
the output size and only then reduced by argmax. Upsampling class ids with nearest
neighbour would be cheaper, but the deeper heads sit at stride 16 to 32, so the mask
would be made of 16x16 to 32x32 blocks; bilinear logits give smooth boundaries, are
what the network was trained with (losses on bilinearly upsampled logits), and on a
GPU cost a fraction of a millisecond. On the CPU the upsampling and the argmax are fused
(:mod:`.postprocess`): full-resolution float logits are never built, and the mask is
the same (to float rounding at exact ties). On the CPU the uint8 image is normalized
through a per-channel lookup table, into buffers reused from frame to frame, with the
same values as the reference arithmetic; with ``resize_uint8`` a camera image of another
size than the network input is resized as uint8 first (cheaper, slightly different
input, an option: see ``bench/postprocess_agreement.py``).

Backends: the blocks and heads run in PyTorch (``torch``) or in ONNX Runtime
(``onnxruntime``, :mod:`.onnx_backend`: the model is exported on first use, checked
against PyTorch and cached); pre- and post-processing are the same either way.
``auto`` picks ONNX Runtime on the CPU when it is installed (the faster one there,
bench/results/backends_cpu.md) and PyTorch otherwise.
"""

from dataclasses import dataclass
import logging
import threading
import time
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .device import (as_image, checkpoint_identity, default_labels, model_identity,
                     PRECISIONS, resolve_device)
from .postprocess import reference_mask, UpsampleArgmax
from ..errors import ConfigError
from ..labels import LabelSet
from ..model import MultiExitSegNet
from ..model.checkpoint import IMAGENET_MEAN, IMAGENET_STD

__all__ = ['BACKENDS', 'Engine', 'EngineRun', 'InferResult', 'resolve_backend']

BACKENDS = ('auto', 'torch', 'onnxruntime')

_log = logging.getLogger(__name__)


@dataclass
class InferResult:
    """One end-to-end inference: the mask and what it cost (seconds, image to mask)."""

    mask: np.ndarray
    latency_s: float


@dataclass
class EngineRun:
    """An incremental pass over one image (see :meth:`Engine.begin`)."""

    net_run: object
    out_size: tuple


class Engine:
    """Runs a :class:`MultiExitSegNet` from uint8 camera images to uint8 masks.

    The engine owns the model it is given (it moves and casts it). It keeps no
    per-frame state, so several pipelines may share one engine; calls are serialized
    by a lock.

    Args:
        model: The network (e.g. from :func:`~multiexit_ros.model.load_checkpoint`).
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``fp16``, ``bf16`` or ``fp32`` on CUDA; the CPU always uses fp32.
        channels_last: NHWC layout (faster convolutions on CUDA, and on the CPU through
            oneDNN, most of all depthwise ones).
        cuda_graphs: Capture one CUDA graph per exit and image size, lazily.
        input_size: Network input (H, W); None: the image size rounded to a multiple
            of 32.
        mean: Per-channel mean of RGB in [0, 1].
        std: Per-channel standard deviation.
        labels: Class names and palette; None guesses from the class count.
        model_id: Model identity recorded in latency profiles.
        allow_cpu_fallback: Use the CPU when CUDA is requested but missing.
        backend: ``torch``, ``onnxruntime`` or ``auto`` (:func:`resolve_backend`).
        threads: Intra-op CPU threads of torch (process-wide) and ONNX Runtime; 0 leaves
            the libraries' defaults.
        fused_upsample: On the CPU, upsample and reduce the logits with the fused
            :class:`~.postprocess.UpsampleArgmax` (False: ``F.interpolate`` then argmax,
            the reference, with full-resolution float logits).
        resize_uint8: On the CPU, resize a camera image of another size than the
            network input as uint8 (OpenCV) before normalizing; cheaper, but the input
            differs from the float resize by up to half a grey level, so masks may
            differ slightly (measured in ``bench/postprocess_agreement.py``).

    Raises:
        ConfigError: Bad device, precision, input size, backend or thread count, or the
            onnxruntime backend without ONNX Runtime installed.
    """

    def __init__(self, model: MultiExitSegNet, device: str = 'cpu', precision: str = 'fp32',
                 channels_last: bool = False, cuda_graphs: bool = False,
                 input_size: Optional[Sequence[int]] = None,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 labels: Optional[LabelSet] = None, model_id: Optional[dict] = None,
                 allow_cpu_fallback: bool = False, backend: str = 'torch', threads: int = 0,
                 fused_upsample: bool = True, resize_uint8: bool = False):
        if precision not in PRECISIONS:
            raise ConfigError(f'precision must be one of {sorted(PRECISIONS)}, got '
                              f'{precision!r}')
        self._device = resolve_device(device, allow_cpu_fallback)
        cuda = self._device.type == 'cuda'
        self.backend = resolve_backend(backend, self._device)
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise ConfigError(f'threads must be an integer >= 0, got {threads!r}')
        self.threads = threads
        if threads:
            torch.set_num_threads(threads)
        if self.backend == 'onnxruntime':  # fp32 NCHW graphs; ONNX Runtime picks layouts
            if cuda and (precision != 'fp32' or cuda_graphs):
                _log.info('onnxruntime backend: fp32 graphs, no CUDA graphs')
            precision, cuda_graphs, channels_last = 'fp32', False, False
        if not cuda and precision != 'fp32':
            _log.info('running on the CPU: precision %s replaced by fp32', precision)
            precision = 'fp32'
        if input_size is not None:
            input_size = tuple(int(v) for v in input_size)
            if len(input_size) != 2 or min(input_size) < 8:
                raise ConfigError(f'input size must be (H, W) of at least 8x8, got '
                                  f'{input_size}')
        self.precision = precision
        self.dtype = PRECISIONS[precision]
        self.channels_last = bool(channels_last)
        self.cuda_graphs = bool(cuda_graphs and cuda)
        self.input_size = input_size
        self.labels = labels or default_labels(model.config.num_classes)
        self.model_id = model_id or model_identity(model)
        model = model.eval().to(self._device, self.dtype)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        for p in model.parameters():
            p.requires_grad_(False)
        self.model = model
        self._net = model  # what runs the blocks and heads: begin() / advance()
        if self.backend == 'onnxruntime':
            from .onnx_backend import OrtBackend
            self._net = OrtBackend(model, threads, self._device, self.labels, mean, std,
                                   self.model_id)
            if input_size is not None:  # export (or load) now: errors before any frame
                self._net.network(input_size)
        self.in_channels = model.config.in_channels
        shape = (1, len(mean), 1, 1)
        std = torch.tensor(std, dtype=torch.float32)
        # x / 255 - mean) / std folded into one multiply-add: x * scale + bias.
        self._scale = (1.0 / (255.0 * std)).reshape(shape).to(self._device)
        self._bias = (-torch.tensor(mean, dtype=torch.float32) / std).reshape(shape).to(
            self._device)
        self._lock = threading.Lock()
        self.fused_upsample = bool(fused_upsample and not cuda)
        self.resize_uint8 = bool(resize_uint8 and not cuda)
        self._upsample = UpsampleArgmax()
        self._buffers: dict = {}  # CPU preprocessing buffers, by role and shape
        self._lut = self._normalization_table() if not cuda else None
        self._cuda = None
        if cuda:
            from .cuda import CudaPath
            torch.backends.cudnn.benchmark = True  # fixed sizes: let cuDNN pick kernels
            self._cuda = CudaPath(self._device, self._compute, self.num_exits,
                                  graphs=self.cuda_graphs)

    @classmethod
    def from_checkpoint(cls, path, **kwargs) -> 'Engine':
        """Load a checkpoint and build an engine with its labels and normalization.

        Keyword arguments are those of :class:`Engine`; ``input_size`` defaults to the
        trained size recorded in the checkpoint.

        Raises:
            CheckpointError: The checkpoint cannot be loaded.
            ConfigError: Bad engine settings.
        """
        from ..model import load_checkpoint

        model, meta = load_checkpoint(path, 'cpu')
        kwargs.setdefault('input_size', meta.input_size)
        return cls(model, mean=meta.mean, std=meta.std, labels=meta.labels,
                   model_id=checkpoint_identity(path, model), **kwargs)

    @classmethod
    def from_config(cls, config) -> 'Engine':
        """Build from a :class:`~multiexit_ros.runtime.PipelineConfig`'s model and device."""
        from .. import default_model_path

        size = (config.input_height, config.input_width)
        if (size[0] == 0) != (size[1] == 0):
            raise ConfigError(f'set both input_height and input_width, or neither (got '
                              f'{size[0]}x{size[1]})')
        kwargs = {'device': config.device, 'precision': config.precision,
                  'channels_last': config.channels_last, 'cuda_graphs': config.cuda_graphs,
                  'allow_cpu_fallback': config.allow_cpu_fallback,
                  'backend': config.engine.backend, 'threads': config.engine.threads}
        if size[0]:
            kwargs['input_size'] = size
        return cls.from_checkpoint(config.model_path or default_model_path(), **kwargs)

    @property
    def device(self) -> str:
        """Device the engine runs on (``cpu``, ``cuda:0``)."""
        return str(self._device)

    @property
    def num_exits(self) -> int:
        """Return the number of exits of the model."""
        return self.model.num_exits

    def input_size_for(self, image_size: Sequence[int]) -> tuple:
        """Network input (H, W) for a camera image of ``image_size``."""
        if self.input_size is not None:
            return self.input_size
        return tuple(max(32, int(round(v / 32.0)) * 32) for v in image_size[:2])

    def _check_exit(self, exit_index: int):
        if not 0 <= exit_index < self.num_exits:
            raise ConfigError(f'exit {exit_index} does not exist (exits 0..'
                              f'{self.num_exits - 1})')

    def _preprocess(self, image: torch.Tensor, in_size: tuple) -> torch.Tensor:
        """Uint8 (H, W, C) on the device to a normalized (1, C, h, w) network input."""
        x = image.permute(2, 0, 1).unsqueeze(0).float()
        if x.shape[1] != self.in_channels:
            x = x.expand(-1, self.in_channels, -1, -1)  # mono camera, RGB model
        if tuple(x.shape[-2:]) != in_size:
            x = F.interpolate(x, size=in_size, mode='bilinear', align_corners=False)
        x = torch.addcmul(self._bias, x, self._scale)
        memory = torch.channels_last if self.channels_last else torch.contiguous_format
        return x.to(self.dtype, memory_format=memory)

    def _normalization_table(self) -> Optional[np.ndarray]:
        """(1, 256, C) float32: every uint8 value normalized by the reference arithmetic.

        None when OpenCV (its table lookup) is missing; the torch path is used then.
        """
        try:
            import cv2  # noqa: F401
        except ImportError:
            return None
        values = torch.arange(256, dtype=torch.float32).reshape(1, 1, 1, 256)
        table = torch.addcmul(self._bias, values.expand(1, len(self._bias[0]), 1, 256),
                              self._scale)  # the same operation as _preprocess
        return table[0, :, 0, :].T.contiguous().numpy()[None]

    def _buffer(self, role: str, shape: tuple) -> np.ndarray:
        buf = self._buffers.get(role)
        if buf is None or buf.shape != shape:
            buf = self._buffers[role] = np.empty(shape, np.float32)
        return buf

    def _preprocess_cpu(self, img: np.ndarray, in_size: tuple,
                        reuse: bool = False) -> torch.Tensor:
        """:meth:`_preprocess` on the CPU, faster, with the same values.

        With ``reuse`` the result lives in a buffer that the next call with ``reuse``
        overwrites (:meth:`infer` runs the network on it at once; :meth:`begin`, whose
        run outlives the call, does not reuse).
        """
        c = img.shape[2]
        if self._lut is None or c != self.in_channels or c != self._lut.shape[2]:
            return self._preprocess(torch.from_numpy(img), in_size)
        import cv2

        if tuple(img.shape[:2]) != in_size and not self.resize_uint8:
            # Float resize as the reference (F.interpolate), into reused buffers.
            raw = self._buffer('raw', img.shape) if reuse else np.empty(img.shape, np.float32)
            small = self._buffer('small', (*in_size, c)) if reuse else \
                np.empty((*in_size, c), np.float32)
            raw_t = torch.from_numpy(raw)
            raw_t.copy_(torch.from_numpy(img))
            small_t = torch.from_numpy(small).permute(2, 0, 1).unsqueeze(0)
            # The out= form of F.interpolate's kernel: F.interpolate itself allocates and
            # took 1.5 ms more per 720p frame (bench/pipeline_overhead.py, measured).
            torch._C._nn.upsample_bilinear2d(raw_t.permute(2, 0, 1).unsqueeze(0), in_size,
                                             False, None, None, out=small_t)
            torch.addcmul(self._bias, small_t, self._scale, out=small_t)
            x = small_t
        else:
            if tuple(img.shape[:2]) != in_size:
                img = cv2.resize(img, (in_size[1], in_size[0]),
                                 interpolation=cv2.INTER_LINEAR)
            out = self._buffer('input', (*in_size, c)) if reuse else None
            x = torch.from_numpy(cv2.LUT(img, self._lut, dst=out).reshape(*in_size, c))
            x = x.permute(2, 0, 1).unsqueeze(0)  # (1, C, h, w), channels-last strides
        if not self.channels_last:
            x = x.contiguous()
        return x

    def network(self, x: torch.Tensor, exit_index: int) -> torch.Tensor:
        """Run the bare network: normalized input (1, C, h, w) to one exit's logits.

        The logits are at the head's own resolution (no upsampling). This is the
        network stage of :meth:`infer` on the CPU, and what benchmarks time as the
        network.
        """
        return self._net.advance(self._net.begin(x), exit_index, False)

    def _postprocess(self, logits: torch.Tensor, out_size: tuple) -> np.ndarray:
        """Head-resolution logits (1, K, h, w) on the CPU to a fresh (H, W) uint8 mask."""
        if self.fused_upsample:
            return self._upsample(logits, out_size)
        return reference_mask(logits, out_size).numpy()

    def _compute(self, image: torch.Tensor, exit_index: int, in_size: tuple,
                 out_size: tuple) -> torch.Tensor:
        """Image tensor (H, W, C) uint8 to an (h, w) uint8 mask of one exit, on the device."""
        run = self._net.begin(self._preprocess(image, in_size))
        return self._mask(self._net.advance(run, exit_index, out_size))

    @staticmethod
    def _mask(logits: torch.Tensor) -> torch.Tensor:
        # max(0).indices is argmax; on the CPU it is several times faster than argmax(0),
        # which reduces over the strided class dimension slowly.
        return logits[0].max(0).indices.to(torch.uint8)

    def _sizes(self, img: np.ndarray, out_size) -> tuple:
        in_size = self.input_size_for(img.shape)
        out = tuple(int(v) for v in out_size) if out_size else tuple(img.shape[:2])
        if len(out) != 2 or min(out) < 1:
            raise ConfigError(f'output size must be (H, W), got {out_size}')
        return in_size, out

    def infer(self, image: np.ndarray, exit_index: int,
              out_size: Optional[Sequence[int]] = None) -> InferResult:
        """Produce one exit's mask from a camera image, end to end, and time it.

        Args:
            image: (H, W, 3) RGB or (H, W) mono uint8.
            exit_index: Exit to run.
            out_size: Mask (H, W); None is the image size.

        Returns:
            The (H, W) uint8 mask (a fresh array) and the latency in seconds, image
            validation to mask on the host included.

        Raises:
            ImageError: The image is not a valid uint8 image.
            ConfigError: The exit does not exist.
        """
        self._check_exit(exit_index)
        with self._lock, torch.inference_mode():
            t0 = time.perf_counter()
            img = as_image(image, self.in_channels)
            in_size, out = self._sizes(img, out_size)
            if self._cuda is not None:
                mask, timing = self._cuda.infer(img, exit_index, in_size, out)
                # Host work plus the device span as CUDA events measured it (the host's
                # own clock around that span would count launch and wake-up jitter).
                return InferResult(mask, time.perf_counter() - t0 - timing.host_s
                                   + timing.event_s)
            x = self._preprocess_cpu(img, in_size, reuse=True)
            mask = self._postprocess(self.network(x, exit_index), out)
            return InferResult(mask, time.perf_counter() - t0)

    def begin(self, image: np.ndarray, out_size: Optional[Sequence[int]] = None) -> EngineRun:
        """Start an incremental pass: exits can then be produced in increasing order.

        Blocks run for one exit are not rerun for a later one (useful to evaluate every
        exit of a frame at the cost of the deepest). Runs eagerly, without CUDA graphs.
        """
        with self._lock, torch.inference_mode():
            img = as_image(image, self.in_channels)
            in_size, out = self._sizes(img, out_size)
            if self._cuda is None:
                return EngineRun(self._net.begin(self._preprocess_cpu(img, in_size)), out)
            x = torch.from_numpy(img).to(self._device)
            return EngineRun(self._net.begin(self._preprocess(x, in_size)), out)

    def advance(self, run: EngineRun, exit_index: int) -> np.ndarray:
        """Produce exit ``exit_index``'s (H, W) uint8 mask, continuing ``run``.

        Raises:
            ConfigError: The exit does not exist or lies before the blocks already run.
        """
        self._check_exit(exit_index)
        with self._lock, torch.inference_mode():
            cpu = self._cuda is None
            try:
                logits = self._net.advance(run.net_run, exit_index,
                                           False if cpu else run.out_size)
            except ValueError as err:
                raise ConfigError(str(err)) from err
            if cpu:
                return self._postprocess(logits, run.out_size)
            return self._mask(logits).cpu().numpy()

    def warmup(self, image_size: Sequence[int], passes: int = 2,
               out_size: Optional[Sequence[int]] = None):
        """Run every exit ``passes`` times on a blank image (allocations, cuDNN, graphs)."""
        image = np.zeros((int(image_size[0]), int(image_size[1]), 3), np.uint8)
        for _ in range(passes):
            for k in range(self.num_exits):
                self.infer(image, k, out_size)


def resolve_backend(name: str, device: torch.device) -> str:
    """Return the backend ``name`` stands for on ``device``.

    ``auto`` is ``onnxruntime`` on the CPU when ONNX Runtime is installed, else
    ``torch`` (on CUDA too: the ONNX Runtime CUDA path is written but was not measured).

    Raises:
        ConfigError: An unknown name.
    """
    if name not in BACKENDS:
        raise ConfigError(f'engine backend must be one of {list(BACKENDS)}, got {name!r}')
    if name != 'auto':
        return name
    if torch.device(device).type != 'cpu':
        return 'torch'
    import importlib.util
    return 'onnxruntime' if importlib.util.find_spec('onnxruntime') else 'torch'
