"""Genetic programming: depth limits, initialisation, selection, determinism, settings."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpsr.data import Problem
from gpsr.errors import GpsrError
from gpsr.expressions import Expression, parse
from gpsr.fitness import TauScorer
from gpsr.genetic import RunState, SearchConfig, TreeFactory, evolve, tournament

TERMINALS = ("a", "b", "c", "d", "e")


def factory(seed: int = 0, **kwargs) -> TreeFactory:
    return TreeFactory(SearchConfig(**kwargs), TERMINALS, np.random.default_rng(seed))


def is_full(tree: Expression, depth: int) -> bool:
    """Every leaf sits exactly at ``depth``."""
    if tree.is_leaf:
        return depth == 0
    return all(is_full(c, depth - 1) for c in tree.children)


def synthetic_problem(name: str, seed: int, n: int = 60, proxies=TERMINALS) -> Problem:
    rng = np.random.default_rng(seed)
    values = rng.lognormal(size=(n, len(proxies)))
    values[:, 1] = np.round(values[:, 1], 1)  # a tie-heavy proxy
    accuracy = np.log(values[:, 0]) * values[:, 2] + 0.3 * rng.normal(size=n)
    return Problem(name, name.lower(), "task", [f"arch{i}" for i in range(n)], tuple(proxies),
                   values, accuracy)


@pytest.fixture(scope="module")
def scorer() -> TauScorer:
    problems = [synthetic_problem("P1-T", 1), synthetic_problem("P2-T", 2, n=45)]
    return TauScorer(problems, TERMINALS, "cpu")


@pytest.fixture(scope="module")
def single_scorer() -> TauScorer:
    return TauScorer([synthetic_problem("P3-T", 3)], TERMINALS, "cpu")


# ---- initial population ------------------------------------------------------------
@pytest.mark.parametrize("init_depth", [(2, 6), (2, 2), (3, 5), (2, 5), (4, 4)])
def test_initial_population_depths_within_init_depth(init_depth):
    f = factory(1, population_size=60, init_depth=init_depth)
    pop = f.initial_population()
    assert len(pop) == 60
    depths = [t.depth for t in pop]
    assert min(depths) >= init_depth[0] and max(depths) <= init_depth[1]
    assert set(depths) == set(range(init_depth[0], init_depth[1] + 1))  # ramped
    for t in pop:
        assert t.proxies() <= set(TERMINALS)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 7), st.booleans())
def test_random_tree_reaches_exactly_the_requested_depth(seed, depth, full):
    f = factory(seed, min_depth=0, init_depth=(0, 7), max_depth=10)
    tree = f.random_tree(depth, full)
    assert tree.depth == depth
    if full:
        assert is_full(tree, depth)


@pytest.mark.parametrize("init_depth", [(2, 6), (2, 5), (2, 3)])
def test_ramped_half_and_half_has_full_and_grown_trees_at_every_depth(init_depth):
    """Ramped half-and-half: each depth of the ramp gets both full and grown trees.

    (A grown tree may by chance be full, so "grown" is checked as "some tree at this depth
    is not full"; with binary operators in the set and 20+ trees per depth that is certain.)
    """
    f = factory(3, population_size=200, init_depth=init_depth)
    pop = f.initial_population()
    for depth in range(init_depth[0], init_depth[1] + 1):
        at_depth = [t for t in pop if t.depth == depth]
        full = [t for t in at_depth if is_full(t, depth)]
        assert full, f"no full tree at depth {depth}"
        assert len(full) < len(at_depth), f"no grown tree at depth {depth}"


# ---- depth limits after variation --------------------------------------------------
OPERATORS = {
    "crossover": dict(p_crossover=1.0, p_subtree_mutation=0.0, p_hoist_mutation=0.0,
                      p_point_mutation=0.0),
    "subtree": dict(p_crossover=0.0, p_subtree_mutation=1.0, p_hoist_mutation=0.0,
                    p_point_mutation=0.0),
    "hoist": dict(p_crossover=0.0, p_subtree_mutation=0.0, p_hoist_mutation=1.0,
                  p_point_mutation=0.0),
    "point": dict(p_crossover=0.0, p_subtree_mutation=0.0, p_hoist_mutation=0.0,
                  p_point_mutation=1.0, point_replace_rate=0.5),
    "all": dict(p_crossover=0.7, p_subtree_mutation=0.1, p_hoist_mutation=0.5,
                p_point_mutation=0.1),
    "all-always": dict(p_crossover=1.0, p_subtree_mutation=1.0, p_hoist_mutation=1.0,
                       p_point_mutation=1.0, point_replace_rate=1.0),
}


@pytest.mark.parametrize("limits", [(2, 10, (2, 6)), (2, 4, (2, 4)), (3, 5, (3, 4)),
                                    (0, 3, (1, 3))])
@pytest.mark.parametrize("op", sorted(OPERATORS))
def test_depth_limits_hold_after_variation(op, limits):
    min_depth, max_depth, init_depth = limits
    f = factory(11, population_size=40, min_depth=min_depth, max_depth=max_depth,
                init_depth=init_depth, **OPERATORS[op])
    pop = f.initial_population()
    changed = 0
    for _generation in range(15):
        order = f.draws.rng.permutation(len(pop))
        offspring = f.vary([pop[i] for i in order])
        assert len(offspring) == len(pop)
        for child in offspring:
            assert min_depth <= child.depth <= max_depth, (op, child.infix())
            assert child.proxies() <= set(TERMINALS)
        changed += sum(a.infix() != b.infix() for a, b in zip((pop[i] for i in order), offspring))
        pop = offspring
    assert changed > 0  # the operator actually did something


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 4), st.integers(0, 6))
def test_raw_operators(seed, min_depth, span):
    """Each operator's output before the guard: well-formed, and depth rules of each kind."""
    max_depth = min_depth + span
    init = (max(min_depth, 1), min(max_depth, min_depth + 3))
    if init[0] > init[1]:
        init = (min_depth, min_depth)
    f = factory(seed, min_depth=min_depth, max_depth=max_depth, init_depth=init,
                point_replace_rate=0.5)
    a, b = f.random_tree(init[1], False), f.random_tree(init[0], True)
    for child in (f.crossover(a, b), f.subtree_mutation(a), f.hoist_mutation(a),
                  f.point_mutation(a)):
        assert child.proxies() <= set(TERMINALS)
        assert Expression.from_json(child.to_json()) == child
    assert f.hoist_mutation(a).depth <= a.depth
    point = f.point_mutation(a)
    assert point.depth == a.depth and point.size == a.size
    assert [n.is_leaf for n in point.nodes()] == [n.is_leaf for n in a.nodes()]
    assert f.within_limits(a) and f.within_limits(b)
    assert f._guard(a, f.crossover(a, b)).depth <= max_depth


# ---- tournament selection ----------------------------------------------------------
@st.composite
def pools(draw, k: int | None = None):
    k = k if k is not None else draw(st.integers(2, 6))
    n = draw(st.integers(max(1, (k + 1) // 2), 12)) * 2
    fitness = draw(st.lists(st.one_of(st.integers(-3, 3).map(float),
                                      st.floats(-10, 10, allow_nan=False)),
                            min_size=2 * n, max_size=2 * n))
    sizes = draw(st.lists(st.integers(1, 30), min_size=2 * n, max_size=2 * n))
    seed = draw(st.integers(0, 2**32 - 1))
    return np.array(fitness), np.array(sizes), k, n, seed


def _check_elitism(fitness, sizes, k, n, seed, parsimony):
    winners = tournament(fitness, sizes, k, n, np.random.default_rng(seed), parsimony)
    assert len(winners) == n
    assert ((winners >= 0) & (winners < len(fitness))).all()
    best = fitness.max()
    assert fitness[winners].max() == best, "the best of P+O was lost"
    if parsimony:
        smallest_best = sizes[fitness == best].min()
        assert sizes[winners][fitness[winners] == best].min() == smallest_best


@settings(max_examples=100, deadline=None)
@given(pools(k=2), st.booleans())
def test_binary_tournament_keeps_the_best_of_p_plus_o(pool, parsimony):
    """The paper's survival step: binary tournaments over 2N keep the best (section 3.5)."""
    _check_elitism(*pool, parsimony)


@pytest.mark.parametrize("k", [2, 3, 4, 5, 7])
def test_tournament_keeps_the_best_of_p_plus_o_for_any_size(k):
    """``tournament_size`` is a setting (``--tournament-size``): elitism, which the module
    promises ("the best expression is never lost"), should not depend on its value."""
    fitness = np.random.default_rng(k).permutation(20).astype(float)  # P+O of N = 10
    sizes = np.ones(20, dtype=int)
    lost = [seed for seed in range(300)
            if fitness.max() not in fitness[tournament(fitness, sizes, k, 10,
                                                       np.random.default_rng(seed), True)]]
    assert not lost, f"best lost with tournament_size={k} for {len(lost)}/300 seeds"


def test_tournament_prefers_fitter_then_smaller():
    fitness = np.array([0.1, 0.9, 0.5, 0.9])
    sizes = np.array([5, 9, 5, 3])
    for seed in range(20):
        # one group of four holds everyone: the winner is the smaller of the two best.
        winners = tournament(fitness, sizes, 4, 1, np.random.default_rng(seed), True)
        assert winners.tolist() == [3]


def test_tournament_is_seeded():
    fitness = np.random.default_rng(0).normal(size=40)
    sizes = np.ones(40, dtype=int)
    a = tournament(fitness, sizes, 2, 20, np.random.default_rng(5), True)
    b = tournament(fitness, sizes, 2, 20, np.random.default_rng(5), True)
    np.testing.assert_array_equal(a, b)


# ---- evolve: elitism, determinism, resume ----------------------------------------------
SMALL = dict(population_size=16, generations=6, max_depth=5, init_depth=(2, 4), device="cpu")


def test_best_tau_never_decreases_on_one_problem(single_scorer):
    """With one problem, equation 1 is monotone in tau, so elitism keeps the best tau."""
    _, state = evolve(single_scorer, SearchConfig(**SMALL), seed=4)
    best = [h["best_taus"][0] for h in state.history]
    assert len(best) == SMALL["generations"] + 1
    assert all(b2 >= b1 - 1e-15 for b1, b2 in zip(best, best[1:])), best


def test_same_seed_same_expression(scorer):
    cfg = SearchConfig(**SMALL)
    best1, state1 = evolve(scorer, cfg, seed=7)
    fresh = TauScorer([synthetic_problem("P1-T", 1), synthetic_problem("P2-T", 2, n=45)],
                      TERMINALS, "cpu")
    best2, state2 = evolve(fresh, cfg, seed=7)
    assert best1.infix() == best2.infix()
    assert state1.population == state2.population
    assert state1.history == state2.history
    for text in state1.population:
        assert cfg.min_depth <= parse(text).depth <= cfg.max_depth


def test_different_seeds_usually_differ(scorer):
    cfg = SearchConfig(**SMALL)
    _, base = evolve(scorer, cfg, seed=0)
    others = [evolve(scorer, cfg, seed=s)[1] for s in (1, 2, 3)]
    assert any(o.population != base.population for o in others)
    assert any(o.history[0]["best_expression"] != base.history[0]["best_expression"]
               for o in others)


def test_resume_from_a_checkpoint_equals_an_uninterrupted_run(scorer):
    cfg = SearchConfig(**SMALL)
    saved = {}

    def keep(state: RunState) -> None:
        saved[state.generation] = json.loads(json.dumps(state.to_dict()))

    best, final = evolve(scorer, cfg, seed=9, on_generation=keep)
    assert sorted(saved) == list(range(cfg.generations + 1))
    for gen in (0, 3):
        fresh = TauScorer([synthetic_problem("P1-T", 1), synthetic_problem("P2-T", 2, n=45)],
                          TERMINALS, "cpu")
        best2, final2 = evolve(fresh, cfg, seed=9, resume=RunState(**saved[gen]))
        assert best2.infix() == best.infix()
        assert final2.population == final.population
        assert final2.history == final.history


def test_generations_zero_returns_the_best_initial_tree(scorer):
    cfg = SearchConfig(**{**SMALL, "generations": 0})
    best, state = evolve(scorer, cfg, seed=1)
    assert state.generation == 0 and len(state.history) == 1
    assert best.infix() in state.population


# ---- SearchConfig validation ------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(population_size=1), "population_size"),
        (dict(population_size=7), "even"),
        (dict(generations=-1), "generations"),
        (dict(tournament_size=0), "tournament_size"),
        (dict(min_depth=5, max_depth=4, init_depth=(4, 4)), "min_depth"),
        (dict(min_depth=-1), "min_depth"),
        (dict(init_depth=(1, 6)), "init_depth"),
        (dict(init_depth=(2, 11)), "init_depth"),
        (dict(init_depth=(5, 3)), "init_depth"),
        (dict(p_crossover=1.5), "p_crossover"),
        (dict(p_subtree_mutation=-0.1), "p_subtree_mutation"),
        (dict(p_hoist_mutation=2.0), "p_hoist_mutation"),
        (dict(p_point_mutation=-1.0), "p_point_mutation"),
        (dict(point_replace_rate=1.01), "point_replace_rate"),
        (dict(function_set=("add", "exp")), "'exp'"),
    ],
)
def test_search_config_validation(kwargs, fragment):
    with pytest.raises(GpsrError) as info:
        SearchConfig(**kwargs)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_tournament_larger_than_population_is_refused():
    """k > N: ``tournament`` draws len(pool) // k == 0 winners per shuffle and never ends."""
    with pytest.raises(GpsrError, match="tournament_size"):
        SearchConfig(population_size=2, tournament_size=3)


def test_search_config_defaults_are_the_papers():
    cfg = SearchConfig()
    assert (cfg.population_size, cfg.generations, cfg.tournament_size) == (100, 50, 2)
    assert (cfg.p_crossover, cfg.p_subtree_mutation, cfg.p_hoist_mutation,
            cfg.p_point_mutation) == (0.7, 0.1, 0.5, 0.1)
    assert (cfg.min_depth, cfg.max_depth, cfg.init_depth) == (2, 10, (2, 6))
    d = cfg.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert SearchConfig(**d).to_dict() == d


def test_factory_needs_terminals():
    with pytest.raises(GpsrError, match="no proxies"):
        TreeFactory(SearchConfig(), [], np.random.default_rng(0))
