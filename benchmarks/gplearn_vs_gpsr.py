"""gpsr against gplearn's SymbolicRegressor, side by side in one process.

Same three CIFAR-10 problems of ../shared (NB101, NB201, NB301), the same seeded
70 % input split (gpsr's), the same seven primitives, no constants, the same
budget: population 100, 50 generations, tournament size 2. gplearn cannot do the
paper's equation 1, so its fitness is the sum of per-problem Kendall tau (scipy)
over the input split; gplearn's operator probabilities stay at its defaults,
because table 10's sum to 1.4 and gplearn requires at most 1. Its
``stopping_criteria`` is set out of reach so that it runs all 50 generations.

Reported per seed: search seconds (fit only; data loading and start-up excluded)
and test-split tau per problem. gpsr is timed with numba on 1 thread (like
gplearn) and on all threads.

    python benchmarks/gplearn_vs_gpsr.py --seeds 10 --out results/gplearn-vs-gpsr
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numba
import numpy as np
import scipy.stats
from gplearn.fitness import make_fitness
from gplearn.genetic import SymbolicRegressor

import gpsr
from gpsr.data import shared_dir
from gpsr.fitness import TauScorer
from gpsr.functions import clean_terminal_values
from gpsr.genetic import SearchConfig, evolve
from gpsr.report import gpsr_commit, taus_by_split

PROBLEMS = ["NB101-CF10", "NB201-CF10", "NB301-CF10"]


def _stack(problems):
    X = clean_terminal_values(np.concatenate([p.values for p in problems]))
    y = np.concatenate([p.accuracy for p in problems])
    bounds = np.cumsum([0] + [len(p) for p in problems])
    return X, y, [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def run_gplearn(dataset, seed: int) -> dict:
    X, y, slices = _stack(dataset.part("input"))

    def tau_sum(y_true, y_pred, sample_weight):
        total = 0.0
        for s in slices:
            t = scipy.stats.kendalltau(y_pred[s], y_true[s])[0]
            total += 0.0 if np.isnan(t) else t
        return total

    est = SymbolicRegressor(
        population_size=100,
        generations=50,
        tournament_size=2,
        function_set=("add", "sub", "mul", "div", "neg", "log", "sqrt"),
        metric=make_fitness(function=tau_sum, greater_is_better=True, wrap=False),
        const_range=None,
        init_depth=(2, 6),
        stopping_criteria=1e9,
        max_samples=1.0,
        n_jobs=1,
        random_state=seed,
    )
    start = time.perf_counter()
    est.fit(X, y)
    seconds = time.perf_counter() - start
    test = dataset.part("test")
    taus = {}
    for prob in test:
        pred = est._program.execute(clean_terminal_values(prob.values))
        taus[prob.name] = float(scipy.stats.kendalltau(pred, prob.accuracy)[0])
    return {"seed": seed, "seconds": seconds, "expression": str(est._program), "test_tau": taus}


def run_gpsr(dataset, seed: int, threads: int) -> dict:
    numba.set_num_threads(threads)
    scorer = TauScorer(dataset.part("input"), dataset.proxies, "cpu")
    config = SearchConfig(random_state=seed, device="cpu")
    start = time.perf_counter()
    best, _ = evolve(scorer, config, seed)
    seconds = time.perf_counter() - start
    test = taus_by_split([best], dataset, "cpu")["test"][0]
    return {
        "seed": seed,
        "threads": threads,
        "seconds": seconds,
        "expression": best.infix(),
        "test_tau": dict(zip(dataset.names, map(float, test))),
    }


def summarize(rows: list[dict], names: list[str]) -> dict:
    secs = [r["seconds"] for r in rows]
    return {
        "median_seconds": float(np.median(secs)),
        "test_tau": {
            n: {
                "mean": float(np.mean([r["test_tau"][n] for r in rows])),
                "std": float(np.std([r["test_tau"][n] for r in rows])),
                "min": float(np.min([r["test_tau"][n] for r in rows])),
                "max": float(np.max([r["test_tau"][n] for r in rows])),
            }
            for n in names
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("results/gplearn-vs-gpsr"))
    args = parser.parse_args()
    shared = shared_dir()
    if shared is None:
        raise SystemExit("shared data not found; set GPSR_SHARED")
    problems = gpsr.load_problems(shared / "data" / "nas-bench-suite-zero", PROBLEMS)
    dataset = gpsr.build_dataset(problems)
    all_threads = numba.config.NUMBA_NUM_THREADS
    # Load the compiled kernels once, outside every timed region.
    evolve(TauScorer(dataset.part("input"), dataset.proxies, "cpu"),
           SearchConfig(generations=1, device="cpu"), 0)
    rows: dict[str, list[dict]] = {"gplearn": [], "gpsr_1_thread": [], "gpsr_all_threads": []}
    for seed in range(args.seeds):
        rows["gplearn"].append(run_gplearn(dataset, seed))
        rows["gpsr_1_thread"].append(run_gpsr(dataset, seed, 1))
        rows["gpsr_all_threads"].append(run_gpsr(dataset, seed, all_threads))
        print(seed, {k: round(v[-1]["seconds"], 2) for k, v in rows.items()}, flush=True)
    summary = {k: summarize(v, dataset.names) for k, v in rows.items()}
    for k in ("gpsr_1_thread", "gpsr_all_threads"):
        summary[k]["speedup_over_gplearn"] = (
            summary["gplearn"]["median_seconds"] / summary[k]["median_seconds"]
        )
    result = {
        "problems": dataset.describe(),
        "seeds": args.seeds,
        "gpsr_commit": gpsr_commit(),
        "numba_threads_all": all_threads,
        "summary": summary,
        "runs": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    lines = [
        "# gpsr vs gplearn (same problems, split, primitives and budget)",
        "",
        f"Seeds 0-{args.seeds - 1}; command: `python benchmarks/gplearn_vs_gpsr.py "
        f"--seeds {args.seeds}`; gpsr commit {result['gpsr_commit']}. Search seconds exclude "
        "loading and start-up.",
        "",
        "| engine | median s/run | speedup | " + " | ".join(
            f"{n} test tau mean ± std" for n in dataset.names) + " |",
        "|---|---|---|" + "---|" * len(dataset.names),
    ]
    for k, s in summary.items():
        cells = [f"{s['test_tau'][n]['mean']:.4f} ± {s['test_tau'][n]['std']:.4f}"
                 for n in dataset.names]
        speed = f"{s['speedup_over_gplearn']:.1f}x" if "speedup_over_gplearn" in s else "1.0x"
        lines.append(f"| {k} | {s['median_seconds']:.2f} | {speed} | " + " | ".join(cells) + " |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
