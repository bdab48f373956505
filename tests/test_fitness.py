"""Fitness: equation 1, the tau scorer and its cache, and the batched population evaluator."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gpsr.data import Problem, load_csv, shared_dir
from gpsr.errors import GpsrError
from gpsr.expressions import Expression, parse
from gpsr.fitness import Equation1, TauScorer
from gpsr.functions import FUSED_OPERATORS, PRIMITIVES, PROTECTED_VALUE
from gpsr.genetic import SearchConfig, TreeFactory
from gpsr.kernels.evaluate import PopulationEvaluator
from gpsr.kernels.kendall import plain_rows

PROXIES = ("a", "b", "c", "d")


def scipy_tau(x, y) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(scipy.stats.kendalltau(x, y)[0])


def problem(name: str, seed: int, n: int = 50) -> Problem:
    rng = np.random.default_rng(seed)
    values = rng.lognormal(size=(n, len(PROXIES)))
    values[:, 1] = rng.integers(0, 4, n)  # ties and zeros
    values[:, 3] = rng.normal(size=n)  # negatives
    values[rng.integers(0, n, 3), 2] = [np.nan, np.inf, -1e8]
    accuracy = np.round(values[:, 0] * 3 + rng.normal(size=n), 1)  # ties in the target
    return Problem(name, "s", "t", [f"x{i}" for i in range(n)], PROXIES, values, accuracy)


def population(seed: int, size: int, depth=(1, 5)) -> list[Expression]:
    cfg = SearchConfig(population_size=size, min_depth=0, init_depth=depth, max_depth=8)
    f = TreeFactory(cfg, PROXIES, np.random.default_rng(seed))
    pop = f.initial_population()
    return pop + f.vary(pop)  # offspring share subtrees with their parents


# ---- equation 1 ----------------------------------------------------------------------------
def apply_code(code: int, *operands: np.ndarray) -> np.ndarray:
    prim = PRIMITIVES[FUSED_OPERATORS[code - 1]]
    return prim.numpy_fn(*operands[: prim.arity])


def candidate_values(rows: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """The values a Kendall candidate stands for (see ``KendallTargets.tau_blocks``)."""
    code, left, a, b, right, c, d = candidate

    def operand(op, x, y):
        return rows[x] if not op else apply_code(op, rows[x], rows[y])

    return rows[a] if not code else apply_code(code, operand(left, a, b), operand(right, c, d))


def test_equation1_by_hand():
    eq = Equation1(2)
    taus = np.array([[0.1, 0.5], [0.3, -0.2], [0.2, 0.4]])
    eq.observe(taus)
    np.testing.assert_array_equal(eq.low, [0.1, -0.2])
    np.testing.assert_array_equal(eq.high, [0.3, 0.5])
    expected = [
        (0.1 - 0.1) / 0.2 + (0.5 + 0.2) / 0.7,
        (0.3 - 0.1) / 0.2 + (-0.2 + 0.2) / 0.7,
        (0.2 - 0.1) / 0.2 + (0.4 + 0.2) / 0.7,
    ]
    np.testing.assert_allclose(eq.score(taus), expected, rtol=1e-14)
    # a single row (1-D) is scored as one expression
    np.testing.assert_allclose(eq.score(taus[2]), expected[2:], rtol=1e-14)


def test_equation1_bounds_move_and_scores_are_recomputed():
    eq = Equation1(2)
    first = np.array([[0.1, 0.5], [0.3, -0.2]])
    eq.observe(first)
    before = eq.score(first)
    np.testing.assert_allclose(before, [0 + 1, 1 + 0])
    eq.observe(np.array([[0.5, 0.5], [-0.3, 0.6]]))  # widens both bounds
    np.testing.assert_array_equal(eq.low, [-0.3, -0.2])
    np.testing.assert_array_equal(eq.high, [0.5, 0.6])
    after = eq.score(first)
    np.testing.assert_allclose(after, [(0.4 / 0.8) + (0.7 / 0.8), (0.6 / 0.8) + 0.0])
    assert not np.allclose(before, after)
    # observing taus inside the bounds changes nothing
    eq.observe(np.array([[0.0, 0.0]]))
    np.testing.assert_allclose(eq.score(first), after)


def test_equation1_nan_counts_as_zero():
    eq = Equation1(2)
    taus = np.array([[np.nan, 0.5], [0.2, np.nan], [-0.4, 0.1]])
    eq.observe(taus)
    np.testing.assert_array_equal(eq.low, [-0.4, 0.0])
    np.testing.assert_array_equal(eq.high, [0.2, 0.5])
    as_zero = np.nan_to_num(taus, nan=0.0)
    np.testing.assert_array_equal(eq.score(taus), eq.score(as_zero))
    np.testing.assert_allclose(eq.score(taus)[0], (0.4 / 0.6) + (0.5 / 0.5))
    assert not np.isnan(eq.score(taus)).any()


def test_equation1_all_nan_problem_scores_zero():
    eq = Equation1(1)
    eq.observe(np.array([[np.nan], [np.nan]]))
    np.testing.assert_array_equal(eq.score(np.array([[np.nan], [0.0]])), [0.0, 0.0])


def test_equation1_zero_span_contributes_nothing():
    eq = Equation1(2)
    taus = np.array([[0.3, 0.1], [0.3, 0.4]])
    eq.observe(taus)
    np.testing.assert_allclose(eq.score(taus), [0.0, 1.0])


def test_equation1_state_round_trip():
    eq = Equation1(3)
    eq.observe(np.array([[0.1, np.nan, -0.5], [0.4, 0.2, 0.3]]))
    back = Equation1.from_state(eq.state())
    np.testing.assert_array_equal(back.low, eq.low)
    np.testing.assert_array_equal(back.high, eq.high)
    probe = np.array([[0.2, 0.1, 0.0]])
    assert back.score(probe) == eq.score(probe)


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 12), st.integers(1, 4)),
                  elements=st.one_of(st.floats(-1, 1), st.just(np.nan))))
def test_equation1_in_range(taus):
    eq = Equation1(taus.shape[1])
    eq.observe(taus)
    score = eq.score(taus)
    assert score.shape == (taus.shape[0],)
    assert ((score >= -1e-12) & (score <= taus.shape[1] + 1e-12)).all()
    best = np.nan_to_num(taus, nan=0.0)
    # a row that is best on every problem scores the number of problems with nonzero span
    span = best.max(axis=0) > best.min(axis=0)
    np.testing.assert_allclose(eq.score(best.max(axis=0)), [span.sum()], rtol=1e-12)


# ---- tau scorer -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def problems() -> list[Problem]:
    return [problem("P1", 1), problem("P2", 2, n=37), problem("P3", 3, n=12)]


def reference(expr: Expression, probs: list[Problem]) -> list[float]:
    return [scipy_tau(expr.evaluate({q: p.column(q) for q in PROXIES}), p.accuracy)
            for p in probs]


def assert_taus_equal(ours: np.ndarray, ref: np.ndarray, tol: float = 1e-12) -> None:
    ours, ref = np.asarray(ours), np.asarray(ref)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    both = ~np.isnan(ref)
    np.testing.assert_allclose(ours[both], ref[both], rtol=0, atol=tol)


def test_tau_scorer_equals_scipy_per_problem(problems):
    exprs = population(0, 30) + [parse(t) for t in ("a", "b", "c", "log(b)", "sqrt(d) * c",
                                                    "a - a", "b / (c - c)", "log(neg(a))")]
    scorer = TauScorer(problems, PROXIES, "cpu")
    taus = scorer.taus(exprs)
    assert taus.shape == (len(exprs), 3)
    for expr, row in zip(exprs, taus):
        assert_taus_equal(row, reference(expr, problems))
    assert math.isnan(scorer.taus([parse("a - a")])[0, 0])  # constant: undefined


def test_tau_scorer_cache(problems):
    exprs = population(1, 20)
    scorer = TauScorer(problems, PROXIES, "cpu")
    first = scorer.taus(exprs)
    assert set(scorer.cache) == {e.infix() for e in exprs}
    again = scorer.taus(exprs[::-1])
    np.testing.assert_array_equal(again, first[::-1])
    # cached and fresh in one call, duplicates included
    mixed = exprs[:5] + population(2, 10) + exprs[:2]
    out = scorer.taus(mixed)
    fresh = TauScorer(problems, PROXIES, "cpu").taus(mixed)
    np.testing.assert_array_equal(out, fresh)
    # cached values are returned, not recomputed
    key = exprs[0].infix()
    scorer.cache[key] = np.array([9.0, 9.0, 9.0])
    assert scorer.taus([exprs[0]]).tolist() == [[9.0, 9.0, 9.0]]
    assert scorer.taus([]).shape == (0, 3)


def test_tau_scorer_with_a_proxy_subset(problems):
    scorer = TauScorer(problems, ("c", "a"), "cpu")
    taus = scorer.taus([parse("a * c")])
    assert_taus_equal(taus[0], reference(parse("a * c"), problems))
    with pytest.raises(GpsrError, match="'b'"):
        scorer.taus([parse("a + b")])


@pytest.mark.skipif(shared_dir() is None, reason="shared data not found; set GPSR_SHARED")
def test_tau_scorer_equals_scipy_on_real_data():
    path = shared_dir() / "data" / "nas-bench-suite-zero" / "nb201-cifar10.csv"
    prob = load_csv(path)
    exprs = [parse(t) for t in ("flops", "log(flops)", "sqrt(params) * flops",
                                "log(synflow) * flops", "nwot - zen", "snip / grad_norm",
                                "jacov * neg(epe_nas)", "log(params) + log(flops)")]
    taus = TauScorer([prob], prob.proxies, "cpu").taus(exprs)
    columns = {q: prob.column(q) for q in prob.proxies}
    for expr, row in zip(exprs, taus):
        assert_taus_equal(row, [scipy_tau(expr.evaluate(columns), prob.accuracy)])


# ---- population evaluator ---------------------------------------------------------------
def values_matrix(seed: int, n: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.normal(scale=3.0, size=(n, len(PROXIES)))
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -1e8, 1e300, 1.0])
    mask = rng.random(v.shape) < 0.15
    v[mask] = rng.choice(special, mask.sum())
    v[:, 1] = np.round(v[:, 1])
    return v


def assert_matches_numpy(out: torch.Tensor, exprs: list[Expression], values: np.ndarray):
    out = out.cpu().numpy()
    assert out.shape == (len(exprs), values.shape[0])
    columns = {p: values[:, k] for k, p in enumerate(PROXIES)}
    for row, expr in zip(out, exprs):
        ref = expr.evaluate(columns)
        assert not np.isnan(row).any()
        np.testing.assert_array_equal(np.isfinite(row), np.isfinite(ref), err_msg=expr.infix())
        np.testing.assert_array_equal(row[~np.isfinite(row)], ref[~np.isfinite(ref)])
        np.testing.assert_array_equal(row == PROTECTED_VALUE, ref == PROTECTED_VALUE)
        fin = np.isfinite(ref)
        np.testing.assert_allclose(row[fin], ref[fin], rtol=1e-12, atol=0,
                                   err_msg=expr.infix())


def test_evaluator_equals_numpy_with_shared_subtrees():
    values = values_matrix(0)
    shared = parse("log(a) * (b - c)")
    exprs = [shared, parse("sqrt(log(a) * (b - c))"), parse("log(a) * (b - c) / d"),
             parse("neg(log(a) * (b - c)) + log(a)"), parse("a"), shared,
             parse("(b - c) * log(a)")] + population(3, 40)
    ev = PopulationEvaluator(values, PROXIES, "cpu")
    assert_matches_numpy(ev.evaluate(exprs), exprs, values)
    # a subtree common to several trees gets a single row
    assert "log(a) * (b - c)" in ev.row_of and "log(a)" in ev.row_of
    # evaluating again (all cached) gives the same numbers
    assert_matches_numpy(ev.evaluate(exprs[::-1]), exprs[::-1], values)


def test_evaluator_lru_eviction_and_slab_growth():
    values = values_matrix(1, n=25)
    ev = PopulationEvaluator(values, PROXIES, "cpu", cache_bytes=1)
    capacity = ev.slab.shape[0]
    assert capacity == len(PROXIES) + 256  # the floor on cached rows
    evicted = grown = False
    seen: set[str] = set()
    for call in range(12):
        exprs = population(100 + call, 30 if call % 4 else 120, depth=(2, 6))
        before = set(ev.row_of)
        out = ev.evaluate(exprs)
        assert_matches_numpy(out, exprs, values)
        seen |= before
        evicted |= bool(seen - set(ev.row_of))
        grown |= ev.slab.shape[0] > capacity
        # every cached row is distinct and inside the slab; free rows are not cached
        rows = list(ev.row_of.values())
        assert len(rows) == len(set(rows))
        assert not set(rows) & set(ev.free)
        assert all(len(PROXIES) <= r < ev.slab.shape[0] for r in rows)
        # an earlier population still evaluates right after its rows were reused
        old = population(100 + call // 2, 10, depth=(2, 6))
        assert_matches_numpy(ev.evaluate(old), old, values)
    assert evicted, "no subtree was ever evicted"
    assert grown, "the slab never grew"


def test_evaluator_one_call_larger_than_the_slab():
    values = values_matrix(2, n=10)
    ev = PopulationEvaluator(values, PROXIES, "cpu", cache_bytes=1)
    exprs = population(7, 200, depth=(4, 7))
    n_subtrees = len({n.infix() for e in exprs for n in e.nodes() if not n.is_leaf})
    assert n_subtrees > ev.slab.shape[0]
    assert_matches_numpy(ev.evaluate(exprs), exprs, values)


def test_evaluator_names_a_missing_proxy():
    ev = PopulationEvaluator(values_matrix(0), PROXIES, "cpu")
    with pytest.raises(GpsrError, match="'zico'"):
        ev.evaluate([parse("a * zico")])
    # the failed call leaves the evaluator usable
    exprs = population(5, 10)
    assert_matches_numpy(ev.evaluate(exprs), exprs, values_matrix(0))


@pytest.mark.parametrize("fuse_roots", [False, True])
@pytest.mark.parametrize(("waves", "last_wave"), [(False, 0), (True, 0), (True, 1), (True, 8),
                                                  (False, 8), (True, 100)])
def test_evaluator_stages_hand_over_every_expression_once_when_final(waves, last_wave,
                                                                     fuse_roots):
    values = values_matrix(2)
    exprs = population(5, 30)
    exprs += exprs[:3]  # the same trees twice in one call
    ev = PopulationEvaluator(values, PROXIES, "cpu")
    ev.evaluate(exprs[:10])  # some trees, and subtrees of others, already cached
    seen: list[int] = []
    lasts = []
    for positions, last in ev.stages(exprs, waves, last_wave, fuse_roots):
        # final values can be read as soon as a stage names them
        rows, program = ev.host_program([exprs[i] for i in positions])
        assert_matches_numpy(torch.from_numpy(np.array([candidate_values(rows, c)
                                                        for c in program])),
                             [exprs[i] for i in positions], values)
        seen += positions
        lasts.append(last)
    assert sorted(seen) == list(range(len(exprs)))
    assert lasts[-1] and not any(lasts[:-1])


@pytest.mark.parametrize("threads", [1, 2])
def test_tau_scorer_pipelined_equals_one_thread(problems, threads):
    import numba

    exprs = population(7, 60)
    serial = TauScorer(problems, PROXIES, "cpu")
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        expected = serial.taus(exprs)
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        piped = TauScorer(problems, PROXIES, "cpu")
        np.testing.assert_array_equal(piped.taus(exprs), expected)
    finally:
        numba.set_num_threads(before)


def test_tau_scorer_scores_equal_rows_once(problems):
    """Different trees with the same values (commuted operands, double negation) get the
    same taus, computed once; only a fused root and a computed row (the same values
    twice, one of them not materialised) may both be scored."""
    texts = ["a * b", "b * a", "neg(neg(c))", "c * d", "d * c", "a + b", "b + a", "log(d)",
             "log(a + b)", "log(b + a)"]
    exprs = [parse(t) for t in texts] + population(3, 12)
    scorer = TauScorer(problems, PROXIES, "cpu")
    scored: list[tuple[bytes, bool]] = []  # values, and whether a fused root gave them
    blocks = scorer.targets.tau_blocks

    def counting(rows, program, firsts, out, worker):
        scored.extend((candidate_values(rows, c).tobytes(), bool(c[0])) for c in program)
        blocks(rows, program, firsts, out, worker)

    scorer.targets.tau_blocks = counting
    taus = scorer.taus(exprs)
    for expr, row in zip(exprs, taus):
        assert_taus_equal(row, reference(expr, problems))
    for i, j in [(0, 1), (3, 4), (5, 6), (8, 9)]:
        np.testing.assert_array_equal(taus[i], taus[j])
    distinct = {scorer.evaluator.evaluate([e]).numpy().tobytes() for e in exprs}
    assert len(set(scored)) == len(scored)
    assert len({values for values, _ in scored}) == len(distinct) < len(exprs)


def test_evaluator_fuses_roots_only_where_their_values_are_not_needed():
    """Fused roots, and fused operands of theirs: final with the rows they read, handed
    over as operators and rows that give the numpy values. A subtree another expression
    reads, an expression itself, or a log is computed."""
    texts = ("a * b", "log(a * b)", "c + d", "log(c)", "neg(a * b)", "(c - d) * neg(a)",
             "sqrt(log(c) + (a * b))", "(b - a) / (b - a)")
    exprs = [parse(t) for t in texts] + population(9, 40)
    values = values_matrix(2)
    ev = PopulationEvaluator(values, PROXIES, "cpu")
    seen: list[int] = []
    for positions, _ in ev.stages(exprs, True, 4, fuse_roots=True):
        rows, program = ev.host_program([exprs[i] for i in positions])
        assert_matches_numpy(torch.from_numpy(np.array([candidate_values(rows, c)
                                                        for c in program])),
                             [exprs[i] for i in positions], values)
        seen += positions
    assert sorted(seen) == list(range(len(exprs)))
    ev = PopulationEvaluator(values, PROXIES, "cpu")  # the hand-written trees alone
    for _ in ev.stages(exprs[: len(texts)], fuse_roots=True):
        pass
    code = {name: FUSED_OPERATORS.index(name) + 1 for name in FUSED_OPERATORS}
    program = dict(zip(texts, ev.host_program(exprs[: len(texts)])[1].tolist()))
    assert program["a * b"][0] == 0  # log(a * b) reads it
    assert program["log(a * b)"][0] == program["log(c)"][0] == 0  # log is never fused
    assert program["c + d"][:2] == [code["add"], 0]
    assert program["neg(a * b)"][:2] == [code["neg"], 0]  # a * b is an expression itself
    assert program["(c - d) * neg(a)"][:2] == [code["mul"], code["sub"]]
    assert program["(c - d) * neg(a)"][4] == code["neg"]
    assert program["sqrt(log(c) + (a * b))"][:2] == [code["sqrt"], code["add"]]
    assert program["(b - a) / (b - a)"][:2] == [code["div"], code["sub"]]  # read by it alone
    for fused in ("c + d", "c - d", "neg(a)", "b - a"):
        assert fused not in ev.row_of  # not computed, so not cached


@pytest.mark.parametrize("threads", [1, 2])
def test_tau_scorer_with_host_copies_per_stage_as_on_a_gpu(problems, threads):
    """On a GPU each finished stage is copied to the host, so a block of rows can span
    several copies; the taus are the same as when rows are read in place."""
    import numba

    exprs = population(11, 60)
    expected = TauScorer(problems, PROXIES, "cpu").taus(exprs)
    scorer = TauScorer(problems, PROXIES, "cpu")
    ev = scorer.evaluator
    ev.host_program = lambda part: (ev.values(part).numpy(), plain_rows(range(len(part))))
    stages = ev.stages
    ev.stages = lambda *args, fuse_roots: stages(*args)  # a GPU fuses no root
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        np.testing.assert_array_equal(scorer.taus(exprs), expected)
    finally:
        numba.set_num_threads(before)
