"""Executors: local (inline and process pool) and Ray give the same results as each other."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

import gpsr
from gpsr.data import Problem
from gpsr.errors import GpsrError
from gpsr.executor import LocalExecutor, RayExecutor, make_executor

PROXIES = ("flops", "snip", "synflow")
ITEMS = list(range(7))


def problem(name: str, seed: int, n: int) -> Problem:
    rng = np.random.default_rng(seed)
    values = rng.lognormal(size=(n, len(PROXIES)))
    acc = np.log(values[:, 0]) * values[:, 2] + 0.5 * rng.normal(size=n)
    return Problem(name, name.lower(), "t", [f"a{i}" for i in range(n)], PROXIES, values, acc)


@pytest.fixture(scope="module")
def dataset() -> gpsr.Dataset:
    return gpsr.build_dataset([problem("S1-T", 0, 60), problem("S2-T", 1, 45)])


CONFIG = gpsr.SearchConfig(population_size=10, generations=4, max_depth=4, init_depth=(2, 4),
                           device="cpu")


class Recording:
    """Wraps an executor and records the indices its ``map`` yields, in order."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.indices: list[int] = []

    def map(self, fn, items):
        for index, result in self.inner.map(fn, items):
            self.indices.append(index)
            yield index, result

    def describe(self) -> dict:
        return self.inner.describe()


def collect(executor, fn=math.factorial, items=ITEMS) -> dict[int, object]:
    out: dict[int, object] = {}
    for index, result in executor.map(fn, items):
        assert index not in out, "an index was yielded twice"
        out[index] = result
    return out


def assert_same_runs(result, reference) -> None:
    assert [r["expression"] for r in result.runs] == [r["expression"] for r in reference.runs]
    assert [r["seed"] for r in result.runs] == [0, 1, 2]
    assert [r["history"] for r in result.runs] == [r["history"] for r in reference.runs]
    assert result.expression == reference.expression
    assert result.report["taus"] == reference.report["taus"]


# ---- local ----------------------------------------------------------------------------
def test_local_inline_map():
    assert collect(LocalExecutor(1)) == {i: math.factorial(x) for i, x in enumerate(ITEMS)}
    # a pool of 2 with fewer than 2 items runs inline too
    assert collect(LocalExecutor(2), items=[]) == {}
    assert collect(LocalExecutor(2), items=[5]) == {0: 120}
    with pytest.raises(ValueError):
        collect(LocalExecutor(1), items=[3, -1])


def test_local_executor_settings():
    assert LocalExecutor(3).describe() == {"backend": "local", "jobs": 3}
    assert LocalExecutor().jobs >= 1
    with pytest.raises(GpsrError, match="--jobs"):
        LocalExecutor(-2)
    assert isinstance(make_executor("local", 2), LocalExecutor)
    with pytest.raises(GpsrError, match="'dask'"):
        make_executor("dask")


@pytest.fixture(scope="module")
def inline_result(dataset):
    executor = Recording(LocalExecutor(1))
    result = gpsr.synthesize(dataset, CONFIG, runs=3, executor=executor)
    assert executor.indices == [0, 1, 2]
    return result


def test_synthesize_same_expressions_with_one_and_two_jobs(dataset, inline_result, tmp_path):
    """One process pool (workers start slowly): every index once, same runs as inline."""
    executor = Recording(LocalExecutor(2))
    pooled = gpsr.synthesize(dataset, CONFIG, runs=3, executor=executor, out=tmp_path / "run")
    assert sorted(executor.indices) == [0, 1, 2]
    assert_same_runs(pooled, inline_result)
    assert pooled.report["executor"] == {"backend": "local", "jobs": 2}
    assert (tmp_path / "run" / "result.json").is_file()


# ---- Ray -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_executor():
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    yield RayExecutor(jobs=2)
    if started:
        ray.shutdown()


def test_ray_synthesize_equals_local(ray_executor, dataset, inline_result):
    executor = Recording(ray_executor)
    result = gpsr.synthesize(dataset, CONFIG, runs=3, executor=executor)
    assert sorted(executor.indices) == [0, 1, 2]
    assert_same_runs(result, inline_result)
    assert result.report["executor"] == {"backend": "ray", "address": None}
    # a plain function through Ray as well
    assert collect(ray_executor) == collect(LocalExecutor(1))


EMBEDDED = """
import numpy as np
import gpsr
from gpsr.data import Problem

def main():
    rng = np.random.default_rng(0)
    values = rng.lognormal(size=(40, 2))
    problem = Problem("S-T", "s", "t", [f"a{i}" for i in range(40)], ("flops", "snip"),
                      values, values[:, 0] + rng.normal(size=40))
    config = gpsr.SearchConfig(population_size=6, generations=2, max_depth=3,
                               init_depth=(2, 3), device="cpu")
    result = gpsr.synthesize(gpsr.build_dataset([problem]), config, runs=2,
                             executor=gpsr.make_executor("local", 2))
    print("expression", result.expression)

if __name__ == "__main__":
    main()
"""


def test_pool_compiles_kernels_when_the_numba_cache_is_empty(tmp_path):
    """A script that embeds gpsr on a fresh machine: the workers compile the kernels
    themselves. Setting NUMBA_NUM_THREADS in a worker after numba had started its threads
    made every such compile fail ('Cannot set NUMBA_NUM_THREADS to a different value')."""
    script = tmp_path / "embed.py"
    script.write_text(EMBEDDED)
    env = os.environ | {"NUMBA_CACHE_DIR": str(tmp_path / "empty-cache")}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "expression" in done.stdout
