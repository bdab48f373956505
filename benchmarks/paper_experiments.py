"""The paper's experiments and the comparison of gpsr's SR with other combiners, on the shared
NAS-Bench-Suite-Zero files, gpsr's own NB201 proxy data and the shipped mini benchmark.

    python benchmarks/paper_experiments.py --runs 31 --jobs 2 --out results/peers

writes one JSON per experiment into ``--out`` and renders them all into ``--out/README.md``.
Finished work is kept under ``--work`` (run folders and journals): the same command after an
interruption continues where it stopped. ``--only NAME`` (repeatable) runs some experiments;
``--render`` only rewrites the markdown from the JSON files present.

Experiments (paper sections in brackets):

* ``compare-*``: every method of gpsr.methods fitted on the input splits and measured on the
  test splits, and leave-one-problem-out (issue 13 items 1 and 4);
* ``compare-spread``: the CIFAR-10 comparison over ``--blocks`` disjoint seed blocks;
* ``compare-budget``, ``compare-mini-budget``: the CIFAR-10 and mini comparisons with a
  larger SR search budget;
* ``table15`` (4.1, table 15): 31 runs on D, mean and std of the run winners' taus;
* ``table7`` (A.3): the same runs against EZNAS's generational procedure, worst/median/best;
* ``figure6`` (4.2): tau of every proxy and of the table-15 metric on every problem;
* ``table5`` (A.1): D, D- (without zico, meco, swap) and D+ (two more problems);
* ``table6`` (A.2): single-problem searches evaluated on the other problems;
* ``table17`` (K): data-agnostic proxies only against data-dependent proxies only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import gpsr
from gpsr.data import Problem, build_dataset, load_problems, shared_dir
from gpsr.expressions import parse
from gpsr.methods import ALL_METHODS, ExpressionRule, compare, mean_taus
from gpsr.minibench import shipped_problems
from gpsr.report import gpsr_commit
from gpsr.search import synthesize

ROOT = Path(__file__).resolve().parents[1]
CIFAR10 = ["NB101-CF10", "NB201-CF10", "NB301-CF10"]
#: TransNAS-Bench-101 problems of the shared data that share four proxies (epe_nas, fisher,
#: synflow, zen); the macro class_scene file lacks fisher, the autoencoders have zen only.
TNB101 = ["TNB101-MICRO-OBJECT", "TNB101-MICRO-JIGSAW", "TNB101-MACRO-OBJECT",
          "TNB101-MACRO-JIGSAW"]
#: The paper's appendix K split of the proxies.
DATA_AGNOSTIC = ("l2_norm", "params", "synflow", "zen")
NEWER = ("zico", "meco", "swap")


def nbsz() -> Path:
    shared = shared_dir()
    if shared is None:
        sys.exit("the shared data folder is needed (set GPSR_SHARED)")
    return shared / "data" / "nas-bench-suite-zero"


def shared_problems(names: list[str] | None = None) -> list[Problem]:
    return load_problems(nbsz(), names)


def computed_nb201() -> list[Problem]:
    """gpsr's own 16 proxies of 1,000 NB201 cells, joined with CIFAR-10 and CIFAR-100."""
    return load_problems(ROOT / "results" / "proxies" / "nb201-proxies.csv", None,
                         [nbsz() / "nb201-cifar10.csv", nbsz() / "nb201-cifar100.csv"])


def early(name: str) -> Problem:
    """A problem from the shared extra/ folder (EARLY NASLib values; see SOURCES.md)."""
    found = sorted((nbsz() / "extra").glob(f"{name}.naslib-early-*.csv"))
    problem = load_problems(found[0])[0]
    problem.name += " (early)"  # never confused with the final file's problem
    return problem


# ---- helpers -------------------------------------------------------------------------------
class Context:
    def __init__(self, args: argparse.Namespace) -> None:
        self.runs, self.jobs, self.seed = args.runs, args.jobs, args.seed
        self.runs_for = {k: int(v) for k, v in (x.split("=") for x in args.runs_for or [])}
        self.loo_runs = args.loo_runs
        self.experiment = ""
        self.out, self.work = Path(args.out), Path(args.work)
        self.out.mkdir(parents=True, exist_ok=True)
        self.work.mkdir(parents=True, exist_ok=True)
        self.executor = gpsr.make_executor("local", args.jobs)

    def synth(self, name: str, dataset: gpsr.Dataset, **config) -> dict:
        """31 (``--runs``) seeded runs into a resumable run folder; the result report."""
        cfg = gpsr.SearchConfig(random_state=self.seed, **config)
        runs = self.runs_for.get(self.experiment, self.runs)
        start = time.perf_counter()
        result = synthesize(dataset, cfg, runs, self.executor, self.work / f"{name}-{runs}")
        report = result.report
        report["seconds_this_call"] = time.perf_counter() - start
        return report

    def save(self, name: str, data: dict, command: str) -> None:
        data = {"experiment": name, "command": command, "gpsr_commit": gpsr_commit()} | data
        (self.out / f"{name}.json").write_text(json.dumps(data, indent=1))
        print(f"wrote {self.out / name}.json", flush=True)


def command_line(name: str, args: argparse.Namespace) -> str:
    extra = "".join(f" --runs-for {x}" for x in args.runs_for or [] if x.startswith(name + "="))
    extra += f" --loo-runs {args.loo_runs}" if args.loo_runs and name.startswith("compare") else ""
    return (f"python benchmarks/paper_experiments.py --runs {args.runs} --jobs {args.jobs} "
            f"--seed {args.seed} --out {args.out} --only {name}{extra}")


def tau_on(expression: str, problem: Problem, split_dataset: gpsr.Dataset | None = None,
           split: str = "all") -> float | None:
    """Tau of ``expression`` on ``problem`` (its ``split`` rows in ``split_dataset`` where
    given), or None when the problem lacks one of its proxies."""
    tree = parse(expression)
    if not tree.proxies() <= set(problem.proxies):
        return None
    rule = ExpressionRule(tree)
    if split_dataset is not None and problem.name in split_dataset.names:
        part = split_dataset.part(split)[split_dataset.names.index(problem.name)]
        return _none(rule.tau(part))
    return _none(rule.tau(problem))


def _none(x: float) -> float | None:
    return None if x is None or np.isnan(x) else float(x)


# ---- experiments ---------------------------------------------------------------------------
def fit_compare(ctx: Context, name: str, problems: list[Problem], seed: int,
                journal: str, config: gpsr.SearchConfig | None = None) -> dict:
    """Every method on ``problems`` (runs per SR fit as experiment ``name`` has them),
    journaled in ``journal`` under ``--work``; the comparison with its means."""
    runs = ctx.runs_for.get(name, ctx.runs)
    start = time.perf_counter()
    result = compare(problems, ALL_METHODS, runs=runs, seed=seed, executor=ctx.executor,
                     journal=ctx.work / journal, dataset=build_dataset(problems),
                     on_progress=lambda d, n: print(f"{journal}: {d}/{n} fits", flush=True),
                     loo_runs=ctx.loo_runs or runs, config=config)
    result["wall_seconds_this_call"] = time.perf_counter() - start
    result["means"] = mean_taus(result)
    return result


def run_compare(ctx: Context, args, name: str, problems: list[Problem],
                config: gpsr.SearchConfig | None = None) -> None:
    result = fit_compare(ctx, name, problems, ctx.seed, f"{name}.jsonl", config)
    result["sources"] = {p.name: p.source for p in problems}
    ctx.save(name, result, command_line(name, args))


def exp_compare_cifar10(ctx, args):
    run_compare(ctx, args, "compare-cifar10", shared_problems(CIFAR10))


#: The larger search budget of ``compare-budget``: 6 times the paper's evaluations per run
#: (30,000 against 5,000).
BUDGET = {"population_size": 300, "generations": 100}


def exp_compare_budget(ctx, args):
    """The CIFAR-10 comparison with every SR variant at :data:`BUDGET` instead of the
    paper's 100 x 50 (the baselines are unchanged): how much of the forest's lead on the
    test splits a longer search recovers."""
    run_compare(ctx, args, "compare-budget", shared_problems(CIFAR10),
                gpsr.SearchConfig(**BUDGET))


def exp_compare_mini_budget(ctx, args):
    """``compare-budget`` on the shipped mini benchmark."""
    run_compare(ctx, args, "compare-mini-budget", shipped_problems(),
                gpsr.SearchConfig(**BUDGET))


def exp_compare_spread(ctx, args):
    """The CIFAR-10 comparison repeated over ``--blocks`` disjoint seed blocks (block b: SR
    seeds from ``seed + b * runs``, baselines ``random_state = seed + b * runs``), so that
    SR's lead or deficit is read against its spread over syntheses, not from one draw.
    Block 0 is ``compare-cifar10`` itself (same journal)."""
    problems = shared_problems(CIFAR10)
    runs = ctx.runs_for.get("compare-cifar10", ctx.runs)
    blocks = []
    for b in range(args.blocks):
        seed = ctx.seed + b * runs
        journal = "compare-cifar10.jsonl" if b == 0 else f"compare-cifar10-seed{seed}.jsonl"
        result = fit_compare(ctx, "compare-cifar10", problems, seed, journal)
        blocks.append({"seed": seed, "means": result["means"],
                       "leave_one_out": result["leave_one_out"],
                       "test": {m["name"]: m["taus"]["test"] for m in result["methods"]},
                       "expressions": {m["name"]: m["expression"] for m in result["methods"]}})
    ctx.save("compare-spread", {"problems": [p.name for p in problems], "runs": runs,
                                "loo_runs": ctx.loo_runs or runs, "blocks": blocks},
             command_line("compare-spread", args) + f" --blocks {args.blocks}")


def exp_compare_nb201(ctx, args):
    run_compare(ctx, args, "compare-nb201-computed", computed_nb201())


def exp_compare_tnb101(ctx, args):
    run_compare(ctx, args, "compare-tnb101", shared_problems(TNB101))


def exp_compare_mini(ctx, args):
    run_compare(ctx, args, "compare-mini", shipped_problems())


def _per_run(report: dict, split: str = "test") -> dict[str, list[float | None]]:
    runs = report["runs_summary"]["per_run"]
    return {name: [r["taus"][split][name] for r in runs] for name in report["taus"][split]}


def exp_table15_7(ctx, args):
    dataset = build_dataset(shared_problems(CIFAR10))
    elitist = ctx.synth("d-elitist", dataset)
    generational = ctx.synth("d-generational", dataset, survival="generational")
    table7 = {}
    for label, report in (("eznas", generational), ("gpsr", elitist)):
        table7[label] = {
            problem: {"worst": float(np.min(v)), "median": float(np.median(v)),
                      "best": float(np.max(v))}
            for problem, v in _per_run(report).items()}
    ctx.save("table15", {
        "seeds": elitist["seeds"], "expression": elitist["expression"]["infix"],
        "simplified": elitist["expression"]["simplified"], "taus": elitist["taus"],
        "table15": elitist["runs_summary"]["table15"],
        "best_single_proxy": elitist["best_single_proxy"],
        "search_seconds": elitist["search_seconds"], "proxies": elitist["data"]["proxies"],
        "per_run": elitist["runs_summary"]["per_run"]}, command_line("table15", args))
    ctx.save("table7", {
        "seeds": elitist["seeds"], "table7": table7,
        "chosen": {"gpsr": elitist["taus"]["test"], "eznas": generational["taus"]["test"]},
        "expressions": {"gpsr": elitist["expression"]["infix"],
                        "eznas": generational["expression"]["infix"]},
        "search_seconds": {"gpsr": elitist["search_seconds"],
                           "eznas": generational["search_seconds"]}},
        command_line("table15", args))


def exp_figure6(ctx, args):
    """Every proxy and the table-15 metric (its input split excluded nowhere: all rows)."""
    table15 = json.loads((ctx.out / "table15.json").read_text())
    problems = shared_problems()
    metrics: dict[str, dict[str, float | None]] = {}
    proxies = sorted({p for prob in problems for p in prob.proxies})
    for proxy in proxies:
        metrics[proxy] = {prob.name: tau_on(proxy, prob) for prob in problems}
    metrics["gpsr (table 15)"] = {prob.name: tau_on(table15["expression"], prob)
                                  for prob in problems}
    names = [p.name for p in problems]
    ranks: dict[str, list[float]] = {m: [] for m in metrics}
    for name in names:
        present = {m: v[name] for m, v in metrics.items() if v[name] is not None}
        order = sorted(present, key=lambda m: -present[m])
        for r, m in enumerate(order, start=1):
            ranks[m].append(r)
    average = {m: (float(np.mean(r)) if r else None) for m, r in ranks.items()}
    rows = sorted(metrics, key=lambda m: (average[m] is None, average[m] or 0))
    ctx.save("figure6", {
        "problems": names, "rows": rows, "taus": metrics, "average_rank": average,
        "problems_ranked": {m: len(r) for m, r in ranks.items()},
        "sources": {p.name: p.source for p in problems},
        "expression": table15["expression"]}, command_line("figure6", args))


def _evaluate_on(expression: str, dataset: gpsr.Dataset, others: list[Problem]) -> dict:
    """Test-split tau on the searched problems, all-rows tau on the others."""
    out = {}
    for prob in dataset.problems:
        out[prob.name] = tau_on(expression, prob, dataset, "test")
    for prob in others:
        if prob.name not in out:
            out[prob.name] = tau_on(expression, prob)
    return out


def exp_table5(ctx, args):
    d_problems = shared_problems(CIFAR10)
    targets = shared_problems(CIFAR10 + ["TNB101-MACRO-SCENE"])
    early_scene = early("tnb101-macro-class_scene")
    variants = {}
    d = build_dataset(d_problems)
    variants["D"] = (d, ctx.synth("d-elitist", d), targets + [early_scene])
    plus = build_dataset(d_problems + [targets[-1]])
    variants["D+ (final macro-scene)"] = (plus, ctx.synth("d-plus-final", plus), targets)
    plus_early = build_dataset(d_problems + [early_scene])
    variants["D+ (early macro-scene)"] = (plus_early, ctx.synth("d-plus-early", plus_early),
                                          targets + [early_scene])
    computed = computed_nb201()
    full = build_dataset(computed)
    minus = build_dataset(computed, [p for p in full.proxies if p not in NEWER])
    variants["gpsr NB201 pair, 16 proxies"] = (full, ctx.synth("nb201-16", full), [])
    variants["gpsr NB201 pair, 13 proxies (D-)"] = (minus, ctx.synth("nb201-13", minus), [])
    out = {}
    for label, (dataset, report, others) in variants.items():
        expr = report["expression"]["infix"]
        out[label] = {"problems_searched": dataset.names, "proxies": list(dataset.proxies),
                      "expression": expr, "seeds": report["seeds"],
                      "taus": _evaluate_on(expr, dataset, others),
                      "notes": dataset.notes}
    ctx.save("table5", {"variants": out, "early_scene_source": early_scene.source},
             command_line("table5", args))


def exp_table6(ctx, args):
    problems = shared_problems(CIFAR10)
    full = build_dataset(problems)
    out = {}
    for prob in problems:
        single = build_dataset([prob], full.proxies)
        report = ctx.synth(f"single-{prob.name.lower()}", single)
        expr = report["expression"]["infix"]
        # The same 70/30 split as the three-problem search (seeded per problem name).
        out[prob.name] = {"expression": expr, "seeds": report["seeds"],
                          "taus": {p.name: tau_on(expr, p, full, "test") for p in problems}}
    d = ctx.synth("d-elitist", full)
    out["All 3 problems"] = {"expression": d["expression"]["infix"], "seeds": d["seeds"],
                             "taus": d["taus"]["test"]}
    ctx.save("table6", {"rows": out, "split": "test"}, command_line("table6", args))


def exp_table17(ctx, args):
    problems = shared_problems(CIFAR10)
    d = build_dataset(problems)
    agnostic = [p for p in d.proxies if p in DATA_AGNOSTIC]
    dependent = [p for p in d.proxies if p not in DATA_AGNOSTIC]
    unseen = [p for p in shared_problems() if p.name not in CIFAR10]
    unseen += [early(f"tnb101-{s}") for s in ("micro-class_object", "micro-jigsaw",
                                              "micro-autoencoder")]
    out = {}
    for label, proxies, key in (("Data-agnostic", agnostic, "d-agnostic"),
                                ("Data-dependent", dependent, "d-dependent"),
                                ("Both (table 15)", list(d.proxies), "d-elitist")):
        # D itself for both kinds: its notes (proxies dropped) are part of its identity.
        dataset = d if len(proxies) == len(d.proxies) else build_dataset(problems, proxies)
        report = ctx.synth(key, dataset)
        expr = report["expression"]["infix"]
        out[label] = {"proxies": proxies, "expression": expr, "seeds": report["seeds"],
                      "taus": _evaluate_on(expr, dataset, unseen)}
    ctx.save("table17", {"rows": out, "unseen_sources": {p.name + (" (early)" if "early"
                                                                   in p.source else ""):
                                                         p.source for p in unseen}},
             command_line("table17", args))


EXPERIMENTS = {
    "compare-cifar10": exp_compare_cifar10,
    "compare-spread": exp_compare_spread,
    "compare-budget": exp_compare_budget,
    "compare-mini-budget": exp_compare_mini_budget,
    "table15": exp_table15_7,
    "figure6": exp_figure6,
    "table6": exp_table6,
    "table17": exp_table17,
    "table5": exp_table5,
    "compare-mini": exp_compare_mini,
    "compare-nb201-computed": exp_compare_nb201,
    "compare-tnb101": exp_compare_tnb101,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=31)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/peers")
    parser.add_argument("--work", default="runs/peers")
    parser.add_argument("--only", action="append", choices=list(EXPERIMENTS))
    parser.add_argument("--runs-for", action="append", metavar="NAME=RUNS",
                        help="SR runs per fit in one experiment (default: --runs).")
    parser.add_argument("--loo-runs", type=int, default=None,
                        help="SR runs per leave-one-out fit (default: the experiment's runs).")
    parser.add_argument("--blocks", type=int, default=5,
                        help="Seed blocks of compare-spread (block 0 is compare-cifar10's).")
    parser.add_argument("--render", action="store_true", help="Only rewrite README.md.")
    args = parser.parse_args()
    if args.blocks < 1:
        parser.error("--blocks must be at least 1")
    ctx = Context(args)
    if not args.render:
        for name in args.only or EXPERIMENTS:
            start = time.perf_counter()
            ctx.experiment = name
            EXPERIMENTS[name](ctx, args)
            print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    from render_peers import render  # beside this script

    (ctx.out / "README.md").write_text(render(ctx.out))
    print(f"wrote {ctx.out / 'README.md'}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
