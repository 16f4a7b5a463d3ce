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
"""Replay outputs: per-frame records (JSONL), the summary (JSON and a markdown table)."""

import json
import os
from pathlib import Path

__all__ = ['FrameLog', 'markdown_table', 'write_summary']


class FrameLog:
    """Per-frame records, one JSON object per line, flushed as they come.

    Written incrementally so that an interrupted replay keeps what it did.
    """

    def __init__(self, path):
        """Open ``path`` for writing."""
        self.path = Path(path)
        self._f = open(self.path, 'w', encoding='utf-8')

    def write(self, record: dict):
        """Append one record."""
        self._f.write(json.dumps(record, separators=(',', ':')) + '\n')

    def close(self):
        """Flush and close."""
        self._f.close()


def _fmt(value, spec='.1f', scale=1.0, suffix=''):
    return '-' if value is None else f'{value * scale:{spec}}{suffix}'


def markdown_table(summary: dict) -> str:
    """Return the per-policy comparison as a markdown table."""
    quality = summary.get('quality_reference', 'labels')
    qname = 'mIoU' if quality == 'labels' else 'mIoU vs final'
    lines = [f'| policy | processed | dropped | rejected | deadline miss | exits | '
             f'latency p50 / p99 (ms) | {qname} | pixel acc |',
             '| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |']
    for p in summary['policies']:
        hist = ' '.join(str(n) for n in p['exit_histogram'])
        lines.append(
            f'| {p["policy"]} | {p["processed"]} | {p["dropped"]} | {p["rejected"]} | '
            f'{_fmt(p["deadline_miss_rate"], ".1f", 100, "%")} | {hist} | '
            f'{_fmt(p["latency_p50_ms"])} / {_fmt(p["latency_p99_ms"])} | '
            f'{_fmt(p["miou"], ".1f", 100, "%")} | '
            f'{_fmt(p["pixel_accuracy"], ".1f", 100, "%")} |')
    return '\n'.join(lines) + '\n'


def _speed_line(speeds) -> str:
    """Say how many speed messages there were and how many were rejected, and why."""
    if not speeds:
        return '- speed messages: none'
    why = ', '.join(f'{k}: {n}' for k, n in sorted(speeds['reasons'].items()))
    return (f'- speed messages: {speeds["messages"]}, rejected {speeds["rejected"]}'
            + (f' ({why})' if why else ''))


def _atomic_write(path: Path, text: str):
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(text, encoding='utf-8')
    os.replace(tmp, path)


def write_summary(out_dir, summary: dict) -> tuple:
    """Write ``summary.json`` and ``summary.md`` into ``out_dir`` (atomically).

    Returns:
        (json path, markdown path).
    """
    out = Path(out_dir)
    js, md = out / 'summary.json', out / 'summary.md'
    _atomic_write(js, json.dumps(summary, indent=2) + '\n')
    ref = ('labels on ' + summary['topics']['label']
           if summary.get('quality_reference') == 'labels'
           else 'agreement with the final exit (the recording has no label topic)')
    head = [f'# Replay of {summary["recording"]}', '',
            f'- frames: {summary["frames"]} on {summary["topics"]["camera"]}; speed from '
            f'{summary["topics"]["speed"] or "nowhere (no speed topic)"}',
            f'- latency: {summary["latency_source"]}',
            _speed_line(summary.get('speeds')),
            f'- quality: {ref}',
            f'- model: {summary["model"]}; device {summary["device"]}', '',
            'Every frame is processed, dropped (replaced in the one-slot buffer while the '
            'network was busy) or rejected. Deadline misses are counted over processed '
            'frames; exits lists how many frames ran each exit (0 first).', '', '']
    if summary.get('complete') is False:
        head[1:1] = ['', f'**Incomplete**: the replay stopped after {summary["frames"]} frames '
                         f'({summary.get("stopped")}).']
    from .streaming import streaming_table
    _atomic_write(md, '\n'.join(head) + streaming_table(summary) + '\n'
                  + markdown_table(summary))
    return js, md
