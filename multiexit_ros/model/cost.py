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
"""Per-exit parameters and FLOPs, measured by running the network."""

from dataclasses import asdict, dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from .network import MultiExitSegNet

__all__ = ['ExitCost', 'exit_costs', 'exit_latencies']


@dataclass(frozen=True)
class ExitCost:
    """What it costs to produce one exit's prediction from the image.

    Attributes:
        exit: Exit index.
        params: Parameters used: blocks 0..exit plus this exit's head.
        flops: Floating-point operations of one image (multiply and add counted as
            two), cumulative over blocks 0..exit plus this exit's head, as counted by
            :class:`torch.utils.flop_counter.FlopCounterMode` (convolutions and matrix
            products; element-wise work is not counted).
        block_flops: FLOPs of block ``exit`` alone.
        head_flops: FLOPs of head ``exit`` alone.
        stride: Total stride of block ``exit``'s output.
    """

    exit: int
    params: int
    flops: int
    block_flops: int
    head_flops: int
    stride: int

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return asdict(self)


def _count(fn):
    counter = FlopCounterMode(display=False)
    with counter:
        out = fn()
    return out, counter.get_total_flops()


@torch.no_grad()
def exit_costs(model: MultiExitSegNet, size=(360, 480)) -> list:
    """Measure parameters and FLOPs of every exit for one image of ``size`` (H, W).

    Each block and each head is run once under a FLOP counter on a zero image, so the
    numbers are those of the operations actually executed.

    Returns:
        One :class:`ExitCost` per exit, in exit order.
    """
    was_training = model.training
    model.eval()
    param = next(model.parameters())
    x = torch.zeros(1, model.config.in_channels, *size, dtype=param.dtype, device=param.device)
    strides = model.config.block_strides()
    costs, cum_flops, cum_params = [], 0, 0
    try:
        for k, (block, head) in enumerate(zip(model.blocks, model.heads)):
            x, block_flops = _count(lambda: block(x))
            _, head_flops = _count(lambda: head(x, size))
            cum_flops += block_flops
            cum_params += sum(p.numel() for p in block.parameters())
            costs.append(ExitCost(
                exit=k,
                params=cum_params + sum(p.numel() for p in head.parameters()),
                flops=int(cum_flops + head_flops),
                block_flops=int(block_flops),
                head_flops=int(head_flops),
                stride=strides[k],
            ))
    finally:
        model.train(was_training)
    return costs


@torch.no_grad()
def exit_latencies(model: MultiExitSegNet, size=(360, 480), repeat=10, warmup=2,
                   progress=None, channels_last: bool = True) -> list:
    """Median wall time (ms) of the network alone to produce each exit from the image.

    Each exit is timed as a fresh incremental pass (blocks 0..k and head k, logits at
    the head's own resolution, as ``Engine.network``) on a zero image, after ``warmup``
    untimed passes; on CUDA the device is synchronized around each pass. The input and
    the weights are channels-last by default, the memory format the engine runs in (a
    copy of the model is converted; ``model`` is left as it is). Pre- and
    post-processing are not included: the runtime's latency profile measures those.
    ``progress(1)`` is called after every pass.
    """
    import copy
    import statistics
    import time

    param = next(model.parameters())
    memory = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.zeros(1, model.config.in_channels, *size, dtype=param.dtype, device=param.device)
    x = x.contiguous(memory_format=memory)
    if channels_last and isinstance(model, MultiExitSegNet):  # not an ONNX Runtime module
        model = copy.deepcopy(model).to(memory_format=memory)
    sync = torch.cuda.synchronize if param.device.type == 'cuda' else (lambda: None)
    model.eval()
    out = []
    for k in range(model.num_exits):
        times = []
        for i in range(warmup + repeat):
            sync()
            t0 = time.perf_counter()
            model.forward_exit(x, k, False)
            sync()
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1e3)
            if progress is not None:
                progress(1)
        out.append(statistics.median(times))
    return out
