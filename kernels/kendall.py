"""Kendall tau-b of many candidate rankings against target rankings, in numba, O(n log n) each.

Knight's algorithm (J. Amer. Statist. Assoc. 61, 1966), as scipy.stats.kendalltau
also uses it: discordant pairs are the candidate's inversions once pairs are put in
target order, and tau-b's denominator needs the ties in the target, in the
candidate and in both. The target is prepared once for the whole batch: its order
and its runs of tied values. Each candidate row is permuted into target order;
inversions and joint ties inside tied-target runs are counted pair by pair, or, in a
long run, by sorting it (such pairs are not discordant); the row's inversions come
from a bottom-up merge sort, whose sorted output also gives the candidate's own ties.

Speed: a branch-free merge step is bound by the latency of its load-compare-advance
chain, so four rows are merged in lockstep, and each merge runs from both ends at
once (minima from the front, maxima from the back), which gives the CPU eight
independent chains to overlap (23% faster than front-only merging, measured). The
rows are interleaved in memory (one base address for all lanes) and indexed with
unsigned integers, so every lane's state stays in registers.
Runs of eight are sorted by comparator networks before the first merge. When a lane
runs out of one side early (rows with many equal values do), the merge goes on in
lockstep with guarded steps instead of lane by lane. Blocks of four rows, of every
target (problem) at once, run in parallel.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numba
import numpy as np

from gpsr.errors import GpsrError
from gpsr.functions import apply_fused

if "NUMBA_THREADING_LAYER" not in os.environ:
    # OpenMP's spinning workers cost up to 200x on a busy machine for these short calls.
    numba.config.THREADING_LAYER = "workqueue"

#: Rows merged in lockstep (four independent dependency chains hide each other's latency).
LANES = 4
#: Runs of tied targets up to this long are scored pair by pair; longer ones are sorted.
_PAIRWISE_RUN = 64
_U1 = np.uint64(1)
_U2 = np.uint64(2)
_U3 = np.uint64(3)
_U4 = np.uint64(LANES)


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
def _guarded_step(src, dst, lane, i, k_mid, mid, end, out, swaps):
    """One merge step of one lane that may have run out of either side."""
    j = k_mid - i
    a, b = src[_U4 * i + lane], src[_U4 * j + lane]  # in bounds: one spare row at the end
    left = (i < mid) & ((j >= end) | (b >= a))
    dst[out + lane] = a if left else b
    swaps += np.uint64(0) if left else mid - i
    return i + np.uint64(left), swaps


@numba.njit(cache=True, nogil=True, inline="always")
def _guarded_back(src, dst, lane, p, k_back, start, mid, out, swaps):
    """One step from the back of a merge, for one lane that may have run out of either
    side: the larger last element goes to ``out``; a right one adds the left elements
    the back took before it (``mid - p``), all greater than it."""
    q = k_back - p
    # In bounds when a side is empty (its value then unused): one spare row at the end.
    a = src[_U4 * max(p, start + _U1) - _U4 + lane]
    b = src[_U4 * max(q, mid + _U1) - _U4 + lane]
    left = (p > start) & ((q <= mid) | (a > b))
    dst[out + lane] = a if left else b
    swaps += np.uint64(0) if left else mid - p
    return p - np.uint64(left), swaps


@numba.njit(cache=True, nogil=True, inline="always")
def _right_take_swaps(steps, first, last, mid, left_sum):
    """Inversions of a stretch of merge steps from its left indices alone.

    Each step taking from the right adds ``mid - i``; the stretch took ``last - first``
    from the left (at i = first .. last - 1) and ``left_sum`` adds i over every step."""
    lefts = last - first
    left_taken = (first + last - _U1) * lefts // _U2
    return (steps - lefts) * mid - (left_sum - left_taken)


@numba.njit(cache=True, nogil=True)
def _insertion_count(x, lane, start, end):
    """Insertion-sort lane ``lane`` of ``x`` over ``start:end`` (a short tail); return its
    strict inversions."""
    swaps = np.int64(0)
    for i in range(start + 1, end):
        v = x[LANES * i + lane]
        j = i - 1
        while j >= start and x[LANES * j + lane] > v:
            x[LANES * (j + 1) + lane] = x[LANES * j + lane]
            j -= 1
        swaps += i - 1 - j
        x[LANES * (j + 1) + lane] = v
    return swaps


@numba.njit(cache=True, nogil=True, inline="always")
def _one(condition):
    """1.0 where ``condition`` holds, else 0.0: counts kept in float64 (exact below 2**53)
    compile to faster code than int64 counters of bools."""
    return 1.0 if condition else 0.0


@numba.njit(cache=True, nogil=True, inline="always")
def _sort4(x, lane, k):
    """Sort elements ``k .. k+3`` of one lane with a five-comparator network; return
    their strict inversions (a float64 count)."""
    p = LANES * k + lane
    a, b, c, d = x[p], x[p + LANES], x[p + 2 * LANES], x[p + 3 * LANES]
    inversions = (_one(a > b) + _one(a > c) + _one(a > d)
                  + _one(b > c) + _one(b > d) + _one(c > d))
    a, b = min(a, b), max(a, b)
    c, d = min(c, d), max(c, d)
    a, c = min(a, c), max(a, c)
    b, d = min(b, d), max(b, d)
    b, c = min(b, c), max(b, c)
    x[p], x[p + LANES], x[p + 2 * LANES], x[p + 3 * LANES] = a, b, c, d
    return inversions


@numba.njit(cache=True, nogil=True, inline="always")
def _sort8(x, lane, k):
    """Sort elements ``k .. k+7`` of one lane, two sorted runs of four, with Batcher's
    odd-even merge network; return the pairs across the runs that are inverted (a float64
    count)."""
    p = LANES * k + lane
    a0, a1, a2, a3 = x[p], x[p + LANES], x[p + 2 * LANES], x[p + 3 * LANES]
    b0, b1 = x[p + 4 * LANES], x[p + 5 * LANES]
    b2, b3 = x[p + 6 * LANES], x[p + 7 * LANES]
    inversions = 0.0
    for b in (b0, b1, b2, b3):
        inversions += _one(b < a0) + _one(b < a1) + _one(b < a2) + _one(b < a3)
    a0, b0 = min(a0, b0), max(a0, b0)
    a1, b1 = min(a1, b1), max(a1, b1)
    a2, b2 = min(a2, b2), max(a2, b2)
    a3, b3 = min(a3, b3), max(a3, b3)
    a2, b0 = min(a2, b0), max(a2, b0)
    a3, b1 = min(a3, b1), max(a3, b1)
    a1, a2 = min(a1, a2), max(a1, a2)
    a3, b0 = min(a3, b0), max(a3, b0)
    b1, b2 = min(b1, b2), max(b1, b2)
    x[p], x[p + LANES], x[p + 2 * LANES], x[p + 3 * LANES] = a0, a1, a2, a3
    x[p + 4 * LANES], x[p + 5 * LANES] = b0, b1
    x[p + 6 * LANES], x[p + 7 * LANES] = b2, b3
    return inversions


@numba.njit(cache=True, nogil=True)
def _merge_count_lanes(src: np.ndarray, dst: np.ndarray, n: int, swaps: np.ndarray) -> bool:
    """Merge-sort ``LANES`` rows together, adding each row's strict inversions to ``swaps``.

    The rows are interleaved: element i of lane l sits at ``src[LANES * i + l]``, so one
    base address serves every lane. Both arrays need ``LANES * (n + 1)`` elements.
    Returns True when the sorted rows ended in ``dst``."""
    # Float64 counts (see _one), converted to integers below.
    s0, s1, s2, s3 = (np.float64(swaps[0]), np.float64(swaps[1]), np.float64(swaps[2]),
                      np.float64(swaps[3]))
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
    s0 += np.float64(_insertion_count(src, 0, full, n))
    s1 += np.float64(_insertion_count(src, 1, full, n))
    s2 += np.float64(_insertion_count(src, 2, full, n))
    s3 += np.float64(_insertion_count(src, 3, full, n))
    # Unsigned indices from here: signed ones cost a wrap-around fix-up per load. The
    # right index is derived (i + j = k + mid) and inversions are summed per stretch
    # from the left indices, which keeps every lane's state in registers.
    u0, u1, u2, u3 = np.uint64(s0), np.uint64(s1), np.uint64(s2), np.uint64(s3)
    size = np.uint64(n)
    width = np.uint64(8)
    in_dst = False
    while width < size:
        start = np.uint64(0)
        while start < size:
            mid = min(start + width, size)
            end = min(mid + width, size)
            # Each merge runs from both ends at once: the front takes minima, the back
            # maxima, each half of the output, which gives every lane two independent
            # dependency chains.
            total = end - start
            front = total - total // _U2
            back = total - front
            i0 = i1 = i2 = i3 = start
            k_mid = start + mid  # front output index + mid, so that j = k_mid - i
            p0 = p1 = p2 = p3 = mid  # the back's left side is [start, p)
            k_back = end + mid  # back output end + mid: the back's right side is [mid, k_back - p)
            while True:
                # In this many steps no lane can run out of either side: no bounds checks.
                steps = min(min(front, back), min(min(mid - i0, end + i0 - k_mid),
                                                  min(mid - i1, end + i1 - k_mid)))
                steps = min(steps, min(min(mid - i2, end + i2 - k_mid),
                                       min(mid - i3, end + i3 - k_mid)))
                steps = min(steps, min(min(p0 - start, k_back - p0 - mid),
                                       min(p1 - start, k_back - p1 - mid)))
                steps = min(steps, min(min(p2 - start, k_back - p2 - mid),
                                       min(p3 - start, k_back - p3 - mid)))
                if steps == 0:
                    break
                f0, f1, f2, f3 = i0, i1, i2, i3
                g0, g1, g2, g3 = p0, p1, p2, p3
                t0 = t1 = t2 = t3 = np.uint64(0)
                h0 = h1 = h2 = h3 = np.uint64(0)
                for _ in range(steps):
                    a0, b0 = src[_U4 * i0], src[_U4 * (k_mid - i0)]
                    a1, b1 = src[_U4 * i1 + _U1], src[_U4 * (k_mid - i1) + _U1]
                    a2, b2 = src[_U4 * i2 + _U2], src[_U4 * (k_mid - i2) + _U2]
                    a3, b3 = src[_U4 * i3 + _U3], src[_U4 * (k_mid - i3) + _U3]
                    c0, d0 = src[_U4 * p0 - _U4], src[_U4 * (k_back - p0) - _U4]
                    c1, d1 = src[_U4 * p1 - _U3], src[_U4 * (k_back - p1) - _U3]
                    c2, d2 = src[_U4 * p2 - _U2], src[_U4 * (k_back - p2) - _U2]
                    c3, d3 = src[_U4 * p3 - _U1], src[_U4 * (k_back - p3) - _U1]
                    out = _U4 * (k_mid - mid)
                    dst[out] = min(a0, b0)
                    dst[out + _U1] = min(a1, b1)
                    dst[out + _U2] = min(a2, b2)
                    dst[out + _U3] = min(a3, b3)
                    last = _U4 * (k_back - mid)
                    dst[last - _U4] = max(c0, d0)
                    dst[last - _U3] = max(c1, d1)
                    dst[last - _U2] = max(c2, d2)
                    dst[last - _U1] = max(c3, d3)
                    t0 += i0
                    t1 += i1
                    t2 += i2
                    t3 += i3
                    h0 += p0
                    h1 += p1
                    h2 += p2
                    h3 += p3
                    i0 += np.uint64(b0 >= a0)  # ties take the left first: stable
                    i1 += np.uint64(b1 >= a1)
                    i2 += np.uint64(b2 >= a2)
                    i3 += np.uint64(b3 >= a3)
                    p0 -= np.uint64(c0 > d0)  # ties take the right last: stable
                    p1 -= np.uint64(c1 > d1)
                    p2 -= np.uint64(c2 > d2)
                    p3 -= np.uint64(c3 > d3)
                    k_mid += _U1
                    k_back -= _U1
                # A right element taken at the back is smaller than the left ones the back
                # took before it (mid - p of them), and no other left element: the same sum
                # as the front's, over the back's left indices p + 1 .. g. Every inverted
                # pair is counted once, by whichever end takes its right element.
                u0 += (_right_take_swaps(steps, f0, i0, mid, t0)
                       + _right_take_swaps(steps, p0 + _U1, g0 + _U1, mid, h0))
                u1 += (_right_take_swaps(steps, f1, i1, mid, t1)
                       + _right_take_swaps(steps, p1 + _U1, g1 + _U1, mid, h1))
                u2 += (_right_take_swaps(steps, f2, i2, mid, t2)
                       + _right_take_swaps(steps, p2 + _U1, g2 + _U1, mid, h2))
                u3 += (_right_take_swaps(steps, f3, i3, mid, t3)
                       + _right_take_swaps(steps, p3 + _U1, g3 + _U1, mid, h3))
                front -= steps
                back -= steps
            # Some lane ran out of one side: the rest goes on in lockstep, each lane
            # guarded (an empty side is never taken), rather than lane by lane.
            for _ in range(front):
                out = _U4 * (k_mid - mid)
                i0, u0 = _guarded_step(src, dst, np.uint64(0), i0, k_mid, mid, end, out, u0)
                i1, u1 = _guarded_step(src, dst, _U1, i1, k_mid, mid, end, out, u1)
                i2, u2 = _guarded_step(src, dst, _U2, i2, k_mid, mid, end, out, u2)
                i3, u3 = _guarded_step(src, dst, _U3, i3, k_mid, mid, end, out, u3)
                k_mid += _U1
            for _ in range(back):
                last = _U4 * (k_back - mid) - _U4
                p0, u0 = _guarded_back(src, dst, np.uint64(0), p0, k_back, start, mid, last, u0)
                p1, u1 = _guarded_back(src, dst, _U1, p1, k_back, start, mid, last, u1)
                p2, u2 = _guarded_back(src, dst, _U2, p2, k_back, start, mid, last, u2)
                p3, u3 = _guarded_back(src, dst, _U3, p3, k_back, start, mid, last, u3)
                k_back -= _U1
            start = end
        src, dst = dst, src
        width += width
        in_dst = not in_dst
    swaps[0], swaps[1], swaps[2], swaps[3] = u0, u1, u2, u3
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


@numba.njit(cache=True, nogil=True, inline="always")
def _operand(rows, code, a, b, column):
    """Row ``a``'s value in ``column``, or fused operator ``code`` of rows a and b there."""
    return rows[a, column] if code == 0 else apply_fused(code, rows[a, column], rows[b, column])


@numba.njit(cache=True, nogil=True)
def _tau_block(
    rows: np.ndarray,
    program: np.ndarray,
    first: int,
    order: np.ndarray,
    group_starts: np.ndarray,
    target_ties: np.int64,
    x: np.ndarray,
    buffer: np.ndarray,
    out: np.ndarray,
) -> None:
    """Tau-b of candidates ``first : first + LANES`` of ``program`` (see
    :meth:`KendallTargets.tau_blocks`) against one target, into
    ``out[first : first + LANES]``."""
    n_rows, n = program.shape[0], order.shape[0]
    total = np.int64(n) * (n - 1) // 2
    for lane in range(LANES):
        k = min(first + lane, n_rows - 1)  # a short last block repeats its last row
        code, left, a, b = program[k, 0], program[k, 1], program[k, 2], program[k, 3]
        right, c, d = program[k, 4], program[k, 5], program[k, 6]
        if code == 0:
            for i in range(n):
                x[LANES * i + lane] = rows[a, order[i]]
        else:
            for i in range(n):
                o = order[i]
                x[LANES * i + lane] = apply_fused(code, _operand(rows, left, a, b, o),
                                                  _operand(rows, right, c, d, o))
    inside = np.zeros(LANES, dtype=np.int64)  # inversions within tied-target runs
    joint = np.zeros(LANES, dtype=np.int64)
    # Pairs inside a run of tied targets are neither concordant nor discordant: count
    # their inversions (the merge counts them too) and joint ties. Short runs pair by
    # pair; a long run is sorted, which orders its pairs by (target, x) before the merge.
    for g in range(group_starts.shape[0] - 1):
        a, b = group_starts[g], group_starts[g + 1]
        if b - a == 1:
            continue
        if b - a <= _PAIRWISE_RUN:
            # Float64 counts (see _one): 22% faster here than int64 counters.
            in0 = in1 = in2 = in3 = jo0 = jo1 = jo2 = jo3 = 0.0
            for p in range(LANES * a, LANES * (b - 1), LANES):
                v0, v1, v2, v3 = x[p], x[p + 1], x[p + 2], x[p + 3]
                for q in range(p + LANES, LANES * b, LANES):
                    w0, w1, w2, w3 = x[q], x[q + 1], x[q + 2], x[q + 3]
                    in0 += _one(v0 > w0)
                    in1 += _one(v1 > w1)
                    in2 += _one(v2 > w2)
                    in3 += _one(v3 > w3)
                    jo0 += _one(v0 == w0)
                    jo1 += _one(v1 == w1)
                    jo2 += _one(v2 == w2)
                    jo3 += _one(v3 == w3)
            inside[0] += np.int64(in0)
            inside[1] += np.int64(in1)
            inside[2] += np.int64(in2)
            inside[3] += np.int64(in3)
            joint[0] += np.int64(jo0)
            joint[1] += np.int64(jo1)
            joint[2] += np.int64(jo2)
            joint[3] += np.int64(jo3)
        else:
            for lane in range(LANES):
                run = x[LANES * a + lane : LANES * b : LANES]
                _merge_count(run, buffer[LANES * a + lane : LANES * b : LANES])
                joint[lane] += _tie_pairs(run, 0, b - a)
    inversions = np.zeros(LANES, dtype=np.int64)
    in_buffer = _merge_count_lanes(x, buffer, n, inversions)
    ordered = buffer if in_buffer else x
    for lane in range(min(LANES, n_rows - first)):
        discordant = inversions[lane] - inside[lane]
        x_ties = _tie_pairs(ordered[lane::LANES], 0, n)
        numerator = total - x_ties - target_ties + joint[lane] - 2 * discordant
        denom_x = total - x_ties
        denom_y = total - target_ties
        if denom_x == 0 or denom_y == 0:
            out[first + lane] = np.nan
        else:
            tau = numerator / np.sqrt(np.float64(denom_x)) / np.sqrt(np.float64(denom_y))
            out[first + lane] = min(1.0, max(-1.0, tau))  # rounding can pass +/-1; scipy clips


@numba.njit(cache=True, nogil=True, inline="always")
def _tau_item(rows, program, first, t, orders, order_ptr, group_starts, group_ptr, target_ties,
              x, buffer, out):
    """Tau-b of one block of candidates against target ``t``."""
    _tau_block(rows, program, first, orders[order_ptr[t] : order_ptr[t + 1]],
               group_starts[group_ptr[t] : group_ptr[t + 1]], target_ties[t], x, buffer, out[t])


@numba.njit(cache=True, parallel=True, nogil=True)
def _tau_parallel(rows, program, work_target, work_first, orders, order_ptr, group_starts,
                  group_ptr, target_ties, scratch, out):
    for item in numba.prange(work_target.shape[0]):
        x = scratch[numba.get_thread_id(), 0]
        buffer = scratch[numba.get_thread_id(), 1]
        _tau_item(rows, program, work_first[item], work_target[item], orders, order_ptr,
                  group_starts, group_ptr, target_ties, x, buffer, out)


@numba.njit(cache=True, nogil=True)
def _tau_serial(rows, program, work_target, work_first, orders, order_ptr, group_starts,
                group_ptr, target_ties, scratch, out):
    for item in range(work_target.shape[0]):
        _tau_item(rows, program, work_first[item], work_target[item], orders, order_ptr,
                  group_starts, group_ptr, target_ties, scratch[0], scratch[1], out)


def _concat(parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Arrays end to end (int64), with the offsets where each one starts and the last ends."""
    ptr = np.cumsum([0] + [len(p) for p in parts]).astype(np.int64)
    return np.concatenate(parts + [np.empty(0, np.int64)]).astype(np.int64), ptr


class KendallTargets:
    """Target rankings prepared once, then scored against many candidate rows at once.

    Several targets sit side by side in the candidates' columns (one problem each,
    as gpsr's evaluator lays them out): target ``t`` owns the next ``len(targets[t])``
    columns. :meth:`tau` scores every (row, target) pair in one parallel call, its
    blocks of rows interleaved across targets so that all threads share the big
    problem; :meth:`tau_blocks` scores a few blocks on the calling thread, for callers
    that spread blocks over threads of their own.

    NaN is not a rank: candidate rows must be NaN-free (gpsr's evaluator guarantees
    it by its non-finite policy); a constant row gives NaN, as in scipy.
    """

    def __init__(self, targets: Sequence[np.ndarray]) -> None:
        orders, groups, ties = [], [], []
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
            orders.append(order + column)
            groups.append(starts)
            ties.append(int((sizes * (sizes - 1) // 2).sum()))
            column += len(target)
        self.sizes = [len(o) for o in orders]
        self.n = column
        self._orders, self._order_ptr = _concat(orders)
        self._groups, self._group_ptr = _concat(groups)
        self._ties = np.array(ties, dtype=np.int64)
        self._scored = np.array([t for t, size in enumerate(self.sizes) if size >= 2],
                                dtype=np.int64)
        self._work = np.zeros((0, 2, 0))

    def scratch(self, workers: int) -> np.ndarray:
        """Work rows for ``workers`` threads, kept between calls: fresh ones this size (two
        x 4 x n doubles per block) page-fault on every call, which cost half the kernel's
        time. Two threads running at once need different rows of it."""
        if self._work.shape[0] < workers:
            self._work = np.zeros((workers, 2, LANES * (max(self.sizes, default=0) + 1)))
        return self._work

    def tau(self, rows: np.ndarray, ids: np.ndarray | None = None) -> np.ndarray:
        """Tau-b of each row of ``rows`` (shape ``(k, n)``) on each target: ``(k, targets)``.
        With ``ids``, of rows ``rows[ids]`` only (read in place, not copied)."""
        rows = self._checked(rows)
        program = plain_rows(np.arange(rows.shape[0]) if ids is None else ids)
        out = np.full((len(self.sizes), len(program)), np.nan)
        if len(program) and len(self._scored):
            firsts = np.arange(0, len(program), LANES, dtype=np.int64)
            _tau_parallel(rows, program, *self._items(firsts), self._orders, self._order_ptr,
                          self._groups, self._group_ptr, self._ties,
                          self.scratch(numba.get_num_threads()), out)
        return out.T

    def tau_blocks(self, rows: np.ndarray, program: np.ndarray, firsts: Sequence[int],
                   out: np.ndarray, worker: int) -> None:
        """On the calling thread, without the GIL: tau-b of the blocks of ``LANES``
        candidates ``program[f : f + LANES]`` for each ``f`` in ``firsts``, on every
        target, into ``out[:, f : f + LANES]`` (``out`` has shape ``(targets,
        len(program))``). ``worker`` picks this thread's work rows in :meth:`scratch`.

        A candidate ``(code, l, a, b, r, c, d)`` is row ``a`` of ``rows`` where ``code``
        is 0 (see :func:`plain_rows`). Otherwise it is fused operator ``code`` (see
        :data:`gpsr.functions.FUSED_OPERATORS`) of two operands, applied as the kernel
        reads them: the left one is row ``a``, or where ``l`` is not 0 fused operator
        ``l`` of rows ``a`` and ``b``; the right one likewise from ``r``, ``c``, ``d``
        (unused by unary operators)."""
        _tau_serial(self._checked(rows), program,
                    *self._items(np.asarray(firsts, dtype=np.int64)), self._orders,
                    self._order_ptr, self._groups, self._group_ptr, self._ties,
                    self.scratch(worker + 1)[worker], out)

    def _checked(self, rows: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != self.n:
            raise ValueError(f"rows have {rows.shape[-1]} columns, the targets have {self.n}")
        return rows

    def _items(self, firsts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(target, first row) of every work item: each block on each scored target."""
        return np.tile(self._scored, len(firsts)), np.repeat(firsts, len(self._scored))


def plain_rows(ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """The candidate program (see :meth:`KendallTargets.tau_blocks`) that reads rows ``ids``
    as they are."""
    ids = np.asarray(ids, dtype=np.int64)
    zeros = np.zeros_like(ids)
    return np.stack([zeros, zeros, ids, ids, zeros, ids, ids], axis=1)


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
    targets = KendallTargets([np.arange(16.0)])
    rows = np.arange(16.0)[::-1].reshape(1, -1)
    targets.tau(rows)
    targets.tau_blocks(rows, plain_rows([0]), [0], np.empty((1, 1)), 0)


def kendall_tau(x: np.ndarray, y: np.ndarray) -> float | np.ndarray:
    """Tau-b of ``x`` (one row or a batch of rows) against ``y``; equals scipy's tau-b."""
    return KendallTarget(y).tau(x)
