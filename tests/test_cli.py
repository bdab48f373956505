"""The command line, through typer's CliRunner: run, evaluate, bench-throughput, errors, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import gpsr
import gpsr.search
from gpsr.cli.app import app
from gpsr.fitness import TauScorer
from gpsr.genetic import evolve

PROXIES = ("flops", "snip", "synflow")
SMALL = ["--population", "10", "--generations", "3", "--max-depth", "4", "--device", "cpu"]


def write_problem(path: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.lognormal(size=(n, len(PROXIES)))
    values[:, 0] = np.round(values[:, 0], 1)
    acc = 60 + 10 * np.log(values[:, 0] + 1) * values[:, 2] + rng.normal(size=n)
    lines = ["arch,val_accuracy," + ",".join(PROXIES)]
    lines += [f"arch-{i},{float(acc[i])!r}," + ",".join(repr(float(v)) for v in values[i])
              for i in range(n)]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    write_problem(folder / "nb201-cifar10.csv", 80, 0)
    write_problem(folder / "nb101-cifar10.csv", 60, 1)
    return folder


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


def invoke(runner: CliRunner, *args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def finished(runner, data_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "result-folder"
    res = invoke(runner, "run", "--data", data_dir, "--out", out, *SMALL, "--runs", "2")
    assert res.exit_code == 0, res.output
    return out


# ---- run ------------------------------------------------------------------------------------
def test_run_writes_the_documented_result(finished, data_dir):
    report = json.loads((finished / "result.json").read_text())
    for key in ("config", "seeds", "expression", "taus", "runs_summary", "history", "data",
                "non_finite_policy", "wall_seconds"):
        assert key in report, key
    assert report["config"]["population_size"] == 10
    assert report["config"]["generations"] == 3
    assert report["config"]["max_depth"] == 4
    assert report["seeds"] == [0, 1]
    expr = report["expression"]
    for key in ("infix", "simplified", "latex"):
        assert isinstance(expr[key], str) and expr[key]
    gpsr.parse(expr["infix"], PROXIES)
    names = {"NB101-CF10", "NB201-CF10"}
    for split in ("input", "test", "all"):
        assert set(report["taus"][split]) == names
        for tau in report["taus"][split].values():
            assert tau is None or -1 <= tau <= 1
    table15 = report["runs_summary"]["table15"]
    assert set(table15) == names
    assert set(table15["NB201-CF10"]) == {"input", "test", "all"}
    assert set(table15["NB201-CF10"]["test"]) == {"mean", "std"}
    assert [h["seed"] for h in report["history"]] == [0, 1]
    assert [g["generation"] for g in report["history"][0]["generations"]] == [0, 1, 2, 3]
    assert report["data"]["sentinel_policy"] == "keep"
    assert report["data"]["proxies"] == list(PROXIES)
    assert isinstance(report["non_finite_policy"], str) and "-1e7" in report["non_finite_policy"]
    assert report["wall_seconds"] > 0
    assert (finished / "config.json").is_file()
    for k in (0, 1):
        record = json.loads((finished / "runs" / f"run-{k:03d}.json").read_text())
        assert record["done"] and record["seed"] == k


def test_run_json_to_stdout(runner, data_dir, tmp_path):
    res = invoke(runner, "run", "--data", data_dir, "--out", tmp_path / "r", *SMALL, "--json",
                 "--problems", "nb201-cf10")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report == json.loads((tmp_path / "r" / "result.json").read_text())
    assert list(report["taus"]["test"]) == ["NB201-CF10"]


def test_run_table_output(finished, runner, data_dir):
    # Running again into a finished folder reads every run back and reports again.
    res = invoke(runner, "run", "--data", data_dir, "--out", finished, *SMALL, "--runs", "2")
    assert res.exit_code == 0, res.output
    assert "expression" in res.stdout and "Kendall tau" in res.stdout
    report = json.loads((finished / "result.json").read_text())
    squeeze = str.maketrans("", "", " \n")  # rich may wrap a long expression
    assert report["expression"]["infix"].translate(squeeze) in res.stdout.translate(squeeze)


# ---- evaluate -------------------------------------------------------------------------------
def evaluate_json(runner, data_dir, expr: str) -> dict:
    res = invoke(runner, "evaluate", "--expr", expr, "--data", data_dir, "--json",
                 "--device", "cpu")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_evaluate_expression(runner, data_dir):
    out = evaluate_json(runner, data_dir, "log(flops) * synflow")
    assert out["expression"] == "log(flops) * synflow"
    assert set(out["taus"]) == {"input", "test", "all"}
    assert set(out["taus"]["all"]) == {"NB101-CF10", "NB201-CF10"}
    assert out["skipped"] == []
    # the same numbers as the library
    ds = gpsr.build_dataset(gpsr.load_problems(data_dir))
    assert out["taus"] == gpsr.evaluate("log(flops) * synflow", ds, "cpu")


def test_evaluate_proxy_name(runner, data_dir):
    out = evaluate_json(runner, data_dir, "snip")
    assert out["expression"] == "snip"
    assert all(isinstance(v, float) for v in out["taus"]["all"].values())


def test_evaluate_result_json(runner, data_dir, finished):
    report = json.loads((finished / "result.json").read_text())
    out = evaluate_json(runner, data_dir, str(finished / "result.json"))
    assert out["expression"] == report["expression"]["infix"]
    for split in ("input", "test", "all"):
        for name, tau in out["taus"][split].items():
            assert tau == pytest.approx(report["taus"][split][name], abs=1e-12)


def test_evaluate_table_output(runner, data_dir):
    res = invoke(runner, "evaluate", "--expr", "flops + snip", "--data", data_dir,
                 "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert "NB201-CF10" in res.stdout and "flops + snip" in res.stdout


# ---- bench-throughput -----------------------------------------------------------------------
def test_bench_throughput_json(runner, data_dir, tmp_path):
    save = tmp_path / "bench" / "b.json"
    res = invoke(runner, "bench-throughput", "--data", data_dir, "--json", "--repeats", "1",
                 "--population", "10", "--device", "cpu", "--save", save)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out == json.loads(save.read_text())
    assert out["population"] == 10 and out["repeats"] == 1
    assert out["gpsr"]["expressions_per_s"] > 0 and out["reference"]["expressions_per_s"] > 0
    assert out["gpsr"]["evaluate_median_seconds"] > 0 and out["gpsr"]["kendall_median_seconds"] > 0
    assert out["max_abs_tau_difference"] < 1e-9
    assert out["architectures"] == round(0.7 * 80) + round(0.7 * 60)


# ---- bad input ------------------------------------------------------------------------------
@pytest.fixture
def bad_cases(data_dir, tmp_path) -> list[list[str]]:
    not_a_run = tmp_path / "occupied"
    not_a_run.mkdir()
    (not_a_run / "keep.txt").write_text("mine")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    empty = tmp_path / "empty"
    empty.mkdir()
    d = str(data_dir)
    return [
        ["run", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o"), *SMALL],
        ["run", "--data", str(empty), "--out", str(tmp_path / "o"), *SMALL],
        ["run", "--data", d, "--problems", "NB999-CF10", "--out", str(tmp_path / "o"), *SMALL],
        ["run", "--data", d, "--out", str(tmp_path / "o1"), *SMALL[:-2], "--population", "7"],
        ["run", "--data", d, "--out", str(tmp_path / "o2"), *SMALL, "--runs", "0"],
        ["run", "--data", d, "--out", str(tmp_path / "o3"), *SMALL, "--p-crossover", "2"],
        ["run", "--data", d, "--out", str(tmp_path / "o4"), *SMALL, "--backend", "spark"],
        ["run", "--data", d, "--out", str(tmp_path / "o5"), *SMALL, "--sentinels", "purge"],
        ["run", "--data", d, "--out", str(tmp_path / "o6"), *SMALL, "--input-fraction", "0"],
        ["run", "--data", d, "--out", str(tmp_path / "o7"), *SMALL, "--jobs", "-1"],
        ["run", "--data", d, "--out", str(not_a_run), *SMALL],
        ["evaluate", "--data", d, "--expr", "foo(flops)"],
        ["evaluate", "--data", d, "--expr", "flops +"],
        ["evaluate", "--data", d, "--expr", "zico * flops"],
        ["evaluate", "--data", d, "--expr", str(broken)],
        ["evaluate", "--data", str(tmp_path / "missing"), "--expr", "flops"],
        ["bench-throughput", "--data", str(empty), "--json"],
    ]


def test_bad_input_exits_2_with_one_line(runner, bad_cases):
    for args in bad_cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.exit_code, res.output, res.exception)
        assert "Traceback" not in res.output
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1, (args, res.stderr)
        assert lines[0].startswith("error: "), (args, lines)
        assert res.stdout == ""


def test_changed_settings_refuse_an_existing_run_folder(runner, data_dir, finished):
    res = runner.invoke(app, ["run", "--data", str(data_dir), "--out", str(finished), *SMALL,
                              "--runs", "3"])
    assert res.exit_code == 2
    assert str(finished) in res.stderr and "other settings" in res.stderr


# ---- resume -------------------------------------------------------------------------------
def strip_timing(report: dict) -> dict:
    report = json.loads(json.dumps(report))
    report.pop("wall_seconds")
    report.pop("search_seconds")
    for run in report["runs_summary"]["per_run"]:
        run.pop("search_seconds")
    return report


def test_interrupted_run_resumes_to_the_uninterrupted_result(runner, data_dir, tmp_path,
                                                             monkeypatch):
    args = ["run", "--data", str(data_dir), *SMALL[:2], "--generations", "8", *SMALL[4:],
            "--runs", "2", "--seed", "5"]
    whole = tmp_path / "whole"
    res = invoke(runner, *args, "--out", whole)
    assert res.exit_code == 0, res.output

    real_evolve = gpsr.search.evolve

    def interrupted(scorer, config, seed, resume=None, on_generation=None):
        def callback(state):
            on_generation(state)  # the checkpoint is written first ...
            if seed == 6 and state.generation == 5:
                raise KeyboardInterrupt  # ... then the user presses ctrl-c

        return real_evolve(scorer, config, seed, resume, callback)

    cut = tmp_path / "cut"
    monkeypatch.setattr(gpsr.search, "evolve", interrupted)
    res = invoke(runner, *args, "--out", cut)
    assert res.exit_code == 130
    assert "run the same command again to resume" in res.stderr
    assert not (cut / "result.json").exists()
    checkpoint = json.loads((cut / "runs" / "run-001.json").read_text())
    assert checkpoint["done"] is False and checkpoint["state"]["generation"] == 5
    assert json.loads((cut / "runs" / "run-000.json").read_text())["done"] is True

    monkeypatch.setattr(gpsr.search, "evolve", real_evolve)
    res = invoke(runner, *args, "--out", cut)
    assert res.exit_code == 0, res.output
    resumed = json.loads((cut / "result.json").read_text())
    assert json.loads((cut / "runs" / "run-001.json").read_text())["resumed"] is True
    uninterrupted = json.loads((whole / "result.json").read_text())
    assert strip_timing(resumed) == strip_timing(uninterrupted)


def test_resume_from_a_truncated_checkpoint(runner, data_dir, tmp_path):
    """A run file cut back to an earlier generation's checkpoint continues to the same end."""
    args = ["run", "--data", str(data_dir), *SMALL[:2], "--generations", "6", *SMALL[4:],
            "--runs", "2", "--out", str(tmp_path / "r")]
    res = invoke(runner, *args)
    assert res.exit_code == 0, res.output
    before = json.loads((tmp_path / "r" / "result.json").read_text())

    # Rebuild the generation-2 checkpoint of run 1 with the library, then put it in place.
    ds = gpsr.build_dataset(gpsr.load_problems([data_dir]))
    cfg = gpsr.SearchConfig(population_size=10, generations=6, max_depth=4, init_depth=(2, 4),
                            device="cpu")
    saved = {}
    scorer = TauScorer(ds.part("input"), ds.proxies, "cpu")
    evolve(scorer, cfg, 1, on_generation=lambda s: saved.setdefault(
        s.generation, json.loads(json.dumps(s.to_dict()))))
    run_file = tmp_path / "r" / "runs" / "run-001.json"
    run_file.write_text(json.dumps({"done": False, "state": saved[2]}))
    (tmp_path / "r" / "result.json").unlink()

    res = invoke(runner, *args)
    assert res.exit_code == 0, res.output
    after = json.loads((tmp_path / "r" / "result.json").read_text())
    assert json.loads(run_file.read_text())["resumed"] is True
    assert strip_timing(after) == strip_timing(before)


def test_a_folder_from_before_newer_search_options_still_resumes(runner, data_dir, tmp_path):
    """Options added to SearchConfig later default to the old behaviour, so a folder whose
    config.json lacks them is the same synthesis; a genuinely different value still refuses."""
    args = ["run", "--data", str(data_dir), *SMALL, "--out", str(tmp_path / "r")]
    assert invoke(runner, *args).exit_code == 0
    spec = tmp_path / "r" / "config.json"
    saved = json.loads(spec.read_text())
    for key in ("survival", "fitness", "fitness_weights", "parsimony_coefficient"):
        del saved["config"][key]
    spec.write_text(json.dumps(saved))
    res = invoke(runner, *args)
    assert res.exit_code == 0, res.output
    saved["config"]["survival"] = "generational"
    spec.write_text(json.dumps(saved))
    res = invoke(runner, *args)
    assert res.exit_code == 2 and "other settings" in res.output
