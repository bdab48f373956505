"""Transfer options: terminal calibration, parsimony pressure, the worst-problem final choice,
and a calibrated metric scoring values the way the search saw them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import gpsr
from gpsr.calibration import Calibration
from gpsr.cli.app import app
from gpsr.data import FAILURE_SENTINEL, Problem, build_dataset
from gpsr.errors import GpsrError
from gpsr.fitness import Equation1, TauScorer
from gpsr.genetic import SearchConfig, choose, evolve
from gpsr.kernels.kendall import kendall_tau

PROXIES = ("flops", "snip", "synflow")


def make_problem(name: str, n: int, seed: int, scales=(1.0, 1.0, 1.0)) -> Problem:
    """Accuracy depends on the ranks of flops and synflow; ``scales`` moves their scales."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.1, 1.0, size=(n, 3))
    acc = 50 + 10 * base[:, 0] + 10 * base[:, 2] + rng.normal(scale=1.0, size=n)
    values = base * np.array(scales)
    return Problem(name, name.split("-")[0].lower(), "t", [f"a{i}" for i in range(n)], PROXIES,
                   values, acc)


# ---- calibration maps -------------------------------------------------------------------------
def test_quantile_map_keeps_each_proxys_ranking_and_lies_in_0_1():
    rng = np.random.default_rng(0)
    values = np.column_stack([rng.lognormal(sigma=5, size=300), np.round(rng.normal(size=300), 1)])
    values[:5, 0] = FAILURE_SENTINEL
    acc = rng.normal(size=300)
    fitted = Calibration.fit("quantile", values, ("a", "b"))
    out = fitted.apply(values, ("a", "b"))
    assert np.all((out > 0) & (out < 1))
    for j in range(2):
        assert kendall_tau(out[:, j], acc) == pytest.approx(kendall_tau(values[:, j], acc))
    assert np.all(out[:5, 0] == out[:, 0].min())  # sentinels: the bottom, tied
    # Mid-rank levels: the median of a uniform reference maps to about 1/2.
    assert np.median(out[:, 0]) == pytest.approx(0.5, abs=0.01)


def test_capped_quantile_map_still_separates_every_reference_value():
    x = np.sort(np.random.default_rng(1).lognormal(sigma=3, size=200))[:, None]
    out = Calibration.fit("quantile", x, ("p",), max_knots=7).apply(x, ("p",))[:, 0]
    assert np.all(np.diff(out) > 0)


def test_quantile_map_outside_the_reference_and_non_finite():
    fitted = Calibration.fit("quantile", np.arange(10.0)[:, None], ("p",))
    out = fitted.apply(np.array([[-np.inf], [-5.0], [4.5], [99.0], [np.inf], [np.nan]]), ("p",))
    lo, hi = 0.05, 0.95  # mid-rank levels of the lowest and highest of 10 distinct values
    assert out[:, 0].tolist()[:5] == pytest.approx([lo, lo, 0.5, hi, hi])
    assert np.isnan(out[5, 0])


def test_robust_map_centres_and_scales_the_reference():
    x = np.random.default_rng(2).normal(loc=7, scale=3, size=(1001, 1))
    out = Calibration.fit("robust", x, ("p",)).apply(x, ("p",))[:, 0]
    assert np.median(out) == pytest.approx(0.0, abs=1e-12)
    q25, q75 = np.percentile(out, [25, 75])
    assert q75 - q25 == pytest.approx(1.0)


def test_log_map_divides_the_scale_out():
    x = np.random.default_rng(3).lognormal(mean=2, sigma=2, size=(500, 1))
    a = Calibration.fit("log", x, ("p",)).apply(x, ("p",))[:, 0]
    b = Calibration.fit("log", 0.25 * x, ("p",)).apply(0.25 * x, ("p",))[:, 0]
    np.testing.assert_allclose(a, b, rtol=1e-12)
    m = np.median(x)
    assert a[0] == pytest.approx(np.log1p(x[0, 0] / m))
    neg = Calibration.fit("log", -x, ("p",)).apply(-x, ("p",))[:, 0]
    np.testing.assert_allclose(neg, -a)


def test_calibration_errors_are_one_line():
    with pytest.raises(GpsrError, match="unknown calibration 'zscore'"):
        Calibration.fit("zscore", np.ones((3, 1)), ("p",))
    with pytest.raises(GpsrError, match="proxy 'p' has no finite value"):
        Calibration.fit("quantile", np.full((3, 1), np.nan), ("p",))
    with pytest.raises(GpsrError, match="unknown calibration"):
        build_dataset([make_problem("NB201-A", 40, 0)], calibration="ranks")


# ---- calibrated datasets ---------------------------------------------------------------------
def test_quantile_calibration_makes_a_mixed_expression_blind_to_proxy_scales():
    """The same architectures with proxies on other scales: a raw sum ranks by the largest
    proxy, so its tau moves; on quantile terminals it computes the same thing."""
    same = make_problem("NB201-A", 300, 3)
    rescaled = make_problem("NB201-A", 300, 3, scales=(1e-6, 1.0, 1e6))  # same rows, split
    expr = gpsr.parse("flops + synflow")
    raw = [gpsr.evaluate(expr, build_dataset([p]))["all"][p.name] for p in (same, rescaled)]
    calibrated = [gpsr.evaluate(expr, build_dataset([p], calibration="quantile"))["all"][p.name]
                  for p in (same, rescaled)]
    assert abs(raw[0] - raw[1]) > 0.1
    assert calibrated[0] == pytest.approx(calibrated[1])
    assert calibrated[0] == pytest.approx(raw[0], abs=0.02)


def test_calibration_is_fitted_on_each_problems_input_rows():
    problems = [make_problem("NB201-A", 100, 4), make_problem("NB101-A", 80, 5, (1e3, 1, 1))]
    dataset = build_dataset(problems, calibration="quantile", split_seed=3)
    assert dataset.describe()["calibration"] == "quantile"
    assert "calibration" not in build_dataset(problems).describe()
    for prob, rows, calibrated in zip(problems, dataset.input_rows, dataset.problems):
        refit = Calibration.fit("quantile", prob.values[rows], PROXIES)
        assert dataset.calibrations[prob.name].maps == refit.maps
        np.testing.assert_array_equal(calibrated.values, refit.apply(prob.values, PROXIES))
        np.testing.assert_array_equal(prob.values, make_problem(  # the input is not modified
            prob.name, len(prob), 4 if prob.name == "NB201-A" else 5,
            (1, 1, 1) if prob.name == "NB201-A" else (1e3, 1, 1)).values)


# ---- parsimony and the final choice ----------------------------------------------------------
@pytest.mark.parametrize("kwargs,fragment", [
    ({"parsimony_coefficient": -0.1}, "parsimony_coefficient"),
    ({"final_choice": "mean"}, "final_choice 'mean'"),
])
def test_new_settings_are_validated(kwargs, fragment):
    with pytest.raises(GpsrError, match=fragment):
        SearchConfig(**kwargs)


def test_worst_choice_prefers_no_weak_problem():
    exprs = [gpsr.parse("flops"), gpsr.parse("snip"), gpsr.parse("synflow + snip")]
    taus = np.array([[0.9, 0.1], [0.5, 0.45], [0.5, 0.45]])
    eq1 = Equation1(2)
    eq1.observe(taus)
    assert choose(exprs, taus, eq1, "sum") == 0
    assert choose(exprs, taus, eq1, "worst") == 1  # tied with 2: the smaller tree


def test_parsimony_pressure_shrinks_trees():
    scorer = TauScorer([make_problem("NB201-A", 60, 6), make_problem("NB101-A", 60, 7)], PROXIES,
                       "cpu")
    base = SearchConfig(population_size=20, generations=4, max_depth=7, init_depth=(3, 6),
                        device="cpu")
    sizes = {}
    for c in (0.0, 1.0):
        config = SearchConfig(**{**base.to_dict(), "parsimony_coefficient": c})
        _, state = evolve(scorer, config, seed=0)
        sizes[c] = np.mean([gpsr.parse(e).size for e in state.population])
    assert sizes[1.0] < 0.7 * sizes[0.0]


# ---- a calibrated metric ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def calibrated_run(tmp_path_factory) -> tuple[Path, gpsr.Dataset]:
    problems = [make_problem("NB201-A", 80, 8), make_problem("NB101-A", 60, 9, (1e4, 1, 1e-3))]
    dataset = build_dataset(problems, calibration="quantile")
    out = tmp_path_factory.mktemp("calibrated") / "run"
    config = SearchConfig(population_size=10, generations=2, max_depth=4, init_depth=(2, 4),
                          device="cpu")
    gpsr.synthesize(dataset, config, runs=1, out=out)
    return out, dataset


def test_result_stores_the_maps_and_metric_scores_raw_values_as_the_search_did(calibrated_run):
    out, dataset = calibrated_run
    report = json.loads((out / "result.json").read_text())
    assert report["calibration"]["method"] == "quantile"
    assert set(report["calibration"]["maps"]) == {"NB201-A", "NB101-A"}
    metric = gpsr.Metric.from_result(out / "result.json", reference="nb101-a")
    assert metric.calibration is not None and metric.reference_space == "nb101"
    raw = make_problem("NB101-A", 60, 9, (1e4, 1, 1e-3))
    calibrated = dataset.problems[1]
    expected = metric.expression.evaluate({p: calibrated.column(p) for p in PROXIES})
    for i in (0, 17, 59):
        got = metric.score_values({p: raw.column(p)[i] for p in PROXIES})
        assert got == pytest.approx(expected[i], rel=1e-12)


def test_a_calibrated_metric_needs_a_reference(calibrated_run, tmp_path):
    out, _ = calibrated_run
    with pytest.raises(GpsrError, match="give a reference: a problem of the result"):
        gpsr.Metric.from_result(out / "result.json")
    with pytest.raises(GpsrError, match="neither a problem"):
        gpsr.Metric.from_result(out / "result.json", reference="NB999-X")
    table = tmp_path / "table.csv"
    table.write_text("arch,flops,snip,synflow\n" + "".join(
        f"a{i},{i},{2 * i},{3 * i}\n" for i in range(20)))
    metric = gpsr.Metric.from_result(out / "result.json", reference=table)
    assert set(metric.calibration.maps) == set(metric.proxies)
    assert metric.reference_space is None
    with pytest.raises(GpsrError, match="applies only to a calibrated"):
        gpsr.Metric.load("flops", reference=table)


def test_cli_run_evaluate_and_score_with_calibration(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name, n, seed, scales in (("nb201-a", 60, 10, (1, 1, 1)), ("nb101-a", 50, 11, (9, 1, 1))):
        p = make_problem(name.upper(), n, seed, scales)
        rows = [f"{a},{float(acc)!r}," + ",".join(repr(float(v)) for v in row)
                for a, acc, row in zip(p.archs, p.accuracy, p.values)]
        (data / f"{name}.csv").write_text("arch,val_accuracy,flops,snip,synflow\n"
                                          + "\n".join(rows) + "\n")
    runner = CliRunner()
    out = tmp_path / "run"
    res = runner.invoke(app, ["run", "--data", str(data), "--out", str(out), "--population",
                              "10", "--generations", "2", "--max-depth", "4", "--device", "cpu",
                              "--calibration", "quantile", "--final-choice", "worst",
                              "--parsimony", "0.01", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "result.json").read_text())
    assert report["config"]["final_choice"] == "worst"
    assert report["config"]["parsimony_coefficient"] == 0.01
    res = runner.invoke(app, ["evaluate", "--data", str(data), "--expr",
                              str(out / "result.json"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["taus"]["all"] == pytest.approx(report["taus"]["all"])
    res = runner.invoke(app, ["score", "--metric", str(out / "result.json"), "--space", "nb201",
                              "--arch", "x"])
    assert res.exit_code == 2 and "give a reference" in res.output
    res = runner.invoke(app, ["score", "--metric", str(out / "result.json"), "--space", "nb201",
                              "--reference", "NB101-A", "--arch", "x"])
    assert res.exit_code == 2 and "space nb101, not nb201" in res.output
    res = runner.invoke(app, ["run", "--data", str(data), "--calibration", "zscore",
                              "--out", str(tmp_path / "bad")])
    assert res.exit_code == 2 and "unknown calibration 'zscore'" in res.output
