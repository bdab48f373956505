"""Agreement of gpsr's live proxies with the values NAS-Bench-Suite-Zero logged for NB201.

300 architectures are drawn with a fixed seed from ``nb201-cifar10.csv`` (the 9,445 cells with
final NB-Suite-Zero values, see its SOURCES.md). Each is built with ``gpsr.spaces`` (fresh
PyTorch default initialisation, seeded per architecture) and scored with all 16 proxies on one
batch of 64 real CIFAR-10 images (the shared test-split sample). Per proxy, Kendall's tau
(scipy) between gpsr's value and the logged one is reported, with both proxies' tau against
the logged validation accuracy, exact-match checks for params/flops and failure counts.
Writes ``results/proxy-agreement.md`` and ``.json``.

Usage: python benchmarks/proxy_agreement.py [--archs 300] [--seed 0] [--workers 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

ROOT = Path(__file__).resolve().parents[1]
FAILURE = -1e8
#: What differs between the logged values and these, per proxy, for the report.
NOTES = {
    "params": "same count (torchstat rules on the same modules): must be identical",
    "flops": "same count (torchstat rules on the same modules): must be identical",
    "l2_norm": "depends only on the initial weights: same init distribution, other draws",
    "synflow": "depends only on |initial weights| and the input shape: other draws",
    "zen": "own Gaussian weights and inputs: other draws of the same distributions",
    "nwot": "images differ (test sample, no augmentation vs augmented train batch)",
    "jacov": "images and initial weights differ; a ratio of near-zero eigenvalues",
    "epe_nas": "images, labels per class and weights differ; sums log|corr| per class",
    "snip": "one cross-entropy gradient: other images, labels and weights",
    "grad_norm": "one cross-entropy gradient: other images, labels and weights",
    "fisher": "squared activation-gradient products: other images, labels and weights",
    "grasp": "Hessian-gradient product, sign-mixed and noisy across draws",
    "plain": "signed W.g, near zero for BN-scaled convs: dominated by noise",
}


#: Why the data-dependent proxies cannot agree exactly; appended to the markdown report.
GAPS = """## Why the data-dependent proxies differ

Every logged value comes from one NASLib run with its own random initial weights and its own
minibatch; the values here use other draws of the same initialisation and other images:

* **Images.** NB-Suite-Zero drew a batch of 64 from the CIFAR-10 *training* split with
  random-crop and flip augmentation (NASLib's train loader); the shared sample holds only
  *test* images, used without augmentation. Every proxy that reads data sees other pixels
  and other labels.
* **Weights.** Both sides use PyTorch's default initialisation, but different draws; for
  NB201 the per-architecture spread of a proxy across draws is what limits tau, not the
  definitions. params and flops do not depend on either, and match exactly.
* **Early vs final.** Only the final release's values are compared (the table's columns are
  FINAL, see SOURCES.md); the early May-2022 JSON used a batch of 32 (its nwot is about half).
"""


def _worker_init(threads: int, batch_seed: int) -> None:
    import torch

    from gpsr.proxies import default_batch

    torch.set_num_threads(threads)
    global _BATCH
    _BATCH = default_batch(64, seed=batch_seed)


def _score(job: tuple[int, str, int]) -> tuple[int, dict[str, float], float]:
    import torch

    from gpsr.proxies import compute_proxies
    from gpsr.spaces import build_network

    index, arch, seed = job
    torch.manual_seed(seed)
    net = build_network("nb201", arch)
    start = time.perf_counter()
    values = compute_proxies(net, _BATCH, device="cpu")
    return index, values, time.perf_counter() - start


def _tau(a: np.ndarray, b: np.ndarray) -> float:
    tau = kendalltau(a, b).statistic
    return float(tau) if np.isfinite(tau) else float("nan")


def _fmt(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, choices=(1, 2))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "proxy-agreement")
    args = parser.parse_args(argv)

    from gpsr.data import shared_dir
    from gpsr.proxies import PROXIES

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
    jobs = [(i, row["arch"], args.seed * 100_000 + i) for i, row in enumerate(rows)]

    values: list[dict[str, float] | None] = [None] * len(jobs)
    seconds = [0.0] * len(jobs)
    start = time.perf_counter()
    with ProcessPoolExecutor(
        args.workers, initializer=_worker_init, initargs=(args.threads, args.seed)
    ) as pool:
        for done, (i, vals, secs) in enumerate(pool.map(_score, jobs, chunksize=4), start=1):
            values[i], seconds[i] = vals, secs
            if done % 25 == 0:
                print(f"{done}/{len(jobs)} archs, {time.perf_counter() - start:.0f}s", flush=True)

    acc = np.array([float(r["val_accuracy"]) for r in rows])
    per_proxy = {}
    for name in PROXIES:
        ours = np.array([v[name] for v in values])
        entry = {
            "gpsr_failures": int(np.sum(ours == FAILURE)),
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
        "batch": "64 CIFAR-10 test images from shared/data/images/cifar10-sample.npz, seed "
        f"{args.seed}",
        "workers": args.workers,
        "threads_per_worker": args.threads,
        "median_s_per_arch": float(np.median(seconds)),
        "proxies": per_proxy,
        "rows": [
            {"arch": r["arch"], "val_accuracy": float(r["val_accuracy"]), "gpsr": v}
            for r, v in zip(rows, values)
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
        "| proxy | tau(gpsr, logged) | tau(gpsr, val acc) | tau(logged, val acc) | identical "
        "| failures gpsr/logged | what differs |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, e in per_proxy.items():
        if "tau_gpsr_vs_logged" in e:
            lines.append(
                f"| {name} | {_fmt(e['tau_gpsr_vs_logged'])} | "
                f"{_fmt(e['tau_gpsr_vs_val_accuracy'])} | {_fmt(e['tau_logged_vs_val_accuracy'])}"
                f" | {'yes' if e['identical'] else 'no'} | {e['gpsr_failures']}/"
                f"{e['logged_failures']} | {NOTES.get(name, '')} |"
            )
        else:
            lines.append(
                f"| {name} | not logged | {_fmt(e['tau_gpsr_vs_val_accuracy'])} | - | - | "
                f"{e['gpsr_failures']}/- | no released per-arch values (SOURCES.md) |"
            )
    return "\n".join(lines) + "\n"


def _markdown(report: dict) -> str:
    return (
        "# Live proxies vs NAS-Bench-Suite-Zero (NB201, CIFAR-10)\n\n"
        f"{report['archs']} architectures drawn with seed {report['seed']} from "
        f"`{report['table']}`; batch: {report['batch']}; {report['workers']} worker processes "
        f"x {report['threads_per_worker']} thread(s), median {report['median_s_per_arch']:.2f} "
        "s per architecture (all 16 proxies, fused). Generated by "
        "`benchmarks/proxy_agreement.py`; per-architecture values in `proxy-agreement.json`."
        "\n\n" + _table(report["proxies"]) + "\n" + GAPS
    )


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
