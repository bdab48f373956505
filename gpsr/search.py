"""A synthesis: several independent seeded runs, the paper's choice among them, a run folder.

The run folder holds ``config.json`` (what was asked), ``runs/run-NNN.json`` (each
run's checkpoint, rewritten after every generation) and ``result.json``. Running
again into the same folder resumes: finished runs are read back, unfinished ones
continue from their last generation with their saved random state, so the result
equals that of an uninterrupted synthesis.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gpsr import __version__
from gpsr.data import Dataset, Problem, read_json
from gpsr.errors import GpsrError
from gpsr.executor import Executor, LocalExecutor
from gpsr.expressions import Expression, parse
from gpsr.fitness import TauScorer, make_fitness
from gpsr.genetic import RunState, SearchConfig, choose, evolve
from gpsr.kernels.kendall import warm_up
from gpsr.report import SPLITS, best_single_proxies, gpsr_commit, tau_dict, taus_by_split

NON_FINITE_POLICY = (
    "protected div/log/sqrt return -1e7 where their input breaks the constraint; any NaN "
    "(from data or arithmetic) is read as -1e7; +/-inf are kept; an undefined tau (constant "
    "expression) counts as 0 in equation 1 and is reported as null"
)


@dataclass
class RunTask:
    index: int
    seed: int
    config: SearchConfig
    problems: list[Problem]  # the input split only
    proxies: tuple[str, ...]
    checkpoint: str | None
    verbose: bool = False


_SCORERS: dict[str, TauScorer] = {}


def _scorer_for(task: RunTask) -> TauScorer:
    """One scorer per worker and data: runs of a synthesis share its warm caches, which
    hold pure functions of the expression and so cannot change any run's result."""
    digest = hashlib.blake2b(repr((task.proxies, task.config.device)).encode())
    for p in task.problems:
        digest.update(p.name.encode())
        digest.update(np.ascontiguousarray(p.values).tobytes())
        digest.update(np.ascontiguousarray(p.accuracy).tobytes())
    key = digest.hexdigest()
    if key not in _SCORERS:
        _SCORERS.clear()
        _SCORERS[key] = TauScorer(task.problems, task.proxies, task.config.device)
    return _SCORERS[key]


def execute_run(task: RunTask) -> dict:
    """One run, checkpointed after every generation; picklable for any executor."""
    scorer = _scorer_for(task)
    resume = None
    if task.checkpoint and os.path.exists(task.checkpoint):
        saved = read_json(Path(task.checkpoint))
        if saved.get("done"):
            return saved | {"reused": True}
        resume = RunState(**saved["state"])
    last = 0.0  # when the previous generation ended

    def save(state: RunState) -> None:
        nonlocal last
        if task.checkpoint:
            # Compact: a checkpoint is rewritten every generation, on the search's clock.
            _write_json(Path(task.checkpoint), {"done": False, "state": state.to_dict()}, None)
        if task.verbose:
            now = time.perf_counter()
            print(generation_line(task.index, state.history[-1], now - last), file=sys.stderr,
                  flush=True)
            last = now

    warm_up()  # search seconds measure the search, not numba's one-time compilation
    start = last = time.perf_counter()
    best, state = evolve(scorer, task.config, task.seed, resume, save)
    record = {
        "done": True,
        "index": task.index,
        "seed": task.seed,
        "expression": best.infix(),
        "search_seconds": time.perf_counter() - start,
        "resumed": resume is not None,
        "history": [
            {k: h[k] for k in ("generation", "best_fitness", "mean_fitness")} for h in state.history
        ],
    }
    if task.checkpoint:
        _write_json(Path(task.checkpoint), record)
    return record


#: Columns of the per-generation log (``verbose``), as gplearn's ``verbose=1`` prints one.
GENERATION_HEADER = f"{'run':>4} {'gen':>5} {'best fitness':>13} {'mean fitness':>13} " \
                    f"{'best size':>10} {'seconds':>8}"


def generation_line(run: int, entry: dict, seconds: float) -> str:
    """One generation of one run under :data:`GENERATION_HEADER` (fitness: equation 1)."""
    size = entry.get("best_size")
    return (f"{run:>4} {entry['generation']:>5} {entry['best_fitness']:>13.4f} "
            f"{entry['mean_fitness']:>13.4f} {'-' if size is None else size:>10} "
            f"{seconds:>8.3f}")


@dataclass
class SynthesisResult:
    """``runs``: each run's record; ``reused`` marks one read back finished from the run
    folder (its ``search_seconds`` are from the call that searched it), ``resumed`` one
    continued from a checkpoint."""

    expression: Expression
    dataset: Dataset
    runs: list[dict]
    report: dict = field(default_factory=dict)

    def resumed_counts(self) -> tuple[int, int]:
        """(runs read back finished, runs continued from a checkpoint) in this call."""
        reused = sum(bool(r.get("reused")) for r in self.runs)
        return reused, sum(bool(r.get("resumed")) and not r.get("reused") for r in self.runs)

    def to_dict(self) -> dict:
        return self.report


def synthesize(
    dataset: Dataset,
    config: SearchConfig | None = None,
    runs: int = 1,
    executor: Executor | None = None,
    out: str | Path | None = None,
    on_run_done: Callable[[dict], None] | None = None,
    verbose: bool = False,
) -> SynthesisResult:
    """Run ``runs`` seeded searches (seeds ``config.random_state + k``) and pick the final metric.

    The final metric is the run winner with the highest equation-1 score (or the config's
    other fitness) among the runs' winners on the input split (paper, section 4.1), or with
    ``config.final_choice`` ``"worst"`` the one whose lowest input tau is highest.
    ``verbose`` prints one line per generation of each run to stderr
    (:data:`GENERATION_HEADER`; from the workers of the local backend too, not from Ray's).
    """
    config = config or SearchConfig()
    if runs < 1:
        raise GpsrError(f"--runs must be >= 1, got {runs}")
    executor = executor or LocalExecutor(1)
    wall_start = time.perf_counter()
    folder = Path(out) if out is not None else None
    if folder is not None:
        _prepare_folder(folder, dataset, config, runs)
    input_problems = dataset.part("input")
    tasks = [
        RunTask(
            k,
            config.random_state + k,
            config,
            input_problems,
            dataset.proxies,
            str(folder / "runs" / f"run-{k:03d}.json") if folder else None,
            verbose,
        )
        for k in range(runs)
    ]
    records: list[dict | None] = [None] * runs
    for index, record in executor.map(execute_run, tasks):
        records[index] = record
        if on_run_done:
            on_run_done(record)
    finals = [parse(r["expression"], dataset.proxies) for r in records]

    scorer = TauScorer(input_problems, dataset.proxies, config.device)
    final_taus = scorer.taus(finals)
    eq1 = make_fitness(config.fitness, len(dataset.names), config.fitness_weights)
    eq1.observe(final_taus)
    scores = eq1.score(final_taus)
    chosen = choose(finals, final_taus, eq1, config.final_choice)
    expression = finals[chosen]

    by_split = taus_by_split(finals, dataset, config.device)
    names = dataset.names
    per_run = [
        {
            "seed": r["seed"],
            "expression": r["expression"],
            "equation1_among_runs": float(scores[k]),
            "search_seconds": r["search_seconds"],
            "taus": {s: tau_dict(by_split[s][k], names) for s in SPLITS},
        }
        for k, r in enumerate(records)
    ]
    table15 = {
        name: {
            split: {
                "mean": float(np.nanmean(by_split[split][:, j])),
                "std": float(np.nanstd(by_split[split][:, j])),
            }
            for split in SPLITS
        }
        for j, name in enumerate(names)
    }
    report = {
        "gpsr_version": __version__,
        "gpsr_commit": gpsr_commit(),
        "config": config.to_dict(),
        "runs": runs,
        "seeds": [r["seed"] for r in records],
        "executor": executor.describe(),
        "data": dataset.describe(),
        "non_finite_policy": NON_FINITE_POLICY,
        "expression": describe_expression(expression),
        "taus": {s: tau_dict(by_split[s][chosen], names) for s in SPLITS},
        "best_single_proxy": best_single_proxies(dataset, config.device),
        "runs_summary": {"table15": table15, "per_run": per_run},
        "history": [{"seed": r["seed"], "generations": r["history"]} for r in records],
        "search_seconds": {
            "per_run_median": float(np.median([r["search_seconds"] for r in records])),
            "total": float(sum(r["search_seconds"] for r in records)),
        },
        "wall_seconds": time.perf_counter() - wall_start,
    }
    if dataset.calibration != "none":
        report["calibration"] = describe_calibration(dataset)
    if folder is not None:
        _write_json(folder / "result.json", report)
    return SynthesisResult(expression, dataset, records, report)


def describe_calibration(dataset: Dataset) -> dict:
    """The terminal maps of a calibrated dataset, as ``gpsr.Metric`` reads them back."""
    return {
        "method": dataset.calibration,
        "reference": "each problem's input rows (proxy values only); a live network is "
                     "scored with the maps of a named problem of its space, or of a proxy "
                     "table of its space computed by gpsr (gpsr score --reference)",
        "spaces": {p.name: p.space for p in dataset.problems},
        "maps": {name: c.maps for name, c in dataset.calibrations.items()},
    }


def describe_expression(expr: Expression) -> dict:
    return {
        "infix": expr.infix(),
        "simplified": str(expr.to_sympy(simplify=True)),
        "latex": expr.to_latex(),
        "tree": expr.to_json(),
        "proxies": sorted(expr.proxies()),
        "depth": expr.depth,
        "size": expr.size,
    }


def _prepare_folder(folder: Path, dataset: Dataset, config: SearchConfig, runs: int) -> None:
    """Check the run folder and its checkpoints, then create it: a folder is only made once
    everything that can be checked before the search has been."""
    wanted = {"config": config.to_dict(), "runs": runs, "data": dataset.describe()}
    wanted = json.loads(json.dumps(wanted))
    spec = folder / "config.json"
    if folder.exists() and not folder.is_dir():
        raise GpsrError(f"{folder}: is a file, not a run folder; choose another --out")
    if spec.exists():
        try:
            saved = read_json(spec)
        except GpsrError as exc:
            raise GpsrError(f"{exc}; the settings of {folder} are lost: choose another --out "
                            "or delete the folder") from None
        if isinstance(saved, dict) and isinstance(saved.get("config"), dict):
            # A folder written before a SearchConfig field existed ran with its default.
            defaults = json.loads(json.dumps(SearchConfig().to_dict()))
            saved["config"] = {**defaults, **saved["config"]}
        if saved != wanted:
            raise GpsrError(
                f"{folder}: holds a synthesis with other settings or data; "
                "choose another --out or delete the folder"
            )
        for k in range(runs):
            _check_checkpoint(folder / "runs" / f"run-{k:03d}.json", dataset.proxies)
    elif folder.exists() and any(folder.iterdir()):
        raise GpsrError(f"{folder}: exists and is not a gpsr run folder; choose another --out")
    try:
        (folder / "runs").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GpsrError(f"{folder}: cannot create the run folder ({exc.strerror})") from None
    _write_json(spec, wanted)


def _check_checkpoint(path: Path, proxies: tuple[str, ...]) -> None:
    """Refuse a checkpoint the run could not resume from, saying which file to delete (that
    run then starts over; the others are kept)."""
    if not path.exists():
        return
    try:
        saved = read_json(path)
        if not isinstance(saved, dict) or not isinstance(saved.get("done"), bool):
            raise GpsrError("no 'done' flag")
        if saved["done"]:
            for key, kind in (("seed", int), ("expression", str), ("search_seconds", float),
                              ("history", list)):
                if not isinstance(saved.get(key), (kind, int)):
                    raise GpsrError(f"no {key!r}")
            parse(saved["expression"], proxies)
        else:
            state = RunState(**saved["state"])
            if not (isinstance(state.generation, int) and isinstance(state.population, list)
                    and isinstance(state.rng_state, dict)):
                raise GpsrError("a malformed state")
            for infix in state.population:
                parse(infix, proxies)
    except (GpsrError, KeyError, TypeError) as exc:
        why = str(exc) if isinstance(exc, GpsrError) else f"{type(exc).__name__}: {exc}"
        raise GpsrError(f"{path}: corrupt checkpoint ({why.removeprefix(f'{path}: ')}); delete "
                        "it and run again: that run starts over, finished runs are kept") from None


def read_result(path: Path) -> dict:
    """A ``result.json`` written by :func:`synthesize`."""
    report = read_json(path)
    expression = report.get("expression") if isinstance(report, dict) else None
    if not isinstance(expression, dict) or "infix" not in expression:
        raise GpsrError(f"{path}: not a gpsr result.json (no expression.infix)")
    return report


def _write_json(path: Path, data: dict, indent: int | None = 1) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=indent))
    os.replace(tmp, path)


