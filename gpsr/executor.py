"""The one executor behind every fan-out in gpsr: local processes by default, Ray for clusters.

``Executor.map(fn, items)`` yields ``(index, result)`` as tasks finish, so callers
can save each finished result at once and an interruption loses nothing done.
``fn`` must be a picklable top-level function.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

from gpsr.errors import GpsrError

BACKENDS = ("local", "ray")


def _limit_threads() -> None:
    # Workers share the cores: one thread each avoids oversubscription.
    os.environ["OMP_NUM_THREADS"] = "1"
    import numba
    import torch

    numba.set_num_threads(1)
    torch.set_num_threads(1)


class Executor:
    """Base class: run ``fn`` over ``items``, yielding ``(index, result)`` as each completes."""

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[int, Any]]:
        raise NotImplementedError

    def describe(self) -> dict:
        raise NotImplementedError


class LocalExecutor(Executor):
    """``jobs == 1`` runs inline in this process; more uses a spawn-based process pool."""

    def __init__(self, jobs: int | None = None) -> None:
        """``jobs=None`` uses every core; 0 or less is refused (it is not "all cores")."""
        if jobs is not None and jobs < 1:
            raise GpsrError(f"--jobs must be >= 1, got {jobs}")
        self.jobs = jobs or os.cpu_count() or 1

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[int, Any]]:
        items = list(items)
        if self.jobs == 1 or len(items) <= 1:
            for i, item in enumerate(items):
                yield i, fn(item)
            return
        ctx = multiprocessing.get_context("spawn")
        workers = min(self.jobs, len(items))
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_limit_threads) as pool:
            pending = {pool.submit(fn, item): i for i, item in enumerate(items)}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield pending.pop(fut), fut.result()

    def describe(self) -> dict:
        return {"backend": "local", "jobs": self.jobs}


class RayExecutor(Executor):
    """Tasks as Ray remote functions on the cluster at ``address`` (``None``: a local Ray)."""

    def __init__(self, address: str | None = None, jobs: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise GpsrError("the ray backend needs Ray: pip install 'gpsr[ray]'") from None
        self.ray = ray
        self.address = address
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"address": address, "include_dashboard": False,
                                      "log_to_driver": False}
            if address is None and jobs:
                kwargs["num_cpus"] = jobs
            ray.init(**kwargs)

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[int, Any]]:
        remote = self.ray.remote(num_cpus=1)(_ray_task)
        pending = {remote.remote(fn, item): i for i, item in enumerate(items)}
        while pending:
            done, _ = self.ray.wait(list(pending), num_returns=1)
            for ref in done:
                yield pending.pop(ref), self.ray.get(ref)

    def describe(self) -> dict:
        return {"backend": "ray", "address": self.address}


def _ray_task(fn: Callable[[Any], Any], item: Any) -> Any:
    _limit_threads()
    return fn(item)


def make_executor(backend: str = "local", jobs: int | None = 1,
                  address: str | None = None) -> Executor:
    if jobs is not None and jobs < 1:
        raise GpsrError(f"--jobs must be >= 1, got {jobs}")
    if backend == "local":
        return LocalExecutor(jobs)
    if backend == "ray":
        return RayExecutor(address, jobs)
    raise GpsrError(f"unknown backend {backend!r} (use {' or '.join(BACKENDS)})")
