"""Seconds per NAS-Bench-201 network for all 16 live proxies, fused vs separate passes.

Each network (sampled with a fixed seed, freshly initialised) is scored on one batch of 64
real CIFAR-10 images with ``compute_proxies(fused=True)`` and ``fused=False``, alternating
the two ``--repeats`` times; a network's time per mode is the minimum over the repeats (as
``timeit`` does: other processes on a shared machine only ever add time), and the medians
over the networks are written to ``results/proxy-speed.json`` with every raw time and the
load average. On a loaded machine OpenMP threads that lose their core stall every parallel
region, so 2 threads can then be several times slower than 1.

Usage: python benchmarks/proxy_speed.py [--nets 10] [--threads 2] [--repeats 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from gpsr.proxies import PROXIES, compute_proxies, default_batch
from gpsr.spaces import build_network, sample_archs

ROOT = Path(__file__).resolve().parents[1]


def _timed(
    net: torch.nn.Module, batch: tuple, fused: bool
) -> tuple[dict[str, float], float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    # deterministic=False keeps the --threads the benchmark set (the default runs one thread).
    out = compute_proxies(net, batch, device="cpu", fused=fused, deterministic=False)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _max_rel_diff(a: dict[str, float], b: dict[str, float]) -> float:
    return max(abs(a[k] - b[k]) / max(abs(b[k]), 1e-12) for k in a)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "proxy-speed.json")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    batch = default_batch(64, seed=args.seed)
    if batch is None:
        print("proxy_speed: the shared CIFAR-10 sample was not found", file=sys.stderr)
        return 1
    archs = sample_archs("nb201", args.nets, args.seed)
    load_before = os.getloadavg()
    # One untimed run so that one-off start-up costs (oneDNN primitives, allocator) are not
    # charged to the first network.
    compute_proxies(build_network("nb201", archs[0]), batch, device="cpu")

    rows = []
    for i, arch in enumerate(archs):
        torch.manual_seed(args.seed + i)
        net = build_network("nb201", arch)
        times: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        values: dict[bool, dict[str, float]] = {}
        for r in range(args.repeats):
            for fused in (True, False) if (i + r) % 2 == 0 else (False, True):
                values[fused], wall, cpu = _timed(net, batch, fused)
                times[fused].append((wall, cpu))
        (fw, fc), (sw, sc) = min(times[True]), min(times[False])
        rows.append(
            {
                "arch": arch,
                "fused_wall_s": fw,
                "fused_cpu_s": fc,
                "separate_wall_s": sw,
                "separate_cpu_s": sc,
                "all_wall_s": {
                    "fused": [t[0] for t in times[True]],
                    "separate": [t[0] for t in times[False]],
                },
                "max_rel_diff_fused_vs_separate": _max_rel_diff(values[True], values[False]),
            }
        )
        print(
            f"{i:2d} fused {fw:6.2f}s  separate {sw:6.2f}s  ratio {sw / fw:4.2f}  {arch}",
            flush=True,
        )

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    summary = {
        "fused_s_per_net": med("fused_wall_s"),
        "separate_s_per_net": med("separate_wall_s"),
        "ratio_of_medians": med("separate_wall_s") / med("fused_wall_s"),
        "median_ratio": statistics.median(r["separate_wall_s"] / r["fused_wall_s"] for r in rows),
        "fused_cpu_s_per_net": med("fused_cpu_s"),
        "separate_cpu_s_per_net": med("separate_cpu_s"),
        "max_rel_diff_fused_vs_separate": max(r["max_rel_diff_fused_vs_separate"] for r in rows),
    }
    report = {
        "what": "seconds per NB201 network, all 16 proxies, batch 64 of real CIFAR-10 images",
        "proxies": PROXIES,
        "threads": args.threads,
        "nets": args.nets,
        "repeats": args.repeats,
        "seed": args.seed,
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "summary": summary,
        "networks": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"median s/net: fused {summary['fused_s_per_net']:.2f}, separate "
        f"{summary['separate_s_per_net']:.2f}; separate/fused = {summary['ratio_of_medians']:.2f}"
        f" (median per-net ratio {summary['median_ratio']:.2f}); threads {args.threads}, "
        f"load {load_before[0]:.1f} -> {report['load_average_after'][0]:.1f}"
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
