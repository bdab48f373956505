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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gpsr import __version__
from gpsr.data import Dataset, Problem
from gpsr.errors import GpsrError
from gpsr.executor import Executor, LocalExecutor
from gpsr.expressions import Expression, parse
from gpsr.fitness import Equation1, TauScorer
from gpsr.genetic import RunState, SearchConfig, choose, evolve
from gpsr.kernels.kendall import warm_up
from gpsr.report import SPLITS, best_single_proxies, tau_dict, taus_by_split

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
        saved = _read_json(Path(task.checkpoint))
        if saved.get("done"):
            return saved
        resume = RunState(**saved["state"])

    def save(state: RunState) -> None:
        if task.checkpoint:
            # Compact: a checkpoint is rewritten every generation, on the search's clock.
            _write_json(Path(task.checkpoint), {"done": False, "state": state.to_dict()}, None)

    warm_up()  # search seconds measure the search, not numba's one-time compilation
    start = time.perf_counter()
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


@dataclass
class SynthesisResult:
    expression: Expression
    dataset: Dataset
    runs: list[dict]
    report: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return self.report


def synthesize(
    dataset: Dataset,
    config: SearchConfig | None = None,
    runs: int = 1,
    executor: Executor | None = None,
    out: str | Path | None = None,
    on_run_done: Callable[[dict], None] | None = None,
) -> SynthesisResult:
    """Run ``runs`` seeded searches (seeds ``config.random_state + k``) and pick the final metric.

    The final metric is the run winner with the highest equation-1 score among the
    runs' winners on the input split (paper, section 4.1), or with ``config.final_choice``
    ``"worst"`` the one whose lowest input tau is highest.
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
    eq1 = Equation1(len(dataset.names))
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
    wanted = {"config": config.to_dict(), "runs": runs, "data": dataset.describe()}
    wanted = json.loads(json.dumps(wanted))
    spec = folder / "config.json"
    if spec.exists():
        if _read_json(spec) != wanted:
            raise GpsrError(
                f"{folder}: holds a synthesis with other settings or data; "
                "choose another --out or delete the folder"
            )
    elif folder.exists() and any(folder.iterdir()):
        raise GpsrError(f"{folder}: exists and is not a gpsr run folder; choose another --out")
    (folder / "runs").mkdir(parents=True, exist_ok=True)
    _write_json(spec, wanted)


def read_result(path: Path) -> dict:
    """A ``result.json`` written by :func:`synthesize`."""
    try:
        report = json.loads(path.read_text())
    except OSError as exc:
        raise GpsrError(f"{path}: cannot read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise GpsrError(f"{path}: malformed JSON ({exc.msg} at line {exc.lineno})") from None
    expression = report.get("expression") if isinstance(report, dict) else None
    if not isinstance(expression, dict) or "infix" not in expression:
        raise GpsrError(f"{path}: not a gpsr result.json (no expression.infix)")
    return report


def _write_json(path: Path, data: dict, indent: int | None = 1) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=indent))
    os.replace(tmp, path)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise GpsrError(f"{path}: malformed JSON ({exc.msg} at line {exc.lineno})") from None
