"""What a user reads: resumed runs said as such, --verbose generations, score's header and the
seed it shares with gpsr.Metric, 80-column tables, --help for every option, --version, the
splits explained once, and one rule for the best single proxy."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

import gpsr
from gpsr.cli.app import app
from gpsr.cli.common import console
from gpsr.minibench import ProblemFigures
from gpsr.report import BEST_PROXY_RULE, SPLITS_NOTE, best_proxy
from gpsr.search import GENERATION_HEADER

SMALL = ["--population", "10", "--generations", "3", "--max-depth", "4", "--device", "cpu"]
NB201_ARCH = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+"
              "|skip_connect~0|none~1|nor_conv_1x1~2|")


@pytest.fixture()
def narrow(monkeypatch):
    """An 80-column terminal."""
    monkeypatch.setattr(console, "width", 80)


def flat(text: str) -> str:
    """``text`` with rich's line wrapping undone."""
    return " ".join(text.split())


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_a_finished_folder_is_shown_as_such_not_as_a_new_search(tmp_path, narrow):
    out = tmp_path / "run"
    first = invoke("run", *SMALL, "--out", out)
    assert first.exit_code == 0, first.output
    assert "already holds" not in first.stdout and "resumed" not in first.stdout
    again = invoke("run", *SMALL, "--out", out)
    assert again.exit_code == 0, again.output
    assert f"{out} already holds this finished synthesis" in flat(again.stdout)
    assert "(when they were searched)" in flat(again.stdout)
    # The same result, read back.
    expression = re.compile(r"^expression  (.*)$", re.M)
    assert expression.search(first.stdout)[1] == expression.search(again.stdout)[1]


def test_verbose_prints_one_line_per_generation(tmp_path):
    res = invoke("run", *SMALL, "--runs", "2", "--out", tmp_path / "v", "--verbose")
    assert res.exit_code == 0, res.output
    lines = res.stderr.splitlines()
    assert GENERATION_HEADER in lines
    rows = [line.split() for line in lines[lines.index(GENERATION_HEADER) + 1:]
            if re.match(r"^\s+\d+\s+\d+\s", line)]
    assert [(int(r[0]), int(r[1])) for r in rows] == [(k, g) for k in (0, 1) for g in range(4)]
    report = json.loads((tmp_path / "v" / "result.json").read_text())
    for row in rows:  # the logged fitness is the recorded history's
        entry = report["history"][int(row[0])]["generations"][int(row[1])]
        assert float(row[2]) == pytest.approx(entry["best_fitness"], abs=5e-5)
        assert float(row[3]) == pytest.approx(entry["mean_fitness"], abs=5e-5)
        assert int(row[4]) >= 1 and float(row[5]) >= 0


def test_run_and_evaluate_tables_fit_80_columns_and_explain_rows_once(tmp_path, narrow):
    res = invoke("run", *SMALL, "--out", tmp_path / "t")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert max(map(len, lines)) <= 80
    for name in ("MINI201-DIGITS-ROTATION", "MINIMICRO-DIGITS-ROTATION"):  # names not cut
        assert any(line.split()[:1] == [name] for line in lines), name
    assert flat(res.stdout).count(flat(SPLITS_NOTE)) == 1
    assert flat(BEST_PROXY_RULE) + ", chosen on the input rows." in flat(res.stdout)
    ev = invoke("evaluate", "--expr", "log(flops) * snip")
    assert ev.exit_code == 0, ev.output
    assert max(map(len, ev.stdout.splitlines())) <= 80
    assert flat(ev.stdout).count(flat(SPLITS_NOTE)) == 1


def test_score_has_a_header_and_gpsr_metric_gives_its_value_for_the_same_seed(tmp_path):
    rng = np.random.default_rng(0)
    images = tmp_path / "cifar10-tiny.npz"
    np.savez(images, images=rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8),
             labels=rng.integers(0, 10, 6))
    expr = "snip"
    res = invoke("score", "--metric", expr, "--space", "nb201", "--arch", NB201_ARCH,
                 "--images", images, "--batch-size", "4", "--seed", "3", "--device", "cpu")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    columns = [line.split() for line in lines].index(["score", "arch"])
    header = flat(" ".join(lines[:columns]))
    assert "higher predicts a better network" in header and "seed 3" in header
    (row,) = lines[columns + 1:]
    printed = float(row.split()[0])

    batch = gpsr.proxies.batch_from_npz(images, 4)
    metric = gpsr.Metric(expr, seed=3, device="cpu")
    value = metric(gpsr.spaces.build_network("nb201", NB201_ARCH, seed=3), batch)
    assert float(f"{value:.6g}") == printed
    assert metric.score_archs("nb201", [NB201_ARCH], batch) == [value]
    other = metric(gpsr.spaces.build_network("nb201", NB201_ARCH, seed=4), batch)
    assert other != value  # the seed reaches the weights


def _commands(group, path=()):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def test_help_describes_every_option_and_version_prints():
    root = typer.main.get_command(app)
    missing = [f"gpsr {' '.join(path)} {'/'.join(p.opts)}"
               for path, command in _commands(root) for p in command.params
               if getattr(p, "param_type_name", "") == "option" and not p.help]
    assert not missing, f"options without help: {missing}"
    missing_doc = [" ".join(path) for path, command in _commands(root) if not command.help]
    assert not missing_doc
    res = invoke("--version")
    assert res.exit_code == 0 and res.stdout.strip() == f"gpsr {gpsr.__version__}"


def test_one_best_proxy_rule_signed_tau_undefined_never_wins():
    assert best_proxy({"a": -0.6, "b": 0.2, "c": float("nan"), "d": None}) == "b"
    assert best_proxy({"a": 0.3, "b": 0.3}) == "a"
    figures = ProblemFigures("P", 10, 0, 0, 0, 0, 0, 0, {"fisher": -0.42, "swap": 0.39},
                             None, None)
    assert figures.best_proxy == ("swap", 0.39)  # bench report: the same rule
    with pytest.raises(gpsr.GpsrError):
        best_proxy({})


def test_bench_report_fits_80_columns_and_states_the_rule(narrow):
    shipped = sorted((Path(gpsr.__file__).parent / "shipped").glob("*.csv"))
    res = invoke("bench", "report", *shipped)
    assert res.exit_code == 0, res.output
    assert max(map(len, res.stdout.splitlines())) <= 80
    assert "…" not in res.stdout  # nothing cut
    assert flat(BEST_PROXY_RULE) + ", on all rows." in flat(res.stdout)
