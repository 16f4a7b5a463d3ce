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
"""Loss routing of Han et al. (IEEE TNNLS 2023): which blocks each exit's loss may train.

A strategy is a :class:`RoutingStrategy`; :meth:`RoutingStrategy.reach` gives the exact
reach matrix ``R[k][b]`` (exit ``k``'s loss reaches block ``b``). Blocks and exits are
numbered from 0; exit ``k`` reads block ``k``. Every reach set is a contiguous range of
blocks ending at ``k``, so a strategy is fully described by the first block each exit
reaches (:meth:`RoutingStrategy.starts`):

- ``joint``: blocks ``0..k`` (the conventional multi-exit loss);
- ``local``: block ``k`` only;
- ``grouped``: consecutive blocks in disjoint groups; exit ``k`` reaches the blocks of
  its group up to ``k``. Groups are explicit (``[[0, 1], [2, 3, 4]]`` or ``'0-1,2-4'``),
  or ``num_groups`` near-equal groups, the later ones larger (``groups: late``, the
  default) or the earlier ones larger (``groups: authors``, the split of the authors'
  public code: 5 blocks as ``[0, 1, 2], [3, 4]``);
- ``overlap`` with window ``s``: blocks ``max(0, k-s+1)..k``;
- ``include_final``: the final exit reaches every block, whatever the strategy.

Each head is trained by its own exit only. Self-distillation (``distill`` > 0) adds
``distill * KL(softmax(z_last / T) || softmax(z_k / T))`` to exit ``k``'s loss with the
last exit's logits detached, so it follows the same routing.
"""

from dataclasses import asdict, dataclass, fields
import math

from ..errors import ConfigError

__all__ = ['GROUPINGS', 'NAMES', 'RoutingStrategy']

NAMES = ('joint', 'local', 'grouped', 'overlap')
# Named splits into num_groups near-equal groups: which groups get the extra blocks.
GROUPINGS = ('late', 'authors')


def _parse_groups(value) -> tuple:
    """Turn ``[[0, 1], [2, 3, 4]]`` or ``'0-1,2-4'`` into a tuple of tuples.

    A named split (:data:`GROUPINGS`) stays a string; :meth:`RoutingStrategy.group_list`
    resolves it once the number of blocks is known.
    """
    if isinstance(value, str) and value.strip() in GROUPINGS:
        return value.strip()
    if isinstance(value, str):
        out = []
        for part in filter(None, (p.strip() for p in value.split(','))):
            lo, _, hi = part.partition('-')
            try:
                out.append(tuple(range(int(lo), int(hi or lo) + 1)))
            except ValueError:
                raise ConfigError(f'routing groups: cannot read {part!r} (use e.g. 0-1,2-4)')
        return tuple(out)
    try:
        return tuple(tuple(int(b) for b in g) for g in value)
    except (TypeError, ValueError):
        raise ConfigError(f'routing groups must be lists of block indices, got {value!r}')


@dataclass(frozen=True)
class RoutingStrategy:
    """A named loss-routing strategy with its loss options."""

    name: str = 'joint'          # joint | local | grouped | overlap
    groups: tuple = ()           # grouped: explicit groups of block indices, or late|authors
    num_groups: int = 2          # grouped, when groups is empty: this many near-equal groups
    window: int = 2              # overlap: how many blocks (s) each exit's loss reaches
    include_final: bool = False  # the final exit also trains every block
    weights: tuple = ()          # per-exit loss weights; empty means 1 for every exit
    distill: float = 0.0         # self-distillation weight lambda; 0 turns it off
    temperature: float = 1.0     # distillation temperature T (no T^2 factor, as the authors)

    def __post_init__(self):
        object.__setattr__(self, 'groups', _parse_groups(self.groups))
        if isinstance(self.groups, str) and self.name != 'grouped':
            raise ConfigError(f'routing groups {self.groups!r} need the grouped strategy')
        object.__setattr__(self, 'weights', tuple(float(w) for w in self.weights))
        if self.name not in NAMES:
            raise ConfigError(f'unknown routing strategy {self.name!r}; choose one of {NAMES}')
        if self.window < 1:
            raise ConfigError(f'routing window must be >= 1, got {self.window}')
        if self.num_groups < 1:
            raise ConfigError(f'routing num_groups must be >= 1, got {self.num_groups}')
        if self.distill < 0 or not math.isfinite(self.distill):
            raise ConfigError(f'routing distill weight must be >= 0, got {self.distill}')
        if not self.temperature > 0:
            raise ConfigError(f'routing temperature must be > 0, got {self.temperature}')
        if any(not w >= 0 or not math.isfinite(w) for w in self.weights):
            raise ConfigError(f'routing weights must be finite and >= 0, got {self.weights}')

    def group_list(self, num_exits: int) -> tuple:
        """Blocks of each group (grouped strategy), validated against ``num_exits``."""
        if self.groups and not isinstance(self.groups, str):
            flat = [b for g in self.groups for b in g]
            if flat != list(range(num_exits)) or not all(self.groups):
                raise ConfigError(
                    f'routing groups {[list(g) for g in self.groups]} must split blocks '
                    f'0..{num_exits - 1} into non-empty consecutive groups, in order')
            return self.groups
        if self.num_groups > num_exits:
            raise ConfigError(f'routing: {self.num_groups} groups for only {num_exits} blocks')
        base, extra = divmod(num_exits, self.num_groups)
        sizes = [base] * (self.num_groups - extra) + [base + 1] * extra  # later ones larger
        if self.groups == 'authors':
            sizes.reverse()
        out, start = [], 0
        for size in sizes:
            out.append(tuple(range(start, start + size)))
            start += size
        return tuple(out)

    def starts(self, num_exits: int) -> list:
        """First block each exit's loss reaches; exit ``k`` reaches ``starts[k]..k``."""
        n = num_exits
        if self.name == 'joint':
            out = [0] * n
        elif self.name == 'local':
            out = list(range(n))
        elif self.name == 'overlap':
            out = [max(0, k - self.window + 1) for k in range(n)]
        else:
            out = [g[0] for g in self.group_list(n) for _ in g]
        if self.include_final:
            out[-1] = 0
        return out

    def reach(self, num_exits: int) -> list:
        """Reach matrix: ``R[k][b]`` is True when exit ``k``'s loss trains block ``b``."""
        starts = self.starts(num_exits)
        return [[starts[k] <= b <= k for b in range(num_exits)] for k in range(num_exits)]

    def exit_weights(self, num_exits: int) -> list:
        """Loss weight of every exit."""
        if not self.weights:
            return [1.0] * num_exits
        if len(self.weights) != num_exits:
            raise ConfigError(f'routing: {len(self.weights)} weights for {num_exits} exits')
        return list(self.weights)

    def trained_exits(self, num_exits: int) -> int:
        """How many exits training runs: up to the last one with a weight above 0.

        With weights ``[1, 0, 0, 0, 0]`` only block 0 and head 0 are trained (and run):
        the "exit 0 alone" ceiling of what any routing can give that exit.
        """
        weights = self.exit_weights(num_exits)
        return max(k for k, w in enumerate(weights) if w > 0) + 1

    def validate(self, num_exits: int) -> 'RoutingStrategy':
        """Check that the strategy fits a network of ``num_exits`` exits; returns self."""
        self.starts(num_exits)
        weights = self.exit_weights(num_exits)
        if not any(w > 0 for w in weights):
            raise ConfigError('routing weights are all 0: no exit would be trained')
        if self.distill and weights[-1] == 0:
            raise ConfigError('routing: self-distillation needs the final exit trained '
                              '(its weight is 0)')
        return self

    def to_dict(self) -> dict:
        """JSON-ready dictionary (stored in checkpoints)."""
        d = asdict(self)
        d['groups'] = (self.groups if isinstance(self.groups, str)
                       else [list(g) for g in self.groups])
        d['weights'] = list(self.weights)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> 'RoutingStrategy':
        """Build from a mapping such as a YAML section; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f'routing: unknown keys {unknown} (known: {sorted(known)})')
        try:
            return cls(**data)
        except (TypeError, ValueError) as err:
            raise ConfigError(f'routing: {err}') from err

    def describe(self, num_exits: int) -> str:
        """One line such as ``overlap s=2, include_final: exit k <- blocks [0-0, 0-1, ...]``."""
        extra = {'overlap': f' s={self.window}',
                 'grouped': f' groups={[list(g) for g in self.group_list(num_exits)]}'
                 if self.name == 'grouped' else ''}.get(self.name, '')
        flags = (', include_final' if self.include_final else '') + (
            f', distill {self.distill} T={self.temperature}' if self.distill else '')
        spans = ', '.join(f'{a}-{k}' for k, a in enumerate(self.starts(num_exits)))
        return f'{self.name}{extra}{flags}: exit k trains blocks [{spans}]'
