"""Every case of the bad-input battery (benchmarks/bad_inputs.py) must be handled cleanly:
a one-line error naming the culprit (exit 2), or a stated note, never a traceback."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import gpsr
from gpsr.cli.app import app

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bad_inputs.py"
_spec = importlib.util.spec_from_file_location("bad_inputs", _PATH)
battery = importlib.util.module_from_spec(_spec)
sys.modules["bad_inputs"] = battery  # dataclasses resolve their module by name
_spec.loader.exec_module(battery)


def test_the_battery_is_large_and_covers_every_command():
    assert len(battery.CASES) >= 300
    assert len({c.id for c in battery.CASES}) == len(battery.CASES)
    commands = {c.command for c in battery.CASES}
    for command in ("run", "evaluate", "bench-throughput", "score", "proxies", "proxies-table",
                    "bench build", "bench reproxy", "bench report", "search", "train", "report",
                    "compare", "api"):
        assert command in commands, command


@pytest.mark.parametrize("case", battery.CASES, ids=lambda c: c.id)
def test_bad_input_is_handled_cleanly(case, tmp_path):
    reason = battery.skip_reason(case)
    if reason:
        pytest.skip(reason)
    ok, what = battery.judge(case, tmp_path)
    assert ok, what


# ---- what the battery's pass/fail cannot show on its own ----------------------------------
def test_corrected_command_runs_after_a_refused_one(tmp_path):
    """A refused run leaves no folder behind, so the corrected command just works."""
    battery.data_folder(tmp_path / "data")
    args = battery.fill(battery.RUN, tmp_path)
    bad = CliRunner().invoke(app, [*args, "--device", "tpu"])
    assert bad.exit_code == 2 and not (tmp_path / "out").exists()
    good = CliRunner().invoke(app, args)
    assert good.exit_code == 0, good.output


def test_accuracies_join_counts_the_rows_left_out(tmp_path):
    (tmp_path / "t.csv").write_text(battery.table_text(60))
    (tmp_path / "nb201-cifar10.csv").write_text(battery.csv_text(40))
    res = CliRunner().invoke(app, ["run", "--data", str(tmp_path / "t.csv"), "--accuracies",
                                   str(tmp_path / "nb201-cifar10.csv"), "--out",
                                   str(tmp_path / "out"), *battery.SMALL])
    assert res.exit_code == 0, res.output
    notes = json.loads((tmp_path / "out" / "result.json").read_text())["data"]["notes"]
    assert any("left out 20 architectures" in n and "40 kept" in n for n in notes), notes


class _Recorder(gpsr.Executor):
    """Made-up records for whatever it is asked to compute, and the list of what that was."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def map(self, fn, items):
        from gpsr.proxies import PROXIES

        for i, job in enumerate(items):
            self.asked.append(job.arch)
            yield i, {"arch": job.arch, "proxies": {p: -1.0 for p in PROXIES},
                      "seconds_proxies": 0.0}

    def describe(self) -> dict:
        return {"backend": "recorder"}


def test_repair_drops_only_the_corrupt_journal_record(tmp_path):
    from gpsr.proxies.table import compute_table, distinct_sample

    battery.corrupt_line(2, b'{"arch": "x", "pro')(tmp_path / ".made")
    journal = tmp_path / "t.csv.partial.jsonl"
    kept = json.loads(journal.read_bytes().splitlines()[2])
    args = battery.fill((*battery.TABLE[:3], "--archs", "3", *battery.TABLE[5:], "--out",
                         "{tmp}/t.csv", "--resume"), tmp_path)
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2 and "t.csv.partial.jsonl:2" in refused.stderr
    assert "--repair" in refused.stderr

    recorder = _Recorder()
    out = compute_table("tnb101-micro", 3, tmp_path / "t.csv", recorder,
                        images=str(tmp_path / "img.npz"), batch_size=4, resume=True, repair=True)
    first, second, third = distinct_sample("tnb101-micro", 3, 0)
    assert kept["arch"] == second
    assert recorder.asked == [first, third]  # the corrupt record is redone, the good one kept
    problem = gpsr.data.read_csv_records(out)
    assert [r["arch"] for r in problem] == [first, second, third]
    assert float(problem[1]["synflow"]) == kept["proxies"]["synflow"] != -1.0


def test_a_deleted_corrupt_checkpoint_restarts_only_that_run(tmp_path):
    battery.data_folder(tmp_path / "data")
    battery.finished_run("runs/run-001.json")(tmp_path / ".made")
    args = [*battery.fill(battery.RUN, tmp_path), "--runs", "2"]
    run0 = (tmp_path / "out" / "runs" / "run-000.json").read_text()
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2 and "run-001.json" in refused.stderr
    (tmp_path / "out" / "runs" / "run-001.json").unlink()
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "runs" / "run-000.json").read_text() == run0


def test_depth_limit_is_documented_and_trees_at_it_export():
    deep = battery._chain(gpsr.expressions.MAX_DEPTH)
    text = deep.infix()
    assert gpsr.parse(text) == deep
    assert deep.to_latex() and deep.to_sympy() is not None
    assert deep.evaluate({"snip": battery.np.ones(2)}).shape == (2,)
    with pytest.raises(gpsr.GpsrError, match="depth"):
        gpsr.parse("neg(" + text + ")")
