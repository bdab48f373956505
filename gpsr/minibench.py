"""gpsr's own mini benchmark: small NAS problems trained here, on data that ships with a dependency.

``gpsr bench build`` samples architectures of a reduced search space, trains each with the one
recipe below, computes the 16 live zero-cost proxies (:mod:`gpsr.proxies`) on its untrained
network, and writes a problem file in gpsr's CSV layout
(``arch, val_accuracy, <16 proxies>, seconds_train, seconds_proxies``). The problems built this
way ship inside the package (``gpsr/shipped/``, :func:`shipped_problems`), so gpsr runs on a
machine without any download.

Data: scikit-learn's handwritten digits (``sklearn.datasets.load_digits``: 1,797 real 8x8
grey-level images of 0-9, stored inside scikit-learn).

Spaces (:data:`SPACES`), reduced so that one network trains in seconds on one CPU core:

* ``mini201``: the NAS-Bench-201 cell space (15,625 cells), ``C=8`` channels and ``N=1`` cell
  per stage (the benchmark's network has 16 and 5);
* ``minimacro``: the TransNAS-Bench-101 macro space (3,256 skeletons of ResNet blocks),
  ``base_channels=8`` (the benchmark's is 64);
* ``minimicro``: the TransNAS-Bench-101 micro space (4,096 cells) on the fixed ``41414``
  skeleton, ``base_channels=8``.

Tasks (:data:`TASKS`), scored by validation accuracy in percent:

* ``digits-class``: 10-way digit classification;
* ``digits-rotation``: self-supervised 4-way rotation prediction (the image turned by 0, 90,
  180 or 270 degrees; the label is the turn), in the spirit of TransNAS-Bench-101's
  self-supervised tasks. Digits such as 0, 1 and 8 are nearly symmetric, so the task is not
  solvable to 100 %.

The recipe (the same for every space and task; only ``--epochs`` is chosen per build):

* input: the 8x8 image scaled to [0, 1], resized to 16x16 (bilinear, ``align_corners=False``),
  standardised with the mean and standard deviation of the training images, and repeated on 3
  channels (the builders' stems take RGB);
* split: a fixed permutation (numpy ``default_rng(0)``) of the 1,797 images; the first 500 are
  the validation set, the other 1,297 the training set, for every build and seed;
  ``digits-rotation`` validates on all four turns of each validation image (2,000 samples) and
  turns each training image by a fresh random multiple of 90 degrees every epoch;
* training: cross-entropy, SGD with Nesterov momentum 0.9, weight decay 5e-4, batch 64
  (the last batch of an epoch holds the 17 left over), learning rate 0.1 annealed to 0 on a
  cosine over every step of ``--epochs`` epochs, no augmentation besides the rotation task's
  turns; batch-norm in train mode while training; one CPU thread;
* batch-norm recalibration: after the last step every batch-norm's running statistics are
  re-estimated (cumulative average) over the training set of the last epoch, in batches of
  256, without gradients: after a few dozen steps the running averages lag behind the
  weights, and scoring with them made the ranking hinge on the last batches;
* the score: accuracy (%) on the validation set, batch-norm in eval mode;
* seeds: ``--seed`` fixes the architecture sample (a permutation of the whole space, so a
  larger ``--archs`` extends a smaller build) and the proxies' minibatch (64 training images,
  with random turns for ``digits-rotation``, the same for every architecture of a build).
  ``--train-seed`` (default: ``--seed``) fixes, per architecture, the initial weights, the
  training order and the turns: the torch seed is drawn from ``SeedSequence([train_seed,
  crc32(arch)])``, so a network does not depend on which worker ran it or in which order;
* proxies: all 16, computed on the initialised network before training (the same weights that
  are then trained), on the CPU, with ``compute_proxies(..., seed=<that torch seed>)``.

A build appends each finished architecture to ``<out>.partial.jsonl`` at once and writes the
CSV when every architecture is done, so an interruption loses nothing and ``--resume``
continues where it stopped.
"""

from __future__ import annotations

import csv
import functools
import os
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gpsr.data import Problem, load_problems, parse_float, read_csv_records
from gpsr.errors import GpsrError
from gpsr.journal import read_journal, run_journaled
from gpsr.kernels.kendall import kendall_tau
from gpsr.spaces import get_space
from gpsr.train import TrainConfig, TrainData, train

#: Bumped whenever the recipe changes, so ``--resume`` never mixes two recipes.
RECIPE_VERSION = 1
INPUT_SIZE = 16
VAL_SIZE = 500
SPLIT_SEED = 0
BATCH_SIZE = 64
LEARNING_RATE = 0.1
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
RECALIBRATION_BATCH = 256
PROXY_BATCH_SIZE = 64
MAX_ARCHS = 100_000
MAX_EPOCHS = 100
#: Columns after the proxies: wall seconds spent training and computing proxies.
TIME_COLUMNS = ("seconds_train", "seconds_proxies")

SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"


@dataclass(frozen=True)
class MiniSpace:
    """A reduced search space: a :mod:`gpsr.spaces` space with smaller size options."""

    base: str
    options: dict[str, int] = field(default_factory=dict)


#: The sizes live in the search-space registry, where the mini spaces also sample and mutate.
SPACES: dict[str, MiniSpace] = {
    name: MiniSpace(get_space(name).base, dict(get_space(name).options))
    for name in ("mini201", "minimacro", "minimicro")
}
#: Task name -> number of classes.
TASKS: dict[str, int] = {"digits-class": 10, "digits-rotation": 4}


# ---- data --------------------------------------------------------------------
@dataclass(frozen=True)
class TaskData:
    train_x: Any  # (1297, 3, 16, 16) float32 tensor
    train_y: Any  # digit labels; digits-rotation draws its labels per epoch
    val_x: Any
    val_y: Any
    rotation: bool


def _rotate(x: Any, turns: Any) -> Any:
    """Each image of ``x`` turned by ``turns[i]`` quarter turns (counter-clockwise)."""
    import torch

    out = x.clone()
    for k in (1, 2, 3):
        mask = turns == k
        if bool(mask.any()):
            out[mask] = torch.rot90(x[mask], k, dims=(2, 3))
    return out


@functools.cache
def task_data(task: str) -> TaskData:
    """The recipe's training and validation tensors of ``task`` (cached per process)."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    _check_task(task)
    digits = load_digits()
    images = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = F.interpolate(images, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                           align_corners=False)
    labels = torch.as_tensor(digits.target, dtype=torch.int64)
    order = torch.as_tensor(np.random.default_rng(SPLIT_SEED).permutation(len(images)))
    val, train = order[:VAL_SIZE], order[VAL_SIZE:]
    mean, std = images[train].mean(), images[train].std()
    images = ((images - mean) / std).expand(-1, 3, -1, -1).contiguous()
    if task == "digits-rotation":
        base = images[val]
        val_x = torch.cat([torch.rot90(base, k, dims=(2, 3)) for k in range(4)])
        val_y = torch.arange(4).repeat_interleave(len(base))
        return TaskData(images[train], labels[train], val_x, val_y, True)
    return TaskData(images[train], labels[train], images[val], labels[val], False)


def proxy_batch(task: str, seed: int) -> tuple[Any, Any]:
    """The proxies' minibatch: 64 training images drawn with numpy ``default_rng(seed)``."""
    import torch

    data = task_data(task)
    rng = np.random.default_rng(seed)
    pick = torch.as_tensor(rng.choice(len(data.train_x), PROXY_BATCH_SIZE, replace=False))
    images = data.train_x[pick]
    if data.rotation:
        turns = torch.as_tensor(rng.integers(0, 4, PROXY_BATCH_SIZE))
        return _rotate(images, turns), turns
    return images, data.train_y[pick]


# ---- one architecture --------------------------------------------------------
@dataclass(frozen=True)
class Job:
    """One architecture to train and score; picklable for the executor."""

    index: int
    arch: str
    space: str
    task: str
    epochs: int
    train_seed: int
    batch_seed: int
    #: False: proxies only (:func:`refresh_proxies`); the network is not trained.
    train: bool = True


def arch_seed(train_seed: int, arch: str) -> int:
    """The torch seed of one architecture: independent of worker and order."""
    seq = np.random.SeedSequence([train_seed, zlib.crc32(arch.encode())])
    return int(seq.generate_state(1)[0])


def recipe(epochs: int, seed: int) -> TrainConfig:
    """The recipe of the module docstring as a :class:`gpsr.train.TrainConfig`."""
    return TrainConfig(
        epochs=epochs, batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE, momentum=MOMENTUM,
        nesterov=True, weight_decay=WEIGHT_DECAY, schedule="step", grad_clip=0.0,
        auxiliary_weight=0.0, drop_path=0.0, crop_padding=0, flip=False, cutout=0,
        recalibrate_bn=True, recalibration_batch_size=RECALIBRATION_BATCH, eval_batch_size=0,
        evaluate_every_epoch=False, random_state=seed,
    )


def _turned(x: Any, y: Any, generator: Any) -> tuple[Any, Any]:
    """digits-rotation's epoch inputs: every image turned afresh; the label is the turn."""
    import torch

    turns = torch.randint(0, 4, (len(x),), generator=generator)
    return _rotate(x, turns), turns


def training_data(task: str) -> TrainData:
    """The recipe's tensors of ``task`` for :func:`gpsr.train.train`."""
    data = task_data(task)
    return TrainData(data.train_x, data.train_y, data.val_x, data.val_y,
                     epoch_inputs=_turned if data.rotation else None)


def train_and_score(net: Any, task: str, epochs: int, seed: int) -> float:
    """Train ``net`` in place with the recipe; its validation accuracy in percent."""
    return train(net, training_data(task), recipe(epochs, seed)).val_accuracy


def run_job(job: Job) -> dict[str, Any]:
    """Proxies on the fresh network, then training: one record of the partial file.

    Training never reads the torch global generator the proxies may draw from, so a
    network's score does not depend on whether, or which, proxies were computed first.
    """
    import torch

    from gpsr.proxies import compute_proxies
    from gpsr.spaces import build_network

    # Workers share few cores; one thread each also keeps the results bit-reproducible.
    torch.set_num_threads(1)
    spec = SPACES[job.space]
    seed = arch_seed(job.train_seed, job.arch)
    torch.manual_seed(seed)
    net = build_network(spec.base, job.arch, TASKS[job.task], **spec.options)
    start = time.perf_counter()
    scores = compute_proxies(net, proxy_batch(job.task, job.batch_seed), device="cpu", seed=seed)
    proxied = time.perf_counter()
    record = {"index": job.index, "arch": job.arch, "proxies": scores,
              "seconds_proxies": round(proxied - start, 4)}
    if job.train:
        record["val_accuracy"] = train_and_score(net, job.task, job.epochs, seed)
        record["seconds_train"] = round(time.perf_counter() - proxied, 4)
    return record


# ---- a build -----------------------------------------------------------------
def _check_task(task: str) -> None:
    if task not in TASKS:
        raise GpsrError(f"unknown task {task!r}; known: {', '.join(TASKS)}")


def _check_space(space: str) -> MiniSpace:
    if space not in SPACES:
        raise GpsrError(f"unknown space {space!r}; known: {', '.join(SPACES)}")
    return SPACES[space]


@functools.cache
def _space_order(space: str, seed: int) -> tuple[str, ...]:
    """Every architecture of ``space`` in the seeded order a build takes them."""
    from gpsr.spaces import all_archs

    archs = all_archs(_check_space(space).base)
    return tuple(archs[i] for i in np.random.default_rng(seed).permutation(len(archs)))


def sample(space: str, n: int, seed: int) -> list[str]:
    """``n`` distinct architectures of ``space``, uniformly; a prefix of a larger sample."""
    order = _space_order(space, seed)
    if not 1 <= n <= min(MAX_ARCHS, len(order)):
        raise GpsrError(
            f"--archs must be in 1..{min(MAX_ARCHS, len(order))} for {space}, got {n}"
        )
    return list(order[:n])


def partial_path(out: Path) -> Path:
    """Where a build of ``out`` appends its finished architectures."""
    return out.with_name(out.name + ".partial.jsonl")


@dataclass
class BuildResult:
    out: Path
    architectures: int
    trained: int  # this call; the rest came from an earlier, interrupted or smaller build
    seconds: float
    config: dict[str, Any]


def _proxy_names() -> list[str]:
    from gpsr.proxies import PROXIES

    return list(PROXIES)


def _read_csv(path: Path, proxies: Sequence[str]) -> dict[str, dict]:
    """Records of an earlier, finished build written to ``path``."""
    rows = read_csv_records(path)
    needed = ["arch", "val_accuracy", *proxies, *TIME_COLUMNS]
    if rows and set(needed) - set(rows[0]):
        raise GpsrError(f"{path}: not a gpsr bench file (columns {', '.join(needed)} expected)")

    def number(row: dict[str, str], column: str) -> float:
        return parse_float(row[column], f"{path}: arch {row['arch']!r} column {column!r}")

    return {
        row["arch"]: {
            "arch": row["arch"],
            "val_accuracy": number(row, "val_accuracy"),
            "proxies": {p: number(row, p) for p in proxies},
            **{c: number(row, c) for c in TIME_COLUMNS},
        }
        for row in rows
    }


def _check_finished(records: dict[str, dict], order: Sequence[str], where: Path) -> None:
    # A finished build of k architectures holds exactly the first k of the seeded order.
    position = {arch: i for i, arch in enumerate(order)}
    if sorted(position.get(a, -1) for a in records) != list(range(len(records))):
        raise GpsrError(f"{where}: was built with another space or --seed (use --force)")


def _write_csv(out: Path, records: Sequence[dict], proxies: Sequence[str]) -> None:
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["arch", "val_accuracy", *proxies, *TIME_COLUMNS])
        for r in records:
            writer.writerow([r["arch"], r["val_accuracy"], *(r["proxies"][p] for p in proxies),
                             *(r[c] for c in TIME_COLUMNS)])
    os.replace(tmp, out)


def build(
    space: str,
    task: str,
    archs: int,
    epochs: int,
    seed: int,
    out: str | Path,
    *,
    train_seed: int | None = None,
    jobs: int = 1,
    backend: str = "local",
    address: str | None = None,
    resume: bool = False,
    force: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    repair: bool = False,
) -> BuildResult:
    """Build one problem file (see the module docstring for the recipe).

    ``on_progress(done, total)`` is called once before training starts and after each
    architecture. Raises :class:`GpsrError` on bad input, before any training. ``repair``
    drops corrupt records of an interrupted build's journal (they are trained again).
    """
    from gpsr.executor import make_executor

    _check_space(space)
    _check_task(task)
    if not 1 <= epochs <= MAX_EPOCHS:
        raise GpsrError(f"--epochs must be in 1..{MAX_EPOCHS}, got {epochs}")
    chosen = sample(space, archs, seed)
    if jobs < 1:
        raise GpsrError(f"--jobs must be >= 1, got {jobs}")
    if resume and force:
        raise GpsrError("--resume and --force exclude each other")
    out = Path(out)
    if out.suffix != ".csv":
        raise GpsrError(f"{out}: the output must be a .csv file (named <space>-<task>.csv)")
    if out.parent.exists() and not out.parent.is_dir():
        raise GpsrError(f"{out}: {out.parent} is a file, not a folder")
    partial = partial_path(out)
    if not (resume or force) and (out.exists() or partial.exists()):
        raise GpsrError(f"{out if out.exists() else partial}: exists (use --resume or --force)")
    executor = make_executor(backend, jobs, address)
    if force:
        out.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
    proxies = _proxy_names()
    train_seed = seed if train_seed is None else train_seed
    config = {"recipe": RECIPE_VERSION, "space": space, "task": task, "epochs": epochs,
              "seed": seed, "train_seed": train_seed, "proxies": proxies}
    records: dict[str, dict] = {}
    if partial.exists():
        records = read_journal(partial, config, "arch", repair)
    elif out.exists():
        records = _read_csv(out, proxies)
        _check_finished(records, _space_order(space, seed), out)
    jobs_todo = [Job(i, a, space, task, epochs, train_seed, seed) for i, a in enumerate(chosen)]
    trained_before = len(records)
    start = time.perf_counter()
    records = run_journaled(partial, config, jobs_todo, lambda j: j.arch, run_job, executor,
                            "arch", records, on_progress)
    _write_csv(out, [records[a] for a in chosen], proxies)
    partial.unlink()
    return BuildResult(out, len(chosen), len(chosen) - trained_before,
                       time.perf_counter() - start, config)


def refresh_proxies(
    path: str | Path,
    seed: int,
    *,
    train_seed: int | None = None,
    jobs: int = 1,
    backend: str = "local",
    address: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Recompute the proxy columns of a finished build with the current :mod:`gpsr.proxies`,
    keeping its training results; returns the number of architectures.

    ``seed`` and ``train_seed`` must be the build's (they fix the proxy batch and the initial
    weights); the space and task come from the file name ``<space>-<task>.csv``. The file is
    replaced only when every architecture is done.
    """
    from gpsr.executor import make_executor

    path = Path(path)
    if not path.is_file():
        raise GpsrError(f"{path}: no such file")
    space, _, task = path.stem.partition("-")
    if space not in SPACES or task not in TASKS:
        raise GpsrError(f"{path}: not named <space>-<task>.csv with a space of "
                        f"{', '.join(SPACES)} and a task of {', '.join(TASKS)}")
    if jobs < 1:
        raise GpsrError(f"--jobs must be >= 1, got {jobs}")
    proxies = _proxy_names()
    records = _read_csv(path, proxies)
    _check_finished(records, _space_order(space, seed), path)
    train_seed = seed if train_seed is None else train_seed
    archs = list(records)
    todo = [Job(i, a, space, task, 0, train_seed, seed, train=False) for i, a in enumerate(archs)]
    executor = make_executor(backend, jobs, address)
    if on_progress:
        on_progress(0, len(todo))
    for done, (i, fresh) in enumerate(executor.map(run_job, todo), start=1):
        records[archs[i]].update(proxies=fresh["proxies"],
                                 seconds_proxies=fresh["seconds_proxies"])
        if on_progress:
            on_progress(done, len(todo))
    _write_csv(path, list(records.values()), proxies)
    return len(records)


# ---- shipped problems and their figures --------------------------------------
def shipped_problems(names: Sequence[str] | None = None) -> list[Problem]:
    """The problems that ship with gpsr (``gpsr/shipped/*.csv``), e.g. ``MINI201-DIGITS-CLASS``.

    ``names`` keeps only those, in that order (case-insensitive).
    """
    return load_problems(SHIPPED_DIR, names)


@dataclass
class ProblemFigures:
    """What says whether a problem is worth searching on: spread, proxy taus, seed noise."""

    name: str
    architectures: int
    val_min: float
    val_q25: float
    val_median: float
    val_q75: float
    val_max: float
    val_std: float
    proxy_taus: dict[str, float]
    seconds_train_median: float | None
    seconds_proxies_median: float | None
    #: Tau between the validation scores of two training seeds, on the shared architectures.
    two_seed_tau: float | None = None
    two_seed_architectures: int = 0

    @property
    def best_proxy(self) -> tuple[str, float]:
        """The best single proxy on all rows, by the rule of :data:`gpsr.report.BEST_PROXY_RULE`."""
        from gpsr.report import best_proxy

        name = best_proxy(self.proxy_taus)
        return name, self.proxy_taus[name]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"best_proxy": list(self.best_proxy)}


def figures(problem: Problem, second_seed: Problem | None = None) -> ProblemFigures:
    """The figures of a built problem; ``second_seed`` is a rebuild with another train seed."""
    acc = problem.accuracy
    times = {c: float(np.median(problem.costs[c])) if c in problem.costs else None
             for c in TIME_COLUMNS}
    q = np.percentile(acc, [0, 25, 50, 75, 100])
    result = ProblemFigures(
        problem.name, len(problem), *map(float, q), float(acc.std()),
        {p: float(kendall_tau(problem.column(p), acc)) for p in problem.proxies},
        times["seconds_train"], times["seconds_proxies"],
    )
    if second_seed is not None:
        index = {a: i for i, a in enumerate(problem.archs)}
        shared = [(index[a], j) for j, a in enumerate(second_seed.archs) if a in index]
        if len(shared) >= 2:
            rows, cols = map(np.asarray, zip(*shared))
            result.two_seed_tau = float(kendall_tau(acc[rows], second_seed.accuracy[cols]))
            result.two_seed_architectures = len(shared)
    return result
