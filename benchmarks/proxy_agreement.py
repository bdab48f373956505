"""Agreement of gpsr's live proxies with the values NAS-Bench-Suite-Zero logged for NB201.

300 architectures are drawn with a fixed seed from ``nb201-cifar10.csv`` (the 9,445 cells with
final NB-Suite-Zero values, see its SOURCES.md). Each is built with ``gpsr.spaces`` (PyTorch
default initialisation, seeded per architecture) and scored with all 16 proxies on a batch of
64 real CIFAR-10 images (the shared test-split sample). Per proxy: Kendall's tau (scipy)
between gpsr's value and the logged one, exact-match checks for params/flops, failure counts,
both proxies' tau against the logged validation accuracy, and a *re-draw* tau: gpsr against
itself with other initial weights and another batch, the agreement any second run of the same
definition can expect. Writes ``results/proxy-agreement.md`` and ``.json``.

Usage: python benchmarks/proxy_agreement.py [--archs 300] [--seed 0] [--workers 2]
       python benchmarks/proxy_agreement.py --only swap,zico   (recompute those proxies in
           the existing .json with the same architectures, weights, batches and seeds, after
           their definitions changed; the other columns are kept)
       python benchmarks/proxy_agreement.py --render   (rewrite the .md from the .json)
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from itertools import combinations
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

ROOT = Path(__file__).resolve().parents[1]
FAILURE = -1e8
_BATCHES: dict = {}


def _worker_init(threads: int, batch_seeds: list[int]) -> None:
    import torch

    from gpsr.proxies import default_batch

    torch.set_num_threads(threads)
    for seed in batch_seeds:
        _BATCHES[seed] = default_batch(64, seed=seed)


def _score(job: tuple[int, int, str, int, int, list[str] | None]
           ) -> tuple[int, int, dict[str, float], float]:
    import torch

    from gpsr.proxies import compute_proxies
    from gpsr.spaces import build_network

    draw, index, arch, init_seed, batch_seed, names = job
    torch.manual_seed(init_seed)
    net = build_network("nb201", arch)
    start = time.perf_counter()
    # zen's own Gaussian draws follow compute_proxies' seed: the re-draw changes it too.
    values = compute_proxies(net, _BATCHES[batch_seed], names, device="cpu", seed=draw)
    return draw, index, values, time.perf_counter() - start


def _tau(a: np.ndarray, b: np.ndarray) -> float:
    tau = kendalltau(a, b).statistic
    return float(tau) if np.isfinite(tau) else float("nan")


def _fmt(x: float | None) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.3f}"


def _conv_edge_tie_share(archs: list[str]) -> float:
    """Share of arch pairs with the same number of conv edges. Under PyTorch's default init
    E||W||^2 = out_channels/3 whatever the kernel size, so l2_norm's expectation depends on
    that count alone; such pairs are ordered by init noise, and tau(l2_norm) between two
    independent draws is capped near 1 minus this share."""
    counts = [a.count("conv") for a in archs]
    same = sum(1 for i, j in combinations(range(len(counts)), 2) if counts[i] == counts[j])
    return same / (len(counts) * (len(counts) - 1) / 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, choices=(1, 2))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "proxy-agreement")
    parser.add_argument("--render", action="store_true", help="rewrite the .md from the .json")
    parser.add_argument("--only", help="comma-separated proxies to recompute in the .json")
    args = parser.parse_args(argv)
    if args.render:
        report = json.loads(args.out.with_suffix(".json").read_text())
        args.out.with_suffix(".md").write_text(_markdown(report))
        return 0

    from gpsr.data import shared_dir
    from gpsr.proxies import PROXIES
    from gpsr.report import gpsr_commit

    only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    unknown = [n for n in only or [] if n not in PROXIES]
    if unknown:
        print(f"proxy_agreement: unknown proxy {unknown[0]!r} (known: {', '.join(PROXIES)})",
              file=sys.stderr)
        return 2
    previous = None
    if only:
        saved = args.out.with_suffix(".json")
        if not saved.is_file():
            print(f"proxy_agreement: --only needs {saved} from a full run", file=sys.stderr)
            return 2
        previous = json.loads(saved.read_text())
        if (previous["archs"], previous["seed"]) != (args.archs, args.seed):
            print(f"proxy_agreement: {saved} was made with --archs {previous['archs']} "
                  f"--seed {previous['seed']}; pass the same", file=sys.stderr)
            return 2

    root = shared_dir()
    table = None if root is None else root / "data" / "nas-bench-suite-zero" / "nb201-cifar10.csv"
    if table is None or not table.is_file():
        print("proxy_agreement: nb201-cifar10.csv not found in the shared data", file=sys.stderr)
        return 1
    with table.open() as f:
        rows = list(csv.DictReader(f))
    pick = np.random.default_rng(args.seed).choice(len(rows), size=args.archs, replace=False)
    rows = [rows[i] for i in sorted(pick)]
    logged_names = [c for c in rows[0] if c not in ("arch", "val_accuracy")]
    # Draw 0 is compared with the logged values; draw 1 re-draws weights and batch.
    batch_seeds = [args.seed, args.seed + 1]
    jobs = [
        (d, i, row["arch"], (args.seed + d) * 100_000 + i, batch_seeds[d], only)
        for d in (0, 1)
        for i, row in enumerate(rows)
    ]
    values: list[list[dict[str, float]]] = [[{}] * len(rows) for _ in (0, 1)]
    if previous:
        if [r["arch"] for r in previous["rows"]] != [r["arch"] for r in rows]:
            print("proxy_agreement: the saved architectures differ from this draw",
                  file=sys.stderr)
            return 2
        values = [[dict(r[key]) for r in previous["rows"]] for key in ("gpsr", "gpsr_redraw")]
    seconds = []
    start = time.perf_counter()
    with ProcessPoolExecutor(
        args.workers, initializer=_worker_init, initargs=(args.threads, batch_seeds)
    ) as pool:
        for done, (d, i, vals, secs) in enumerate(pool.map(_score, jobs, chunksize=4), start=1):
            values[d][i] = values[d][i] | vals
            seconds.append(secs)
            if done % 50 == 0:
                print(f"{done}/{len(jobs)} scored, {time.perf_counter() - start:.0f}s", flush=True)

    acc = np.array([float(r["val_accuracy"]) for r in rows])
    per_proxy = {}
    for name in PROXIES:
        ours = np.array([v[name] for v in values[0]])
        redraw = np.array([v[name] for v in values[1]])
        entry = {
            "gpsr_failures": int(np.sum(ours == FAILURE)),
            "tau_gpsr_vs_redraw": _tau(ours, redraw),
            "tau_gpsr_vs_val_accuracy": _tau(ours, acc),
        }
        if name in logged_names:
            logged = np.array([float(r[name]) for r in rows])
            entry.update(
                tau_gpsr_vs_logged=_tau(ours, logged),
                tau_logged_vs_val_accuracy=_tau(logged, acc),
                logged_failures=int(np.sum(logged == FAILURE)),
                identical=bool(np.allclose(ours, logged, rtol=0, atol=1e-9)),
                max_abs_diff=float(np.max(np.abs(ours - logged))),
            )
        per_proxy[name] = entry

    report = {
        "what": "Kendall tau between gpsr's live proxies and NB-Suite-Zero's logged NB201 values",
        "table": str(table.relative_to(root)),
        "archs": args.archs,
        "seed": args.seed,
        "batch": f"64 CIFAR-10 test images from shared/data/images/cifar10-sample.npz "
        f"(seed {batch_seeds[0]}; re-draw seed {batch_seeds[1]})",
        "workers": args.workers,
        "threads_per_worker": args.threads,
        "median_s_per_arch": (previous["median_s_per_arch"] if previous
                              else float(np.median(seconds))),
        "l2_norm_conv_count_tie_share": _conv_edge_tie_share([r["arch"] for r in rows]),
        "recomputed": (previous or {}).get("recomputed", []) + ([{
            "proxies": only, "gpsr_commit": gpsr_commit(),
            "median_s_per_arch": float(np.median(seconds))}] if only else []),
        "proxies": per_proxy,
        "rows": [
            # The shared table's own columns stay out: join on arch to compare.
            {"arch": r["arch"], "gpsr": v0, "gpsr_redraw": v1}
            for r, v0, v1 in zip(rows, values[0], values[1])
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(_markdown(report))
    print(_table(per_proxy))
    print(f"wrote {args.out.with_suffix('.md')} and .json")
    return 0


def _table(per_proxy: dict[str, dict]) -> str:
    lines = [
        "| proxy | tau(gpsr, logged) | tau(gpsr, gpsr re-draw) | tau(gpsr, val acc) "
        "| tau(logged, val acc) | identical | failures gpsr/logged |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, e in per_proxy.items():
        logged = "tau_gpsr_vs_logged" in e
        identical = ("yes" if e["identical"] else "no") if logged else "-"
        lines.append(
            f"| {name} | {_fmt(e.get('tau_gpsr_vs_logged')) if logged else 'not logged'} | "
            f"{_fmt(e['tau_gpsr_vs_redraw'])} | {_fmt(e['tau_gpsr_vs_val_accuracy'])} | "
            f"{_fmt(e.get('tau_logged_vs_val_accuracy'))} | {identical} | "
            f"{e['gpsr_failures']}/{e.get('logged_failures', '-')} |"
        )
    return "\n".join(lines) + "\n"


def _markdown(report: dict) -> str:
    p = report["proxies"]
    return (
        "# Live proxies vs NAS-Bench-Suite-Zero (NB201, CIFAR-10)\n\n"
        f"{report['archs']} architectures drawn with seed {report['seed']} from "
        f"`{report['table']}`; batch: {report['batch']}; {report['workers']} worker processes "
        f"x {report['threads_per_worker']} thread(s), median {report['median_s_per_arch']:.2f} "
        "s per architecture (all 16 proxies, fused). Generated by "
        "`benchmarks/proxy_agreement.py`; per-architecture values in `proxy-agreement.json`.\n\n"
        "*tau(gpsr, gpsr re-draw)* scores the same architectures again with other initial "
        "weights, another batch and another seed for zen's Gaussian draws: it is the agreement "
        "a second run of the *same* definition reaches, the ceiling for agreement with any one "
        "logged run.\n\n" + _table(p) + _recomputed(report) + _gaps(report)
    )


def _recomputed(report: dict) -> str:
    return "".join(
        f"\nThe {', '.join(r['proxies'])} columns were recomputed at gpsr commit "
        f"{r['gpsr_commit']} (`--only {','.join(r['proxies'])}`: same architectures, weights, "
        f"batches and seeds), median {r['median_s_per_arch']:.2f} s per architecture for "
        "them.\n" for r in report.get("recomputed", []))


def _gaps(report: dict) -> str:
    p = report["proxies"]
    tie = report["l2_norm_conv_count_tie_share"]

    data_dependent = ["nwot", "snip", "grad_norm", "fisher", "jacov", "epe_nas", "grasp"]
    gap = max(abs(p[n]["tau_gpsr_vs_logged"] - p[n]["tau_gpsr_vs_redraw"]) for n in data_dependent)

    def t(name: str, key: str = "tau_gpsr_vs_logged") -> str:
        return _fmt(p[name][key])

    return f"""
## Reading the table

**Identical.** params and flops are weight- and data-free and use torchstat's counting rules
(NASLib's tensorwatch `ModelStats`) on the same modules: they match the logged values exactly
on every architecture.

**Data-free, init-dependent: synflow {t("synflow")}, zen {t("zen")}, l2_norm {t("l2_norm")}.**
synflow and zen meet the 0.9 target. l2_norm does not, and cannot with other weight draws:
under PyTorch's default init, E||W||^2 = out_channels/3 whatever the kernel size, so an NB201
cell's expected l2_norm depends only on its number of conv edges. Within groups of equal conv
count both the logged and the live values are init noise (relative spread ~0.1%), so those
pairs are ordered at random; they are {tie:.1%} of the pairs, which caps tau near
{1 - tie:.2f} (measured {t("l2_norm")}; gpsr against its own re-draw
{t("l2_norm", "tau_gpsr_vs_redraw")}). Matching it would need NASLib's exact random stream.

**Data-dependent.** Every logged value is one NASLib run with its own initial weights and its
own batch: 64 *training* images with random-crop/flip augmentation, where the shared sample
has only CIFAR-10 *test* images, used without augmentation. None of the three can be
reproduced, so the gap to the logged values is compared with gpsr's re-draw tau:

* nwot {t("nwot")} (re-draw {t("nwot", "tau_gpsr_vs_redraw")}), snip {t("snip")}
  ({t("snip", "tau_gpsr_vs_redraw")}), grad_norm {t("grad_norm")}
  ({t("grad_norm", "tau_gpsr_vs_redraw")}), fisher {t("fisher")}
  ({t("fisher", "tau_gpsr_vs_redraw")}): as close to the logged run as to a re-run of
  gpsr; their rankings are dominated by the number of ReLU/conv units.
* jacov {t("jacov")} ({t("jacov", "tau_gpsr_vs_redraw")}) and epe_nas {t("epe_nas")}
  ({t("epe_nas", "tau_gpsr_vs_redraw")}): spectra and log|corr| of input-Jacobian
  correlations are sensitive to which images (and, for epe_nas, how many per class: ~6 in a
  batch of 64) are drawn, so two draws already disagree this much.
* grasp {t("grasp")} ({t("grasp", "tau_gpsr_vs_redraw")}): a sign-mixed Hessian-gradient
  product; noisy across draws.
* plain {t("plain")} ({t("plain", "tau_gpsr_vs_redraw")}): W . dL/dW is exactly 0 for every
  conv followed by batch-norm (the loss is invariant to its scale), so plain is the small
  residue of the classifier and the shortcut convs, and mostly noise; its tau against the
  logged run is that of two independent noisy draws.

In every data-dependent row the agreement with the logged values is within {gap:.2f} of
gpsr's agreement with itself (plain, which is noise, aside), and tau against validation
accuracy matches the logged proxy's (columns 4 and 5): the gaps are the runs' randomness, not
the definitions.
Only final NB-Suite-Zero values are compared (the table's columns are FINAL; the early
May-2022 JSON used a batch of 32, its nwot is about half).

zico, meco and swap have no released per-architecture values (SOURCES.md, "Not found"), so
only their re-draw stability and their tau against validation accuracy are reported.
"""


if __name__ == "__main__":
    sys.exit(main())
