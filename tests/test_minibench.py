"""gpsr's mini benchmark: the shipped problems, and ``gpsr bench build`` end to end.

The builds here use the smallest space and task settings (a handful of mini201 cells, one
epoch, one worker) so the file runs in well under a minute.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gpsr.cli.app import app
from gpsr.data import load_problems
from gpsr.minibench import (
    RECIPE_VERSION,
    SHIPPED_DIR,
    TIME_COLUMNS,
    figures,
    partial_path,
    sample,
    shipped_problems,
)
from gpsr.proxies import PROXIES

runner = CliRunner()
SHIPPED = sorted(SHIPPED_DIR.glob("*.csv"))


def _build(out: Path, *extra: str, archs: int = 3) -> object:
    return runner.invoke(app, ["bench", "build", "--space", "mini201", "--task", "digits-class",
                               "--archs", str(archs), "--epochs", "1", "--seed", "0",
                               "--out", str(out), *extra])


def _trained(result: object) -> int:
    # The CLI reports "<n> architectures, <k> trained in ..."
    return int(result.output.split(" trained")[0].rsplit(" ", 1)[1])


# ---- the shipped benchmark ---------------------------------------------------
def test_shipped_problems_load_with_promised_size_and_columns() -> None:
    assert len(SHIPPED) >= 3
    spaces = {path.stem.split("-")[0] for path in SHIPPED}
    assert len(spaces) >= 2
    for path in SHIPPED:
        with path.open(newline="") as fh:
            header = next(csv.reader(fh))
        assert header == ["arch", "val_accuracy", *PROXIES, *TIME_COLUMNS]
    loaded = load_problems(SHIPPED_DIR)
    assert len(loaded) == len(SHIPPED)
    for problem in shipped_problems():
        assert len(problem) >= 200
        assert problem.proxies == tuple(PROXIES)
        assert np.ptp(problem.accuracy) > 10  # a spread of scores, not a constant
        # Not trivial: no single proxy ranks the architectures almost perfectly.
        assert all(abs(f) < 0.9 for f in figures(problem).proxy_taus.values() if f == f)


def test_shipped_readme_lists_every_problem() -> None:
    readme = (SHIPPED_DIR / "README.md").read_text()
    for path in SHIPPED:
        assert path.name in readme


# ---- gpsr bench build --------------------------------------------------------
@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished build of three architectures."""
    out = tmp_path_factory.mktemp("built") / "mini201-digits-class.csv"
    result = _build(out)
    assert result.exit_code == 0, result.output
    assert _trained(result) == 3
    return out


def test_build_writes_the_csv_layout(built: Path) -> None:
    with built.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["arch"] for r in rows] == sample("mini201", 3, 0)
    assert list(rows[0]) == ["arch", "val_accuracy", *PROXIES, *TIME_COLUMNS]
    assert all(0 <= float(r["val_accuracy"]) <= 100 for r in rows)
    assert not partial_path(built).exists()


def test_resume_extends_a_finished_build(built: Path, tmp_path: Path) -> None:
    out = tmp_path / built.name
    shutil.copy(built, out)
    first = out.read_text().splitlines()
    result = _build(out, "--resume", archs=5)
    assert result.exit_code == 0, result.output
    assert _trained(result) == 2
    rows = out.read_text().splitlines()
    assert rows[: len(first)] == first and len(rows) == 6


def test_resume_after_an_interruption(built: Path, tmp_path: Path) -> None:
    # An interrupted build leaves its partial file, possibly with a torn last line.
    with built.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    config = {"recipe": RECIPE_VERSION, "space": "mini201", "task": "digits-class",
              "epochs": 1, "seed": 0, "train_seed": 0, "proxies": list(PROXIES)}
    lines = [json.dumps({"config": config})]
    for i, row in enumerate(rows[:2]):
        lines.append(json.dumps({
            "index": i, "arch": row["arch"], "val_accuracy": float(row["val_accuracy"]),
            "proxies": {p: float(row[p]) for p in PROXIES},
            **{c: float(row[c]) for c in TIME_COLUMNS},
        }))
    out = tmp_path / built.name
    partial_path(out).write_text("\n".join(lines) + '\n{"index": 2, "arch": "|nor_')
    result = _build(out, "--resume")
    assert result.exit_code == 0, result.output
    assert _trained(result) == 1
    assert not partial_path(out).exists()

    # Training is seeded per architecture: the resumed file equals the uninterrupted one,
    # except for the wall-clock columns.
    def scores(path: Path) -> list[list[str]]:
        return [line.split(",")[: -len(TIME_COLUMNS)] for line in path.read_text().splitlines()]

    assert scores(out) == scores(built)


def test_resume_refuses_another_configuration(built: Path, tmp_path: Path) -> None:
    out = tmp_path / built.name
    config = {"recipe": RECIPE_VERSION, "space": "mini201", "task": "digits-class",
              "epochs": 2, "seed": 0, "train_seed": 0, "proxies": list(PROXIES)}
    partial_path(out).write_text(json.dumps({"config": config}) + "\n")
    result = _build(out, "--resume")
    assert result.exit_code == 2
    assert "epochs=2" in result.output


def test_reproxy_recomputes_the_same_proxies(built: Path, tmp_path: Path) -> None:
    out = tmp_path / built.name
    shutil.copy(built, out)
    result = runner.invoke(app, ["bench", "reproxy", str(out), "--seed", "0"])
    assert result.exit_code == 0, result.output
    # Same proxy code, same seeds: only the proxies' wall-clock column may change.
    keep = len(TIME_COLUMNS)
    assert [r.split(",")[:-keep] for r in out.read_text().splitlines()] == \
        [r.split(",")[:-keep] for r in built.read_text().splitlines()]
    wrong_seed = runner.invoke(app, ["bench", "reproxy", str(out), "--seed", "1"])
    assert wrong_seed.exit_code == 2
    assert "another space or --seed" in wrong_seed.output


@pytest.mark.parametrize(
    ("options", "flags", "message"),
    [
        ({"--space": "nb999"}, [], "unknown space"),
        ({"--task": "digits-colour"}, [], "unknown task"),
        ({"--archs": "0"}, [], "--archs must be"),
        ({"--archs": "20000"}, [], "--archs must be"),
        ({"--epochs": "0"}, [], "--epochs must be"),
        ({"--epochs": "1000"}, [], "--epochs must be"),
        ({}, ["--resume", "--force"], "exclude each other"),
        ({"--jobs": "0"}, [], "--jobs must be"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, options: dict[str, str], flags: list[str], message: str
) -> None:
    argv = {"--space": "mini201", "--task": "digits-class", "--archs": "3", "--epochs": "1",
            "--out": str(tmp_path / "mini201-digits-class.csv")} | options
    result = runner.invoke(
        app, ["bench", "build", *(item for pair in argv.items() for item in pair), *flags]
    )
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert not any(tmp_path.iterdir())


def test_existing_output_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "mini201-digits-class.csv"
    out.write_text("arch,val_accuracy\n")
    result = _build(out)
    assert result.exit_code == 2
    assert "exists (use --resume or --force)" in result.output
    assert out.read_text() == "arch,val_accuracy\n"
