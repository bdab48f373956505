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
from concurrent.futures import Future, ThreadPoolExecutor

import numba
import numpy as np
import torch

from gpsr.data import Problem
from gpsr.expressions import Expression
from gpsr.kernels.evaluate import PopulationEvaluator
from gpsr.kernels.kendall import LANES, KendallTargets


class TauScorer:
    """Kendall tau of expressions on each of several problems, cached by canonical infix.

    ``min_batch``: the fewest finished expressions handed to the Kendall thread at once
    while evaluation goes on (see ``_score``).
    """

    def __init__(
        self,
        problems: Sequence[Problem],
        proxies: Sequence[str],
        device: str | torch.device | None = None,
        min_batch: int = 2 * LANES,
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
        self.min_batch = min_batch

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
        for part, taus in self._score(fresh):
            for expr, row in zip(part, taus):
                self.cache[expr.infix()] = row
        return np.array([self.cache[e.infix()] for e in expressions]).reshape(
            len(expressions), len(self.names)
        )

    def _score(self, fresh: list[Expression]) -> list[tuple[list[Expression], np.ndarray]]:
        """Taus of ``fresh``, pipelined: the evaluator hands over expressions as each height
        of the program finishes, and a second thread scores them while deeper ones are
        computed, so evaluation keeps one core busy and the Kendall kernel the other.
        With one thread (a worker of a parallel synthesis), no second thread."""
        if not fresh:
            return []
        threads = numba.get_num_threads()
        if threads == 1:
            return [(fresh, self.targets.tau(self.evaluator.evaluate(fresh).cpu().numpy()))]
        pending: list[tuple[list[Expression], Future]] = []
        batch: list[Expression] = []
        try:
            for positions, last in self.evaluator.stages(fresh):
                batch += [fresh[i] for i in positions]
                if last or len(batch) >= self.min_batch:
                    values = self.evaluator.values(batch).cpu().numpy()
                    # While evaluation goes on, one Kendall thread; the last batch gets all.
                    job = _kendall_thread().submit(self._tau, values, threads if last else 1)
                    pending.append((batch, job))
                    batch = []
        finally:
            # The Kendall kernel's work rows serve one call at a time: never leave one running.
            results = [(part, job.result()) for part, job in pending]
        return results

    def _tau(self, values: np.ndarray, threads: int) -> np.ndarray:
        numba.set_num_threads(threads)  # numba's thread count is per calling thread
        return self.targets.tau(values)


_KENDALL_THREAD: tuple[int, ThreadPoolExecutor] | None = None


def _kendall_thread() -> ThreadPoolExecutor:
    """The process's one Kendall thread (scorers wait for their own jobs, so one serves
    all), made anew in a forked child, where threads do not survive."""
    global _KENDALL_THREAD
    if _KENDALL_THREAD is None or _KENDALL_THREAD[0] != os.getpid():
        _KENDALL_THREAD = (os.getpid(), ThreadPoolExecutor(1, "gpsr-kendall"))
    return _KENDALL_THREAD[1]


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
