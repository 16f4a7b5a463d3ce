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
"""Replay the demo drive with engine.backend torch and onnxruntime and compare the masks.

Builds the demo drive (``multiexit demo``, shipped model, demo-target profile), then
runs ``multiexit replay DRIVE --profile P --write-bag --param engine.backend=B`` for
both backends (profile latencies: the same exits are chosen, so the masks compare frame
by frame) and compares the ``/multiexit/mask`` messages of the two output bags: pixel
agreement per frame, and the exits each replay chose.

Usage: python bench/replay_parity.py [--frames 300] [--work /tmp/replay_parity]
"""

import argparse
import json
from pathlib import Path
import sys
import time

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from multiexit_ros.cli import main as cli  # noqa: E402
from multiexit_ros.machine import machine_info, write_results  # noqa: E402
from multiexit_ros.replay.outbag import MASK_TOPIC  # noqa: E402
from multiexit_ros.replay.recording import Recording  # noqa: E402


def masks(bag) -> list:
    """Return the mask images of an output bag, in recorded order."""
    with Recording(bag) as rec:
        return [np.frombuffer(bytes(m.data), np.uint8).reshape(m.height, m.width)
                for _, _, m in rec.messages([MASK_TOPIC])]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--frames', type=int, default=300)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--work', default='/tmp/multiexit_replay_parity')
    parser.add_argument('--out', default=str(ROOT / 'bench' / 'results'))
    args = parser.parse_args(argv)
    work = Path(args.work)
    common = ['--no-plots', '--no-progress']
    if cli(['demo', '--out', str(work / 'demo'), '--frames', str(args.frames), '--profile',
            'demo-target', '--param', 'engine.backend=torch', *common]) != 0:
        return 1
    profile = work / 'demo' / 'demo_target_profile.json'
    got, seconds = {}, {}
    for backend in ('torch', 'onnxruntime'):
        out = work / backend
        t0 = time.perf_counter()
        if cli(['replay', str(work / 'demo' / 'drive'), '--profile', str(profile), '--out',
                str(out), '--write-bag', '--param', f'engine.backend={backend}', '--param',
                f'engine.threads={args.threads}', *common]) != 0:
            return 1
        seconds[backend] = time.perf_counter() - t0
        got[backend] = masks(out / 'replay_bag')
        got[backend + '_summary'] = json.loads((out / 'summary.json').read_text())
    a, b = got['torch'], got['onnxruntime']
    per_frame = [float((x == y).mean()) for x, y in zip(a, b)]
    result = {'frames': args.frames, 'masks': [len(a), len(b)], 'threads': args.threads,
              'pixel_agreement': float(np.mean(per_frame)) if per_frame else None,
              'worst_frame_agreement': min(per_frame) if per_frame else None,
              'identical_frames': sum(v == 1.0 for v in per_frame),
              'replay_seconds': seconds, 'machine': machine_info()}
    md = '\n'.join([
        '# The demo drive replayed with engine.backend torch and onnxruntime', '',
        f'`python bench/replay_parity.py --frames {args.frames} --threads {args.threads}`: '
        'shipped model, demo drive, demo-target profile (profile latencies: both replays '
        'choose the same exits), masks of the speed policy from each `--write-bag`.', '',
        '| masks (torch, onnxruntime) | pixel agreement | worst frame | identical frames | '
        'replay s (torch, onnxruntime) |', '|---|---|---|---|---|',
        f'| {len(a)}, {len(b)} | {result["pixel_agreement"]:.5%} | '
        f'{result["worst_frame_agreement"]:.5%} | {result["identical_frames"]} | '
        f'{seconds["torch"]:.0f}, {seconds["onnxruntime"]:.0f} |', '',
        f'Machine: {result["machine"]}'])
    print(md)
    write_results(args.out, 'replay_parity_cpu', result, md)
    return 0 if len(a) == len(b) and result['pixel_agreement'] >= 0.999 else 1


if __name__ == '__main__':
    sys.exit(main())
