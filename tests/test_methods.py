"""Baseline combiners and SR variants on problems whose answer is known."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from gpsr.cli.app import app
from gpsr.data import Problem, build_dataset
from gpsr.errors import GpsrError
from gpsr.fitness import TauScorer, WeightedTaus, make_fitness
from gpsr.genetic import SearchConfig, evolve
from gpsr.methods import (
    METHODS,
    RankAggregationRule,
    clean,
    compare,
    leave_one_out_splits,
    make_method,
    mean_taus,
)

#: Depth 1 allowed, so that ``a + b`` itself is a tree the search can meet early.
SMALL_SR = SearchConfig(population_size=30, generations=8, min_depth=1, init_depth=(1, 3))
#: A short Bayesian optimization: each step refits a Gaussian process.
SHORT_BO = {"initial": 6, "iterations": 8, "candidates": 300}


def problem(name: str, accuracy_of, n: int = 240, seed: int = 0, scale: float = 1.0) -> Problem:
    """Proxies a, b (informative) and noise; ``accuracy_of(a, b)`` the accuracy."""
    rng = np.random.default_rng(seed)
    a, b, noise = rng.uniform(1, 10, n) * scale, rng.uniform(1, 10, n), rng.normal(0, 1, n)
    values = np.column_stack([a, b, noise])
    return Problem(name, "toy", name.lower(), [f"x{i}" for i in range(n)], ("a", "b", "noise"),
                   values, accuracy_of(a, b))


def equals_a(seed: int = 0) -> list[Problem]:
    return [problem(f"A{k}", lambda a, b: a, seed=seed + k, scale=1 + k) for k in range(3)]


def sum_ab(seed: int = 0) -> list[Problem]:
    return [problem(f"S{k}", lambda a, b: a + b, seed=seed + k) for k in range(3)]


@pytest.mark.parametrize("name", ["best-single", "az-nas", "up-nas", "robot", "forest"])
def test_accuracy_equal_to_one_proxy_is_found(name):
    dataset = build_dataset(equals_a())
    rule = make_method(name, **(SHORT_BO if name == "robot" else {})).fit(dataset)
    taus = rule.taus(dataset)["test"]
    assert min(taus.values()) > 0.95, (name, taus, rule.description)


def test_best_single_and_rank_aggregation_pick_the_proxy_itself():
    dataset = build_dataset(equals_a())
    assert make_method("best-single").fit(dataset).expression == "a"
    rule = make_method("az-nas").fit(dataset)
    assert rule.proxies == ("a",)
    assert set(rule.taus(dataset)["all"].values()) == {1.0}


def test_a_negated_proxy_is_oriented():
    dataset = build_dataset([problem(f"N{k}", lambda a, b: -a, seed=k) for k in range(2)])
    assert make_method("best-single").fit(dataset).expression == "neg(a)"
    rule = make_method("az-nas").fit(dataset)
    assert rule.signs.tolist() == [-1.0] and set(rule.taus(dataset)["all"].values()) == {1.0}


@pytest.mark.parametrize("name,settings", [("up-nas", {"log": False, "alpha": 1e-6}),
                                           ("robot", {"log": False, **SHORT_BO}),
                                           ("forest", {})])
def test_a_fixed_sum_of_two_proxies_is_learned(name, settings):
    dataset = build_dataset(sum_ab())
    single = max(make_method("best-single").fit(dataset).taus(dataset)["test"].values())
    taus = make_method(name, **settings).fit(dataset).taus(dataset)["test"]
    assert min(taus.values()) > max(0.9, single), (name, taus, single)


def test_up_nas_recovers_the_weights_of_the_sum():
    dataset = build_dataset(sum_ab())
    rule = make_method("up-nas", log=False, alpha=1e-9).fit(dataset)
    # z(a + b) = (std_a z_a + std_b z_b) / std_(a+b), and a, b are both uniform on [1, 10].
    assert rule.weights[0] / rule.weights[1] == pytest.approx(1.0, rel=0.1)
    assert abs(rule.weights[2]) < 0.01


@pytest.mark.parametrize("name", ["sr", "eznas", "auto-prox", "mean-tau"])
def test_sr_variants_find_a_sum(name):
    dataset = build_dataset(sum_ab())
    rule = make_method(name, config=SMALL_SR, runs=2).fit(dataset)
    assert rule.expression is not None
    assert min(rule.taus(dataset)["test"].values()) > 0.97, (name, rule.expression)


def test_rank_aggregation_is_azs_log_rank_sum():
    values = np.array([[1.0, 30.0], [2.0, 10.0], [3.0, 20.0], [-1e8, np.nan]])
    rule = RankAggregationRule(["a", "b"], [1.0, -1.0])
    # a: ranks 2, 3, 4, 1 (the sentinel last); -b: ranks 2, 4, 3, 1 (NaN last though negated).
    expected = np.log(np.array([2, 3, 4, 1]) / 4) + np.log(np.array([2, 4, 3, 1]) / 4)
    np.testing.assert_allclose(rule.score(values), expected)


def test_clean_puts_failures_at_the_column_minimum():
    values = np.array([[1.0, np.nan], [-1e8, np.inf], [3.0, np.nan]])
    np.testing.assert_array_equal(clean(values), [[1.0, 0.0], [1.0, 0.0], [3.0, 0.0]])


def test_weighted_fitness():
    taus = np.array([[0.5, np.nan], [0.1, 0.4]])
    np.testing.assert_allclose(WeightedTaus([0.25, 0.75]).score(taus), [0.125, 0.325])
    np.testing.assert_allclose(make_fitness("mean", 2).score(taus), [0.25, 0.25])
    with pytest.raises(GpsrError, match="one weight per problem"):
        make_fitness("weighted", 3, (1.0, 2.0))
    with pytest.raises(GpsrError, match="survival"):
        SearchConfig(survival="steady")
    with pytest.raises(GpsrError, match="fitness"):
        SearchConfig(fitness="median")


def test_equal_weights_search_like_the_mean():
    problems = build_dataset(sum_ab()).part("input")
    scorer = TauScorer(problems, ("a", "b", "noise"), "cpu")
    mean, _ = evolve(scorer, SearchConfig(population_size=20, generations=4, fitness="mean"), 3)
    weighted, _ = evolve(scorer, SearchConfig(population_size=20, generations=4,
                                              fitness="weighted",
                                              fitness_weights=(1 / 3, 1 / 3, 1 / 3)), 3)
    assert mean.infix() == weighted.infix()


def _best_by_generation(survival: str) -> list[float]:
    problems = build_dataset([problem(f"R{k}", lambda a, b: a * b + 30 * np.sin(a), seed=k)
                              for k in range(2)]).part("input")
    scorer = TauScorer(problems, ("a", "b", "noise"), "cpu")
    config = SearchConfig(population_size=10, generations=12, fitness="mean", survival=survival)
    _, state = evolve(scorer, config, 1)
    return [h["best_fitness"] for h in state.history]


def test_elitist_survival_keeps_the_best_and_generational_does_not():
    elitist = _best_by_generation("elitist")
    assert all(b >= a for a, b in zip(elitist, elitist[1:]))
    generational = _best_by_generation("generational")
    assert any(b < a for a, b in zip(generational, generational[1:]))


def test_leave_one_out_holds_each_problem_out():
    problems = equals_a()
    splits = leave_one_out_splits(problems, build_dataset(problems))
    assert [held.name for _, held in splits] == ["A0", "A1", "A2"]
    assert [train.names for train, _ in splits] == [["A1", "A2"], ["A0", "A2"], ["A0", "A1"]]


def test_compare_schema_and_resume(tmp_path):
    problems = equals_a()
    journal = tmp_path / "journal.jsonl"
    first = compare(problems, ["best-single", "forest"], runs=1, journal=journal)
    assert first["problems"] == ["A0", "A1", "A2"] and first["split"] == "test"
    assert [m["name"] for m in first["methods"]] == ["best-single", "forest"]
    assert first["methods"][0]["expression"] == "a" and first["methods"][1]["expression"] is None
    assert set(first["leave_one_out"]["best-single"].values()) == {1.0}
    assert first["leave_one_out"]["forest"]["A2"] < 1.0  # its values lie outside the others'
    assert len(journal.read_text().splitlines()) == 1 + 2 * 4
    again = compare(problems, ["best-single", "forest"], runs=1, journal=journal)
    assert again["methods"] == first["methods"]  # read back: the same seconds too
    means = mean_taus(first)
    assert means["best-single"] == pytest.approx({"test": 1.0, "leave_one_out": 1.0})
    json.dumps(first)


def test_registry_and_cli_errors(tmp_path):
    assert {"sr", "best-single", "az-nas", "up-nas", "robot", "eznas", "auto-prox",
            "mean-tau", "forest"} <= set(METHODS)
    with pytest.raises(GpsrError, match="unknown method"):
        make_method("lasso")
    result = CliRunner().invoke(app, ["compare", "--methods", "lasso", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "unknown method 'lasso'" in result.output


def test_cli_compare_passes_the_search_budget_to_every_sr_variant(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for p in sum_ab():
        rows = ["arch,val_accuracy,a,b,noise"] + [
            f"{arch},{acc},{v[0]},{v[1]},{v[2]}"
            for arch, acc, v in zip(p.archs, p.accuracy, p.values)]
        (data / f"{p.name.lower()}.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "cmp"
    result = CliRunner().invoke(app, [
        "compare", "--data", str(data), "--methods", "sr,mean-tau", "--runs", "1",
        "--population", "6", "--generations", "2", "--no-leave-one-out", "--out", str(out)])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "compare.json").read_text())
    assert saved["search_config"]["population_size"] == 6
    assert saved["search_config"]["generations"] == 2
    journal = (out / "journal.jsonl").read_text().splitlines()
    assert json.loads(journal[0])["config"]["config"]["population_size"] == 6
