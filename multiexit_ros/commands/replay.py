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
"""Evaluate a recording offline through the runtime pipeline, comparing exit policies.

Reads a rosbag2 recording (mcap or sqlite3) or a ROS 1 .bag, finds the camera, speed
and label topics (by type, unless given), replays the frames at their recorded times
through the speed-aware policy, every fixed exit and the final exit (frames arriving
while the network is busy are dropped, as on the car), and writes summary.json,
summary.md, frames.jsonl, plots and optionally an mcap with the masks into --out.
"""

from collections import Counter
from pathlib import Path
import sys

from .common import check_output_folder
from ..errors import ConfigError

__all__ = ['add_arguments', 'add_pipeline_arguments', 'pipeline_config', 'print_summary',
           'replay_warnings', 'run']


def add_pipeline_arguments(parser):
    """Model, device, latency and budget options shared by ``replay`` and ``demo``."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--model', help='checkpoint (.safetensors); default: the shipped model')
    group.add_argument('--preset', help='untrained network from a preset (tiny, small, lite0, '
                                        'base, large), for trying the tool without a model')
    parser.add_argument('--device', default='cpu', help='torch device (default cpu)')
    parser.add_argument('--profile', metavar='FILE',
                        help='latency profile of the target device (from `multiexit '
                             'profile`); default: measure one here at start-up')
    parser.add_argument('--latency', choices=('profile', 'measured'), default='profile',
                        help="profile: each frame takes its exit's median from the profile "
                             '(deterministic, network work shared by all policies); '
                             'measured: time every pass (each policy runs its own)')
    parser.add_argument('--config', metavar='YAML',
                        help="pipeline parameters file (the node's, e.g. config/*.yaml)")
    parser.add_argument('--param', action='append', default=[], metavar='NAME=VALUE',
                        help='set one pipeline parameter, e.g. budget.blind_distance_m=2 '
                             '(repeatable)')
    parser.add_argument('--policies', help='comma-separated subset of speed, exit0.., final '
                                           '(default all)')
    parser.add_argument('--streaming-query', choices=('frame', 'deadline'), default='frame',
                        help='streaming quality: score each labelled frame against the mask '
                             'held at its stamp (frame, default) or at its deadline, stamp '
                             '+ speed budget (deadline)')
    parser.add_argument('--no-plots', action='store_true', help='skip the PNG plots')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')


def pipeline_config(args):
    """Build the base PipelineConfig from --config, --param, --model, --device, --profile."""
    import yaml

    from ..runtime import PipelineConfig

    params = PipelineConfig.from_yaml(args.config).to_params() if args.config else {}
    for item in args.param:
        name, sep, value = item.partition('=')
        if not sep:
            raise ConfigError(f'--param needs NAME=VALUE, got {item!r}')
        try:
            params[name.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ConfigError(f'--param {name}: cannot parse {value!r}') from err
    params.update({'model_path': args.model or '', 'device': args.device,
                   'profile_path': args.profile or ''})
    if not str(args.device).startswith('cuda'):
        params['precision'] = 'fp32'
    return PipelineConfig.from_params(params)


def add_arguments(parser):
    """Add this command's arguments."""
    parser.add_argument('recording', help='rosbag2 folder, .mcap, .db3 or ROS 1 .bag')
    parser.add_argument('--out', default=None,
                        help='output folder (default replay_<recording name>)')
    parser.add_argument('--camera-topic', help='camera topic (default: first Image or '
                                               'CompressedImage topic by name)')
    parser.add_argument('--speed-topic', help='speed topic (default: first by name of a '
                                              'supported speed type)')
    parser.add_argument('--label-topic', help='mono8 class-id label topic (default: an Image '
                                              'topic whose name contains "label")')
    parser.add_argument('--no-labels', action='store_true',
                        help='ignore label topics; score against the final exit')
    parser.add_argument('--write-bag', action='store_true',
                        help='also write OUT/replay_bag (mcap) with the mask topics added')
    parser.add_argument('--max-frames', type=int, default=0, help='stop after N frames')
    parser.add_argument('--strict', action='store_true',
                        help='exit 1 (after writing the report) when a warning is given: no '
                             'frame processed, or speed messages rejected')
    add_pipeline_arguments(parser)


def print_summary(summary: dict, out: Path):
    """Print the comparison table and where the outputs are."""
    from ..replay.report import markdown_table
    from ..replay.streaming import streaming_table

    print(f'{summary["frames"]} frames from {summary["topics"]["camera"]}; latency: '
          f'{summary["latency_source"]}')
    print(streaming_table(summary))
    print(markdown_table(summary), end='')
    timing = summary.get('timing', {})
    if timing.get('frames_per_s'):
        print(f'replay: {timing["frames_per_s"]:.1f} frames/s, reading+decoding '
              f'{100 * timing["read_decode_share"]:.0f}% of the time')
    print(f'report: {out / "summary.md"} (per-frame records: {out / "frames.jsonl"})')
    for name in summary['outputs'].get('plots') or []:
        print(f'plot: {out / name}')
    if summary['outputs'].get('bag'):
        print(f'recording with masks: {out / summary["outputs"]["bag"]}')


def run(args) -> int:
    """Replay and print the summary."""
    from ..replay import replay, ReplayOptions

    if args.max_frames < 0:
        raise ConfigError(f'--max-frames must be >= 0, got {args.max_frames}')
    recording = Path(args.recording)
    out = check_output_folder(args.out or f'replay_{recording.stem or recording.name}')
    policies = [p.strip() for p in args.policies.split(',') if p.strip()] \
        if args.policies else []
    summary = replay(ReplayOptions(
        recording=recording, out_dir=out, config=pipeline_config(args), preset=args.preset,
        camera_topic=args.camera_topic, speed_topic=args.speed_topic,
        label_topic='' if args.no_labels else args.label_topic, latency=args.latency,
        policies=policies, write_bag=args.write_bag, max_frames=args.max_frames,
        streaming_query=args.streaming_query,
        plots=not args.no_plots, progress=not args.no_progress))
    print_summary(summary, out)
    problems = replay_warnings(summary)
    for line in problems:
        print(f'multiexit replay: warning: {line}', file=sys.stderr)
    return 1 if problems and args.strict else 0


def replay_warnings(summary: dict) -> list:
    """Return one line per outcome the user must not miss in a successful replay."""
    lines = []
    frames = summary['frames']
    if frames and not any(p['processed'] for p in summary['policies']):
        reasons = Counter()
        for p in summary['policies']:
            reasons.update(p.get('reasons') or {})
        why = '; '.join(f'{n} x {r}' for r, n in reasons.most_common(3))
        lines.append(f'no frame was processed: every policy rejected or dropped all {frames} '
                     f'frames ({why})')
    speeds = summary.get('speeds') or {}
    if speeds.get('rejected'):
        why = ', '.join(f'{k}: {n}' for k, n in sorted(speeds['reasons'].items()))
        lines.append(f'{speeds["rejected"]} of {speeds["messages"]} speed messages were '
                     f'rejected ({why}); the last good speed was kept')
    return lines
