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
(--source DIR, e.g. ../shared/data/camvid/val, labels from valannot). The latency
profile is measured on this machine at start-up (--profile FILE replays a fixed one, for
reproducible numbers; --profile demo-target a computed target device), and the budget
settings are derived from it (--budget auto) so that every exit fits standing still and
only the early exits at 130 km/h. The table leads with streaming mIoU.
"""

from dataclasses import replace
import logging
from pathlib import Path
import shutil

from .common import check_output_folder, parse_size
from .replay import add_pipeline_arguments, pipeline_config, print_summary
from ..errors import ConfigError

__all__ = ['add_arguments', 'run']

_LOG = logging.getLogger(__name__)

DEMO_TARGET = 'demo-target'


def add_arguments(parser):
    """Add this command's arguments."""
    parser.add_argument('--out', default='multiexit_demo',
                        help='output folder (default multiexit_demo); its drive/ and '
                             'report files are replaced')
    parser.add_argument('--frames', type=int, default=300, help='camera frames (default 300)')
    parser.add_argument('--hz', default='auto',
                        help='camera rate in Hz, or auto (default): the fastest common rate '
                             'at which the early exits keep up (from the latency profile)')
    parser.add_argument('--size', default='360x480',
                        help='generated frame size HxW (default 360x480)')
    parser.add_argument('--source', default='generated',
                        help='generated (default) or a folder of frames in name order')
    parser.add_argument('--labels', help='label folder for --source DIR (default: the '
                                         'SegNet-layout DIRannot sibling when present)')
    parser.add_argument('--seed', type=int, default=7, help='generated world (default 7)')
    parser.add_argument('--budget', choices=('auto', 'config'), default='auto',
                        help='auto (default): budget settings derived from the latency '
                             'profile (deep exits standing, early ones at 130 km/h; '
                             '--param budget.* still overrides); config: the budget of '
                             '--config/--param as given')
    parser.add_argument('--write-bag', action='store_true',
                        help='also write OUT/replay/replay_bag (mcap) with the masks')
    add_pipeline_arguments(parser)


def _user_params(args) -> dict:
    """Return the parameters set by --param (they win over the calibrated budget)."""
    names = {item.partition('=')[0].strip() for item in args.param}
    return {k: v for k, v in pipeline_config(args).to_params().items() if k in names}


def _demo_profile(args, engine, config, out: Path, image_size):
    """Return (profile path, words): the given file, the demo target or one measured here."""
    from ..runtime import measure_profile
    from ..replay.demo import demo_profile

    out.mkdir(parents=True, exist_ok=True)
    if args.profile and args.profile != DEMO_TARGET:
        return Path(args.profile), f'profile {args.profile}'
    if args.profile == DEMO_TARGET:
        path = demo_profile(engine, image_size).save(out / 'demo_target_profile.json')
        return path, f'demo target device ({path})'
    _LOG.info('measuring the latency profile on %s at %dx%d', engine.device, *image_size)
    out_size = (config.output_height, config.output_width) if config.output_height else None
    profile = measure_profile(engine, image_size, config.profile_warmup,
                              config.profile_samples, out_size=out_size)
    path = profile.save(out / 'profile_measured.json')
    return path, (f'measured here on {engine.device} at {image_size[0]}x{image_size[1]} '
                  f'({path}; pass it as --profile to replay the same latencies)')


def _rate(text) -> float:
    if text == 'auto':
        return None
    try:
        hz = float(text)
    except ValueError:
        hz = float('nan')
    if not hz > 0:
        raise ConfigError(f'--hz must be a positive number or auto, got {text!r}')
    return hz


def run(args) -> int:
    """Measure (or load) the profile, set the budget, build the drive, replay, print."""
    from ..replay import replay, ReplayOptions
    from ..replay.demo import ARRIVAL_DELAY_S, build_drive, source_size, TOP_SPEED_MPS
    from ..replay.demo_budget import calibrate_budget, camera_rate
    from ..replay.policies import build_engine, load_profile
    from ..runtime import PipelineConfig

    if args.frames < 2:
        raise ConfigError(f'--frames must be at least 2, got {args.frames}')
    hz = _rate(args.hz)
    source = None if args.source == 'generated' else Path(args.source)
    out = check_output_folder(args.out)
    image_size = source_size(source, parse_size(args.size))
    profile_arg = args.profile
    args.profile = None if profile_arg == DEMO_TARGET else profile_arg
    config = pipeline_config(args)
    args.profile = profile_arg
    engine = build_engine(config, args.preset)  # fails early, saying how to get a model
    if args.profile and args.profile != DEMO_TARGET:
        load_profile(args.profile, engine)       # a bad file fails before any work
    path, words = _demo_profile(args, engine, config, out, image_size)
    config = replace(config, profile_path=str(path))
    print(f'latency: {words}')
    if args.budget == 'auto':
        calib = calibrate_budget(load_profile(path, engine), config.latency_quantile,
                                 ARRIVAL_DELAY_S, config.budget.output_reserve_s,
                                 TOP_SPEED_MPS)
        params = dict(config.to_params(), **calib.params)
        params.update(_user_params(args))
        config = PipelineConfig.from_params(params)
        print(calib.describe())
        for note in calib.notes:
            print(f'note: {note}')
        hz = hz or camera_rate(calib)
    hz = hz or 30.0
    del engine
    # Only now, with the settings known to be good, replace an earlier drive.
    drive = out / 'drive'
    if drive.exists():
        shutil.rmtree(drive)
    info = build_drive(drive, args.frames, hz, image_size, source, args.labels, args.seed)
    print(f'drive: {drive} ({info["frames"]} frames over {info["duration_s"]:.0f} s at '
          f'{info["hz"]:g} Hz, 0 -> 130 km/h -> 0; frames: {info["source"]})')
    report = out / 'replay'
    summary = replay(ReplayOptions(
        recording=drive, out_dir=report, config=config, preset=args.preset,
        latency=args.latency, write_bag=args.write_bag,
        policies=[p.strip() for p in args.policies.split(',')] if args.policies else [],
        streaming_query=args.streaming_query,
        plots=not args.no_plots, progress=not args.no_progress))
    print_summary(summary, report)
    return 0
