"""Taus of gpsr's own NB201 proxy data, and a synthesis over it with zico, meco and swap.

Joins ``results/proxies/nb201-proxies.csv`` (made by ``gpsr proxies-table``) with the CIFAR-10
and CIFAR-100 accuracies of ../shared (CIFAR-10 from the all-15,625 table in extra/, since the
sample is uniform over every cell), then writes ``results/proxies/README.md``:

    python benchmarks/computed_nb201.py --runs 5
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numba

import gpsr
from gpsr.data import join_accuracies, shared_dir
from gpsr.kernels.kendall import kendall_tau
from gpsr.report import gpsr_commit

TABLE = Path("results/proxies/nb201-proxies.csv")
#: How zico, meco and swap follow their authors, and where gpsr departs (issue 11 item 7).
PROTOCOLS = [
    "## zico, meco and swap: the authors' protocols",
    "",
    "- swap (Peng et al. 2024, `pym1024/SWAP` `correlation.py`): distinct activation "
    "patterns of the batch's first 16 images, averaged over 32 re-initialisations with N(0, 1) "
    "weights (seeded with `--seed`). Before, gpsr counted patterns of all 64 images on the "
    "network's own initialisation, where nearly every unit has a pattern of its own.",
    "- zico (Li et al. 2023, `SLDGroup/ZiCo` `compute_zico.py`): gradients accumulated over "
    "two batches without zeroing, as the official `getzico`. Departure: the two batches are the "
    "halves of the one batch of 64 every proxy shares (`compute_proxies` takes one batch, the "
    "NAS-Bench-Suite-Zero protocol); the official script draws two batches from its loader.",
    "- meco (Jiang et al. 2023, `HamsterMimi/MeCo`): unchanged; every module call adds a "
    "term, so the value depends on the module tree. gpsr scores its NB201 network (NAS-Bench-"
    "201's `xautodl` model), which has fewer wrapper modules than the `nasbench2` model of "
    "MeCo's script (see the `meco` docstring): values are comparable within gpsr, not to the "
    "paper's.",
    "- Reproducibility: proxies run on one CPU thread (float32 sums split over threads move "
    "zico between 1 and 2 threads: by 0.5% on a cell here, up to 6% in issue 11), and on "
    "CUDA with deterministic cuDNN, no autotuning and TF32 off.",
    "",
    "Before/after taus of the changed proxies on the same cells: `protocols.md`.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--table", type=Path, default=TABLE,
                        help="proxy table; README.md, proxy-taus.json and synthesis/ go beside it")
    args = parser.parse_args()
    shared = shared_dir()
    if shared is None:
        raise SystemExit("shared data not found; set GPSR_SHARED")
    nbsz = shared / "data" / "nas-bench-suite-zero"
    problems = [
        join_accuracies(args.table, nbsz / "extra" / "nb201-cifar10.final-zen-all15625.csv"),
        join_accuracies(args.table, nbsz / "nb201-cifar100.csv"),
    ]
    taus = {p.name: {q: float(kendall_tau(p.column(q), p.accuracy)) for q in p.proxies}
            for p in problems}
    dataset = gpsr.build_dataset(problems)
    out = args.table.parent / "synthesis"
    shutil.rmtree(out, ignore_errors=True)  # a fresh synthesis over the table as it is now
    result = gpsr.synthesize(dataset, gpsr.SearchConfig(random_state=0), runs=args.runs,
                             executor=gpsr.make_executor("local", jobs=2), out=out)
    report = result.report
    seconds = problems[0].costs.get("seconds_proxies")
    lines = [
        "# gpsr's own NB201 proxy data",
        "",
        f"`nb201-proxies.csv`: all 16 proxies for {len(problems[0])} NB201 cells sampled "
        "uniformly (a seeded permutation of the 15,625, seed 0) and computed on the CPU with "
        "`gpsr proxies-table --space nb201 --archs N --seed 0 --jobs 2 --out "
        "results/proxies/nb201-proxies.csv`: batch 64 of the shared CIFAR-10 sample, one "
        "seeded initialisation per cell. No accuracies are stored; they are joined at load time "
        "(`gpsr run --data results/proxies/nb201-proxies.csv --accuracies <benchmark csv>`).",
        "",
        f"Median seconds per cell (all 16, one thread, 2 workers, shared machine): "
        f"{float(sorted(seconds)[len(seconds) // 2]):.2f}." if seconds is not None else "",
        "",
        "## Kendall tau of each proxy (failures, -1e8, kept)",
        "",
        "| proxy | " + " | ".join(p.name for p in problems) + " |",
        "|---|" + "---|" * len(problems),
    ]
    for q in problems[0].proxies:
        lines.append(f"| {q} | " + " | ".join(f"{taus[p.name][q]:.3f}" for p in problems) + " |")
    lines += ["", *PROTOCOLS]
    lines += [
        "",
        f"## Synthesis over both problems ({args.runs} runs, population 100, 50 generations)",
        "",
        f"`python benchmarks/computed_nb201.py --runs {args.runs}` (numba threads "
        f"{numba.get_num_threads()}, seeds {'0' if args.runs == 1 else f'0-{args.runs - 1}'}, "
        f"gpsr commit {gpsr_commit()}); "
        "full output in `synthesis/result.json`.",
        "",
        f"Chosen expression: `{report['expression']['infix']}`",
        "",
        "| split | " + " | ".join(dataset.names) + " |",
        "|---|" + "---|" * len(dataset.names),
    ]
    for split in ("input", "test", "all"):
        row = report["taus"][split]
        lines.append(f"| {split} | " + " | ".join(f"{row[n]:.3f}" for n in dataset.names) + " |")
    best = report["best_single_proxy"]
    lines.append("| best single proxy (test) | " + " | ".join(
        f"{best[n]['proxy']} {best[n]['test']:.3f}" for n in dataset.names) + " |")
    (args.table.parent / "README.md").write_text("\n".join(lines) + "\n")
    (args.table.parent / "proxy-taus.json").write_text(json.dumps(taus, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
