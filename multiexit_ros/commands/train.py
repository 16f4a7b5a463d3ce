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
"""Train a multi-exit network with block-dependent losses (torchrun-ready).

Settings come from a YAML file (--config), then the explicit flags below, then
``--set section.key=value`` overrides (e.g. ``--set routing.window=3``). Run on several
GPUs or processes with ``torchrun --nproc_per_node=N -m multiexit_ros train ...``.
"""

from .common import check_output_folder

# Explicit flags and the config keys they set.
FLAGS = {
    'preset': 'model', 'dataset': 'data.dataset', 'data': 'data.root',
    'strategy': 'routing.name', 'window': 'routing.window', 'groups': 'routing.groups',
    'num_groups': 'routing.num_groups', 'distill': 'routing.distill',
    'temperature': 'routing.temperature', 'steps': 'optim.steps',
    'batch_size': 'optim.batch_size', 'lr': 'optim.lr', 'out': 'run.out',
    'device': 'run.device', 'val_every': 'run.val_every', 'routing_mode': 'run.routing_mode',
}


def add_arguments(parser):
    """Add this command's arguments."""
    parser.add_argument('--config', help='YAML config file (see config/train/)')
    parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                        help='override a config key, e.g. optim.lr=0.02 (repeatable)')
    parser.add_argument('--preset', help='model preset (tiny, small, lite0, base, large)')
    parser.add_argument('--dataset', help='camvid, cityscapes, folder, generated or a mix '
                                          'such as camvid+generated')
    parser.add_argument('--data', help='dataset folder')
    parser.add_argument('--strategy', choices=['joint', 'local', 'grouped', 'overlap'],
                        help="which blocks each exit's loss trains: joint (0..k), local (k), "
                             'grouped (its group), overlap (the last --window blocks)')
    parser.add_argument('--window', type=int, help='overlap window s')
    parser.add_argument('--groups', help='explicit block groups, e.g. 0-1,2-4, or a named '
                        'split: late (later groups larger) or authors (earlier larger)')
    parser.add_argument('--num-groups', type=int, help='number of equal block groups')
    parser.add_argument('--include-final', action='store_true', default=None,
                        help='the final exit trains every block')
    parser.add_argument('--distill', type=float, help='self-distillation weight lambda')
    parser.add_argument('--temperature', type=float, help='distillation temperature T')
    parser.add_argument('--steps', type=int, help='optimizer steps')
    parser.add_argument('--batch-size', type=int, help='batch size per process')
    parser.add_argument('--lr', type=float, help='peak learning rate')
    parser.add_argument('--val-every', type=int, help='validate and save every N steps')
    parser.add_argument('--routing-mode', choices=['gate', 'rerun'],
                        help='routing implementation (gate: one forward pass)')
    parser.add_argument('--out', help='output folder (checkpoints, state, metrics)')
    parser.add_argument('--device', help='auto, cpu, cuda, cuda:N')
    parser.add_argument('--no-resume', action='store_true',
                        help='start over even if the output folder holds a training state')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--print-config', action='store_true',
                        help='print the resolved config and exit')


def overrides(args) -> list:
    """Return the ``key=value`` overrides given by explicit flags and ``--set``, in order."""
    import yaml

    items = []
    for flag, key in FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            # As YAML reads them back: str(1e-05) would be read as text, not a number.
            items.append(f'{key}={_quote(value)}' if isinstance(value, str) else
                         f'{key}={yaml.safe_dump(value).splitlines()[0]}')
    if args.include_final:
        items.append('routing.include_final=true')
    return items + list(args.set)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def run(args) -> int:
    """Train."""
    import yaml

    from ..train.config import load_config
    from ..train.trainer import LAST, train

    config = load_config(args.config, overrides(args))
    if args.print_config:
        print(yaml.safe_dump(config.to_dict(), sort_keys=False), end='')
        return 0
    check_output_folder(config.run.out)
    metrics = train(config, resume=not args.no_resume, progress=not args.no_progress)
    import os
    if int(os.environ.get('RANK', '0')) == 0 and metrics:
        print(f'checkpoint: {config.run.out}/{LAST}')
        print('val mIoU per exit: ' + ' '.join(
            '-' if v is None else f'{v:.4f}' for v in metrics['miou']))
    return 0
