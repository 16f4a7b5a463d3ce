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
"""The CUDA fast path of the engine: pinned staging, async copies, events, CUDA graphs.

Only the engine uses this module, and only when it runs on a CUDA device. All work is
issued on one dedicated stream; every call ends by waiting for that stream, so the
pinned buffers, reused from call to call, are free again when the next call starts.
"""

from dataclasses import dataclass
import logging
import time

import numpy as np
import torch

__all__ = ['CudaPath', 'CudaTiming']

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CudaTiming:
    """Device span of one inference: CUDA event time and the host time around it."""

    event_s: float
    host_s: float


@dataclass
class _Graph:
    graph: 'torch.cuda.CUDAGraph'
    static_in: torch.Tensor   # (H, W, C) uint8 on the device, filled before each replay
    static_out: torch.Tensor  # (h, w) uint8 mask on the device, written by the replay


class CudaPath:
    """Runs ``compute(image_tensor, exit, in_size, out_size) -> mask`` on a CUDA device.

    Args:
        device: The CUDA device.
        compute: The engine's device-side computation (uint8 image to uint8 mask).
        num_exits: Number of exits (bounds the graph cache).
        graphs: Capture and replay one CUDA graph per exit and size.
    """

    def __init__(self, device: torch.device, compute, num_exits: int, graphs: bool = False):
        self.device = device
        self.compute = compute
        self.graphs = graphs
        self.max_graphs = 4 * num_exits  # a few image sizes; beyond that sizes keep changing
        self.stream = torch.cuda.Stream(device)
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)
        self._pinned: dict = {}
        self._graph_cache: dict = {}
        # Weights and constants were uploaded on the default stream; ours must see them.
        torch.cuda.synchronize(device)

    def _host_buffer(self, role: str, shape: tuple) -> torch.Tensor:
        buf = self._pinned.get(role)
        if buf is None or tuple(buf.shape) != tuple(shape):
            buf = torch.empty(shape, dtype=torch.uint8, pin_memory=True)
            self._pinned[role] = buf
        return buf

    def _graph(self, exit_index: int, shape: tuple, in_size: tuple, out_size: tuple):
        key = (exit_index, shape, in_size, out_size)
        entry = self._graph_cache.get(key)
        if entry is not None:
            return entry
        if len(self._graph_cache) >= self.max_graphs:
            _log.warning('image size keeps changing: dropping %d captured CUDA graphs (they '
                         'are captured per exit and size)', len(self._graph_cache))
            self._graph_cache.clear()
        torch.cuda.synchronize(self.device)
        static_in = torch.zeros(shape, dtype=torch.uint8, device=self.device)
        # Warm up on a side stream (lazy initialization and cuDNN autotuning must not
        # happen during capture), then capture.
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(3):
                self.compute(static_in, exit_index, in_size, out_size)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self.compute(static_in, exit_index, in_size, out_size)
        torch.cuda.synchronize(self.device)
        _log.debug('captured a CUDA graph for exit %d, image %s', exit_index, shape)
        entry = self._graph_cache[key] = _Graph(graph, static_in, static_out)
        return entry

    def infer(self, image: np.ndarray, exit_index: int, in_size: tuple,
              out_size: tuple) -> tuple:
        """Image (H, W, C) uint8 on the host to the (h, w) uint8 mask on the host.

        Returns:
            (mask, :class:`CudaTiming`).
        """
        with torch.cuda.device(self.device):  # graph capture uses the current device
            return self._infer(image, exit_index, in_size, out_size)

    def _infer(self, image, exit_index, in_size, out_size):
        graph = self._graph(exit_index, image.shape, in_size, out_size) if self.graphs \
            else None
        pinned_in = self._host_buffer('in', image.shape)
        np.copyto(pinned_in.numpy(), image)  # synchronous, host clock is right for it
        pinned_out = self._host_buffer('out', out_size)
        t0 = time.perf_counter()
        with torch.cuda.stream(self.stream):
            self._start.record(self.stream)
            if graph is not None:
                graph.static_in.copy_(pinned_in, non_blocking=True)
                graph.graph.replay()
                mask = graph.static_out
            else:
                image_dev = pinned_in.to(self.device, non_blocking=True)
                mask = self.compute(image_dev, exit_index, in_size, out_size)
            pinned_out.copy_(mask, non_blocking=True)
            self._end.record(self.stream)
        self._end.synchronize()
        host_s = time.perf_counter() - t0
        event_s = self._start.elapsed_time(self._end) / 1e3
        return pinned_out.numpy().copy(), CudaTiming(event_s=event_s, host_s=host_s)
