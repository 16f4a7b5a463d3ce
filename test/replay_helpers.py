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
"""Small real artefacts for the replay tests: a tiny checkpoint, profiles, recordings."""

from pathlib import Path

import numpy as np

from multiexit_ros.replay import RecordingWriter

SIZE = (48, 64)
HZ = 10.0
T0 = 1000.0


def replay_cli(rec, out, ckpt, profile, *extra) -> int:
    """Run ``multiexit replay`` on ``rec`` quietly; returns the exit status."""
    from multiexit_ros.cli import main

    return main(['replay', str(rec), '--model', str(ckpt), '--profile', str(profile),
                 '--out', str(out), '--no-progress', '--no-plots', *extra])


def tiny_checkpoint(path: Path) -> Path:
    """Save an untrained tiny network as a real checkpoint."""
    import torch

    from multiexit_ros.labels import CAMVID
    from multiexit_ros.model import CheckpointMeta, MultiExitSegNet, preset, save_checkpoint

    torch.manual_seed(0)
    cfg = preset('tiny')
    model = MultiExitSegNet(cfg)
    return save_checkpoint(path, model, CheckpointMeta(model=cfg, labels=CAMVID))


def tiny_model_with_random_affines():
    """Seeded tiny network whose batch norms have random affines.

    Its masks are not one class everywhere, so device-against-CPU mask checks mean
    something.
    """
    import torch

    from multiexit_ros.model import MultiExitSegNet, preset

    torch.manual_seed(0)
    model = MultiExitSegNet(preset('tiny'))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.normal_(1.0, 0.5)
                module.bias.normal_(0.0, 0.5)
    return model


def write_profile(path: Path, ms, device='cuda:0') -> Path:
    """Write a latency profile whose exit k takes ``ms[k]`` milliseconds."""
    from multiexit_ros.runtime import LatencyProfile

    return LatencyProfile.from_samples([[v / 1e3] for v in ms], device=device).save(path)


def frames(n: int, seed: int = 0):
    """Return ``n`` random RGB frames of SIZE."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*SIZE, 3), dtype=np.uint8) for _ in range(n)]


def write_recording(path: Path, storage: str = 'mcap', images=None, labels=None,
                    speeds=None, bad=(), camera='/cam/image_raw', label='/cam/labels',
                    speed='/vehicle/speed', extra_cameras=()) -> Path:
    """Write a recording: camera frames at HZ, optional labels and Float32 speeds.

    Args:
        bad: Indices of frames written as malformed rgb8 images (too little data).
    """
    images = frames(8) if images is None else images
    with RecordingWriter(path, storage) as bag:
        bag.add_topic(camera, 'sensor_msgs/msg/Image')
        for extra in extra_cameras:
            bag.add_topic(extra, 'sensor_msgs/msg/Image')
        if labels is not None:
            bag.add_topic(label, 'sensor_msgs/msg/Image')
        if speeds is not None:
            bag.add_topic(speed, 'std_msgs/msg/Float32')
        for i, img in enumerate(images):
            t = T0 + i / HZ
            t_ns = int(round(t * 1e9))
            if speeds is not None:
                bag.write(speed, t_ns - 1000, bag.types['std_msgs/msg/Float32'](
                    data=float(speeds[i])))
            msg = bag.image(img, 'rgb8', t)
            if i in bad:
                msg.data = msg.data[:10]
            bag.write(camera, t_ns, msg)
            if labels is not None and labels[i] is not None:  # None: frame unlabelled
                bag.write(label, t_ns + 1000, bag.image(labels[i], 'mono8', t))
    return path
