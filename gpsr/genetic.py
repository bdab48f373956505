"""Genetic programming: random trees, variation operators and one evolutionary run.

The procedure is the paper's (section 3.5, appendix D): binary tournaments pick
N parents, variation makes N offspring, and binary tournaments over the 2N
parents + offspring keep N survivors, so the best expression is never lost.
``survival="generational"`` is EZNAS's procedure instead (offspring replace parents).

Reading of table 10. Its probabilities (crossover 0.7, subtree 0.1, hoist 0.5,
point 0.1) sum to 1.4, so they cannot be gplearn's mutually exclusive choices.
gpsr applies them as independent events: each pair of parents is crossed over
with probability ``p_crossover`` (two children, each parent receiving a subtree
of the other), then every child undergoes subtree, hoist and point mutation,
each with its own probability, in that order.

Depth limits: an operator whose result would fall outside ``[min_depth,
max_depth]`` is undone (the child keeps its tree from before that operator), so
every tree in every generation respects the limits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from gpsr.errors import GpsrError
from gpsr.expressions import MAX_DEPTH, Expression, parse
from gpsr.fitness import (
    FITNESSES,
    Equation1,
    TauScorer,
    WeightedTaus,
    fitness_from_state,
    make_fitness,
)
from gpsr.functions import DEFAULT_FUNCTION_SET, PRIMITIVES
from gpsr.kernels.evaluate import resolve_device, single_threaded_torch

SURVIVALS = ("elitist", "generational")

FINAL_CHOICES = ("sum", "worst")


@dataclass
class SearchConfig:
    """Every hyperparameter of one search; defaults are the paper's (appendix D)."""

    population_size: int = 100
    generations: int = 50
    tournament_size: int = 2
    p_crossover: float = 0.7
    p_subtree_mutation: float = 0.1
    p_hoist_mutation: float = 0.5
    p_point_mutation: float = 0.1
    point_replace_rate: float = 0.05
    min_depth: int = 2
    max_depth: int = 10
    init_depth: tuple[int, int] = (2, 6)
    function_set: tuple[str, ...] = DEFAULT_FUNCTION_SET
    parsimony_tiebreak: bool = True
    #: Subtracted per node from equation 1 in the tournaments (gplearn's
    #: ``parsimony_coefficient``; the final pick of a run is by equation 1 alone).
    parsimony_coefficient: float = 0.0
    #: The final metric of a run and among runs: ``sum`` (equation 1, the paper) or
    #: ``worst`` (the highest lowest tau over the input problems; see ``choose``).
    final_choice: str = "sum"
    random_state: int = 0
    device: str = "auto"
    #: "elitist" (the paper's: parents and offspring compete for survival) or "generational"
    #: (EZNAS, Akhauri et al. NeurIPS 2022: offspring replace their parents).
    survival: str = "elitist"
    #: "equation1" (the paper's), "mean" (plain mean tau) or "weighted" (Auto-Prox style:
    #: ``fitness_weights``, one per problem, fixed).
    fitness: str = "equation1"
    fitness_weights: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        self.init_depth = tuple(self.init_depth)
        self.function_set = tuple(self.function_set)
        self.fitness_weights = tuple(float(w) for w in self.fitness_weights)
        checks = [
            (self.survival in SURVIVALS,
             f"survival {self.survival!r} is not one of {', '.join(SURVIVALS)}"),
            (self.fitness in FITNESSES,
             f"fitness {self.fitness!r} is not one of {', '.join(FITNESSES)}"),
            (self.population_size >= 2, "population_size must be at least 2"),
            (self.population_size % 2 == 0, "population_size must be even (pairs of parents)"),
            (self.generations >= 0, "generations must be >= 0"),
            (
                2 <= self.tournament_size <= self.population_size,
                "tournament_size must be in [2, population_size] (1 would drop the best)",
            ),
            (0 <= self.min_depth <= self.max_depth, "need 0 <= min_depth <= max_depth"),
            (self.max_depth <= MAX_DEPTH, f"max_depth must be at most {MAX_DEPTH}"),
            (self.random_state >= 0, "random_state (the seed) must be >= 0"),
            (self.parsimony_coefficient >= 0, "parsimony_coefficient must be >= 0"),
            (self.final_choice in FINAL_CHOICES,
             f"final_choice {self.final_choice!r} is not one of {', '.join(FINAL_CHOICES)}"),
            (
                self.min_depth <= self.init_depth[0] <= self.init_depth[1] <= self.max_depth,
                "init_depth must lie within [min_depth, max_depth]",
            ),
        ]
        for name in ("p_crossover", "p_subtree_mutation", "p_hoist_mutation",
                     "p_point_mutation", "point_replace_rate"):
            value = getattr(self, name)
            checks.append((0.0 <= value <= 1.0, f"{name}={value} is not a probability"))
        for ok, why in checks:
            if not ok:
                raise GpsrError(f"invalid search setting: {why}")
        unknown = [f for f in self.function_set if f not in PRIMITIVES]
        if unknown:
            raise GpsrError(f"unknown function {unknown[0]!r} (known: {', '.join(PRIMITIVES)})")
        resolve_device(self.device)  # a device this machine lacks is refused before any run

    def to_dict(self) -> dict:
        d = asdict(self)
        d["init_depth"] = list(self.init_depth)
        d["function_set"] = list(self.function_set)
        d["fitness_weights"] = list(self.fitness_weights)
        return d


class _Uniforms:
    """Uniform draws from a numpy Generator, fetched in blocks.

    GP draws tens of thousands of single numbers per run, and one numpy call costs about
    a microsecond each. ``restart`` drops the unread rest of a block: the search restarts
    at every generation, so a run resumed between generations draws exactly what an
    uninterrupted one would."""

    BLOCK = 1024

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.values: list[float] = []
        self.next = 0

    def restart(self) -> None:
        self.values, self.next = [], 0

    def uniform(self) -> float:
        if self.next == len(self.values):
            self.values, self.next = self.rng.random(self.BLOCK).tolist(), 0
        self.next += 1
        return self.values[self.next - 1]

    def below(self, n: int) -> int:
        """An integer in ``[0, n)``."""
        return int(self.uniform() * n)


class TreeFactory:
    """Random trees and the four variation operators over one function and terminal set."""

    def __init__(self, config: SearchConfig, terminals: Sequence[str], rng: np.random.Generator):
        self.config = config
        self.terminals = list(terminals)
        self.draws = _Uniforms(rng)
        self.by_arity: dict[int, list[str]] = {}
        for name in config.function_set:
            self.by_arity.setdefault(PRIMITIVES[name].arity, []).append(name)
        if not self.terminals:
            raise GpsrError("no proxies to build expressions from")

    # ---- generation ---------------------------------------------------------
    def random_tree(self, depth: int, full: bool) -> Expression:
        """``full``: every branch reaches ``depth``; else grow, reaching ``depth`` on one branch."""
        return self._grow(depth, full, must_reach=True)

    def _grow(self, depth: int, full: bool, must_reach: bool) -> Expression:
        n_funcs = len(self.config.function_set)
        if depth == 0:
            return Expression(self.terminals[self.draws.below(len(self.terminals))])
        if not (full or must_reach) and self.draws.uniform() < len(self.terminals) / (
            len(self.terminals) + n_funcs
        ):
            return Expression(self.terminals[self.draws.below(len(self.terminals))])
        name = self.config.function_set[self.draws.below(n_funcs)]
        arity = PRIMITIVES[name].arity
        deep = self.draws.below(arity)  # the branch that must reach full depth
        return Expression(
            name, [self._grow(depth - 1, full, must_reach and k == deep) for k in range(arity)]
        )

    def initial_population(self) -> list[Expression]:
        """Ramped half-and-half over ``init_depth``."""
        self.draws.restart()
        low, high = self.config.init_depth
        depths = np.arange(low, high + 1)
        return [
            self.random_tree(int(depths[i % len(depths)]), full=bool((i // len(depths)) % 2))
            for i in range(self.config.population_size)
        ]

    # ---- variation ----------------------------------------------------------
    def _pick_node(self, tree: Expression) -> int:
        """Koza's bias: an inner node 90 % of the time when the tree has one."""
        inner = tree.positions(leaves=False)
        want_leaf = not inner or self.draws.uniform() >= 0.9
        candidates = tree.positions(leaves=True) if want_leaf else inner
        return candidates[self.draws.below(len(candidates))]

    def crossover(self, receiver: Expression, donor: Expression) -> Expression:
        return receiver.replace(self._pick_node(receiver), donor.subtree(self._pick_node(donor)))

    def subtree_mutation(self, tree: Expression) -> Expression:
        low, high = self.config.init_depth
        fresh = self.random_tree(low + self.draws.below(high + 1 - low), full=False)
        return self.crossover(tree, fresh)

    def hoist_mutation(self, tree: Expression) -> Expression:
        index = self._pick_node(tree)
        branch = tree.subtree(index)
        return tree.replace(index, branch.subtree(self._pick_node(branch)))

    def point_mutation(self, tree: Expression) -> Expression:
        rate = self.config.point_replace_rate
        if tree.is_leaf:
            if self.draws.uniform() < rate:
                return Expression(self.terminals[self.draws.below(len(self.terminals))])
            return tree
        children = [self.point_mutation(c) for c in tree.children]
        name = tree.name
        if self.draws.uniform() < rate:
            same = self.by_arity[len(children)]
            name = same[self.draws.below(len(same))]
        return Expression(name, children)

    def within_limits(self, tree: Expression) -> bool:
        return self.config.min_depth <= tree.depth <= self.config.max_depth

    def vary(self, parents: Sequence[Expression]) -> list[Expression]:
        """Offspring of ``parents`` (taken in pairs) under the independent-events reading."""
        self.draws.restart()
        cfg = self.config
        children: list[Expression] = []
        for a, b in zip(parents[0::2], parents[1::2]):
            pair = [a, b]
            if self.draws.uniform() < cfg.p_crossover:
                pair = [self._guard(a, self.crossover(a, b)), self._guard(b, self.crossover(b, a))]
            children.extend(pair)
        mutations: list[tuple[float, Callable[[Expression], Expression]]] = [
            (cfg.p_subtree_mutation, self.subtree_mutation),
            (cfg.p_hoist_mutation, self.hoist_mutation),
            (cfg.p_point_mutation, self.point_mutation),
        ]
        out = []
        for child in children:
            for p, op in mutations:
                if self.draws.uniform() < p:
                    child = self._guard(child, op(child))
            out.append(child)
        return out

    def _guard(self, before: Expression, after: Expression) -> Expression:
        return after if self.within_limits(after) else before


def tournament(
    fitness: np.ndarray, sizes: np.ndarray, k: int, n: int, rng: np.random.Generator,
    parsimony: bool,
) -> np.ndarray:
    """Indices of ``n`` winners of size-``k`` tournaments over disjoint random groups.

    Each shuffle splits all candidates into groups of ``k`` (the last may be smaller),
    so the best candidate always wins its group in the first shuffle; shuffles repeat
    until ``n`` are chosen. Ties on fitness go to the smaller tree when ``parsimony``.
    """
    winners: list[np.ndarray] = []
    chosen = 0
    n_groups = -(-len(fitness) // k)
    while chosen < n:
        order = rng.permutation(len(fitness))
        groups = np.full(n_groups * k, -1)
        groups[: len(order)] = order
        groups = groups.reshape(n_groups, k)
        best = groups[:, 0]
        for c in groups[:, 1:].T:  # members in turn, as a sequential scan would meet them
            real = c >= 0
            fc, fb = fitness[np.where(real, c, 0)], fitness[best]
            better = real & ((fc > fb) | (parsimony & (fc == fb)
                                          & (sizes[np.where(real, c, 0)] < sizes[best])))
            best = np.where(better, c, best)
        winners.append(best[: n - chosen])
        chosen += len(winners[-1])
    return np.concatenate(winners)


@dataclass
class RunState:
    """Everything needed to continue a run after generation ``generation`` exactly."""

    generation: int
    population: list[str]
    taus: list[list[float]]
    bounds: dict
    rng_state: dict
    history: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def evolve(
    scorer: TauScorer,
    config: SearchConfig,
    seed: int,
    resume: RunState | None = None,
    on_generation: Callable[[RunState], None] | None = None,
) -> tuple[Expression, RunState]:
    """One seeded run; returns the best expression of the final population (equation 1)."""
    with single_threaded_torch(scorer.evaluator.device):
        return _evolve(scorer, config, seed, resume, on_generation)


def _evolve(
    scorer: TauScorer,
    config: SearchConfig,
    seed: int,
    resume: RunState | None,
    on_generation: Callable[[RunState], None] | None,
) -> tuple[Expression, RunState]:
    terminals = scorer.evaluator.proxies
    rng = np.random.default_rng(seed)
    factory = TreeFactory(config, terminals, rng)
    eq1 = make_fitness(config.fitness, len(scorer.names), config.fitness_weights)
    if resume is None:
        population = factory.initial_population()
        taus = scorer.taus(population)
        eq1.observe(taus)
        state = RunState(0, [], [], {}, {}, [])
        _record(state, population, taus, eq1, rng, 0)
        if on_generation:
            on_generation(state)
    else:
        state = resume
        population = [parse(s, terminals) for s in state.population]
        taus = np.array(state.taus, dtype=np.float64).reshape(len(population), len(scorer.names))
        eq1 = fitness_from_state(config.fitness, state.bounds)
        rng.bit_generator.state = state.rng_state
    n = config.population_size
    penalty = config.parsimony_coefficient
    for gen in range(state.generation + 1, config.generations + 1):
        sizes = np.array([e.size for e in population])
        parent_idx = tournament(_penalized(eq1.score(taus), sizes, penalty), sizes,
                                config.tournament_size, n, rng, config.parsimony_tiebreak)
        offspring = factory.vary([population[i] for i in parent_idx])
        off_taus = scorer.taus(offspring)
        eq1.observe(off_taus)
        if config.survival == "generational":
            population, taus = offspring, off_taus
        else:
            union = population + offspring
            union_taus = np.vstack([taus, off_taus])
            union_sizes = np.array([e.size for e in union])
            keep = tournament(_penalized(eq1.score(union_taus), union_sizes, penalty),
                              union_sizes, config.tournament_size, n, rng,
                              config.parsimony_tiebreak)
            population = [union[i] for i in keep]
            taus = union_taus[keep]
        _record(state, population, taus, eq1, rng, gen)
        if on_generation:
            on_generation(state)
    return population[choose(population, taus, eq1, config.final_choice)], state


def _penalized(fitness: np.ndarray, sizes: np.ndarray, penalty: float) -> np.ndarray:
    """Tournament fitness less ``penalty`` per node (gplearn's parsimony coefficient)."""
    return fitness - penalty * sizes if penalty else fitness


def choose(expressions: Sequence[Expression], taus: np.ndarray, eq1: Equation1 | WeightedTaus,
           rule: str = "sum") -> int:
    """The index of the final metric among ``expressions`` (raw taus on the input problems).

    ``sum``: the highest equation 1, ties to the smaller tree (paper, section 4.1).
    ``worst``: the highest lowest tau over the problems (an undefined tau counts as 0),
    ties to the higher equation 1, then the smaller tree: a max-min choice that prefers a
    metric without a weak problem to one that trades a weak problem for strong ones.
    """
    keys = [[e.size for e in expressions], -eq1.score(taus)]
    if rule == "worst":
        keys.append(-np.nan_to_num(np.atleast_2d(taus), nan=0.0).min(axis=1))
    return int(np.lexsort(keys)[0])


def _record(state: RunState, population: list[Expression], taus: np.ndarray,
            eq1: Equation1 | WeightedTaus, rng: np.random.Generator, gen: int) -> None:
    scores = eq1.score(taus)
    best = int(np.argmax(scores))
    state.generation = gen
    state.population = [e.infix() for e in population]
    state.taus = taus.tolist()
    state.bounds = eq1.state()
    state.rng_state = rng.bit_generator.state
    state.history.append({
        "generation": gen,
        "best_fitness": float(scores[best]),
        "mean_fitness": float(scores.mean()),
        "best_expression": population[best].infix(),
        "best_size": population[best].size,
        "best_taus": [None if np.isnan(t) else float(t) for t in taus[best]],
    })
