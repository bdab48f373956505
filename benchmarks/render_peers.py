"""Markdown of the JSON files that benchmarks/paper_experiments.py writes (its last step)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

#: Figures quoted from the paper (../shared/paper), shown beside gpsr's for reference only.
PAPER = {
    "table15": {"NB101-CF10": ("0.5587 ± 0.0258", "0.5603 ± 0.0265", "0.5592 ± 0.0255"),
                "NB201-CF10": ("0.7393 ± 0.0221", "0.7369 ± 0.0228", "0.7386 ± 0.0222"),
                "NB301-CF10": ("0.3883 ± 0.0133", "0.3864 ± 0.0134", "0.3877 ± 0.0121")},
    "table7": {"eznas": {"NB101-CF10": (0.5057, 0.5372, 0.5843),
                         "NB201-CF10": (0.7279, 0.7345, 0.7396),
                         "NB301-CF10": (0.3684, 0.3779, 0.4040)},
               "gpsr": {"NB101-CF10": (0.5338, 0.5613, 0.6145),
                        "NB201-CF10": (0.7363, 0.7617, 0.7610),
                        "NB301-CF10": (0.3537, 0.3760, 0.4012)}},
    "table6": {"NB101-CF10": (0.66, 0.70, 0.37), "NB201-CF10": (0.47, 0.79, 0.27),
               "NB301-CF10": (0.36, -0.17, 0.48), "All 3 problems": (0.61, 0.76, 0.40)},
    "table5": {"D-": (0.54, 0.72, 0.39, 0.19, -0.30), "D+": (0.48, 0.78, 0.42, 0.63, 0.67),
               "D": (0.61, 0.76, 0.40, 0.48, 0.53)},
    "table17": {"Data-agnostic": (0.41, 0.60, 0.31, 0.41),
                "Data-dependent": (0.44, 0.71, 0.39, 0.20),
                "Both (table 15)": (0.61, 0.76, 0.40, 0.48)},
}


def fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _load(folder: Path, name: str) -> dict | None:
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def render_compare(data: dict) -> str:
    problems = data["problems"]
    means = data["means"]
    sr = means["sr"]
    config = data.get("search_config")
    budget = (f" Every SR variant searches with population {config['population_size']} for "
              f"{config['generations']} generations per run." if config else "")
    rows = []
    for m in data["methods"]:
        name = m["name"]
        rows.append([f"**{name}**" if name == "sr" else name,
                     *(fmt(m["taus"]["test"].get(p)) for p in problems),
                     fmt(means[name]["test"]),
                     fmt(means[name]["leave_one_out"]),
                     f"{m['seconds']:.1f}",
                     "formula" if m["expression"] else "model/pool rule"])
    out = [f"Command: `{data['command']}`; gpsr commit {data['gpsr_commit']}; SR seeds "
           f"{data['seeds'][0]}..{data['seeds'][-1]} ({data['runs']} runs per SR fit), "
           f"baselines random_state {data['seeds'][0]}.{budget} Terminal set: "
           f"{', '.join(data['proxies'])}.", "",
           "Kendall tau on the test split (30 %) of each problem, the mean over problems, "
           "the mean leave-one-problem-out (fit on the others' input splits, score all rows "
           "of the one left out), and the seconds one fit on all problems took:", "",
           table(["method", *problems, "mean test", "mean LOO", "seconds", "output"], rows), ""]
    loo = data.get("leave_one_out")
    if loo:
        rows = [[name, *(fmt(loo[name].get(p)) for p in problems),
                 fmt(means[name]["leave_one_out"])] for name in loo]
        out += ["Leave-one-problem-out, tau on the held-out problem (column):", "",
                table(["method", *problems, "mean"], rows), ""]
    deltas = []
    for m in data["methods"]:
        if m["name"] == "sr":
            continue
        t = sr["test"] - means[m["name"]]["test"]
        lo = (None if sr["leave_one_out"] is None
              else sr["leave_one_out"] - means[m["name"]]["leave_one_out"])
        deltas.append([m["name"], f"{t:+.3f}", fmt(lo) if lo is None else f"{lo:+.3f}"])
    out += ["SR's mean minus each method's mean (positive: SR ahead):", "",
            table(["method", "test", "leave-one-out"], deltas), "",
            "Rules fitted on all problems:", ""]
    out += [f"* {m['name']} ({m['follows']}): `{m['rule'][:300]}`" for m in data["methods"]]
    return "\n".join(out) + "\n"


def spread(values: list[float]) -> str:
    return f"{np.median(values):.3f} [{min(values):.3f}, {max(values):.3f}]"


def render_spread(data: dict) -> str:
    blocks = data["blocks"]
    methods = list(blocks[0]["means"])
    problems = data["problems"]
    rows = []
    for name in methods:
        test = [b["means"][name]["test"] for b in blocks]
        loo = [b["means"][name]["leave_one_out"] for b in blocks]
        sr_test = sum(b["means"]["sr"]["test"] > t for b, t in zip(blocks, test))
        sr_loo = sum(b["means"]["sr"]["leave_one_out"] > t for b, t in zip(blocks, loo))
        ahead = "" if name == "sr" else f"{sr_test} / {sr_loo}"
        held = [spread([b["leave_one_out"][name][p] or 0.0 for b in blocks]) for p in problems]
        rows.append([f"**{name}**" if name == "sr" else name, spread(test), spread(loo),
                     *held, ahead])
    seeds = ", ".join(str(b["seed"]) for b in blocks)
    return "\n".join([
        f"Command: `{data['command']}`; gpsr commit {data['gpsr_commit']}. The comparison "
        f"above, repeated over {len(blocks)} disjoint seed blocks (first SR seed {seeds}; "
        f"{data['runs']} SR runs per fit, {data['loo_runs']} per leave-one-out fit; the "
        "stochastic baselines take the block's first seed as random_state). Median [min, "
        "max] over the blocks of the mean tau on the test splits, of the mean "
        "leave-one-problem-out tau, and of the tau on each held-out problem; the last "
        "column counts the blocks where SR's mean is higher (test / leave-one-out):", "",
        table(["method", "mean test", "mean LOO", *(f"LOO {p}" for p in problems),
               "SR ahead"], rows), ""])


def render(folder: Path) -> str:
    parts = ["# Baselines and the paper's experiments (issue 13)", "",
             "Generated by `python benchmarks/paper_experiments.py` from the JSON files in "
             "this folder (each holds its exact command, seeds and gpsr commit). Paper figures "
             "are quoted beside gpsr's where the paper has them; where the shared data differs "
             "from the paper's, the note beside the table says how. Discussion: `ANALYSIS.md`.",
             ""]
    for name, title in (("compare-cifar10", "NB101/201/301-CF10 (shared data)"),
                        ("compare-nb201-computed",
                         "NB201 CIFAR-10/100, gpsr's own 16 proxies (612 / 1,000 cells)"),
                        ("compare-budget", "NB101/201/301-CF10, a 6 times larger SR search"),
                        ("compare-tnb101", "TransNAS-Bench-101 (4 shared proxies)"),
                        ("compare-mini", "the shipped mini benchmark"),
                        ("compare-mini-budget",
                         "the shipped mini benchmark, a 6 times larger SR search")):
        data = _load(folder, name)
        if data:
            parts += [f"## Methods compared: {title}", "", render_compare(data)]
        spread_data = _load(folder, "compare-spread") if name == "compare-cifar10" else None
        if spread_data:
            parts += ["### The same comparison over seed blocks", "", render_spread(spread_data)]
    t15 = _load(folder, "table15")
    if t15:
        rows = []
        for problem, splits in t15["table15"].items():
            paper = PAPER["table15"].get(problem, ("-",) * 3)
            rows.append([problem, *(f"{splits[s]['mean']:.4f} ± {splits[s]['std']:.4f}"
                                    for s in ("input", "test", "all")), *paper])
        parts += ["## Table 15: 31 runs on D", "",
                  f"`{t15['command']}`, commit {t15['gpsr_commit']}, seeds "
                  f"{t15['seeds'][0]}..{t15['seeds'][-1]}. D here has 11 proxies "
                  f"({', '.join(t15['proxies'])}): the shared files have no zico, meco, swap, "
                  "and NB101/NB301 lack nwot/zen and are EARLY samples (SOURCES.md). Chosen "
                  f"expression: `{t15['expression']}`.", "",
                  table(["problem", "input", "test", "input+test", "paper input",
                         "paper test", "paper input+test"], rows), ""]
    t7 = _load(folder, "table7")
    if t7:
        rows = []
        for k, which in enumerate(("worst", "median", "best")):
            for problem in t7["table7"]["gpsr"]:
                ez, ours = t7["table7"]["eznas"][problem], t7["table7"]["gpsr"][problem]
                pe, po = PAPER["table7"]["eznas"][problem][k], PAPER["table7"]["gpsr"][problem][k]
                rows.append([which, problem, f"{ez[which]:.4f}", f"{ours[which]:.4f}",
                             f"{pe:.4f}", f"{po:.4f}"])
        parts += ["## Table 7: gpsr's procedure against EZNAS's (31 runs each)", "",
                  "Test-split tau of each run's winner; worst, median and best of the 31 per "
                  "problem. Same seeds, operators and budget; EZNAS's offspring replace their "
                  "parents.", "",
                  table(["", "problem", "EZNAS", "gpsr", "paper EZNAS", "paper gpsr"], rows), ""]
    f6 = _load(folder, "figure6")
    if f6:
        rows = [[m, fmt(f6["average_rank"][m], 2), str(f6["problems_ranked"][m]),
                 *(fmt(f6["taus"][m][p], 2) for p in f6["problems"])] for m in f6["rows"]]
        parts += ["## Figure 6: every proxy and the table-15 metric on every problem", "",
                  "Tau on all rows; rows ordered by average rank over the problems where the "
                  "metric is defined (n/a: the file lacks one of its proxies; the count says "
                  "over how many problems the rank is averaged). NB201-IMGNT and "
                  "TNB101-MICRO-SCENE are held back from the shared data; NB201-CF100 has zen "
                  "only; TNB101 files have at most 4 proxies, so the metric found on D, which "
                  "uses proxies they lack, has no tau there.", "",
                  table(["metric", "avg rank", "problems", *f6["problems"]], rows), ""]
    t5 = _load(folder, "table5")
    if t5:
        cols = ["NB101-CF10", "NB201-CF10", "NB301-CF10", "TNB101-MACRO-SCENE",
                "TNB101-MACRO-SCENE (early)", "NB201-CF100"]
        rows = [[label, f"`{v['expression'][:80]}`", str(len(v["proxies"])),
                 *(fmt(v["taus"].get(c)) for c in cols)] for label, v in t5["variants"].items()]
        paper = [[f"paper {k}", "", "", *(f"{x:.2f}" for x in v[:3]), f"{v[4]:.2f}", "", ""]
                 for k, v in PAPER["table5"].items()]
        parts += ["## Table 5: D, D- and D+", "",
                  "Test split for the problems searched over, all rows for the others. The "
                  "shared D has no zico/meco/swap, so D- equals D there; the D/D- contrast is "
                  "measured on gpsr's own NB201 proxy data (16 against 13 proxies; 1,000 cells "
                  "with CIFAR-100 accuracies, the 612 of them in the shared CIFAR-10 file with "
                  "CIFAR-10's). D+ adds TNB101-Macro-Scene "
                  "(TNB101-Micro-Scene is held back): with the final file only epe_nas and "
                  "synflow are shared by all four problems; the early file (values and "
                  "val_accuracy from NASLib's May-2022 JSON, see SOURCES.md) shares 9.", "",
                  table(["input data", "expression", "proxies", *cols], rows + paper), "",
                  "Paper's columns: NB101, NB201, NB301, (TNB101-Micro-Scene, not here), "
                  "TNB101-Macro-Scene.", ""]
    t6 = _load(folder, "table6")
    if t6:
        cols = ["NB101-CF10", "NB201-CF10", "NB301-CF10"]
        rows = [[label, *(fmt(v["taus"].get(c)) for c in cols),
                 *(f"{x:.2f}" for x in PAPER["table6"][label])]
                for label, v in t6["rows"].items()]
        parts += ["## Table 6: searching on a single problem", "",
                  "Test split (the same 70/30 split as the three-problem search).", "",
                  table(["searched on", *cols, *(f"paper {c}" for c in cols)], rows), ""]
    t17 = _load(folder, "table17")
    if t17:
        cols = sorted({c for v in t17["rows"].values() for c in v["taus"]})
        cols = [c for c in cols if any(v["taus"].get(c) is not None
                                       for v in t17["rows"].values())]
        rows = [[label, ", ".join(v["proxies"]), *(fmt(v["taus"].get(c)) for c in cols)]
                for label, v in t17["rows"].items()]
        paper = [[f"paper {k}", "", f"{v[0]:.2f} / {v[1]:.2f} / {v[2]:.2f} (CF10 trio); "
                  f"{v[3]:.2f} (TNB101-Micro-Scene)"] + [""] * (len(cols) - 1)
                 for k, v in PAPER["table17"].items()]
        parts += ["## Table 17: data-agnostic only against data-dependent only", "",
                  "The paper's split: l2_norm, params, synflow, zen are data-agnostic, the rest "
                  "data-dependent (zen is not in D here). Test split on the CF10 trio, all rows "
                  "elsewhere; TNB101-Micro-Scene is held back, so unseen problems are the other "
                  "TNB101 files (early extra/ files marked, their val_accuracy is NASLib's "
                  "early one). Columns where no row has a tau are left out.", "",
                  table(["proxies", "set", *cols], rows + paper), ""]
    return "\n".join(parts)
