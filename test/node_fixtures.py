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
"""A tiny real checkpoint and pipeline for the node's tests."""

from pathlib import Path

from multiexit_ros.labels import CAMVID
from multiexit_ros.model import CheckpointMeta, MultiExitSegNet, preset, save_checkpoint

# CPU, and a small network input so start-up profiling is quick.
FAST = {'device': 'cpu', 'precision': 'fp32', 'profile_warmup': 0, 'profile_samples': 1,
        'input_height': 32, 'input_width': 64}


def tiny_checkpoint(folder: Path) -> Path:
    """Save an untrained tiny network (CamVid labels) and return its path."""
    import torch

    torch.manual_seed(0)
    net = MultiExitSegNet(preset('tiny')).eval()
    return save_checkpoint(Path(folder) / 'tiny.safetensors', net,
                           CheckpointMeta(model=net.config, labels=CAMVID))


def tiny_pipeline(folder: Path, **overrides):
    """Return a CPU PerceptionPipeline on a tiny checkpoint, profiled at 32x48."""
    from multiexit_ros.runtime import PerceptionPipeline, PipelineConfig

    params = dict(FAST, model_path=str(tiny_checkpoint(folder)), **overrides)
    return PerceptionPipeline.from_config(PipelineConfig.from_params(params),
                                          image_size=(32, 48))
