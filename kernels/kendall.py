"""Kendall tau-b of many candidate rankings against target rankings, in numba, O(n log n) each.

Knight's algorithm (J. Amer. Statist. Assoc. 61, 1966), as scipy.stats.kendalltau
also uses it: discordant pairs are the candidate's inversions once pairs are put in
target order, and tau-b's denominator needs the ties in the target, in the
candidate and in both. The target is prepared once for the whole batch: its order,
and (when there are few) the list of position pairs it ties. Each candidate row is
permuted into target order; inversions and joint ties inside tied-target runs come
from that pair list (they are not discordant); the row's inversions come from a
bottom-up merge sort, whose sorted output also gives the candidate's own ties.

Speed: a branch-free merge step is bound by the latency of its load-compare-advance
chain, so four rows are merged in lockstep, each with its own chain, which lets the
CPU overlap them; runs of eight are sorted by comparator networks before the first
merge. Blocks of four rows, of every target (problem) at once, run in parallel.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numba
import numpy as np

from gpsr.errors import GpsrError

if "NUMBA_THREADING_LAYER" not in os.environ:
    # OpenMP's spinning workers cost up to 200x on a busy machine for these short calls.
    numba.config.THREADING_LAYER = "workqueue"

#: Rows merged in lockstep (four independent dependency chains hide each other's latency).
LANES = 4
#: Tied-target pairs are listed when there are at most this many per architecture;
#: beyond that (huge runs of equal accuracies) each run is sorted instead.
_PAIRS_PER_ROW = 16


@numba.njit(cache=True, nogil=True)
def _merge_count(values: np.ndarray, buffer: np.ndarray) -> np.int64:
    """Sort the 1-D ``values`` in place; return its strict inversions (i < j, v_i > v_j)."""
    n = values.shape[0]
    swaps = np.int64(0)
    width = 1
    src, dst = values, buffer
    while width < n:
        for start in range(0, n, 2 * width):
            mid = min(start + width, n)
            end = min(start + 2 * width, n)
            i, j = start, mid
            for k in range(start, end):
                take_right = (j < end) and (i >= mid or src[j] < src[i])
                if take_right:
                    dst[k] = src[j]
                    swaps += mid - i
                    j += 1
                else:
                    dst[k] = src[i]
                    i += 1
        src, dst = dst, src
        width *= 2
    if src is not values:
        values[:] = src
    return swaps


@numba.njit(cache=True, nogil=True, inline="always")
def _finish_lane(src, dst, lane, i, j, mid, end, swaps):
    """Complete one lane's merge after the lockstep loop stopped (one side may be empty)."""
    k = i + j - mid
    while i < mid and j < end:
        if src[lane, j] < src[lane, i]:
            dst[lane, k] = src[lane, j]
            swaps += mid - i
            j += 1
        else:
            dst[lane, k] = src[lane, i]
            i += 1
        k += 1
    while i < mid:
        dst[lane, k] = src[lane, i]
        i += 1
        k += 1
    while j < end:
        dst[lane, k] = src[lane, j]
        j += 1
        k += 1
    return swaps


@numba.njit(cache=True, nogil=True)
def _insertion_count(x, lane, start, end):
    """Insertion-sort ``x[lane, start:end]`` (a short tail); return its strict inversions."""
    swaps = np.int64(0)
    for i in range(start + 1, end):
        v = x[lane, i]
        j = i - 1
        while j >= start and x[lane, j] > v:
            x[lane, j + 1] = x[lane, j]
            j -= 1
        swaps += i - 1 - j
        x[lane, j + 1] = v
    return swaps


@numba.njit(cache=True, nogil=True, inline="always")
def _sort4(x, lane, k):
    """Sort ``x[lane, k:k+4]`` with a five-comparator network; return its strict inversions."""
    a, b, c, d = x[lane, k], x[lane, k + 1], x[lane, k + 2], x[lane, k + 3]
    inversions = (np.int64(a > b) + np.int64(a > c) + np.int64(a > d)
                  + np.int64(b > c) + np.int64(b > d) + np.int64(c > d))
    a, b = min(a, b), max(a, b)
    c, d = min(c, d), max(c, d)
    a, c = min(a, c), max(a, c)
    b, d = min(b, d), max(b, d)
    b, c = min(b, c), max(b, c)
    x[lane, k], x[lane, k + 1], x[lane, k + 2], x[lane, k + 3] = a, b, c, d
    return inversions


@numba.njit(cache=True, nogil=True, inline="always")
def _sort8(x, lane, k):
    """Sort ``x[lane, k:k+8]``, two sorted runs of four, with Batcher's odd-even merge
    network; return the pairs across the runs that are inverted."""
    a0, a1, a2, a3 = x[lane, k], x[lane, k + 1], x[lane, k + 2], x[lane, k + 3]
    b0, b1, b2, b3 = x[lane, k + 4], x[lane, k + 5], x[lane, k + 6], x[lane, k + 7]
    inversions = np.int64(0)
    for b in (b0, b1, b2, b3):
        inversions += np.int64(b < a0) + np.int64(b < a1) + np.int64(b < a2) + np.int64(b < a3)
    a0, b0 = min(a0, b0), max(a0, b0)
    a1, b1 = min(a1, b1), max(a1, b1)
    a2, b2 = min(a2, b2), max(a2, b2)
    a3, b3 = min(a3, b3), max(a3, b3)
    a2, b0 = min(a2, b0), max(a2, b0)
    a3, b1 = min(a3, b1), max(a3, b1)
    a1, a2 = min(a1, a2), max(a1, a2)
    a3, b0 = min(a3, b0), max(a3, b0)
    b1, b2 = min(b1, b2), max(b1, b2)
    x[lane, k], x[lane, k + 1], x[lane, k + 2], x[lane, k + 3] = a0, a1, a2, a3
    x[lane, k + 4], x[lane, k + 5], x[lane, k + 6], x[lane, k + 7] = b0, b1, b2, b3
    return inversions


@numba.njit(cache=True, nogil=True)
def _merge_count_lanes(src: np.ndarray, dst: np.ndarray, n: int, swaps: np.ndarray) -> bool:
    """Merge-sort the ``LANES`` rows of ``src[:, :n]`` together, adding each row's strict
    inversions to ``swaps``. Both arrays need ``n + 1`` columns. Returns True when the
    sorted rows ended in ``dst``."""
    s0, s1, s2, s3 = swaps[0], swaps[1], swaps[2], swaps[3]
    # Runs of eight sorted by networks replace the three narrowest merge passes.
    full = n - n % 8
    for k in range(0, full, 4):
        s0 += _sort4(src, 0, k)
        s1 += _sort4(src, 1, k)
        s2 += _sort4(src, 2, k)
        s3 += _sort4(src, 3, k)
    for k in range(0, full, 8):
        s0 += _sort8(src, 0, k)
        s1 += _sort8(src, 1, k)
        s2 += _sort8(src, 2, k)
        s3 += _sort8(src, 3, k)
    s0 += _insertion_count(src, 0, full, n)
    s1 += _insertion_count(src, 1, full, n)
    s2 += _insertion_count(src, 2, full, n)
    s3 += _insertion_count(src, 3, full, n)
    width = 8
    in_dst = False
    while width < n:
        for start in range(0, n, 2 * width):
            mid = min(start + width, n)
            end = min(start + 2 * width, n)
            i0 = i1 = i2 = i3 = start
            j0 = j1 = j2 = j3 = mid
            k = start
            while True:
                # In this many steps no lane can run out of either side: no bounds checks.
                steps = min(min(mid - i0, end - j0), min(mid - i1, end - j1))
                steps = min(steps, min(min(mid - i2, end - j2), min(mid - i3, end - j3)))
                if steps <= 0:
                    break
                for _ in range(steps):
                    a0, b0 = src[0, i0], src[0, j0]
                    a1, b1 = src[1, i1], src[1, j1]
                    a2, b2 = src[2, i2], src[2, j2]
                    a3, b3 = src[3, i3], src[3, j3]
                    r0, r1, r2, r3 = b0 < a0, b1 < a1, b2 < a2, b3 < a3
                    dst[0, k] = b0 if r0 else a0
                    dst[1, k] = b1 if r1 else a1
                    dst[2, k] = b2 if r2 else a2
                    dst[3, k] = b3 if r3 else a3
                    s0 += (mid - i0) if r0 else 0
                    s1 += (mid - i1) if r1 else 0
                    s2 += (mid - i2) if r2 else 0
                    s3 += (mid - i3) if r3 else 0
                    i0 += 1 - r0
                    i1 += 1 - r1
                    i2 += 1 - r2
                    i3 += 1 - r3
                    j0 += r0
                    j1 += r1
                    j2 += r2
                    j3 += r3
                    k += 1
            s0 = _finish_lane(src, dst, 0, i0, j0, mid, end, s0)
            s1 = _finish_lane(src, dst, 1, i1, j1, mid, end, s1)
            s2 = _finish_lane(src, dst, 2, i2, j2, mid, end, s2)
            s3 = _finish_lane(src, dst, 3, i3, j3, mid, end, s3)
        src, dst = dst, src
        width *= 2
        in_dst = not in_dst
    swaps[0], swaps[1], swaps[2], swaps[3] = s0, s1, s2, s3
    return in_dst


@numba.njit(cache=True, nogil=True)
def _tie_pairs(x: np.ndarray, start: int, end: int) -> np.int64:
    """Pairs of equal values in the sorted run ``x[start:end]``, without branches."""
    total = np.int64(0)
    run = np.int64(0)  # earlier members of the current run of equal values
    for i in range(start + 1, end):
        run = run + 1 if x[i] == x[i - 1] else 0
        total += run
    return total


@numba.njit(cache=True, nogil=True)
def _tau_block(
    rows: np.ndarray,
    first_row: int,
    order: np.ndarray,
    group_starts: np.ndarray,
    tied_first: np.ndarray,
    tied_second: np.ndarray,
    use_pairs: bool,
    target_ties: np.int64,
    x: np.ndarray,
    buffer: np.ndarray,
    out: np.ndarray,
) -> None:
    """Tau-b of rows ``first_row .. first_row + LANES - 1`` against one target, into ``out``."""
    n_rows, n = rows.shape[0], order.shape[0]
    total = np.int64(n) * (n - 1) // 2
    for lane in range(LANES):
        r = min(first_row + lane, n_rows - 1)  # a short last block repeats its last row
        for i in range(n):
            x[lane, i] = rows[r, order[i]]
    inside = np.zeros(LANES, dtype=np.int64)  # inversions within tied-target runs
    joint = np.zeros(LANES, dtype=np.int64)
    if use_pairs:
        for t in range(tied_first.shape[0]):
            p, q = tied_first[t], tied_second[t]
            for lane in range(LANES):
                inside[lane] += x[lane, p] > x[lane, q]
                joint[lane] += x[lane, p] == x[lane, q]
    else:
        # Sorting inside each run of tied targets orders pairs by (target, x), so the
        # global merge no longer counts them.
        for g in range(group_starts.shape[0] - 1):
            a, b = group_starts[g], group_starts[g + 1]
            if b - a > 1:
                for lane in range(LANES):
                    _merge_count(x[lane, a:b], buffer[lane, a:b])
                    joint[lane] += _tie_pairs(x[lane], a, b)
    inversions = np.zeros(LANES, dtype=np.int64)
    in_buffer = _merge_count_lanes(x, buffer, n, inversions)
    ordered = buffer if in_buffer else x
    for lane in range(min(LANES, n_rows - first_row)):
        discordant = inversions[lane] - inside[lane]
        x_ties = _tie_pairs(ordered[lane], 0, n)
        numerator = total - x_ties - target_ties + joint[lane] - 2 * discordant
        denom_x = total - x_ties
        denom_y = total - target_ties
        if denom_x == 0 or denom_y == 0:
            out[first_row + lane] = np.nan
        else:
            tau = numerator / np.sqrt(np.float64(denom_x)) / np.sqrt(np.float64(denom_y))
            out[first_row + lane] = min(1.0, max(-1.0, tau))  # rounding can pass +/-1; scipy clips


@numba.njit(cache=True, parallel=True)
def _tau_all(
    rows: np.ndarray,
    work_target: np.ndarray,
    work_row: np.ndarray,
    orders: np.ndarray,
    order_ptr: np.ndarray,
    group_starts: np.ndarray,
    group_ptr: np.ndarray,
    tied_first: np.ndarray,
    tied_second: np.ndarray,
    pair_ptr: np.ndarray,
    use_pairs: np.ndarray,
    target_ties: np.ndarray,
    scratch: np.ndarray,
    out: np.ndarray,
) -> None:
    for item in numba.prange(work_target.shape[0]):
        t = work_target[item]
        x = scratch[numba.get_thread_id(), 0]
        buffer = scratch[numba.get_thread_id(), 1]
        _tau_block(rows, work_row[item], orders[order_ptr[t] : order_ptr[t + 1]],
                   group_starts[group_ptr[t] : group_ptr[t + 1]],
                   tied_first[pair_ptr[t] : pair_ptr[t + 1]],
                   tied_second[pair_ptr[t] : pair_ptr[t + 1]],
                   use_pairs[t], target_ties[t], x, buffer, out[t])


def _concat(parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Arrays end to end (int64), with the offsets where each one starts and the last ends."""
    ptr = np.cumsum([0] + [len(p) for p in parts]).astype(np.int64)
    return np.concatenate(parts + [np.empty(0, np.int64)]).astype(np.int64), ptr


class KendallTargets:
    """Target rankings prepared once, then scored against many candidate rows at once.

    Several targets sit side by side in the candidates' columns (one problem each,
    as gpsr's evaluator lays them out): target ``t`` owns the next ``len(targets[t])``
    columns. One parallel call scores every (row, target) pair, its blocks of rows
    interleaved across targets so that both threads get a share of the big problem.

    NaN is not a rank: candidate rows must be NaN-free (gpsr's evaluator guarantees
    it by its non-finite policy); a constant row gives NaN, as in scipy. An instance
    serves one Python thread at a time (its work rows are reused between calls).
    """

    def __init__(self, targets: Sequence[np.ndarray]) -> None:
        orders, groups, firsts, seconds, use_pairs, ties = [], [], [], [], [], []
        column = 0
        for target in targets:
            target = np.asarray(target, dtype=np.float64)
            if np.isnan(target).any():
                raise GpsrError("the target ranking (accuracies) holds NaN")
            order = np.argsort(target, kind="stable")
            ordered = target[order]
            breaks = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
            starts = np.concatenate(([0], breaks, [len(target)])).astype(np.int64)
            sizes = np.diff(starts)
            n_ties = int((sizes * (sizes - 1) // 2).sum())
            pairs = n_ties <= _PAIRS_PER_ROW * max(len(target), 1)
            first, second = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
            for start, size in zip(starts[:-1], sizes):
                if pairs and size > 1:
                    u, v = np.triu_indices(size, 1)
                    first.append(start + u)
                    second.append(start + v)
            orders.append(order + column)
            groups.append(starts)
            firsts.append(np.concatenate(first))
            seconds.append(np.concatenate(second))
            use_pairs.append(pairs)
            ties.append(n_ties)
            column += len(target)
        self.sizes = [len(o) for o in orders]
        self.n = column
        self._orders, self._order_ptr = _concat(orders)
        self._groups, self._group_ptr = _concat(groups)
        self._firsts, self._pair_ptr = _concat(firsts)
        self._seconds, _ = _concat(seconds)
        self._use_pairs = np.array(use_pairs, dtype=np.bool_)
        self._ties = np.array(ties, dtype=np.int64)
        self._work: np.ndarray | None = None

    def _scratch(self) -> np.ndarray:
        """Work rows for each thread, kept between calls: fresh ones this size (two x 4 x n
        doubles per block) page-fault on every call, which cost half the kernel's time."""
        threads = numba.get_num_threads()
        if self._work is None or self._work.shape[0] < threads:
            self._work = np.zeros((threads, 2, LANES, max(self.sizes, default=0) + 1))
        return self._work

    def tau(self, rows: np.ndarray) -> np.ndarray:
        """Tau-b of each row of ``rows`` (shape ``(k, n)``) on each target: ``(k, targets)``."""
        rows = np.ascontiguousarray(rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != self.n:
            raise ValueError(f"rows have {rows.shape[-1]} columns, the targets have {self.n}")
        out = np.full((len(self.sizes), rows.shape[0]), np.nan)
        scored = [t for t, size in enumerate(self.sizes) if size >= 2]
        if rows.shape[0] and scored:
            blocks = np.arange(0, rows.shape[0], LANES, dtype=np.int64)
            work_row = np.repeat(blocks, len(scored))
            work_target = np.tile(np.array(scored, dtype=np.int64), len(blocks))
            _tau_all(rows, work_target, work_row, self._orders, self._order_ptr,
                     self._groups, self._group_ptr, self._firsts, self._seconds,
                     self._pair_ptr, self._use_pairs, self._ties, self._scratch(), out)
        return out.T


class KendallTarget(KendallTargets):
    """One target ranking, scored against one row or a batch of rows."""

    def __init__(self, target: np.ndarray) -> None:
        super().__init__([target])

    def tau(self, rows: np.ndarray) -> np.ndarray:
        """Tau-b of each row of ``rows`` (shape ``(k, n)`` or ``(n,)``) against the target."""
        rows = np.asarray(rows, dtype=np.float64)
        taus = super().tau(rows.reshape(1, -1) if rows.ndim == 1 else rows)[:, 0]
        return taus[0] if rows.ndim == 1 else taus


def warm_up() -> None:
    """Compile the kernels, or load them from numba's on-disk cache (first use: ~10 s)."""
    KendallTargets([np.arange(16.0)]).tau(np.arange(16.0)[::-1].reshape(1, -1))


def kendall_tau(x: np.ndarray, y: np.ndarray) -> float | np.ndarray:
    """Tau-b of ``x`` (one row or a batch of rows) against ``y``; equals scipy's tau-b."""
    return KendallTarget(y).tau(x)
