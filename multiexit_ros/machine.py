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
"""The machine a measurement ran on, and the writing of benchmark results."""

import json
import os
from pathlib import Path
import platform

__all__ = ['machine_info', 'write_results']


def _cpu_model() -> str:
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


def machine_info() -> dict:
    """Host, CPU, core count, Python, PyTorch and GPU (when present) as a dictionary."""
    info = {
        'hostname': platform.node(),
        'platform': platform.platform(),
        'cpu': _cpu_model(),
        'cores': os.cpu_count(),
        'python': platform.python_version(),
    }
    try:
        import torch
    except ImportError:
        return info
    info['torch'] = torch.__version__
    info['torch_threads'] = torch.get_num_threads()
    if torch.cuda.is_available():
        info['gpu'] = torch.cuda.get_device_name(0)
        info['cuda'] = torch.version.cuda
    return info


def write_results(out_dir, stem: str, results: dict, markdown: str) -> Path:
    """Write ``<stem>.json`` and ``<stem>.md`` into ``out_dir`` (created if needed).

    Each file is written beside its target and renamed over it, so an interrupted
    benchmark never leaves half a results file.

    Returns:
        The path of the JSON file.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for suffix, text in (('.json', json.dumps(results, indent=2) + '\n'),
                         ('.md', markdown.rstrip('\n') + '\n')):
        tmp = out / f'{stem}{suffix}.tmp'
        tmp.write_text(text, encoding='utf-8')
        tmp.replace(out / f'{stem}{suffix}')
    return out / f'{stem}.json'
