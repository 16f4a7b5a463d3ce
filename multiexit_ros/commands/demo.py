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
"""Build a short drive recording and replay it with the shipped model on the CPU.

The drive (mcap: camera, labels, speed) goes from standstill to 130 km/h and back.
Frames are generated driving scenes by default, or come from a folder of real frames
(--source DIR, e.g. ../shared/data/camvid/val, labels from valannot). Latencies come
from a fixed demo target device (exit 0 20 ms, the other exits in proportion to their
FLOPs) so the results do not depend on this machine; --profile gives a real one.
"""

from dataclasses import replace
from pathlib import Path
import shutil

from .common import check_output_folder, parse_size
from .replay import add_pipeline_arguments, pipeline_config, print_summary
from ..errors import ConfigError, DatasetError

__all__ = ['add_arguments', 'run']


def add_arguments(parser):
    """Add this command's arguments."""
    parser.add_argument('--out', default='multiexit_demo',
                        help='output folder (default multiexit_demo); its drive/ and '
                             'report files are replaced')
    parser.add_argument('--frames', type=int, default=240, help='camera frames (default 240)')
    parser.add_argument('--hz', type=float, default=12.0, help='camera rate (default 12 Hz)')
    parser.add_argument('--size', default='360x480',
                        help='generated frame size HxW (default 360x480)')
    parser.add_argument('--source', default='generated',
                        help='generated (default) or a folder of frames in name order')
    parser.add_argument('--labels', help='label folder for --source DIR (default: the '
                                         'SegNet-layout DIRannot sibling when present)')
    parser.add_argument('--seed', type=int, default=7, help='generated world (default 7)')
    parser.add_argument('--write-bag', action='store_true',
                        help='also write OUT/replay/replay_bag (mcap) with the masks')
    add_pipeline_arguments(parser)


def run(args) -> int:
    """Build the drive, replay it, print the summary."""
    from ..replay import replay, ReplayOptions
    from ..replay.demo import build_drive, demo_profile
    from ..replay.policies import build_engine

    if args.frames < 2:
        raise ConfigError(f'--frames must be at least 2, got {args.frames}')
    if not args.hz > 0:
        raise ConfigError(f'--hz must be positive, got {args.hz}')
    source = None if args.source == 'generated' else Path(args.source)
    if source is not None and not source.is_dir():
        raise DatasetError(f'frame folder not found: {source}')
    out = check_output_folder(args.out)
    size = parse_size(args.size)
    config = pipeline_config(args)
    engine = build_engine(config, args.preset)  # fails early, saying how to get a model
    # Only now, with the settings known to be good, replace an earlier drive.
    drive = out / 'drive'
    if drive.exists():
        shutil.rmtree(drive)
    info = build_drive(drive, args.frames, args.hz, size, source, args.labels, args.seed)
    print(f'drive: {drive} ({info["frames"]} frames over {info["duration_s"]:.0f} s at '
          f'{info["hz"]:g} Hz, 0 -> 130 km/h -> 0; frames: {info["source"]})')
    if not args.profile and args.latency == 'profile':
        from ..replay import Recording
        from ..replay.demo import CAMERA
        with Recording(drive) as rec:
            _, _, msg = next(rec.messages([CAMERA]))
        profile = demo_profile(engine, (msg.height, msg.width))
        path = profile.save(out / 'demo_target_profile.json')
        config = replace(config, profile_path=str(path))
        print(f'latency: demo target device ({path})')
    del engine
    report = out / 'replay'
    summary = replay(ReplayOptions(
        recording=drive, out_dir=report, config=config, preset=args.preset,
        latency=args.latency, write_bag=args.write_bag,
        policies=[p.strip() for p in args.policies.split(',')] if args.policies else [],
        plots=not args.no_plots, progress=not args.no_progress))
    print_summary(summary, report)
    return 0
