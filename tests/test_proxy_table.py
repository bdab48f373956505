"""gpsr proxies-table: a small NB201 table is written, joined with accuracies, and extended."""

from __future__ import annotations

import csv

import pytest
from typer.testing import CliRunner

from gpsr.cli.app import app
from gpsr.data import join_accuracies, shared_dir
from gpsr.proxies import PROXIES
from gpsr.proxies.table import distinct_sample

SHARED = shared_dir()
needs_shared = pytest.mark.skipif(SHARED is None, reason="shared data not found; set GPSR_SHARED")


def test_distinct_sample_is_a_prefix_stable_permutation():
    small, large = distinct_sample("nb201", 20, 3), distinct_sample("nb201", 200, 3)
    assert small == large[:20]
    assert len(set(large)) == 200


@needs_shared
def test_table_builds_extends_and_joins(tmp_path):
    out = tmp_path / "nb201-cifar10-proxies.csv"
    args = ["proxies-table", "--space", "nb201", "--seed", "0", "--batch-size", "8",
            "--out", str(out)]
    runner = CliRunner()
    first = runner.invoke(app, [*args, "--archs", "1"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, [*args, "--archs", "1"])
    assert again.exit_code == 2  # exists: refused without --resume or --force
    more = runner.invoke(app, [*args, "--archs", "2", "--resume"])
    assert more.exit_code == 0, more.output
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["arch"] for r in rows] == distinct_sample("nb201", 2, 0)
    assert list(rows[0]) == ["arch", *PROXIES, "seconds_proxies"]
    accuracies = SHARED / "data" / "nas-bench-suite-zero" / "nb201-cifar100.csv"
    # A join needs at least 10 architectures to validate; two are below it.
    with pytest.raises(Exception, match="at least 10"):
        join_accuracies(out, accuracies)


@needs_shared
def test_only_recomputes_the_named_columns(tmp_path):
    out = tmp_path / "t.csv"
    args = ["proxies-table", "--space", "nb201", "--seed", "0", "--batch-size", "2",
            "--archs", "1", "--out", str(out)]
    runner = CliRunner()
    assert runner.invoke(app, args).exit_code == 0
    with out.open(newline="") as fh:
        before = list(csv.DictReader(fh))
    # Stand-in old values, as left by an earlier definition of zico.
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(before[0]))
        writer.writeheader()
        writer.writerows({**r, "zico": "1.0"} for r in before)
    unknown = runner.invoke(app, [*args, "--only", "zico,nope"])
    assert unknown.exit_code == 2 and "nope" in unknown.output
    redo = runner.invoke(app, [*args, "--only", "zico"])
    assert redo.exit_code == 0, redo.output
    with out.open(newline="") as fh:
        after = list(csv.DictReader(fh))
    assert after == before  # zico recomputed to the same value, every other column kept
    assert not (tmp_path / "t.csv.partial.jsonl").exists()
    missing = runner.invoke(app, [*args, "--only", "zico", "--out", str(tmp_path / "x.csv")])
    assert missing.exit_code == 2 and "existing table" in missing.output

