"""Throughput: gpsr's engine against a plain reference on the same random populations.

The reference is what a user would write without gpsr: each expression evaluated
on its own with numpy, then ``scipy.stats.kendalltau`` per problem. Both see the
same populations (ramped half-and-half, the search's initial distribution) on the
same problems; the taus they return are compared as a correctness check.
"""

from __future__ import annotations

import platform
import time

import numpy as np
import scipy.stats
import torch

from gpsr.data import Dataset
from gpsr.errors import GpsrError
from gpsr.expressions import Expression
from gpsr.fitness import TauScorer
from gpsr.genetic import SearchConfig, TreeFactory
from gpsr.kernels.evaluate import resolve_device, single_threaded_torch


def reference_taus(expressions: list[Expression], dataset: Dataset) -> np.ndarray:
    """One expression at a time: numpy evaluation, then scipy's Kendall tau per problem."""
    problems = dataset.part("input")
    columns = [{p: prob.column(p) for p in dataset.proxies} for prob in problems]
    out = np.empty((len(expressions), len(problems)))
    for i, expr in enumerate(expressions):
        for j, prob in enumerate(problems):
            out[i, j] = scipy.stats.kendalltau(expr.evaluate(columns[j]), prob.accuracy)[0]
    return out


def bench_throughput(
    dataset: Dataset,
    population: int = 100,
    repeats: int = 5,
    device: str = "auto",
    seed: int = 0,
) -> dict:
    """Median expressions/s of gpsr and of the reference over ``repeats`` shared populations
    (gpsr's taken over three passes), with gpsr's time split into its evaluator and its
    Kendall kernel."""
    if repeats < 1:
        raise GpsrError(f"--repeats must be >= 1, got {repeats}")
    dev = resolve_device(device)
    problems = dataset.part("input")
    n_archs = sum(len(p) for p in problems)
    factory = TreeFactory(SearchConfig(population_size=population), dataset.proxies,
                          np.random.default_rng(seed))
    scorer = TauScorer(problems, dataset.proxies, dev)
    pops = [factory.initial_population() for _ in range(repeats)]
    # Throughput is a steady state: each side runs the populations back to back, as a
    # search runs its generations. (Interleaved per population, the engine started each
    # time with caches just flushed by the ten times longer reference: +2 ms a population.)
    # Noise on a shared machine comes in bursts of a second or so, longer than all of the
    # engine's runs together, so the engine runs the populations once before each third
    # of the reference's: its timings span the whole sitting, and one burst cannot move
    # their median.
    engine_s, evaluate_s, kendall_s, reference_s = [], [], [], []
    refs: list[np.ndarray] = []
    thirds = np.array_split(np.arange(len(pops)), 3)
    with single_threaded_torch(dev):
        scorer.taus(pops[0])  # one-time costs (buffers, lazy kernel set-up) before timing
        for third in thirds:
            ours = []
            for pop in pops:
                scorer.clear()  # nothing carried over from the previous population
                start = time.perf_counter()
                ours.append(scorer.taus(pop))
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                engine_s.append(time.perf_counter() - start)
            for i in third:
                start = time.perf_counter()
                refs.append(reference_taus(pops[i], dataset))
                reference_s.append(time.perf_counter() - start)
        # The same populations again, the two stages timed apart (where the time goes).
        for pop in pops:
            scorer.clear()
            start = time.perf_counter()
            values = scorer.evaluator.evaluate(scorer.uncached(pop)).cpu().numpy()
            evaluate_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            scorer.targets.tau(values)
            kendall_s.append(time.perf_counter() - start)
    max_diff = 0.0
    for ours_pop, ref in zip(ours, refs):
        both = ~np.isnan(ours_pop) & ~np.isnan(ref)
        if both.any():
            max_diff = max(max_diff, float(np.abs(ours_pop[both] - ref[both]).max()))
        if not np.array_equal(np.isnan(ours_pop), np.isnan(ref)):
            max_diff = float("inf")
    engine, reference = float(np.median(engine_s)), float(np.median(reference_s))
    return {
        "problems": {p.name: len(p) for p in problems},
        "architectures": n_archs,
        "population": population,
        "repeats": repeats,
        "device": str(dev),
        "machine": {
            "cpu_count": torch.get_num_threads(),
            "platform": platform.platform(),
            "cuda": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
        },
        "gpsr": {
            "median_seconds": engine,
            "evaluate_median_seconds": float(np.median(evaluate_s)),
            "kendall_median_seconds": float(np.median(kendall_s)),
            "expressions_per_s": population / engine,
            "expr_arch_evals_per_s": population * n_archs / engine,
        },
        "reference": {
            "median_seconds": reference,
            "expressions_per_s": population / reference,
            "expr_arch_evals_per_s": population * n_archs / reference,
        },
        "ratio": reference / engine,
        "max_abs_tau_difference": max_diff,
    }
