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
"""The demo drive: a short recording with a speed profile and labels, and its profile.

:func:`build_drive` writes an mcap recording: ``/camera/image_raw`` (rgb8),
``/camera/labels`` (mono8 CamVid class ids) and ``/vehicle/twist``
(geometry_msgs/TwistStamped at 20 Hz). The vehicle stands, accelerates to motorway speed
(130 km/h), cruises, brakes and stands again (time is compressed: the whole drive takes
``frames / hz`` seconds). Frames are generated driving scenes by default: the camera
moves through one generated world by the distance the speed profile covers, so the
imagery and the speed topic agree. A folder of real frames (e.g. CamVid's ``val``, with
labels from ``valannot``) can be used instead.

:func:`demo_profile` is an optional fixed latency profile (``multiexit demo --profile
demo-target``): a made-up *target device* on which exit 0 takes 20 ms and every other
exit takes time in proportion to its FLOPs at the network's input size. By default the
demo measures the profile on the machine it runs on instead.
"""

import logging
from pathlib import Path

import numpy as np

from ..errors import DatasetError

__all__ = ['build_drive', 'demo_profile', 'source_size', 'speed_profile', 'CAMERA',
           'LABELS', 'SPEED']

_LOG = logging.getLogger(__name__)

CAMERA, LABELS, SPEED = '/camera/image_raw', '/camera/labels', '/vehicle/twist'
TOP_SPEED_MPS = 130 / 3.6
EXIT0_MS = 20.0          # the demo target's exit 0 latency
ARRIVAL_DELAY_S = 0.003  # camera frames are received 3 ms after capture
WORLD_SPEED_MPS = 20.0   # generated world: moving objects keep time at this ego speed
_PHASES = (0.12, 0.40, 0.62, 0.90)  # fractions of the drive: stand|accelerate|cruise|brake|stand
_IMAGE_EXT = ('.png', '.jpg', '.jpeg', '.bmp')


def speed_profile(t, duration: float, top: float = TOP_SPEED_MPS):
    """Speed (m/s) at time(s) ``t`` of a drive lasting ``duration`` seconds.

    Standing, a smooth (cosine) acceleration to ``top``, cruising, a smooth braking, and
    standing again.
    """
    x = np.asarray(t, dtype=np.float64) / duration
    a, b, c, d = _PHASES
    up = 0.5 - 0.5 * np.cos(np.pi * np.clip((x - a) / (b - a), 0, 1))
    down = 0.5 + 0.5 * np.cos(np.pi * np.clip((x - c) / (d - c), 0, 1))
    return top * np.where(x < c, up, down)


def _frames_from_folder(folder: Path, labels: Path, n: int):
    import cv2

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_EXT)
    if not files:
        raise DatasetError(f'no images ({", ".join(_IMAGE_EXT)}) in {folder}')
    if labels is None:
        guess = folder.parent / (folder.name + 'annot')  # SegNet layout: val -> valannot
        labels = guess if guess.is_dir() else None
    for path in files[:n]:
        rgb = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if rgb is None:
            raise DatasetError(f'cannot read image {path}')
        lab = None
        if labels is not None:
            lab = cv2.imread(str(labels / path.name), cv2.IMREAD_UNCHANGED)
            if lab is None or lab.ndim != 2 or lab.shape != rgb.shape[:2]:
                raise DatasetError(f'{labels / path.name}: missing, not a single-channel '
                                   f'label image, or not the size of {path.name}')
        yield rgb[..., ::-1].copy(), lab


def source_size(source, size) -> tuple:
    """(H, W) of the drive's frames: ``size`` for generated ones, else the first image's.

    Raises:
        DatasetError: The folder is missing, has no images or the first is unreadable.
    """
    if source is None:
        return tuple(size)
    import cv2

    source = Path(source)
    if not source.is_dir():
        raise DatasetError(f'frame folder not found: {source}')
    first = min((p for p in source.iterdir() if p.suffix.lower() in _IMAGE_EXT), default=None)
    image = None if first is None else cv2.imread(str(first), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f'no readable image ({", ".join(_IMAGE_EXT)}) in {source}')
    return image.shape[:2]


def _frames_generated(times, size, seed: int):
    from ..data.synthetic import render_sequence

    dt = np.diff(times, prepend=times[0])
    distance = np.cumsum(speed_profile(times, times[-1] + dt[-1]) * dt)
    step = WORLD_SPEED_MPS / 20.0  # one generated frame per metre of road
    wanted = np.round(distance / step).astype(int)
    frames = render_sequence(seed, int(wanted[-1]) + 1, size[0], size[1],
                             speed_mps=WORLD_SPEED_MPS, fps=20.0)
    index, current = -1, None
    for w in wanted:
        while index < w:
            current = next(frames)
            index += 1
        yield current


def build_drive(path, frames: int = 300, hz: float = 30.0, size=(360, 480), source=None,
                labels=None, seed: int = 7) -> dict:
    """Write the demo drive recording (mcap) to ``path``.

    Args:
        path: Output rosbag2 folder (must not exist).
        frames: Number of camera frames.
        hz: Camera rate.
        size: (H, W) of generated frames (frames from a folder keep their size).
        source: None for generated scenes, or a folder of frames (name order).
        labels: Folder of label images named like the frames (default: the SegNet
            ``<folder>annot`` sibling when present).
        seed: Generated world.

    Returns:
        What was written (frames, duration, topics, source).

    Raises:
        DatasetError: The source folder has no readable frames or bad labels.
    """
    from .writer import RecordingWriter

    if frames < 2 or not hz > 0:
        raise DatasetError(f'the drive needs at least 2 frames and a positive rate, got '
                           f'{frames} frames at {hz} Hz')
    if source is not None:
        source = Path(source)
        if not source.is_dir():
            raise DatasetError(f'frame folder not found: {source}')
        # The whole speed profile over the frames there are (CamVid val has 101).
        frames = max(2, min(frames, sum(1 for p in source.iterdir()
                                        if p.suffix.lower() in _IMAGE_EXT)))
    times = np.arange(frames) / hz
    duration = frames / hz
    if source is None:
        images = _frames_generated(times, size, seed)
    else:
        images = _frames_from_folder(source, Path(labels) if labels else None, frames)
    t0 = 1_700_000_000.0  # a plausible wall-clock epoch for the stamps
    n = 0
    with RecordingWriter(path, 'mcap') as bag:
        bag.add_topic(CAMERA, 'sensor_msgs/msg/Image')
        bag.add_topic(LABELS, 'sensor_msgs/msg/Image')
        bag.add_topic(SPEED, 'geometry_msgs/msg/TwistStamped')
        twist_t = np.arange(0.0, duration, 0.05)
        twist_v = speed_profile(twist_t, duration)
        types = bag.types
        k = 0
        for i, (rgb, lab) in enumerate(images):
            t = times[i]
            while k < len(twist_t) and twist_t[k] <= t:
                stamp = t0 + twist_t[k]
                vec = types['geometry_msgs/msg/Vector3']
                msg = types['geometry_msgs/msg/TwistStamped'](
                    header=bag.header(stamp, 'base_link'),
                    twist=types['geometry_msgs/msg/Twist'](
                        linear=vec(x=float(twist_v[k]), y=0.0, z=0.0),
                        angular=vec(x=0.0, y=0.0, z=0.0)))
                bag.write(SPEED, int(round(stamp * 1e9)), msg)
                k += 1
            stamp = t0 + t
            t_ns = int(round(stamp * 1e9)) + int(ARRIVAL_DELAY_S * 1e9)  # transport delay
            bag.write(CAMERA, t_ns, bag.image(rgb, 'rgb8', stamp))
            if lab is not None:
                bag.write(LABELS, t_ns + 1000, bag.image(lab, 'mono8', stamp))
            n += 1
    if n < 2:
        raise DatasetError(f'only {n} frame(s) in {source}; the drive needs at least 2')
    return {'frames': n, 'duration_s': n / hz, 'hz': hz, 'topics': [CAMERA, LABELS, SPEED],
            'arrival_delay_s': ARRIVAL_DELAY_S,
            'source': str(source) if source else f'generated (seed {seed})'}


def demo_profile(engine, image_size):
    """Return the demo target's latency profile for ``engine``'s model (see module doc)."""
    from ..model import exit_costs
    from ..runtime import LatencyProfile

    in_size = engine.input_size_for(image_size)
    flops = [c.flops for c in exit_costs(engine.model, in_size)]
    ms = [EXIT0_MS * f / flops[0] for f in flops]
    # A small deterministic spread so that quantiles differ from the median.
    samples = [[v * s / 1e3 for s in (0.96, 0.98, 1.0, 1.0, 1.02, 1.05)] for v in ms]
    _LOG.info('demo target latencies: %s', ', '.join(f'exit {k} {v:.1f} ms'
                                                     for k, v in enumerate(ms)))
    return LatencyProfile.from_samples(
        samples, device='demo-target', precision='fp16', resolution=list(image_size),
        input_size=list(in_size), model=engine.model_id,
        extra={'note': f'computed for the demo: exit 0 takes {EXIT0_MS:g} ms, other exits '
                       f'in proportion to their FLOPs'})
