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
"""torchrun integration: process group set-up, sharding samplers, reductions."""

from dataclasses import dataclass
import os

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler, Sampler

__all__ = ['Dist', 'ResumableSampler', 'ShardSampler', 'all_reduce_sum', 'setup', 'teardown']


@dataclass
class Dist:
    """This process's place in the job."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False  # the process group was created by :func:`setup`

    @property
    def main(self) -> bool:
        """Whether this process writes files and shows progress."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """Whether a process group with more than one process is running."""
        return self.world > 1


def setup(device: torch.device) -> Dist:
    """Join the torchrun job described by the environment (NCCL on CUDA, gloo on CPU)."""
    world = int(os.environ.get('WORLD_SIZE', '1'))
    if world <= 1:
        return Dist()
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group('nccl' if device.type == 'cuda' else 'gloo')
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get('LOCAL_RANK', 0)),
                owns)


def teardown(dist_info: Dist, completed: bool = True):
    """Leave the job: wait for the others (after a clean run) and close our process group.

    A process that exits with its process group still open can abort in the collective
    library's destructors (``terminate called without an active exception``), turning a
    finished training into a failed job; this closes the group first. After an error no
    barrier is entered (the others may never reach it).
    """
    if not (dist_info.owns_group and dist.is_initialized()):
        return  # no group, or one the caller made and will close
    if completed:
        dist.barrier()
    dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all processes in place (no-op without a process group)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


class ResumableSampler(DistributedSampler):
    """DistributedSampler that can skip the batches already done in its epoch."""

    def __init__(self, dataset, dist_info: Dist, seed: int, skip: int = 0):
        super().__init__(dataset, num_replicas=dist_info.world, rank=dist_info.rank,
                         shuffle=True, seed=seed, drop_last=True)
        self.skip = skip

    def __iter__(self):
        return iter(list(super().__iter__())[self.skip:])

    def __len__(self) -> int:
        return super().__len__() - self.skip


class ShardSampler(Sampler):
    """Every ``world``-th index from ``rank``, without padding (so counts sum exactly)."""

    def __init__(self, length: int, dist_info: Dist):
        self.indices = list(range(dist_info.rank, length, dist_info.world))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
