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
"""Replay throughput on a 720p recording: reading+decoding alone vs the full replay.

Generates a 1280x720 drive (rosbag2 mcap; raw rgb8 and JPEG CompressedImage) in a
temporary folder, then, side by side in one run, measures frames per second of
(1) reading and decoding the camera frames only and (2) the full replay (every policy,
network work shared, latencies from a profile) with an untrained network of the shipped
architecture on the CPU (or --device cuda). Writes results/replay_throughput_<device>.*.

Usage: python bench/replay_throughput.py [--frames 40] [--preset small] [--device cpu]
"""

import argparse
import logging
import os
from pathlib import Path
import tempfile
import time

from multiexit_ros import messages
from multiexit_ros.machine import machine_info, write_results
from multiexit_ros.replay import Recording, RecordingWriter, replay, ReplayOptions
from multiexit_ros.runtime import LatencyProfile, PipelineConfig

SIZE = (720, 1280)


def make_recording(path: Path, n: int, compressed: bool):
    from multiexit_ros.data.synthetic import render_sequence

    with RecordingWriter(path, 'mcap') as bag:
        topic = '/camera/image_raw' + ('/compressed' if compressed else '')
        bag.add_topic(topic, 'sensor_msgs/msg/' + ('CompressedImage' if compressed else 'Image'))
        bag.add_topic('/vehicle/speed', 'std_msgs/msg/Float32')
        for i, (rgb, _) in enumerate(render_sequence(3, n, *SIZE, speed_mps=15.0, fps=10.0)):
            t = 100.0 + i / 10
            bag.write('/vehicle/speed', int(t * 1e9) - 1000,
                      bag.types['std_msgs/msg/Float32'](data=float(3 * i % 40)))
            msg = bag.compressed(rgb, t) if compressed else bag.image(rgb, 'rgb8', t)
            bag.write(topic, int(t * 1e9), msg)
    return path


def read_decode(path: Path) -> float:
    """Frames per second of reading + deserializing + decoding the camera topic."""
    with Recording(path) as rec:
        conn_types = rec.topics
        camera = next(t for t, ty in conn_types.items() if ty.startswith('sensor_msgs'))
        t0, n = time.perf_counter(), 0
        for conn, _, raw in rec.raw_messages([camera]):
            msg = rec.deserialize(conn, raw)
            image = (messages.image_to_array(msg) if conn.msgtype.endswith('/Image')
                     else messages.compressed_to_array(msg))
            assert image.shape[:2] == SIZE
            n += 1
        return n / (time.perf_counter() - t0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=40)
    parser.add_argument('--preset', default='small')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out', default=str(Path(__file__).parent / 'results'))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results = {'benchmark': 'replay_throughput', 'size': list(SIZE), 'frames': args.frames,
               'preset': args.preset, 'device': args.device, 'machine': machine_info(),
               'date': time.strftime('%Y-%m-%d %H:%M:%S'), 'rows': [],
               'load_average_at_start': os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        profile = LatencyProfile.from_samples([[0.01 * (k + 1)] for k in range(5)],
                                              device='cuda:0').save(tmp / 'profile.json')
        for kind in ('rgb8', 'jpeg'):
            bag = make_recording(tmp / kind, args.frames, kind == 'jpeg')
            size_mb = sum(p.stat().st_size for p in bag.iterdir()) / 1e6
            decode_fps = read_decode(bag)
            config = PipelineConfig(device=args.device, precision='fp32',
                                    profile_path=str(profile))
            summary = replay(ReplayOptions(recording=bag, out_dir=tmp / f'out_{kind}',
                                           config=config, preset=args.preset, plots=False,
                                           progress=False))
            timing = summary['timing']
            row = {'encoding': kind, 'recording_mb': round(size_mb, 1),
                   'read_decode_fps': round(decode_fps, 1),
                   'replay_fps': round(timing['frames_per_s'], 2),
                   'replay_read_decode_share': round(timing['read_decode_share'], 4),
                   'policies': len(summary['policies']),
                   'exit_heads_per_frame': timing['exit_heads_run'] / summary['frames']}
            results['rows'].append(row)
            print(row)
    lines = [f'# Replay throughput, {SIZE[1]}x{SIZE[0]} mcap, {args.frames} frames, '
             f'{args.preset} preset on {args.device}', '',
             f'Machine: {results["machine"]}; load average at start '
             f'{results["load_average_at_start"][0]:.1f} (other jobs share the cores, so '
             f'absolute rates vary; the ratio within one row is what this measures)', '',
             'Reading+decoding alone vs the full replay (all policies, network work shared, '
             'latency from a profile), measured side by side in one run.', '',
             '| camera encoding | recording MB | read+decode frames/s | full replay frames/s '
             '| read+decode share of the replay | ratio |',
             '| --- | ---: | ---: | ---: | ---: | ---: |']
    for r in results['rows']:
        lines.append(f'| {r["encoding"]} | {r["recording_mb"]} | {r["read_decode_fps"]} | '
                     f'{r["replay_fps"]} | {100 * r["replay_read_decode_share"]:.1f}% | '
                     f'{r["read_decode_fps"] / r["replay_fps"]:.0f}x |')
    stem = f'replay_throughput_{args.device.split(":")[0]}'
    path = write_results(args.out, stem, results, '\n'.join(lines))
    print(f'wrote {path} and .md')


if __name__ == '__main__':
    main()
