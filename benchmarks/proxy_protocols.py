"""Kendall taus of proxies before and after a change of definition, on the same NB201 cells.

The old values are ``results/proxies/nb201-proxies.csv`` at git revision ``--before``; the new
ones are the rows recomputed so far by ``gpsr proxies-table ... --only <proxies>``: the
records of its journal (``nb201-proxies.csv.partial.jsonl``) while it runs, the whole table
once it has finished. Both are joined with the CIFAR-10 and CIFAR-100 accuracies as
``benchmarks/computed_nb201.py`` joins them; writes ``results/proxies/protocols.{md,json}``:

    python benchmarks/proxy_protocols.py --before 6e57bc4 --proxies swap,zico
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import tempfile
from pathlib import Path

from gpsr.data import join_accuracies, shared_dir
from gpsr.journal import read_journal
from gpsr.kernels.kendall import kendall_tau

TABLE = Path("results/proxies/nb201-proxies.csv")
JOURNAL = TABLE.with_name(TABLE.name + ".partial.jsonl")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(text.splitlines()))


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="git revision of the old table")
    parser.add_argument("--proxies", default="swap,zico")
    args = parser.parse_args()
    proxies = args.proxies.split(",")
    shared = shared_dir()
    if shared is None:
        raise SystemExit("shared data not found; set GPSR_SHARED")
    old = {r["arch"]: r for r in _rows(_git("show", f"{args.before}:{TABLE}"))}
    current = {r["arch"]: r for r in _rows(TABLE.read_text())}
    if JOURNAL.exists():
        config = json.loads(JOURNAL.read_text().splitlines()[0])["config"]
        fresh = {a: r["proxies"] for a, r in read_journal(JOURNAL, config, "arch").items()}
        source = f"{len(fresh)} rows of the recompute's journal, resumable ({JOURNAL.name})"
    else:
        fresh = {a: {p: float(current[a][p]) for p in proxies} for a in current}
        source = f"all {len(fresh)} rows of {TABLE}"
    cells = [a for a in old if a in fresh]
    nbsz = shared / "data" / "nas-bench-suite-zero"
    accuracies = {
        "NB201-CF10": nbsz / "extra" / "nb201-cifar10.final-zen-all15625.csv",
        "NB201-CF100": nbsz / "nb201-cifar100.csv",
    }
    taus: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        before = _write(Path(tmp) / "before.csv", [old[a] for a in cells])
        after = _write(
            Path(tmp) / "after.csv",
            [{**old[a], **{p: repr(float(fresh[a][p])) for p in proxies}} for a in cells],
        )
        for name, acc in accuracies.items():
            for label, table in (("before", before), ("after", after)):
                problem = join_accuracies(table, acc)
                for p in proxies:
                    tau = float(kendall_tau(problem.column(p), problem.accuracy))
                    taus.setdefault(p, {}).setdefault(name, {})[label] = tau
    commit = _git("rev-parse", "--short", "HEAD").strip()
    result = {"before": args.before, "commit": commit, "cells": len(cells), "source": source,
              "taus": taus}
    out = TABLE.parent
    (out / "protocols.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        "# Proxies before and after following their authors' protocols",
        "",
        f"`python benchmarks/proxy_protocols.py --before {args.before} --proxies "
        f"{args.proxies}` at gpsr {commit}: Kendall tau with the accuracies on the same "
        f"{len(cells)} NB201 cells (of the table's seeded sample, seed 0), old values "
        f"from `{TABLE}` at {args.before}, new ones from {source}.",
        "",
        "| proxy | CF10 before | CF10 after | CF100 before | CF100 after |",
        "|---|---|---|---|---|",
    ]
    for p in proxies:
        t = taus[p]
        lines.append(
            f"| {p} | {t['NB201-CF10']['before']:.3f} | {t['NB201-CF10']['after']:.3f} | "
            f"{t['NB201-CF100']['before']:.3f} | {t['NB201-CF100']['after']:.3f} |"
        )
    (out / "protocols.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
