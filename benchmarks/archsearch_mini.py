"""End to end without a GPU: a synthesized metric drives a live Aging Evolution over a whole
mini space, gpsr trains what it picks, and the result is compared with random search at the
same number of trainings and with the best of the 200 cells the shipped benchmark trained.

For every problem and seed s (one unit of work, journaled: an interrupted run resumes):

1. the metric: ``gpsr run --out WORK/metric`` (gpsr's defaults on the shipped mini benchmark,
   computed once; its result.json is reused);
2. Aging Evolution in live mode over the whole space (``gpsr.archsearch``): every candidate
   network is built with the seed ``arch_seed(s, arch)`` and scored by computing the metric's
   proxies on the task's proxy batch (``gpsr.minibench.proxy_batch(task, 0)``, the batch the
   mini benchmark computed its proxies on), journaled in WORK;
3. the metric's k best distinct networks are trained with the shipped recipe
   (``gpsr.train.train_arch``, train seed s: initial weights, order and turns from
   ``arch_seed(s, arch)``), checkpointed in WORK;
4. random search: k distinct networks drawn uniformly from the whole space (sampler seed
   s), trained the same way;
5. the best of the 200 built cells (highest shipped ``val_accuracy``, a train-seed-0 figure)
   is retrained with train seed s.

A method's accuracy at k trainings is the best validation accuracy among its k trained
networks (k = 1: the metric's top pick, or one random network). Run from the repository root:

    nice -n 10 python benchmarks/archsearch_mini.py --work runs/archsearch-mini --jobs 2

It writes results/archsearch-mini.json and results/archsearch-mini.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PROBLEMS = ("MINIMICRO-DIGITS-CLASS", "MINIMACRO-DIGITS-CLASS", "MINI201-DIGITS-ROTATION",
            "MINIMICRO-DIGITS-ROTATION")


@dataclass(frozen=True)
class Unit:
    """One problem and seed: a search, its trainings and the baselines' trainings."""

    problem: str
    seed: int
    work: str
    metric: str
    k: int
    epochs: int
    population: int
    sample_size: int
    p_mutation: float
    evaluations: int

    @property
    def key(self) -> str:
        return f"{self.problem}/{self.seed}"


def _space_task(problem: str) -> tuple[str, str]:
    space, _, task = problem.lower().partition("-")
    return space, task


def _train(unit: Unit, arch: str) -> dict:
    from gpsr.train import train_arch

    space, task = _space_task(unit.problem)
    out = Path(unit.work) / unit.problem / f"seed-{unit.seed}" / f"{zlib.crc32(arch.encode()):08x}"
    result = train_arch(space, arch, out, task=task, seed=unit.seed, epochs=unit.epochs)
    return {"arch": arch, "val_accuracy": result.val_accuracy,
            "seconds_train": sum(r["seconds"] for r in result.history)}


def run_unit(unit: Unit) -> dict:
    import torch

    from gpsr.archsearch import search_architectures
    from gpsr.minibench import TASKS, proxy_batch, shipped_problems
    from gpsr.spaces import get_space

    torch.set_num_threads(1)
    space_name, task = _space_task(unit.problem)
    space = get_space(space_name)
    problem = shipped_problems([unit.problem])[0]
    built = {space.key(a) for a in problem.archs}
    start = time.perf_counter()
    search = search_architectures(
        unit.metric, space_name, mode="live", algorithm="ae",
        max_evaluations=unit.evaluations, population_size=unit.population,
        sample_size=unit.sample_size, p_mutation=unit.p_mutation, random_state=unit.seed,
        batch=proxy_batch(task, 0), num_classes=TASKS[task], device="cpu",
        journal=Path(unit.work) / unit.problem / f"ae-seed-{unit.seed}.jsonl",
    )
    searched = time.perf_counter()
    run = search.run
    ranked: dict[str, tuple[float, str]] = {}
    for arch, score in zip(run.archs, run.scores):
        ranked.setdefault(space.key(arch), (score, arch))
    # Highest score first; among equal scores the first evaluated.
    order = sorted(ranked.values(), key=lambda t: -t[0])
    top = [arch for score, arch in order if math.isfinite(score)][:unit.k]
    randoms: dict[str, str] = {}
    draw = 0
    while len(randoms) < unit.k:
        for arch in space.sample(4 * unit.k, unit.seed + 7919 * draw):
            randoms.setdefault(space.key(arch), arch)
        draw += 1
    randoms_list = list(randoms.values())[:unit.k]
    best_row = int(np.argmax(problem.accuracy))
    best_built = problem.archs[best_row]
    trained = {a: _train(unit, a) for a in dict.fromkeys([*top, *randoms_list, best_built])}
    return {
        "unit": unit.key, "problem": unit.problem, "seed": unit.seed,
        "ae": {
            "archs": top,
            "scores": [ranked[space.key(a)][0] for a in top],
            "val_accuracy": [trained[a]["val_accuracy"] for a in top],
            "in_built_200": [space.key(a) in built for a in top],
            "evaluations": run.evaluations, "distinct_archs": len(ranked),
            "networks_scored_now": search.networks_scored,
            "seconds_search": searched - start,
        },
        "random": {
            "archs": randoms_list,
            "val_accuracy": [trained[a]["val_accuracy"] for a in randoms_list],
            "in_built_200": [space.key(a) in built for a in randoms_list],
        },
        "best_built": {"arch": best_built,
                       "shipped_val_accuracy": float(problem.accuracy[best_row]),
                       "val_accuracy": trained[best_built]["val_accuracy"]},
        "seconds_train": {a: t["seconds_train"] for a, t in trained.items()},
        "seconds": time.perf_counter() - start,
    }


def make_metric(work: Path) -> Path:
    """``gpsr run --out WORK/metric`` once (gpsr's defaults on the shipped benchmark)."""
    result = work / "metric" / "result.json"
    if not result.exists():
        gpsr = shutil.which("gpsr", path=str(Path(sys.executable).parent)) or "gpsr"
        subprocess.run([gpsr, "run", "--out", str(work / "metric")], check=True)
    return result


def summarize(records: list[dict], k: int) -> dict:
    from scipy.stats import wilcoxon

    out = {}
    for problem in dict.fromkeys(r["problem"] for r in records):
        rows = sorted((r for r in records if r["problem"] == problem), key=lambda r: r["seed"])
        series = {
            "ae_top1": [r["ae"]["val_accuracy"][0] for r in rows],
            f"ae_best_of_{k}": [max(r["ae"]["val_accuracy"]) for r in rows],
            "random_1": [r["random"]["val_accuracy"][0] for r in rows],
            f"random_best_of_{k}": [max(r["random"]["val_accuracy"]) for r in rows],
            "best_built_retrained": [r["best_built"]["val_accuracy"] for r in rows],
        }
        stats = {name: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1
                        else 0.0, "median": float(np.median(v)), "values": v}
                 for name, v in series.items()}
        pairs = {}
        for a, b in (("ae_top1", "random_1"), (f"ae_best_of_{k}", f"random_best_of_{k}"),
                     ("ae_top1", "best_built_retrained"),
                     (f"ae_best_of_{k}", "best_built_retrained")):
            x, y = np.array(series[a]), np.array(series[b])
            diff = x - y
            p = float(wilcoxon(x, y).pvalue) if len(x) > 1 and np.any(diff != 0) else None
            pairs[f"{a} vs {b}"] = {"wins": int((diff > 0).sum()), "ties": int((diff == 0).sum()),
                                    "losses": int((diff < 0).sum()),
                                    "mean_difference": float(diff.mean()),
                                    "wilcoxon_p": p}
        out[problem] = {
            "seeds": [r["seed"] for r in rows],
            "accuracy": stats,
            "paired": pairs,
            "best_built_arch": rows[0]["best_built"]["arch"],
            "best_built_shipped_val_accuracy": rows[0]["best_built"]["shipped_val_accuracy"],
            "ae_top1_outside_built_200": int(sum(not r["ae"]["in_built_200"][0] for r in rows)),
            "ae_picks_outside_built_200": int(sum(not b for r in rows
                                                  for b in r["ae"]["in_built_200"])),
            "ae_distinct_archs_median": float(np.median([r["ae"]["distinct_archs"]
                                                         for r in rows])),
            "seconds_search_median": float(np.median([r["ae"]["seconds_search"] for r in rows])),
            "seconds_train_median": float(np.median([s for r in rows
                                                     for s in r["seconds_train"].values()])),
            "seconds_unit_median": float(np.median([r["seconds"] for r in rows])),
        }
    return out


def _fmt(stat: dict) -> str:
    return f"{stat['mean']:.1f} ± {stat['std']:.1f}"


def write_markdown(path: Path, report: dict) -> None:
    k = report["settings"]["k"]
    lines = [
        "# Live Aging Evolution on the mini spaces, trained: the no-GPU loop end to end",
        "",
        "Made by `benchmarks/archsearch_mini.py` (its docstring describes every step):",
        "",
        "```bash",
        report["command"],
        "```",
        "",
    ]
    if report["units_finished"] < report["units_planned"]:
        lines += [f"**Partial:** {report['units_finished']} of the {report['units_planned']} "
                  "planned problem x seed units had finished when this report was written "
                  "(`--report-only`); the table counts those alone.", ""]
    lines += [
        f"gpsr commit `{report['commit']}`; seeds {report['seeds'][0]}..{report['seeds'][-1]} "
        f"({len(report['seeds'])}); metric `{report['metric']}` from `gpsr run` with its "
        "defaults on the shipped mini benchmark (seed 0).",
        f"Aging Evolution: population {report['settings']['population']}, tournament sample "
        f"{report['settings']['sample_size']}, probability of mutation "
        f"{report['settings']['p_mutation']}, {report['settings']['evaluations']} evaluations "
        "(the paper's 100 / 0.5 / 3,000 do not fit this shared 2-core CPU; see below), over "
        "the whole space. Training: the shipped recipe, "
        f"{report['settings']['epochs']} epochs, train seed s for seed s.",
        "",
        f"k = {k} trainings per method and seed. k = 1 is the zero-cost protocol (train only "
        "the network the metric ranks first) against one random network; "
        f"k = {k} trains the metric's {k} best distinct networks, or {k} random ones, and "
        "keeps the best by validation accuracy. Both methods then carry the same selection "
        "bias (a maximum over k validation scores). A larger k favours random search less "
        f"and costs more: k = {k} is what this shared CPU allowed in one session, next to "
        "the search itself.",
        "",
        "Validation accuracy (%) of the chosen network, mean ± std over seeds (the mini "
        "benchmark has no separate test split: the 500 validation images score every method):",
        "",
        f"| problem | AE top-1 | random, 1 | AE best of {k} | random, best of {k} | best built "
        "cell, retrained | best built cell, shipped (seed 0, max of 200) |",
        "|---|---|---|---|---|---|---|",
    ]
    for problem, s in report["summary"].items():
        a = s["accuracy"]
        lines.append(
            f"| {problem} | {_fmt(a['ae_top1'])} | {_fmt(a['random_1'])} | "
            f"{_fmt(a[f'ae_best_of_{k}'])} | {_fmt(a[f'random_best_of_{k}'])} | "
            f"{_fmt(a['best_built_retrained'])} | {s['best_built_shipped_val_accuracy']:.1f} |"
        )
    lines += ["", "Paired over seeds (wins / ties / losses of the first, mean difference in "
              "points, two-sided Wilcoxon signed-rank p):", "",
              "| problem | comparison | W / T / L | mean diff | p |", "|---|---|---|---|---|"]
    for problem, s in report["summary"].items():
        for name, p in s["paired"].items():
            pv = "-" if p["wilcoxon_p"] is None else f"{p['wilcoxon_p']:.3f}"
            lines.append(f"| {problem} | {name} | {p['wins']} / {p['ties']} / {p['losses']} | "
                         f"{p['mean_difference']:+.1f} | {pv} |")
    lines += ["", "Where the picks come from and what it cost (medians per seed):", "",
              "| problem | AE top-1 outside the 200 built cells | AE picks outside | distinct "
              "networks scored | s search | s per training | s per seed |",
              "|---|---|---|---|---|---|---|"]
    for problem, s in report["summary"].items():
        n = len(s["seeds"])
        lines.append(
            f"| {problem} | {s['ae_top1_outside_built_200']} of {n} | "
            f"{s['ae_picks_outside_built_200']} of {n * k} | {s['ae_distinct_archs_median']:.0f} | "
            f"{s['seconds_search_median']:.0f} | {s['seconds_train_median']:.1f} | "
            f"{s['seconds_unit_median']:.0f} |"
        )
    lines += ["", report["machine"], ""]
    path.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("runs/archsearch-mini"))
    parser.add_argument("--problems", default=",".join(PROBLEMS[:3]))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--population", type=int, default=10)
    parser.add_argument("--sample-size", type=int, default=3)
    parser.add_argument("--p-mutation", type=float, default=0.5)
    parser.add_argument("--evaluations", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "archsearch-mini")
    parser.add_argument("--report-only", action="store_true",
                        help="Report the units finished so far; run nothing.")
    args = parser.parse_args()

    from gpsr.executor import make_executor
    from gpsr.journal import read_journal, run_journaled
    from gpsr.search import read_result

    work = args.work.resolve()
    metric = make_metric(work)
    problems = [p.strip().upper() for p in args.problems.split(",") if p.strip()]
    units = [Unit(p, s, str(work), str(metric), args.k, args.epochs, args.population,
                  args.sample_size, args.p_mutation, args.evaluations)
             for p in problems for s in range(args.seeds)]
    config = {k: v for k, v in asdict(units[0]).items() if k not in ("problem", "seed")}
    journal = work / "units.jsonl"
    done = read_journal(journal, config, "unit") if journal.exists() else {}

    def progress(finished: int, total: int) -> None:
        print(f"{time.strftime('%H:%M:%S')} {finished}/{total} units", flush=True)

    if args.report_only:
        records = done
    else:
        records = run_journaled(journal, config, units, lambda u: u.key, run_unit,
                                make_executor("local", args.jobs), "unit", done, progress)
    ordered = [records[u.key] for u in units if u.key in records]
    seeds = sorted({r["seed"] for r in ordered})
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()
    argv = [a for a in sys.argv[1:] if a != "--report-only"]
    report = {
        "command": "nice -n 10 python benchmarks/archsearch_mini.py " + " ".join(argv),
        "units_finished": len(ordered),
        "units_planned": len(units),
        "commit": commit,
        "metric": read_result(metric)["expression"]["infix"],
        "seeds": seeds,
        "settings": {k: v for k, v in config.items() if k not in ("work", "metric")},
        "summary": summarize(ordered, args.k),
        "machine": (f"Machine: {platform.processor() or platform.machine()}, "
                    f"{os.cpu_count()} cores shared with other work (load average "
                    f"{load[0]:.1f} when the report was written), torch "
                    f"{__import__('torch').__version__} CPU, one thread per worker, "
                    f"{args.jobs} worker(s)."),
        "records": ordered,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    write_markdown(args.out.with_suffix(".md"), report)
    print(f"wrote {args.out.with_suffix('.md')} and .json")


if __name__ == "__main__":
    main()
