"""Kendall tau-b of many candidate rankings against one target, in numba, O(n log n) per row.

Knight's algorithm (J. Amer. Statist. Assoc. 61, 1966), as scipy.stats.kendalltau
also uses it: order the pairs by (target, candidate), count the candidate's
inversions with a merge sort, and count ties in the target, in the candidate and
in both. The target is sorted once for the whole batch; each row is permuted by
that order, sorted inside each run of tied targets, then merge-sorted while its
discordant pairs are counted. Rows run in parallel.
"""

from __future__ import annotations

import os

import numba
import numpy as np

from gpsr.errors import GpsrError

if "NUMBA_THREADING_LAYER" not in os.environ:
    # OpenMP's spinning workers cost up to 200x on a busy machine for these short calls.
    numba.config.THREADING_LAYER = "workqueue"

_RUN = 16  # blocks this small are sorted by insertion, which counts their inversions cheaply


@numba.njit(cache=True, nogil=True)
def _insertion_count(x: np.ndarray, start: int, end: int) -> np.int64:
    """Insertion-sort ``x[start:end]`` in place; return its strict inversions (one per shift)."""
    swaps = np.int64(0)
    for i in range(start + 1, end):
        v = x[i]
        j = i - 1
        while j >= start and x[j] > v:
            x[j + 1] = x[j]
            j -= 1
        swaps += i - 1 - j
        x[j + 1] = v
    return swaps


@numba.njit(cache=True, nogil=True)
def _merge_count(values: np.ndarray, buffer: np.ndarray) -> np.int64:
    """Sort ``values`` in place; return the number of strict inversions (i < j, v_i > v_j)."""
    n = values.shape[0]
    swaps = np.int64(0)
    for start in range(0, n, _RUN):
        swaps += _insertion_count(values, start, min(start + _RUN, n))
    width = _RUN
    src, dst = values, buffer
    while width < n:
        start = 0
        while start < n:
            mid = min(start + width, n)
            end = min(start + 2 * width, n)
            i, j, k = start, mid, start
            while i < mid and j < end:
                # Branch-free: which side wins is data-dependent and mispredicts half the time.
                a, b = src[i], src[j]
                right = b < a
                dst[k] = b if right else a
                swaps += (mid - i) if right else 0
                j += right
                i += 1 - right
                k += 1
            while i < mid:
                dst[k] = src[i]
                i += 1
                k += 1
            while j < end:
                dst[k] = src[j]
                j += 1
                k += 1
            start += 2 * width
        src, dst = dst, src
        width *= 2
    if src is not values:
        values[:] = src
    return swaps


@numba.njit(cache=True, nogil=True)
def _tie_pairs(x: np.ndarray, start: int, end: int) -> np.int64:
    """Pairs of equal values in the sorted run ``x[start:end]``."""
    total = np.int64(0)
    run = np.int64(1)
    for i in range(start + 1, end):
        if x[i] == x[i - 1]:
            run += 1
        else:
            total += run * (run - 1) // 2
            run = 1
    return total + run * (run - 1) // 2


@numba.njit(cache=True, parallel=True)
def _tau_rows(
    rows: np.ndarray, order: np.ndarray, group_starts: np.ndarray, target_ties: np.int64
) -> np.ndarray:
    n_rows, n = rows.shape
    out = np.empty(n_rows, dtype=np.float64)
    total = np.int64(n) * (n - 1) // 2
    n_groups = group_starts.shape[0] - 1
    for r in numba.prange(n_rows):
        x = np.empty(n, dtype=np.float64)
        for i in range(n):
            x[i] = rows[r, order[i]]
        buffer = np.empty(n, dtype=np.float64)
        joint_ties = np.int64(0)
        for g in range(n_groups):
            a, b = group_starts[g], group_starts[g + 1]
            # Sorting x inside each run of tied targets orders pairs by (target, x).
            if b - a > 4 * _RUN:
                _merge_count(x[a:b], buffer[a:b])
            elif b - a > 1:
                _insertion_count(x, a, b)
            if b - a > 1:
                joint_ties += _tie_pairs(x, a, b)
        discordant = _merge_count(x, buffer)
        x_ties = _tie_pairs(x, 0, n)
        numerator = total - x_ties - target_ties + joint_ties - 2 * discordant
        denom_x = total - x_ties
        denom_y = total - target_ties
        if denom_x == 0 or denom_y == 0:
            out[r] = np.nan
        else:
            tau = numerator / np.sqrt(np.float64(denom_x)) / np.sqrt(np.float64(denom_y))
            out[r] = min(1.0, max(-1.0, tau))  # rounding can step past +/-1, as scipy clips
    return out


class KendallTarget:
    """A target ranking prepared once, then scored against many candidate rows.

    NaN is not a rank: candidate rows must be NaN-free (gpsr's evaluator guarantees
    it by its non-finite policy); a constant row gives NaN, as in scipy.
    """

    def __init__(self, target: np.ndarray) -> None:
        target = np.asarray(target, dtype=np.float64)
        if np.isnan(target).any():
            raise GpsrError("the target ranking (accuracies) holds NaN")
        self.n = target.shape[0]
        self.order = np.argsort(target, kind="stable")
        ordered = target[self.order]
        breaks = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
        self.group_starts = np.concatenate(([0], breaks, [self.n])).astype(np.int64)
        sizes = np.diff(self.group_starts)
        self.ties = np.int64((sizes * (sizes - 1) // 2).sum())

    def tau(self, rows: np.ndarray) -> np.ndarray:
        """Tau-b of each row of ``rows`` (shape ``(k, n)`` or ``(n,)``) against the target."""
        rows = np.ascontiguousarray(rows, dtype=np.float64)
        single = rows.ndim == 1
        rows = rows.reshape(1, -1) if single else rows
        if rows.shape[1] != self.n:
            raise ValueError(f"rows have {rows.shape[1]} columns, target has {self.n}")
        if self.n < 2:
            out = np.full(rows.shape[0], np.nan)
        else:
            out = _tau_rows(rows, self.order, self.group_starts, self.ties)
        return out[0] if single else out


def kendall_tau(x: np.ndarray, y: np.ndarray) -> float | np.ndarray:
    """Tau-b of ``x`` (one row or a batch of rows) against ``y``; equals scipy's tau-b."""
    return KendallTarget(y).tau(x)
