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
"""Replay plots (PNG, matplotlib's Agg backend): the drive over time and quality per policy."""

import logging
from pathlib import Path

import numpy as np

__all__ = ['write_plots']

_LOG = logging.getLogger(__name__)


def _timeline(path: Path, summary: dict, series: list, speeds, t0: float):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 1, figsize=(10, 9), sharex=True)
    if speeds.times:
        st = np.asarray(speeds.times) - t0
        sv = np.asarray([v[0] for v in speeds.values]) * 3.6
        axes[0].plot(st, sv, color='tab:blue')
    axes[0].set_ylabel('speed (km/h)')
    policy = next((p for p in summary['policies'] if p['policy'] == 'speed'),
                  summary['policies'][0])['policy']
    if series:
        arr = np.asarray([(a, s, e, lat if lat is not None else np.nan,
                           b if b is not None else np.nan, r if r is not None else np.nan,
                           bool(m)) for a, s, e, lat, b, r, m in series], dtype=float)
        start = arr[:, 1] - t0
        axes[1].plot(start, arr[:, 4] * 1e3, label='speed budget', color='tab:green')
        axes[1].plot(start, arr[:, 5] * 1e3, label='left at start (age, reserve)',
                     color='tab:olive', alpha=0.7)
        axes[2].step(start, arr[:, 2], where='post', color='tab:purple')
        miss = arr[:, 6] < 0.5
        axes[3].plot(start, arr[:, 3] * 1e3, '.', label='latency', color='tab:red')
        axes[3].plot(start[miss], arr[miss, 3] * 1e3, 'x', color='black',
                     label='deadline missed')
        axes[3].plot(start, arr[:, 5] * 1e3, color='tab:olive', alpha=0.5, label='budget left')
        axes[1].legend(loc='upper right', fontsize=8)
        axes[3].legend(loc='upper right', fontsize=8)
    axes[1].set_ylabel('budget (ms)')
    axes[2].set_ylabel('exit')
    axes[3].set_ylabel('latency (ms)')
    axes[3].set_xlabel('time (s)')
    axes[0].set_title(f'policy {policy}: speed, budget, chosen exit and latency over time')
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _quality(path: Path, summary: dict):
    import matplotlib.pyplot as plt

    rows = summary['policies']
    names = [p['policy'] for p in rows]
    q = [100 * (p['miou'] or 0.0) for p in rows]
    miss = [100 * (p['deadline_miss_rate'] or 0.0) for p in rows]
    drop = [100 * p['dropped'] / max(p['frames'], 1) for p in rows]
    sq = [100 * (p.get('streaming_miou') or 0.0) for p in rows]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6, 1.5 * len(names) + 2), 4))
    name = 'mIoU' if summary['quality_reference'] == 'labels' else 'mIoU vs final exit'
    ax.bar(x - 0.3, sq, 0.2, label=f'streaming {name}')
    ax.bar(x - 0.1, q, 0.2, label=f'per-frame {name}')
    ax.bar(x + 0.1, miss, 0.2, label='deadline miss rate')
    ax.bar(x + 0.3, drop, 0.2, label='frames dropped')
    ax.set_xticks(x)
    ax.set_xticklabels(names)
    ax.set_ylabel('%')
    ax.set_ylim(0, 105)
    ax.set_title('quality and timeliness per policy')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_plots(out_dir, summary: dict, series: list, speeds) -> list:
    """Write ``timeline.png`` and ``quality.png`` into ``out_dir``; return their names."""
    import matplotlib
    matplotlib.use('Agg')

    out = Path(out_dir)
    t0 = min([s[0] for s in series[:1]] + speeds.times[:1] or [0.0])
    _timeline(out / 'timeline.png', summary, series, speeds, t0)
    _quality(out / 'quality.png', summary)
    return ['timeline.png', 'quality.png']
