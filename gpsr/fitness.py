"""Fitness: Kendall tau per problem, and the paper's equation 1 over problems.

Equation 1: ``Score(x) = sum_i (tau_i - tau_i^-) / (tau_i^+ - tau_i^-)`` where the
bounds are the lowest and highest tau seen so far *in this run* on problem i. The
bounds move as the run goes on, so scores are always recomputed from the stored
raw taus, never cached.

Undefined tau (an expression that is constant on a problem, where tau-b divides
by zero) counts as 0, "no ranking", for fitness; reports show it as null.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from queue import Empty, SimpleQueue

import numba
import numpy as np
import torch

from gpsr.data import Problem
from gpsr.errors import GpsrError
from gpsr.expressions import Expression
from gpsr.functions import FUSED_OPERATORS
from gpsr.kernels.evaluate import PopulationEvaluator
from gpsr.kernels.kendall import LANES, KendallTargets, plain_rows

#: Fewer architectures than this: waves (see ``PopulationEvaluator.stages``) cost more in
#: tensor calls than overlapping evaluation with scoring gains (measured: 560 on the
#: shipped mini benchmark, 7,469 on three CIFAR-10 problems).
WAVES_FROM_ARCHS = 2048


class TauScorer:
    """Kendall tau of expressions on each of several problems, cached by canonical infix."""

    def __init__(
        self,
        problems: Sequence[Problem],
        proxies: Sequence[str],
        device: str | torch.device | None = None,
    ) -> None:
        self.names = [p.name for p in problems]
        # Tau does not depend on the order of architectures, so each problem's rows are put
        # in accuracy order once: the Kendall kernel then reads candidates sequentially.
        orders = [np.argsort(p.accuracy, kind="stable") for p in problems]
        self.evaluator = PopulationEvaluator(
            np.concatenate([p.select(proxies=proxies).values[o] for p, o in zip(problems, orders)]),
            proxies, device,
        )
        self.targets = KendallTargets([p.accuracy[o] for p, o in zip(problems, orders)])
        self.cache: dict[str, np.ndarray] = {}

    def clear(self) -> None:
        """Forget every cached result, of whole expressions and of subtrees."""
        self.cache.clear()
        self.evaluator.forget()

    def uncached(self, expressions: Sequence[Expression]) -> list[Expression]:
        """The distinct expressions among ``expressions`` whose taus are not cached yet."""
        return list({e.infix(): e for e in expressions if e.infix() not in self.cache}.values())

    def taus(self, expressions: Sequence[Expression]) -> np.ndarray:
        """Raw taus, shape ``(len(expressions), n_problems)``; NaN where undefined."""
        fresh = self.uncached(expressions)
        if fresh:
            for expr, row in zip(fresh, self._score(fresh)):
                self.cache[expr.infix()] = row
        return np.array([self.cache[e.infix()] for e in expressions]).reshape(
            len(expressions), len(self.names)
        )

    def _score(self, fresh: list[Expression]) -> np.ndarray:
        """Taus of ``fresh``, pipelined over numba's thread count: the evaluator hands over
        expressions as their values are final, helper threads score them in blocks of
        ``LANES`` while the rest is computed, and this thread joins them once evaluation
        is done, so no core waits while another has work. The evaluator leaves most
        roots' last operator to the Kendall kernel, which applies it as it reads the
        operands. A row equal to one scored before in this call (commuted operands,
        double negation, ...) is not scored again."""
        workers = numba.get_num_threads()
        self.targets.scratch(workers)  # sized before any helper reads it
        work: SimpleQueue = SimpleQueue()
        helpers = [_helper_threads(workers - 1).submit(self._drain, work, w, True)
                   for w in range(1, workers)]
        twins = _Twins(self.targets.n)
        blocks: list[tuple[list[int], np.ndarray]] = []  # positions, and their taus
        waiting: list[tuple[int, np.ndarray, np.ndarray]] = []  # (position, rows, program)
        copies: list[tuple[int, int]] = []  # (position, earlier position of equal values)
        try:
            # Helpers and long rows: a wave per depth, and one block per thread last, so
            # that scoring starts early and little is left of it when evaluation ends.
            waves = workers > 1 and self.evaluator.n_archs >= WAVES_FROM_ARCHS
            stages = self.evaluator.stages(fresh, waves, LANES * workers if waves else 0,
                                           fuse_roots=True)
            for positions, last in stages:
                rows, program = self.evaluator.host_program([fresh[i] for i in positions])
                for pos, candidate in zip(positions, program):
                    earlier = twins.earlier(pos, rows, candidate)
                    if earlier is None:
                        waiting.append((pos, rows, candidate))
                    else:
                        copies.append((pos, earlier))
                while len(waiting) >= LANES or (last and waiting):
                    block, waiting = waiting[:LANES], waiting[LANES:]
                    taus = np.full((len(self.names), len(block)), np.nan)
                    blocks.append(([pos for pos, _, _ in block], taus))
                    work.put((*_one_array(block), taus))
        finally:
            # The helpers read the evaluator's rows: never return while one is running.
            work.put(None)
            self._drain(work, 0, False)
            for helper in helpers:
                helper.result()
        out = np.empty((len(fresh), len(self.names)))
        for positions, taus in blocks:
            out[positions] = taus.T
        for pos, earlier in copies:
            out[pos] = out[earlier]
        return out

    def _drain(self, work: SimpleQueue, worker: int, wait: bool) -> None:
        """Score queued blocks until the end marker (``None``, left for the others) or,
        unless ``wait``, until the queue is empty."""
        while True:
            try:
                item = work.get() if wait else work.get_nowait()
            except Empty:
                return
            if item is None:
                work.put(None)
                return
            rows, program, taus = item
            self.targets.tau_blocks(rows, program, [0], taus, worker)


def _one_array(block: list[tuple[int, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """A block's rows as one array and its candidate program on it (a copy only where the
    block spans host copies of several stages, as on a GPU, where no root is fused)."""
    if len({id(rows) for _, rows, _ in block}) == 1:
        return block[0][1], np.array([candidate for _, _, candidate in block])
    return (np.stack([rows[candidate[2]] for _, rows, candidate in block]),
            plain_rows(range(len(block))))


class _Twins:
    """Finds a candidate equal to one seen earlier in the same call. A row is keyed by its
    values at a few probe columns, and a key match is confirmed on every column; a fused
    root (see ``PopulationEvaluator.stages``) by its operators and rows, with the
    operands of commuting operators in a fixed order."""

    def __init__(self, n_columns: int, probes: int = 16) -> None:
        self.probe = np.unique(np.linspace(0, n_columns - 1, probes).astype(np.int64))
        self.seen: dict[bytes, tuple[int, np.ndarray, int]] = {}
        self.fused: dict[tuple, int] = {}

    def earlier(self, pos: int, rows: np.ndarray, candidate: np.ndarray) -> int | None:
        """The position of an earlier equal candidate, or None (and ``pos`` is remembered)."""
        code, *operands = candidate.tolist()
        if code:
            left, right = _ordered(*operands[:3]), _ordered(*operands[3:])
            key = (code, *sorted((left, right))) if code in _COMMUTING else (code, left, right)
            first = self.fused.setdefault(key, pos)
            return None if first == pos else first
        row = operands[1]
        key = rows[row, self.probe].tobytes()
        match = self.seen.get(key)
        if match is not None and np.array_equal(match[1][match[2]], rows[row]):
            return match[0]
        self.seen.setdefault(key, (pos, rows, row))
        return None


_COMMUTING = {FUSED_OPERATORS.index(name) + 1 for name in ("add", "mul")}  # fused codes


def _ordered(code: int, a: int, b: int) -> tuple[int, int, int]:
    """A fused operand, its rows in a fixed order where its operator commutes."""
    return (code, min(a, b), max(a, b)) if code in _COMMUTING else (code, a, b)


_HELPERS: tuple[int, int, ThreadPoolExecutor] | None = None  # (pid, threads, pool)


def _helper_threads(count: int) -> ThreadPoolExecutor:
    """The process's Kendall helper threads (at least ``count``), shared by all scorers
    (each waits for its own jobs), made anew in a forked child, where threads do not
    survive."""
    global _HELPERS
    if _HELPERS is None or _HELPERS[0] != os.getpid() or _HELPERS[1] < count:
        _HELPERS = (os.getpid(), count, ThreadPoolExecutor(count, "gpsr-kendall"))
    return _HELPERS[2]


class Equation1:
    """The paper's min-max normalised sum of taus, with bounds over all taus seen so far."""

    def __init__(self, n_problems: int) -> None:
        self.low = np.full(n_problems, np.inf)
        self.high = np.full(n_problems, -np.inf)

    def observe(self, taus: np.ndarray) -> None:
        taus = np.nan_to_num(np.atleast_2d(taus), nan=0.0)
        self.low = np.minimum(self.low, taus.min(axis=0))
        self.high = np.maximum(self.high, taus.max(axis=0))

    def score(self, taus: np.ndarray) -> np.ndarray:
        taus = np.nan_to_num(np.atleast_2d(taus), nan=0.0)
        span = self.high - self.low
        safe = np.where(span > 0, span, 1.0)
        terms = np.where(span > 0, (taus - self.low) / safe, 0.0)
        return terms.sum(axis=1)

    def state(self) -> dict:
        return {"low": self.low.tolist(), "high": self.high.tolist()}

    @classmethod
    def from_state(cls, state: dict) -> Equation1:
        eq = cls(len(state["low"]))
        eq.low = np.array(state["low"], dtype=np.float64)
        eq.high = np.array(state["high"], dtype=np.float64)
        return eq


class WeightedTaus:
    """A fixed weighted sum of per-problem taus, the fitness of Auto-Prox (Wei et al., AAAI
    2024: a hand-weighted sum of correlations over several datasets); equal weights ``1/n``
    give the plain mean tau. Unlike equation 1 it has no moving bounds, so ``observe`` keeps
    nothing."""

    def __init__(self, weights: Sequence[float]) -> None:
        self.weights = np.asarray(weights, dtype=np.float64)

    def observe(self, taus: np.ndarray) -> None:
        pass

    def score(self, taus: np.ndarray) -> np.ndarray:
        return np.nan_to_num(np.atleast_2d(taus), nan=0.0) @ self.weights

    def state(self) -> dict:
        return {"weights": self.weights.tolist()}

    @classmethod
    def from_state(cls, state: dict) -> WeightedTaus:
        return cls(state["weights"])


FITNESSES = ("equation1", "weighted", "mean")


def make_fitness(kind: str, n_problems: int,
                 weights: Sequence[float] = ()) -> Equation1 | WeightedTaus:
    """The fitness over ``n_problems`` problems named by ``SearchConfig.fitness``."""
    if kind == "equation1":
        return Equation1(n_problems)
    if kind == "mean":
        return WeightedTaus(np.full(n_problems, 1.0 / n_problems))
    if kind == "weighted":
        if len(weights) != n_problems:
            raise GpsrError(f"fitness 'weighted' needs one weight per problem: got "
                            f"{len(weights)} weights for {n_problems} problems")
        return WeightedTaus(weights)
    raise GpsrError(f"unknown fitness {kind!r} (use {', '.join(FITNESSES)})")


def fitness_from_state(kind: str, state: dict) -> Equation1 | WeightedTaus:
    return Equation1.from_state(state) if kind == "equation1" else WeightedTaus.from_state(state)
