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
"""The ``multiexit`` command-line tool (also ``python -m multiexit_ros``).

Each subcommand lives in ``multiexit_ros.commands.<name>`` and provides
``add_arguments(parser)`` and ``run(args) -> int``; heavy imports (PyTorch) happen
inside ``run`` so that ``multiexit --help`` stays quick.
"""

import argparse
import importlib
import logging
import sys

from . import __version__
from .errors import MissingDependencyError, MultiExitError

__all__ = ['COMMANDS', 'build_parser', 'main']

# name: help line. The module multiexit_ros.commands.<name> implements it.
COMMANDS = {
    'info': 'per-exit parameters, FLOPs and network latency of a model',
    'profile': 'measure and write the per-exit latency profile the runtime plans with',
    'replay': 'evaluate a recording (rosbag2 / ROS 1) offline, comparing exit policies',
    'demo': 'generate a drive recording and replay it with the shipped model (CPU)',
    'train': 'train a multi-exit network with block-dependent losses',
    'evaluate': 'per-exit mIoU, pixel accuracy, per-class IoU and latency on a dataset',
    'export': 'export a model to ONNX (one graph per block and exit head), checked',
}


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog='multiexit',
        description='Speed-aware anytime semantic segmentation: training, evaluation, '
                    'latency profiling and rosbag2 replay.')
    parser.add_argument('--version', action='version', version=f'%(prog)s {__version__}')
    parser.add_argument('-v', '--verbose', action='store_true', help='debug logging')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    for name, help_line in COMMANDS.items():
        module = importlib.import_module(f'{__package__}.commands.{name}')
        cmd = sub.add_parser(name, help=help_line, description=module.__doc__)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def _one_line(err: MultiExitError) -> str:
    """Return the error's message on one line.

    An error raised in a DataLoader worker comes back with torch's traceback of the worker
    in its message; its last line is the original message.
    """
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    origin = f'{type(err).__module__}.{type(err).__name__}: '
    if len(lines) > 1 and lines[-1].startswith(origin):
        return lines[-1][len(origin):]
    return ' '.join(lines)


def main(argv=None) -> int:
    """Run the tool; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format='%(levelname)s %(name)s: %(message)s')
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except MultiExitError as err:
        print(f'multiexit {args.command}: error: {_one_line(err)}', file=sys.stderr)
        return 1
    except ModuleNotFoundError as err:
        missing = MissingDependencyError.from_import(err)
        if missing is None:
            raise
        print(f'multiexit {args.command}: error: {missing}', file=sys.stderr)
        return 1
    except OSError as err:  # a file or folder that cannot be read or written
        where = f': {err.filename}' if err.filename else ''
        print(f'multiexit {args.command}: error: {err.strerror or err}{where}', file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        note = f'; {err}' if str(err) else ''  # e.g. what an interrupted replay kept
        print(f'multiexit {args.command}: interrupted{note}', file=sys.stderr)
        return 130
