"""The numba Kendall tau-b kernel against scipy.stats.kendalltau (tau-b)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.stats
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gpsr.functions import FUSED_OPERATORS, PRIMITIVES, PROTECTED_VALUE
from gpsr.kernels.kendall import KendallTarget, KendallTargets, kendall_tau, plain_rows

TOL = 1e-12
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def scipy_tau(x: np.ndarray, y: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(scipy.stats.kendalltau(x, y, variant="b")[0])


def assert_same(ours: float, ref: float) -> None:
    if math.isnan(ref):
        assert math.isnan(ours), f"expected NaN (as scipy), got {ours}"
    else:
        assert not math.isnan(ours), f"got NaN, scipy gives {ref}"
        assert abs(ours - ref) <= TOL, f"{ours} vs scipy {ref}"


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def paired(draw, elements_x, elements_y, min_size=2, max_size=40):
    n = draw(st.integers(min_size, max_size))
    x = draw(hnp.arrays(np.float64, n, elements=elements_x))
    y = draw(hnp.arrays(np.float64, n, elements=elements_y))
    return x, y


def small_ints(k: int):
    return st.integers(0, k).map(float)


@FAST
@given(paired(finite, finite))
def test_small_continuous(xy):
    x, y = xy
    assert_same(kendall_tau(x, y), scipy_tau(x, y))


def numpy_column(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
    """Medium-size inputs are drawn with numpy from a hypothesis seed (fast to generate)."""
    if kind == "continuous":
        return rng.normal(scale=10.0, size=n)
    levels = {"binary": 2, "few": 4, "some": 12}[kind]
    return rng.integers(0, levels, n).astype(float)


KINDS = st.sampled_from(["continuous", "binary", "few", "some"])


@FAST
@given(st.integers(0, 2**32 - 1), st.integers(41, 600), KINDS, KINDS)
def test_medium_sizes_with_and_without_ties(seed, n, kind_x, kind_y):
    rng = np.random.default_rng(seed)
    x, y = numpy_column(rng, n, kind_x), numpy_column(rng, n, kind_y)
    assert_same(kendall_tau(x, y), scipy_tau(x, y))


@FAST
@given(paired(small_ints(3), finite))
def test_heavy_ties_in_x(xy):
    x, y = xy
    assert_same(kendall_tau(x, y), scipy_tau(x, y))


@FAST
@given(paired(finite, small_ints(3)))
def test_heavy_ties_in_y(xy):
    x, y = xy
    assert_same(kendall_tau(x, y), scipy_tau(x, y))


@FAST
@given(paired(small_ints(4), small_ints(2)))
def test_heavy_ties_in_both(xy):
    x, y = xy
    assert_same(kendall_tau(x, y), scipy_tau(x, y))


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([3, 70, 200]))
def test_long_tie_runs_in_target(seed, levels):
    """Runs of tied targets both shorter and longer than the kernel's pairwise cutoff (64)."""
    rng = np.random.default_rng(seed)
    n = 2000
    y = rng.integers(0, levels, n).astype(float)
    x = np.where(rng.random(n) < 0.5, rng.integers(0, 5, n), rng.normal(size=n))
    assert_same(kendall_tau(x, y), scipy_tau(x, y))


@st.composite
def batches(draw):
    n = draw(st.integers(2, 30))
    k = draw(st.integers(1, 5))
    rows = draw(hnp.arrays(np.float64, (k, n), elements=st.one_of(small_ints(3), finite)))
    y = draw(hnp.arrays(np.float64, n, elements=st.one_of(small_ints(5), finite)))
    return rows, y


@FAST
@given(batches())
def test_batch_of_rows(rows_y):
    rows, y = rows_y
    batch = kendall_tau(rows, y)
    assert batch.shape == (rows.shape[0],)
    target = KendallTarget(y)
    for k, row in enumerate(rows):
        ref = scipy_tau(row, y)
        assert_same(batch[k], ref)
        assert_same(target.tau(row), ref)  # a single row, 1-D
    # The prepared target is reusable: scoring again gives the very same numbers.
    np.testing.assert_array_equal(target.tau(rows), batch)


@FAST
@given(paired(finite, finite), st.floats(-1e3, 1e3, allow_nan=False))
def test_constant_row_is_nan_as_scipy(xy, c):
    _, y = xy
    x = np.full_like(y, c)
    assert math.isnan(kendall_tau(x, y))
    assert math.isnan(scipy_tau(x, y))


def test_constant_target_is_nan_as_scipy():
    x = np.arange(12.0)
    y = np.full(12, 3.0)
    assert math.isnan(kendall_tau(x, y))
    assert math.isnan(scipy_tau(x, y))
    rows = np.vstack([x, -x, np.ones(12)])
    assert np.isnan(kendall_tau(rows, y)).all()


def test_constant_row_in_a_batch_leaves_others_defined():
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    rows = np.array([[1.0, 2.0, 3.0, 4.0, 5.0], [7.0] * 5, [5.0, 4.0, 3.0, 2.0, 1.0]])
    out = kendall_tau(rows, y)
    assert out[0] == pytest.approx(1.0, abs=TOL)
    assert math.isnan(out[1])
    assert out[2] == pytest.approx(-1.0, abs=TOL)


@pytest.mark.parametrize(
    "x, y",
    [
        ([1.0, 2.0], [3.0, 4.0]),
        ([2.0, 1.0], [3.0, 4.0]),
        ([1.0, 1.0], [3.0, 4.0]),
        ([1.0, 2.0], [4.0, 4.0]),
        ([np.inf, -np.inf], [0.0, 1.0]),
    ],
)
def test_two_elements(x, y):
    x, y = np.array(x), np.array(y)
    assert_same(kendall_tau(x, y), scipy_tau(x, y))


@FAST
@given(
    paired(
        st.one_of(st.sampled_from([np.inf, -np.inf]), small_ints(3), finite),
        st.one_of(st.sampled_from([np.inf, -np.inf]), finite),
        max_size=80,
    )
)
def test_infinite_values(xy):
    x, y = xy
    assert_same(kendall_tau(x, y), scipy_tau(x, y))


def test_infinite_values_rank_at_the_ends():
    y = np.arange(6.0)
    x = np.array([-np.inf, -1e300, 0.0, 1.0, 1e300, np.inf])
    assert kendall_tau(x, y) == pytest.approx(1.0, abs=TOL)
    assert kendall_tau(x[::-1].copy(), y) == pytest.approx(-1.0, abs=TOL)


def test_target_with_nan_is_refused():
    with pytest.raises(ValueError, match="NaN"):
        KendallTarget(np.array([1.0, np.nan, 3.0]))


def test_row_length_mismatch_is_refused():
    with pytest.raises(ValueError, match="columns"):
        KendallTarget(np.arange(5.0)).tau(np.arange(4.0))


@FAST
@given(paired(small_ints(6), small_ints(6)))
def test_tau_within_unit_interval(xy):
    """Tau-b is a correlation: like scipy (which clips rounding), never outside [-1, 1]."""
    x, y = xy
    tau = kendall_tau(x, y)
    assert math.isnan(tau) or -1.0 <= tau <= 1.0, tau


@pytest.mark.parametrize("n", [3, 7, 10, 11, 19, 22, 26, 29, 46, 101])
def test_perfect_agreement_stays_within_bounds(n):
    """Identical (or reversed) rankings with ties: tau-b is +/-1 up to rounding, never beyond."""
    x = np.repeat(np.arange(n, dtype=float), 2)
    assert kendall_tau(x, x) == pytest.approx(1.0, abs=TOL)
    assert kendall_tau(x, x) <= 1.0
    assert kendall_tau(-x, x) >= -1.0


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1), st.lists(st.integers(0, 300), min_size=1, max_size=4),
       st.integers(1, 11))
def test_targets_side_by_side_equal_each_alone(seed, sizes, k):
    """Several problems scored in one call: each column block as its own target would."""
    rng = np.random.default_rng(seed)
    targets = [rng.integers(0, 1 + n // 3, n).astype(float) for n in sizes]
    rows = np.where(rng.random((k, sum(sizes))) < 0.3, 1.0, rng.normal(size=(k, sum(sizes))))
    together = KendallTargets(targets).tau(rows)
    assert together.shape == (k, len(sizes))
    start = 0
    for t, target in enumerate(targets):
        block = rows[:, start : start + len(target)]
        alone = KendallTarget(target).tau(block) if len(target) else np.full(k, np.nan)
        np.testing.assert_array_equal(together[:, t], alone)
        for r in range(k):
            assert_same(together[r, t], scipy_tau(block[r], target) if len(target) > 1 else np.nan)
        start += len(target)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 11))
def test_rows_picked_by_id_and_block_by_block_equal_a_plain_call(seed, k):
    """Rows read in place through ``ids``, whole or one block at a time, as if copied out."""
    rng = np.random.default_rng(seed)
    targets = [rng.integers(0, 9, n).astype(float) for n in (40, 13)]
    rows = np.round(rng.normal(size=(20, 53)), 1)
    ids = rng.choice(20, size=k, replace=False).astype(np.int64)
    expected = KendallTargets(targets).tau(rows[ids])
    np.testing.assert_array_equal(KendallTargets(targets).tau(rows, ids), expected)
    blockwise = KendallTargets(targets)
    out = np.full((2, k), np.nan)
    for first in range(0, k, 4):
        blockwise.tau_blocks(rows, plain_rows(ids), [first], out, worker=1)
    np.testing.assert_array_equal(out.T, expected)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 11))
def test_fused_operators_equal_their_values_materialised(seed, k):
    """A candidate with fused operators (root, and each operand a row or an operator of two
    rows) scores as its values computed by the numpy primitives: zeros, negatives,
    infinities and the protected value included (an evaluator's slab is NaN-free)."""
    rng = np.random.default_rng(seed)
    targets = [rng.integers(0, 9, n).astype(float) for n in (40, 13)]
    edge = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, PROTECTED_VALUE, 1e300, -1e300])
    rows = np.where(rng.random((12, 53)) < 0.3, rng.choice(edge, (12, 53)),
                    np.round(rng.normal(size=(12, 53)), 1))
    program = rng.integers(0, 12, (k, 7))
    program[:, [0, 1, 4]] = rng.integers(0, len(FUSED_OPERATORS) + 1, (k, 3))

    def apply(code, x, y):
        prim = PRIMITIVES[FUSED_OPERATORS[code - 1]]
        return prim.numpy_fn(*(x, y)[: prim.arity])

    def operand(code, x, y):
        return rows[x] if not code else apply(code, rows[x], rows[y])

    values = [rows[a] if not code else apply(code, operand(left, a, b), operand(right, c, d))
              for code, left, a, b, right, c, d in program]
    expected = KendallTargets(targets).tau(np.array(values))
    out = np.full((2, k), np.nan)
    KendallTargets(targets).tau_blocks(rows, program, range(0, k, 4), out, worker=0)
    np.testing.assert_array_equal(out.T, expected)
