"""Transfer of synthesized metrics to problems the search never saw, before and after the
transfer options (terminal calibration, parsimony pressure, worst-problem final choice).

Every option searches NB101/201/301-CF10 (the paper's setting; input split 70 %) with seeds
0..30, one run per seed, and each run's final expression is scored on a fixed set of held-out
problems (all rows; a calibrated expression with maps fitted on each held-out problem's own
input rows, proxy values only, as ``gpsr evaluate --expr result.json`` does):

* NB201-CF10-EARLY, NB201-CF100-EARLY: NAS-Bench-Suite-Zero's early NB201 proxy values
  (../shared extra/, 724 and 725 cells): the same space and accuracies as the input's
  NB201-CF10, other proxy computations, other scales;
* NB201-CF10-GPSR, NB201-CF100-GPSR: gpsr's own live proxies on 1,000 uniform NB201 cells
  (results/proxies/nb201-proxies.csv) joined with the CIFAR-10 and CIFAR-100 accuracies;
* the four shipped mini problems (gpsr/shipped: other spaces, other task, 200 cells each).

TransNAS-Bench-101 files are not held out: the final ones have 1-4 proxies, the early ones
lack synflow, one of the 11 terminals.

The choice among runs (equation 1's sum against the worst problem) is measured on
``--groups`` disjoint syntheses of ``--group-runs`` runs each (seeds 0.., in blocks).

    nice -n 10 python benchmarks/transfer.py --jobs 2 > transfer.log 2>&1 &

Run folders go under ``--work`` (default /tmp/gpsr-transfer): the same command resumes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

import gpsr
from gpsr.data import join_accuracies, load_csv, shared_dir
from gpsr.fitness import Equation1
from gpsr.genetic import choose
from gpsr.minibench import shipped_problems

INPUTS = ["NB101-CF10", "NB201-CF10", "NB301-CF10"]
#: name: (calibration, SearchConfig fields)
OPTIONS: dict[str, tuple[str, dict]] = {
    "baseline": ("none", {}),
    "quantile": ("quantile", {}),
    "robust": ("robust", {}),
    "log": ("log", {}),
    "parsimony-0.001": ("none", {"parsimony_coefficient": 0.001}),
    "parsimony-0.005": ("none", {"parsimony_coefficient": 0.005}),
    "worst": ("none", {"final_choice": "worst"}),
    "log+parsimony-0.001": ("log", {"parsimony_coefficient": 0.001}),
    "log+parsimony-0.005": ("log", {"parsimony_coefficient": 0.005}),
    "log+worst": ("log", {"final_choice": "worst"}),
}


def held_out_problems(suite: Path) -> list[gpsr.Problem]:
    extra = suite / "extra"
    table = Path(__file__).resolve().parents[1] / "results" / "proxies" / "nb201-proxies.csv"
    named = [
        (load_csv(extra / "nb201-cifar10.naslib-early-01f0f4ac.csv"), "NB201-CF10-EARLY"),
        (load_csv(extra / "nb201-cifar100.naslib-early-01f0f4ac.csv"), "NB201-CF100-EARLY"),
        (join_accuracies(table, extra / "nb201-cifar10.final-zen-all15625.csv"),
         "NB201-CF10-GPSR"),
        (join_accuracies(table, suite / "nb201-cifar100.csv"), "NB201-CF100-GPSR"),
    ]
    return [replace(p, name=name) for p, name in named] + shipped_problems()


def _groups(names: list[str]) -> dict[str, list[int]]:
    """Held-out problems of the input's NB201 space, and those of other spaces."""
    same = [j for j, n in enumerate(names) if n.startswith("NB201-")]
    return {"NB201 (same space)": same,
            "other spaces": [j for j in range(len(names)) if j not in same]}


def summary(values: np.ndarray) -> dict:
    values = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(values)), "min": float(values.min()),
            "max": float(values.max())}


def measure(name: str, calibration: str, fields: dict, inputs: list, held_out: list,
            args: argparse.Namespace) -> dict:
    dataset = gpsr.build_dataset(inputs, calibration=calibration)
    runs = max(args.seeds, args.groups * args.group_runs if name in args.choice else 0)
    config = gpsr.SearchConfig(random_state=0, **fields)
    start = time.perf_counter()
    result = gpsr.synthesize(dataset, config, runs, gpsr.make_executor("local", args.jobs),
                             out=Path(args.work) / name)
    seconds = time.perf_counter() - start
    per_run = result.report["runs_summary"]["per_run"]
    finals = [gpsr.parse(r["expression"], dataset.proxies) for r in per_run]
    held = gpsr.build_dataset(held_out, dataset.proxies, calibration=calibration)
    held_taus = np.nan_to_num(gpsr.evaluate_many(finals, held)["all"], nan=0.0)
    test = np.array([[r["taus"]["test"][p] or 0.0 for p in INPUTS] for r in per_run])
    seeds = slice(0, args.seeds)
    out = {
        "calibration": calibration,
        "search_config": fields,
        "runs": runs,
        "wall_seconds": seconds,
        "per_seed": [
            {"seed": r["seed"], "expression": r["expression"], "size": f.size,
             "input_test_taus": dict(zip(INPUTS, map(float, t))),
             "held_out_taus": dict(zip(held.names, map(float, h)))}
            for r, f, t, h in zip(per_run[seeds], finals[seeds], test[seeds],
                                  held_taus[seeds])
        ],
        "input_test": {p: summary(test[seeds, j]) for j, p in enumerate(INPUTS)},
        "held_out": {p: summary(held_taus[seeds, j]) for j, p in enumerate(held.names)},
        "held_out_mean_per_seed": summary(held_taus[seeds].mean(axis=1)),
        "held_out_worst_per_seed": summary(held_taus[seeds].min(axis=1)),
        "held_out_groups": {
            group: {"mean_per_seed": summary(held_taus[seeds][:, cols].mean(axis=1)),
                    "worst_per_seed": summary(held_taus[seeds][:, cols].min(axis=1))}
            for group, cols in _groups(held.names).items()},
        "size": summary([f.size for f in finals[seeds]]),
    }
    if name in args.choice:
        out["choice_among_runs"] = choice_among_runs(result, finals, held_taus, test, args)
    return out


def choice_among_runs(result, finals, held_taus, test, args) -> dict:
    """Each block of ``group_runs`` consecutive seeds is one synthesis; its final metric is
    picked by equation 1 over the runs (as ``synthesize``) and by the worst input tau."""
    per_run = result.report["runs_summary"]["per_run"]
    input_taus = np.array([[r["taus"]["input"][p] for p in INPUTS] for r in per_run],
                          dtype=np.float64)
    picks: dict[str, list[int]] = {"sum": [], "worst": []}
    for g in range(args.groups):
        block = list(range(g * args.group_runs, (g + 1) * args.group_runs))
        taus = input_taus[block]
        eq1 = Equation1(len(INPUTS))
        eq1.observe(taus)
        for rule in picks:
            picks[rule].append(block[choose([finals[k] for k in block], taus, eq1, rule)])
    return {
        "groups": args.groups,
        "runs_per_group": args.group_runs,
        **{rule: {"picked_seeds": [per_run[k]["seed"] for k in ks],
                  "input_test": {p: summary(test[ks, j]) for j, p in enumerate(INPUTS)},
                  "held_out_mean_per_group": summary(held_taus[ks].mean(axis=1)),
                  "held_out_worst_per_group": summary(held_taus[ks].min(axis=1))}
           for rule, ks in picks.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=31)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--options", default=",".join(OPTIONS))
    parser.add_argument("--choice", default="baseline,quantile",
                        help="Options whose choice among runs is measured (more seeds).")
    parser.add_argument("--groups", type=int, default=31)
    parser.add_argument("--group-runs", type=int, default=5)
    parser.add_argument("--work", default="/tmp/gpsr-transfer")
    parser.add_argument("--out", default="results/transfer.json")
    args = parser.parse_args()
    args.choice = [c for c in args.choice.split(",") if c]
    shared = shared_dir()
    if shared is None:
        raise SystemExit("shared data not found; set GPSR_SHARED")
    suite = shared / "data" / "nas-bench-suite-zero"
    inputs = gpsr.load_problems(suite, INPUTS)
    held_out = held_out_problems(suite)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    report = {
        "command": "python " + " ".join(sys.argv),
        "commit": commit,
        "seeds": list(range(args.seeds)),
        "inputs": INPUTS,
        "held_out": [{"name": p.name, "architectures": len(p),
                      "source": p.source.replace(f"{shared}/", "../shared/").replace(
                          f"{Path.cwd()}/", "")} for p in held_out],
        "options": {},
    }
    out = Path(args.out)
    for name in args.options.split(","):
        calibration, fields = OPTIONS[name]
        report["options"][name] = measure(name, calibration, fields, inputs, held_out, args)
        r = report["options"][name]
        print(f"{name}: held-out mean {r['held_out_mean_per_seed']}, worst "
              f"{r['held_out_worst_per_seed']}, {r['wall_seconds']:.0f} s", flush=True)
        out.write_text(json.dumps(report, indent=1))
        out.with_suffix(".md").write_text(markdown(report))


def _fmt(s: dict) -> str:
    return f"{s['median']:.3f} [{s['min']:.3f}, {s['max']:.3f}]"


def markdown(report: dict) -> str:
    """The figures of ``report`` as tables: median [min, max] over seeds."""
    options = report["options"]
    held = [h["name"] for h in report["held_out"]]
    lines = [
        "# Transfer to problems the search never saw",
        "",
        f"`{report['command']}` at gpsr commit `{report['commit']}`; seeds "
        f"{report['seeds'][0]}-{report['seeds'][-1]} (run k of an option uses seed k; "
        "population 100, 50 generations, the paper's settings otherwise). Inputs: "
        f"{', '.join(report['inputs'])} (70 % input split; their taus below are on the 30 % "
        "test split). Held-out problems (all rows; a calibrated expression uses maps fitted on "
        "each held-out problem's own input rows, proxy values only):",
        "",
        "| held-out problem | architectures | source |",
        "|---|---|---|",
        *(f"| {h['name']} | {h['architectures']} | `{h['source']}` |" for h in report["held_out"]),
        "",
        "Not held out: the TransNAS-Bench-101 files of ../shared (the final ones have 1-4 "
        "proxies; the early ones lack synflow, one of the 11 terminals, so an expression "
        "using it cannot be scored there).",
        "",
        "Every figure is median [min, max] over the seeds. *held-out mean*: a seed's mean tau "
        "over the held-out problems; *held-out worst*: its lowest.",
        "",
        "| option | " + " | ".join(f"{p} (test)" for p in report["inputs"])
        + " | held-out mean | held-out worst | size |",
        "|---" * (len(report["inputs"]) + 4) + "|",
    ]
    for name, o in options.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(o["input_test"][p]) for p in report["inputs"])
                     + f" | {_fmt(o['held_out_mean_per_seed'])} | "
                     f"{_fmt(o['held_out_worst_per_seed'])} | {o['size']['median']:.0f} |")
    lines += ["", "Per held-out problem:", "",
              "| option | " + " | ".join(held) + " |", "|---" * (len(held) + 1) + "|"]
    for name, o in options.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(o["held_out"][h]) for h in held) + " |")
    groups = list(next(iter(options.values())).get("held_out_groups", {}))
    if groups:
        lines += ["", "By group of held-out problems (a seed's mean and lowest tau in the group):",
                  "", "| option | " + " | ".join(f"{g}: mean | {g}: worst" for g in groups)
                  + " |", "|---" * (2 * len(groups) + 1) + "|"]
        for name, o in options.items():
            cells = [_fmt(o["held_out_groups"][g][k]) for g in groups
                     for k in ("mean_per_seed", "worst_per_seed")]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    choices = {n: o["choice_among_runs"] for n, o in options.items() if "choice_among_runs" in o}
    if choices:
        c0 = next(iter(choices.values()))
        lines += ["", f"Choice among runs: {c0['groups']} disjoint syntheses of "
                  f"{c0['runs_per_group']} runs each (seeds in consecutive blocks), the final "
                  "metric of each picked by equation 1 (sum) or by its worst input tau (worst); "
                  "median [min, max] over the syntheses:", "",
                  "| option | rule | " + " | ".join(f"{p} (test)" for p in report["inputs"])
                  + " | held-out mean | held-out worst |",
                  "|---" * (len(report["inputs"]) + 4) + "|"]
        for name, c in choices.items():
            for rule in ("sum", "worst"):
                r = c[rule]
                lines.append(f"| {name} | {rule} | "
                             + " | ".join(_fmt(r["input_test"][p]) for p in report["inputs"])
                             + f" | {_fmt(r['held_out_mean_per_group'])} | "
                             f"{_fmt(r['held_out_worst_per_group'])} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
