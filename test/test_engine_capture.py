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
"""The engine's per-exit device work is fit for CUDA-graph capture (checked on the CPU).

What the CUDA path captures and replays per exit is ``Engine._compute`` (uint8 image to
uint8 mask). Capture fails, or a replay silently goes wrong, when that work reads a
tensor value back to the host (``.item()``, ``bool(t)``, data-dependent shapes such as
``nonzero``), builds tensors from Python data (an upload from pageable memory), moves
tensors between devices, or takes a different path from call to call. Each aten op the
computation dispatches is recorded here and checked, for every exit and every preset, so
a change to the network that would break the CUDA graphs fails on a machine without a
GPU. ``test_engine_cuda.py`` runs the real capture where CUDA exists.
"""

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from multiexit_ros.model import MultiExitSegNet, preset
from multiexit_ros.runtime import Engine

pytestmark = pytest.mark.usefixtures('one_torch_thread')

# Ops that synchronize with the host or whose output shape depends on tensor values.
HOST_SYNC = {
    'aten._local_scalar_dense', 'aten.item', 'aten.is_nonzero', 'aten.nonzero',
    'aten.nonzero_static',
    'aten.masked_select', 'aten.equal', 'aten._unique', 'aten._unique2',
    'aten.unique_consecutive', 'aten.unique_dim', 'aten.allclose',
}
# Tensors made from Python data inside the computation (uploaded on every call).
FROM_PYTHON = {'aten.lift_fresh', 'aten.lift_fresh_copy', 'aten.scalar_tensor'}


class _Recorder(TorchDispatchMode):
    """Records each dispatched aten op with the devices named in its arguments."""

    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = str(func.overloadpacket)
        self.ops.append((name, kwargs.get('device')))
        return func(*args, **kwargs)


def _trace(engine, image, exit_index, in_size, out_size):
    x = torch.from_numpy(image)
    with torch.inference_mode(), _Recorder() as rec:
        mask = engine._compute(x, exit_index, in_size, out_size)
    return mask, rec.ops


@pytest.mark.parametrize('name', ['tiny', 'small'])
def test_every_exit_is_capture_safe(name):
    torch.manual_seed(0)
    engine = Engine(MultiExitSegNet(preset(name)))
    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    in_size, out_size = (64, 96), (50, 70)
    for k in range(engine.num_exits):
        mask, ops = _trace(engine, image, k, in_size, out_size)
        names = {op for op, _ in ops}
        assert not names & HOST_SYNC, f'exit {k} reads values back: {names & HOST_SYNC}'
        assert not names & FROM_PYTHON, f'exit {k} builds tensors from Python data: ' \
                                        f'{names & FROM_PYTHON}'
        moved = [op for op, device in ops if device is not None and op == 'aten._to_copy']
        assert not moved, f'exit {k} moves tensors between devices: {moved}'
        assert mask.dtype == torch.uint8 and tuple(mask.shape) == out_size
        assert names & {'aten.conv2d', 'aten.convolution'}  # the recorder saw the network


def test_the_same_ops_run_on_every_call_whatever_the_content():
    """A captured graph replays one fixed op sequence: no content-dependent branches."""
    torch.manual_seed(0)
    engine = Engine(MultiExitSegNet(preset('tiny')))
    rng = np.random.default_rng(1)
    for k in range(engine.num_exits):
        sequences = set()
        for image in (np.zeros((40, 60, 3), np.uint8), np.full((40, 60, 3), 255, np.uint8),
                      rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)):
            _, ops = _trace(engine, image, k, (64, 96), (40, 60))
            sequences.add(tuple(ops))
        assert len(sequences) == 1, f'exit {k}: the op sequence depends on the image'


def test_the_recorder_catches_a_host_read():
    """The check above can fail: a computation with ``.item()`` is caught."""
    x = torch.ones(4)
    with torch.inference_mode(), _Recorder() as rec:
        if (x.sum() > 0).item():
            x = x * 2
        torch.tensor([1.0, 2.0])
    names = {op for op, _ in rec.ops}
    assert names & HOST_SYNC and names & FROM_PYTHON
