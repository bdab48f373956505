"""Architecture search: space mutations, Aging Evolution / random search in lookup and live
mode, reproducibility, resume, and the ``gpsr search`` command's bad-input errors."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from gpsr.archsearch import (
    AgingEvolution,
    LookupObjective,
    ProblemDomain,
    RandomSearch,
    search_architectures,
    top_picks,
)
from gpsr.cli.app import app
from gpsr.data import Problem
from gpsr.errors import GpsrError
from gpsr.minibench import shipped_problems
from gpsr.spaces import SPACES, get_space, nb101


# ---- spaces ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SPACES)
def test_every_mutation_is_a_valid_different_arch_of_the_same_space(name):
    space = get_space(name)
    rng = random.Random(1)
    archs = space.sample(6 if space.enumerate_fn is None else 15, seed=3)
    for arch in archs:
        neighbours = space.neighbours(arch)
        assert neighbours and len(set(neighbours)) == len(neighbours)
        for other in neighbours:
            space.parse(other)
            assert space.key(other) != space.key(arch)
        for _ in range(3):
            child = space.mutate(arch, rng)
            space.parse(child)
            assert space.key(child) != space.key(arch)
            assert len(space.encode(child)) == len(space.encode(arch))
            arch = child


def test_small_spaces_have_the_textbook_neighbourhoods():
    nb201 = get_space("nb201")
    assert len(nb201.neighbours(nb201.sample(1, 0)[0])) == 6 * 4
    micro = get_space("tnb101-micro")
    assert len(micro.neighbours("(0, 1, 2, 3, 0, 1)")) == 6 * 3
    macro = get_space("tnb101-macro")
    everything = set(macro.enumerate())
    for arch in macro.sample(20, 0):
        assert set(macro.neighbours(arch)) <= everything
    # Deleting a module of a 4-module skeleton is not allowed; changing one is.
    assert all(len(macro.parse(n)) >= 4 for n in macro.neighbours("(1, 2, 3, 4)"))


def test_nb101_mutation_keeps_cells_valid_and_differs_up_to_isomorphism():
    space = get_space("nb101")

    def cell(edges, ops):
        matrix = [[0] * 7 for _ in range(7)]
        for i, j in edges:
            matrix[i][j] = 1
        return nb101.to_string(matrix, [0, *ops, 1])

    # Two parallel paths with their ops swapped: isomorphic, so the same network and key.
    paths = [(0, 1), (1, 6), (0, 2), (2, 6)]
    assert space.key(cell(paths, [3, 4, 2, 2, 2])) == space.key(cell(paths, [4, 3, 2, 2, 2]))
    # Vertices off every path are pruned: their ops do not make another network.
    assert space.key(cell(paths, [3, 4, 2, 2, 2])) == space.key(cell(paths, [3, 4, 4, 3, 4]))
    assert space.key(cell(paths, [3, 4, 2, 2, 2])) != space.key(cell(paths, [3, 3, 2, 2, 2]))
    # A lone input-output edge: no single edit makes another network; mutate still does.
    lone = [0] * 49
    lone[6] = 1
    arch = str(tuple(lone) + (0, 2, 2, 2, 2, 2, 1))
    assert space.neighbours(arch) == []
    child = space.mutate(arch, random.Random(0))
    spec = nb101.parse(child)
    assert space.key(child) != space.key(arch)
    assert sum(map(sum, spec.matrix)) <= nb101.MAX_EDGES


# ---- lookup mode ----------------------------------------------------------------------------
def oracle_problem() -> Problem:
    """A shipped problem whose only 'proxy' is the accuracy itself."""
    base = shipped_problems(["MINI201-DIGITS-ROTATION"])[0]
    return Problem(base.name, base.space, base.task, base.archs, ("oracle",),
                   base.accuracy[:, None].copy(), base.accuracy.copy(), base.source)


@pytest.mark.parametrize("algorithm", ["ae", "random"])
def test_lookup_search_with_an_oracle_finds_the_optimum(algorithm):
    problem = oracle_problem()
    result = search_architectures("oracle", problem=problem, algorithm=algorithm,
                                  max_evaluations=600, population_size=20, sample_size=5,
                                  random_state=0)
    assert result.best_accuracy == problem.accuracy.max()
    assert result.regret == 0.0
    assert result.run.evaluations == 600
    assert result.optimum_arch == problem.archs[int(np.argmax(problem.accuracy))]


def test_a_weak_metric_has_regret_and_a_negated_oracle_the_worst():
    problem = oracle_problem()
    worst = search_architectures("neg(oracle)", problem=problem, max_evaluations=600,
                                 population_size=20, sample_size=5, random_state=0)
    assert worst.best_accuracy == problem.accuracy.min()
    assert worst.regret == pytest.approx(problem.accuracy.max() - problem.accuracy.min())


def test_seeds_reproduce_and_differ():
    problem = shipped_problems(["MINIMICRO-DIGITS-CLASS"])[0]
    runs = [search_architectures("synflow", problem=problem, max_evaluations=300,
                                 population_size=30, random_state=seed).run
            for seed in (4, 4, 5)]
    assert runs[0].archs == runs[1].archs and runs[0].scores == runs[1].scores
    assert runs[0].archs != runs[2].archs


def test_lookup_mutation_stays_inside_the_problem_file():
    problem = shipped_problems(["MINIMACRO-DIGITS-CLASS"])[0]  # 200 of 3,256 skeletons
    space = get_space(problem.space)
    domain = ProblemDomain(problem, space)
    present = set(problem.archs)
    snapped = 0
    for i, arch in enumerate(problem.archs[:40]):
        child = domain.mutate(arch, random.Random(i))
        assert child in present and space.key(child) != space.key(arch)
        # The same draw in the space: kept when the file has it, else snapped to the nearest.
        free = space.mutate(arch, random.Random(i))
        if free in present:
            assert child == free
        else:
            snapped += 1
            assert child in domain.nearest(free, space.key(arch))
    assert snapped > 0


def test_nb101_sample_problem_snaps_a_mutation_to_the_nearest_present_arch():
    space = get_space("nb101")
    archs = list(dict.fromkeys(space.sample(40, 7)))
    acc = np.linspace(80, 90, len(archs))
    problem = Problem("NB101-TOY", "nb101", "toy", archs, ("oracle",), acc[:, None], acc)
    domain = ProblemDomain(problem, space)
    codes = np.array([space.encode(a) for a in archs])
    for i, arch in enumerate(archs[:10]):
        child = domain.mutate(arch, random.Random(i))
        free = space.mutate(arch, random.Random(i))  # the same draw, in the whole space
        dist = (codes != np.array(space.encode(free))).sum(axis=1)
        dist[[space.key(a) == space.key(arch) for a in archs]] = 10**6
        assert space.key(child) != space.key(arch)
        if space.key(free) in domain.by_key:  # the file has that network (maybe relabelled)
            assert space.key(child) == space.key(free)
        else:
            assert (codes[archs.index(child)] != np.array(space.encode(free))).sum() == dist.min()


def test_top_picks_and_missing_proxy():
    problem = oracle_problem()
    picks = top_picks(problem, {"oracle": "oracle", "worst": "neg(oracle)"})
    assert picks["picks"]["oracle"]["accuracy"] == picks["optimum"]["accuracy"]
    assert picks["picks"]["worst"]["accuracy"] == problem.accuracy.min()
    with pytest.raises(GpsrError, match="names proxy 'jacov', which problem MINI201"):
        LookupObjective(problem, "jacov + oracle")


def test_bad_settings_are_one_line_errors():
    with pytest.raises(GpsrError, match="below the population size 100"):
        AgingEvolution(max_evaluations=99)
    with pytest.raises(GpsrError, match="sample size"):
        AgingEvolution(population_size=10, sample_size=11)
    with pytest.raises(GpsrError, match="probability of mutation"):
        AgingEvolution(p_mutation=1.5)
    with pytest.raises(GpsrError, match="budget"):
        RandomSearch(max_evaluations=0)
    with pytest.raises(GpsrError, match="unknown search space 'nb999'"):
        search_architectures("synflow", "nb999", mode="live")


def test_identity_copies_follow_the_mutation_probability():
    problem = oracle_problem()
    never = search_architectures("oracle", problem=problem, max_evaluations=120,
                                 population_size=20, p_mutation=0.0, random_state=0).run
    # Without mutation every child copies a member: nothing new after the first population.
    assert set(never.archs[20:]) <= set(never.archs[:20])
    always = search_architectures("oracle", problem=problem, max_evaluations=120,
                                  population_size=20, p_mutation=1.0, random_state=0).run
    assert len(set(always.archs)) > len(set(never.archs))


# ---- live mode -------------------------------------------------------------------------------
def tiny_batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(8, 3, 16, 16, generator=gen), torch.randint(0, 10, (8,), generator=gen)


def test_live_search_runs_end_to_end_and_resumes(tmp_path):
    journal = tmp_path / "evaluations.jsonl"
    kwargs = dict(mode="live", max_evaluations=5, population_size=3, sample_size=2,
                  p_mutation=1.0, random_state=0, batch=tiny_batch(), journal=journal)
    first = search_architectures("synflow + params", "mini201", **kwargs)
    assert first.run.evaluations == 5
    assert 3 <= first.networks_scored <= 5
    assert first.seconds["proxies"] > 0
    lines = journal.read_text().splitlines()
    assert len(lines) == 1 + first.networks_scored
    again = search_architectures("synflow + params", "mini201", **kwargs)
    assert again.networks_scored == 0
    assert again.run.archs == first.run.archs and again.run.best_arch == first.run.best_arch
    # The best score is the metric of the best arch, recomputed from scratch.
    from gpsr.metric import Metric
    from gpsr.proxies.table import network_seed

    torch.manual_seed(network_seed(0, first.run.best_arch))
    net = get_space("mini201").build(first.run.best_arch)
    assert Metric("synflow + params")(net, tiny_batch(), "cpu", 0) == pytest.approx(
        first.run.best_score, rel=1e-6)


def test_live_search_refuses_a_journal_of_another_search(tmp_path):
    journal = tmp_path / "evaluations.jsonl"
    kwargs = dict(mode="live", max_evaluations=2, population_size=2, sample_size=1,
                  batch=tiny_batch(), journal=journal)
    search_architectures("params", "minimicro", random_state=0, **kwargs)
    with pytest.raises(GpsrError, match="was made with"):
        search_architectures("params", "minimicro", random_state=1, **kwargs)


# ---- command line ---------------------------------------------------------------------------
def test_cli_lookup_writes_json_and_summary(tmp_path):
    out = tmp_path / "found"
    res = CliRunner().invoke(app, ["search", "--metric", "synflow", "--problem",
                                   "MINIMICRO-DIGITS-CLASS", "--evaluations", "200",
                                   "--population", "20", "--out", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "search.json").read_text())
    assert report["evaluations"] == 200 and report["problem"] == "MINIMICRO-DIGITS-CLASS"
    assert report["regret"] == pytest.approx(report["optimum_accuracy"]
                                             - report["best_accuracy"])
    assert report["best_arch"] in (out / "summary.md").read_text()


@pytest.mark.parametrize("args", [
    ["--metric", "synflow", "--space", "nb999", "--mode", "live"],
    ["--metric", "jacov", "--problem", "MINI201-TOY"],
    ["--metric", "synflow", "--problem", "MINIMICRO-DIGITS-CLASS", "--evaluations", "50"],
    ["--metric", "synflow", "--problem", "MINIMICRO-DIGITS-CLASS", "--mode", "replay"],
    ["--metric", "synflow", "--problem", "NB999-CF10"],
    ["--metric", "synflow", "--problem", "MINIMICRO-DIGITS-CLASS", "--space", "nb101"],
    ["--metric", "synflow", "--problem", "MINIMICRO-DIGITS-CLASS", "--algorithm", "bayes"],
    ["--metric", "synflow +", "--problem", "MINIMICRO-DIGITS-CLASS"],
    ["--metric", "synflow", "--mode", "live"],
    ["--metric", "synflow", "--problem", "MINIMICRO-DIGITS-CLASS", "--resume"],
])
def test_cli_bad_input_is_one_line(args, tmp_path):
    toy = tmp_path / "mini201-toy.csv"  # a problem with a single proxy column
    archs = get_space("mini201").sample(12, 0)
    toy.write_text("arch,val_accuracy,synflow\n"
                   + "".join(f"{a},{50 + i},{i % 5}\n" for i, a in enumerate(archs)))
    res = CliRunner().invoke(app, ["search", *args, "--data", str(shipped_dir()),
                                   "--data", str(toy)])
    assert res.exit_code == 2, (args, res.output)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), (args, res.stderr)


def shipped_dir():
    from gpsr.minibench import SHIPPED_DIR

    return SHIPPED_DIR
