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
"""Bilinear upsampling of logits fused with argmax, on the CPU, without full-size logits.

The reference mask is ``F.interpolate(logits, size, mode='bilinear',
align_corners=False)`` followed by an argmax over classes. At a 720p camera that builds
11 full-resolution float planes (40 MB) only to keep one byte per pixel. This module
gives the same mask from the low-resolution logits directly.

Why it is exact. With ``align_corners=False`` the output pixel ``o`` of an axis reads
the source position ``s = (o + 0.5) * in / out - 0.5`` (clamped at 0), between the
source indices ``i0 = floor(s)`` and ``i1 = min(i0 + 1, in - 1)`` with weights
``1 - (s - i0)`` and ``s - i0``. Every output pixel is therefore a convex combination
of the logit vectors at the four corners of one low-resolution *cell* ``(i0, j0)``.
If class ``c`` beats every other class at all four corners, it beats them at every
convex combination, so the whole cell's pixels are ``c``: those cells are filled from
a class map by two cheap gathers (columns of the low-resolution rows, then rows).
Only cells whose corners disagree are evaluated pixel by pixel, and only for the
classes that can win there (class ``k`` is dropped when its largest corner value is
below the largest smallest-corner value of any class, a bound it cannot pass).

Rounding. A corner only counts as agreeing when its winner leads every other class by
a margin well above float32 rounding (``_REL_TOL`` times the largest logit magnitude),
so the filled cells equal the reference for any order of float operations. In the
evaluated cells the winner is decided on differences of logits (one bilinear plane per
candidate beyond the first), not on each class's own interpolated logit; the two agree
except where two classes are equal to within float32 rounding, where PyTorch's own
NCHW and channels-last kernels also disagree with each other (their interpolated
values differ in the last bits). Exact ties go to the lowest class index, as argmax.

Buffers. Index tables for one (logit size, output size) pair are computed once and
cached (:class:`UpsamplePlan`); the returned mask is a fresh array unless the caller
passes ``out``.
"""

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

__all__ = ['UpsampleArgmax', 'UpsamplePlan', 'axis_table', 'reference_mask']

# A corner's winner must lead by this fraction of the largest |logit| (about 32 float32
# ulps at that magnitude), far above what a few multiply-adds can round away.
_REL_TOL = 2.0 ** -18
_FILL = 255  # class map value of a cell that must be evaluated (class ids are < 255)


def reference_mask(logits: torch.Tensor, size) -> torch.Tensor:
    """Return the reference mask: ``F.interpolate`` (bilinear) then argmax, uint8 (H, W)."""
    import torch.nn.functional as F

    up = F.interpolate(logits, size=tuple(size), mode='bilinear', align_corners=False)
    return up[0].max(0).indices.to(torch.uint8)


def axis_table(n_in: int, n_out: int) -> tuple:
    """Source indices and weights of one axis, as bilinear ``align_corners=False``.

    Returns:
        ``(i0, i1, w1)``: int64 arrays of the two source indices of each output index
        and the float32 weight of ``i1`` (the weight of ``i0`` is ``1 - w1``).
    """
    o = np.arange(n_out, dtype=np.float32)
    scale = np.float32(n_in) / np.float32(n_out)
    src = (o + np.float32(0.5)) * scale - np.float32(0.5)
    src = np.maximum(src, np.float32(0.0))
    i0 = np.minimum(src.astype(np.int64), n_in - 1)
    w1 = (src - i0.astype(np.float32)).astype(np.float32)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1[i1 == i0] = 0.0  # the last source index: no neighbour, value of i0 itself
    return i0, i1, w1


def _chunks(i0: np.ndarray, limit: int) -> tuple:
    """Split output indices into runs of one source cell of at most ``limit`` indices.

    Returns:
        ``(cell, index)``: the source cell of each run, and its output indices padded
        to ``limit`` by repeating the run's last index (int64, shape (runs, limit)).
    """
    n = len(i0)
    starts = [0]
    for o in range(1, n):
        if i0[o] != i0[o - 1] or o - starts[-1] >= limit:
            starts.append(o)
    ends = starts[1:] + [n]
    index = np.empty((len(starts), limit), np.int64)
    for r, (a, b) in enumerate(zip(starts, ends)):
        index[r, :b - a] = np.arange(a, b)
        index[r, b - a:] = b - 1
    return i0[np.asarray(starts)], index


@dataclass
class UpsamplePlan:
    """Index tables of one (logit size, output size) pair (see :func:`axis_table`)."""

    rows: tuple          # (i0, i1, w1) of the rows
    cols: tuple          # (i0, i1, w1) of the columns
    row_cell: np.ndarray  # source row of each row run
    row_index: np.ndarray  # (runs, R) output rows of each run, padded
    col_cell: np.ndarray
    col_index: np.ndarray
    row_base: np.ndarray  # row_index * W: flat offsets of the output rows
    row_w0: np.ndarray    # (runs, R) weights of the upper source row, per output row
    row_w1: np.ndarray    # (runs, R) weights of the lower source row
    col_w0: np.ndarray    # (runs, C) weights of the left source column
    col_w1: np.ndarray    # (runs, C) weights of the right source column
    row_next: np.ndarray  # (h,) the source row below each source row (clamped)
    col_next: np.ndarray  # (w,)
    scratch: np.ndarray   # (h, W) uint8, class map gathered along the columns

    @classmethod
    def build(cls, in_size, out_size) -> 'UpsamplePlan':
        """Tables for logits of ``in_size`` (h, w) upsampled to ``out_size`` (H, W)."""
        (h, w), (H, W) = in_size, out_size
        rows, cols = axis_table(h, H), axis_table(w, W)
        # Runs at most the nominal cell size long: the first and last cells also hold
        # the clamped border pixels, which would otherwise pad every evaluated block.
        row_cell, row_index = _chunks(rows[0], max(1, -(-H // h)))
        col_cell, col_index = _chunks(cols[0], max(1, -(-W // w)))
        row_w1, col_w1 = rows[2][row_index], cols[2][col_index]
        return cls(rows, cols, row_cell, row_index, col_cell, col_index, row_index * W,
                   1 - row_w1, row_w1, 1 - col_w1, col_w1,
                   np.minimum(np.arange(h) + 1, h - 1), np.minimum(np.arange(w) + 1, w - 1),
                   np.empty((h, W), np.uint8))


class UpsampleArgmax:
    """Bilinear upsampling of (1, K, h, w) float logits fused with argmax (CPU).

    Equal to :func:`reference_mask` (see the module notes on rounding), with cost
    proportional to the output size for the filled cells and to the pixels of cells
    on class boundaries for the rest. Keeps a small cache of plans; not thread-safe
    (the engine serializes calls).
    """

    def __init__(self, max_plans: int = 16):
        self.max_plans = max_plans
        self._plans: dict = {}

    def plan(self, in_size, out_size) -> UpsamplePlan:
        """Return the cached plan of one size pair, built on first use."""
        key = (tuple(in_size), tuple(out_size))
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= self.max_plans:
                self._plans.clear()
            plan = self._plans[key] = UpsamplePlan.build(*key)
        return plan

    def __call__(self, logits: torch.Tensor, out_size,
                 out: Optional[np.ndarray] = None) -> np.ndarray:
        """Mask (H, W) uint8 of ``logits`` (1, K, h, w) upsampled to ``out_size``.

        Args:
            logits: Float logits of one image, any memory format, on the CPU.
            out_size: Output (H, W).
            out: Optional (H, W) uint8 C-contiguous array to write into; None
                allocates a fresh one (the mask then never aliases another call's).

        Returns:
            The mask (``out`` when given).
        """
        H, W = (int(v) for v in out_size)
        if logits.dim() != 4 or logits.shape[0] != 1:
            raise ValueError(f'logits must be (1, K, h, w), got {tuple(logits.shape)}')
        k, h, w = logits.shape[1:]
        if k > _FILL:
            raise ValueError(f'at most {_FILL} classes, got {k}')
        if out is None:
            out = np.empty((H, W), np.uint8)
        elif out.shape != (H, W) or out.dtype != np.uint8 or not out.flags.c_contiguous:
            raise ValueError(f'out must be a C-contiguous ({H}, {W}) uint8 array')
        plan = self.plan((h, w), (H, W))
        # (K, h * w) float32 planes: reductions over classes are then elementwise.
        x = logits[0].float().contiguous().reshape(k, h * w).numpy()
        self._fill(x, plan, out)
        return out

    @staticmethod
    def _classes(x: np.ndarray, tol) -> tuple:
        """Return per source pixel its winning class, and the same with _FILL.

        _FILL replaces the class where it does not lead every other class by ``tol``.
        """
        best = x[0].copy()
        cls = np.zeros(best.shape, np.uint8)
        for c in range(1, len(x)):
            higher = x[c] > best  # strictly: the first index wins ties, as argmax
            cls[higher] = c
            np.maximum(best, x[c], out=best)
        strong = cls.copy()
        # Strong: no other class within tol of the best (ties included).
        close = (x >= best - tol).sum(axis=0, dtype=np.int32)
        strong[close != 1] = _FILL
        return cls, strong

    def _fill(self, x: np.ndarray, plan: UpsamplePlan, out: np.ndarray):
        h, w = len(plan.row_next), len(plan.col_next)
        scale = float(np.abs(x).max()) if x.size else 0.0
        tol = np.float32(max(scale, np.finfo(np.float32).tiny) * _REL_TOL)
        cls, sc = self._classes(x, tol)
        sc = sc.reshape(h, w)
        rn, cn = plan.row_next, plan.col_next
        below = sc[rn]
        agree = (sc == below) & (sc == sc[:, cn]) & (sc == below[:, cn])
        cell = np.where(agree, sc, np.uint8(_FILL))  # _FILL stays _FILL
        # Filled cells: class map gathered along the columns, then whole rows.
        np.take(cell, plan.cols[0], axis=1, out=plan.scratch)
        np.take(plan.scratch, plan.rows[0], axis=0, out=out)
        # Runs (row run x column run) in cells to evaluate.
        todo = cell[plan.row_cell][:, plan.col_cell] == _FILL
        rr, cc = np.nonzero(todo)
        if len(rr):
            self._evaluate(x, cls, plan, rr, cc, tol, out)

    @staticmethod
    def _evaluate(x, cls, plan, rr, cc, tol, out):
        """Evaluate the pixels of the row run x column run blocks ``(rr, cc)``."""
        w = len(plan.col_next)
        i, j = plan.row_cell[rr], plan.col_cell[cc]
        i1, j1 = plan.row_next[i], plan.col_next[j]
        pix = np.stack([i * w + j, i * w + j1, i1 * w + j, i1 * w + j1])  # (4, n)
        corners = np.take(x, pix, axis=1)                                  # (K, 4, n)
        # A class can win somewhere in the cell unless one of the corners' winners
        # leads it by more than tol at all four corners (then at every pixel too).
        winners = cls[pix].astype(np.intp)                                 # (4, n)
        flat_x, hw = x.reshape(-1), x.shape[1]
        # Dominators tried: the first corner's winner and the first winner that
        # differs from it (cells with more winners keep a few extra candidates).
        w0 = winners[0]
        w1 = np.where(winners[1] != w0, winners[1],
                      np.where(winners[2] != w0, winners[2], winners[3]))
        cand = None
        for wq in (w0, w1):
            lead = flat_x[wq * hw + pix] - corners                            # (K, 4, n)
            worst = np.minimum(np.minimum(lead[:, 0], lead[:, 1]),
                               np.minimum(lead[:, 2], lead[:, 3]))
            cand = worst <= tol if cand is None else cand & (worst <= tol)
        count = cand.sum(axis=0)
        # Blocks by decreasing candidate count: those that still need candidate t are
        # then a prefix, and every step below works on views.
        by = np.argsort(-count, kind='stable')
        count, rr, cc, pix = count[by], rr[by], cc[by], pix[:, by]
        m = int(count[0])
        # Candidate classes of each block in increasing order, padded with the first.
        block, klass = np.nonzero(cand[:, by].T)  # by block, then by class
        starts = np.cumsum(count) - count
        order = np.empty((len(rr), m), np.intp)
        order[block, np.arange(len(block)) - starts[block]] = klass
        pad = np.arange(m)[None, :] >= count[:, None]
        order[pad] = np.broadcast_to(order[:, :1], pad.shape)[pad]
        r0, r1 = plan.row_w0[rr][:, :, None], plan.row_w1[rr][:, :, None]  # (n, R, 1)
        q0, q1 = plan.col_w0[cc][:, None, :], plan.col_w1[cc][:, None, :]  # (n, 1, C)
        first = flat_x[order[:, 0] * hw + pix]                              # (4, n)
        best = pick = None
        for t in range(1, m):
            live = int(np.count_nonzero(count > t))  # a prefix of the blocks
            # Corner differences of candidate t and the first candidate: (4, live).
            d = flat_x[order[:live, t] * hw + pix[:, :live]] - first[:, :live]
            v = ((d[0, :, None, None] * q0[:live] + d[1, :, None, None] * q1[:live])
                 * r0[:live]
                 + (d[2, :, None, None] * q0[:live] + d[3, :, None, None] * q1[:live])
                 * r1[:live])                                          # (live, R, C)
            if best is None:
                pick = np.zeros((len(rr),) + v.shape[1:], np.uint8)
                pick[:live] = v > 0  # strictly: the lower class keeps a tie
                best = np.maximum(v, 0) if m > 2 else None
            else:
                higher = v > best[:live]
                pick[:live][higher] = t
                np.maximum(best[:live], v, out=best[:live])
        if pick is None:
            result = np.broadcast_to(order[:, :1, None].astype(np.uint8),
                                     (len(rr), plan.row_index.shape[1], plan.col_index.shape[1]))
        else:
            result = np.take_along_axis(order.astype(np.uint8), pick.reshape(len(rr), -1), 1)
        index = plan.row_base[rr][:, :, None] + plan.col_index[cc][:, None, :]
        out.reshape(-1)[index.reshape(-1)] = result.reshape(-1)
