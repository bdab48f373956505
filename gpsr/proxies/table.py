"""gpsr's own proxy data: all 16 proxies for a seeded sample of a benchmark space.

``gpsr proxies-table --space nb201 --archs 1000 --seed 0 --out FILE.csv`` samples distinct
architectures uniformly (a seeded permutation of the space) and writes
``arch, <16 proxies>, seconds_proxies`` (no accuracies: join them at load time with
``gpsr run --data FILE.csv --accuracies <benchmark>.csv``). Each network is built
from a torch seed derived from ``(seed, arch)``, so its value does not depend on
the worker or the order; every network sees the same real minibatch (the shared
CIFAR-10 sample unless ``images`` is given). The work fans out through gpsr's
executor and is journaled, so an interrupted build resumes without losing rows.
"""

from __future__ import annotations

import csv
import functools
import os
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gpsr.data import parse_float, read_csv_records
from gpsr.errors import GpsrError
from gpsr.executor import Executor
from gpsr.journal import read_journal, run_journaled


@dataclass(frozen=True)
class TableJob:
    arch: str
    space: str
    num_classes: int
    seed: int
    images: str | None
    batch_size: int
    #: The proxies to compute; None for all.
    names: tuple[str, ...] | None = None


def distinct_sample(space: str, n: int, seed: int) -> list[str]:
    """``n`` distinct architectures, uniformly; a smaller ``n`` gives a prefix of a larger one."""
    from gpsr.spaces import all_archs, sample_archs

    try:
        archs = all_archs(space)
    except GpsrError:  # spaces too large to enumerate: draw, keeping first occurrences
        drawn = list(dict.fromkeys(sample_archs(space, 4 * n, seed)))
        if len(drawn) < n:
            raise GpsrError(f"could not draw {n} distinct {space} architectures") from None
        return drawn[:n]
    if n > len(archs):
        raise GpsrError(f"--archs {n} exceeds the {len(archs)} architectures of {space}")
    order = np.random.default_rng(seed).permutation(len(archs))
    return [archs[i] for i in order[:n]]


def network_seed(seed: int, arch: str) -> int:
    return int(np.random.SeedSequence([seed, zlib.crc32(arch.encode())]).generate_state(1)[0])


@functools.lru_cache(maxsize=4)
def _batch(images: str | None, size: int, seed: int):
    from gpsr.proxies.inputs import batch_from_npz, default_batch

    batch = batch_from_npz(Path(images), size, seed) if images else default_batch(size, seed)
    if batch is None:
        raise GpsrError("no images given and no shared CIFAR-10 sample found (set GPSR_SHARED)")
    return batch


def compute_row(job: TableJob) -> dict:
    """All proxies of one freshly initialised network (CPU; picklable for any executor)."""
    from gpsr.proxies import compute_proxies
    from gpsr.spaces import build_network

    batch = _batch(job.images, job.batch_size, job.seed)
    torch.manual_seed(network_seed(job.seed, job.arch))
    net = build_network(job.space, job.arch, job.num_classes)
    start = time.perf_counter()
    names = list(job.names) if job.names is not None else None
    values = compute_proxies(net, batch, names, device="cpu", seed=job.seed)
    return {"arch": job.arch, "proxies": values, "seconds_proxies": time.perf_counter() - start}


def _read_table_records(path: Path, proxies: list[str]) -> dict[str, dict]:
    rows = read_csv_records(path)
    if rows and set(["arch", *proxies, "seconds_proxies"]) - set(rows[0]):
        raise GpsrError(f"{path}: not a gpsr proxy table (use --force to start over)")

    def number(row: dict[str, str], column: str) -> float:
        return parse_float(row[column], f"{path}: arch {row['arch']!r} column {column!r}")

    return {
        r["arch"]: {
            "arch": r["arch"],
            "proxies": {p: number(r, p) for p in proxies},
            "seconds_proxies": number(r, "seconds_proxies"),
        }
        for r in rows
    }


def _write_table(out: Path, archs: list[str], records: dict[str, dict], proxies: list[str]) -> None:
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["arch", *proxies, "seconds_proxies"])
        for arch in archs:
            r = records[arch]
            writer.writerow(
                [
                    arch,
                    *(repr(float(r["proxies"][p])) for p in proxies),
                    f"{r['seconds_proxies']:.4f}",
                ]
            )
    os.replace(tmp, out)


def compute_table(
    space: str,
    archs: int,
    out: str | Path,
    executor: Executor,
    seed: int = 0,
    num_classes: int = 10,
    images: str | None = None,
    batch_size: int = 64,
    resume: bool = False,
    force: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    repair: bool = False,
    only: list[str] | None = None,
) -> Path:
    """Compute (or finish computing) the proxy table; returns the CSV path.

    Every option is checked (and the image batch loaded once) before anything is written;
    ``repair`` drops corrupt records of an interrupted journal (see
    :func:`gpsr.journal.read_journal`). ``only`` recomputes just those proxy columns of the
    first ``archs`` rows of an existing finished table (after a proxy's definition changed),
    with the same seeds, networks and batch, keeping every other column and
    ``seconds_proxies`` (the time of the original build). It is journaled like a build:
    ``resume`` continues it, ``force`` discards its journal (never the table)."""
    from gpsr.proxies import PROXIES
    from gpsr.spaces import parse_arch

    out = Path(out)
    if out.suffix != ".csv":
        raise GpsrError(f"{out}: the output must be a .csv file")
    if archs < 1:
        raise GpsrError(f"--archs must be >= 1, got {archs}")
    if resume and force:
        raise GpsrError("--resume and --force exclude each other")
    if num_classes < 1:
        raise GpsrError(f"--num-classes must be >= 1, got {num_classes}")
    if out.parent.exists() and not out.parent.is_dir():
        raise GpsrError(f"{out}: {out.parent} is a file, not a folder")
    _batch(images, batch_size, seed)  # bad images or --batch-size fail here, not in a worker
    journal = out.with_name(out.name + ".partial.jsonl")
    if only is not None:
        unknown = [n for n in only if n not in PROXIES]
        if unknown or not only:
            raise GpsrError(f"--only: unknown proxies {unknown}; known: {', '.join(PROXIES)}")
        if not out.is_file():
            raise GpsrError(f"{out}: --only recomputes columns of an existing table; none found")
    elif not (resume or force) and out.exists():
        raise GpsrError(f"{out}: exists (use --resume or --force)")
    if not (resume or force) and journal.exists():
        raise GpsrError(f"{journal}: exists (use --resume or --force)")
    if force:
        if only is None:
            out.unlink(missing_ok=True)
        journal.unlink(missing_ok=True)
    chosen = distinct_sample(space, archs, seed)
    for arch in chosen:
        parse_arch(space, arch)
    config = {
        "space": space,
        "seed": seed,
        "num_classes": num_classes,
        "images": images,
        "batch_size": batch_size,
        "proxies": list(PROXIES),
    }
    names = None
    table: dict[str, dict] = {}
    if only is not None:
        names = tuple(n for n in PROXIES if n in only)
        config["only"] = list(names)
        table = _read_table_records(out, PROXIES)
        missing = [a for a in chosen if a not in table]
        if missing:
            raise GpsrError(
                f"{out}: has no row for {len(missing)} of the first {archs} architectures "
                f"(e.g. {missing[0]}); build them first"
            )
    if journal.exists():
        done = read_journal(journal, config, "arch", repair)
    elif out.exists() and only is None:  # a finished table, perhaps of fewer archs: extend it
        done = _read_table_records(out, PROXIES)
    else:
        done = {}
    jobs = [TableJob(a, space, num_classes, seed, images, batch_size, names) for a in chosen]
    records = run_journaled(
        journal, config, jobs, lambda j: j.arch, compute_row, executor, "arch", done, on_progress
    )
    if only is None:
        _write_table(out, chosen, records, PROXIES)
    else:
        for arch in chosen:
            table[arch]["proxies"].update(records[arch]["proxies"])
        _write_table(out, list(table), table, PROXIES)
    journal.unlink()
    return out
