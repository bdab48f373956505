"""``gpsr search``: Aging Evolution or random search maximizing a zero-cost metric."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from gpsr.cli.common import AddressOpt, BackendOpt, console, err_console, friendly
from gpsr.errors import GpsrError

RESULT_NAME = "search.json"
SUMMARY_NAME = "summary.md"
JOURNAL_NAME = "evaluations.jsonl"


@friendly
def search(
    metric: Annotated[str, typer.Option(help="Proxy name, expression or result.json.")],
    mode: Annotated[str, typer.Option(help="lookup (a benchmark problem's logged proxies) or "
                                           "live (proxies computed on each network).")] = "lookup",
    space: Annotated[str | None, typer.Option(
        help="Search space (live: required; lookup: checked against the problem).")] = None,
    problem: Annotated[str | None, typer.Option(
        help="Lookup mode: problem name, e.g. NB201-CF10.")] = None,
    data: Annotated[list[Path] | None, typer.Option(
        "--data", help="Lookup mode: problem file or folder (default: ../shared's "
                       "NAS-Bench-Suite-Zero folder and the shipped problems).")] = None,
    algorithm: Annotated[str, typer.Option(help="ae (Aging Evolution) or random.")] = "ae",
    evaluations: Annotated[int, typer.Option(help="Metric evaluations (budget).")] = 3000,
    population: Annotated[int, typer.Option(help="Aging Evolution population size.")] = 100,
    sample_size: Annotated[int, typer.Option(help="Aging Evolution tournament sample.")] = 10,
    p_mutation: Annotated[float, typer.Option(
        help="Probability that a child is mutated (else an unchanged copy).")] = 0.5,
    seed: Annotated[int, typer.Option(help="Seed of the search and of the networks.")] = 0,
    jobs: Annotated[int, typer.Option(help="Live mode: networks scored in parallel.")] = 1,
    backend: BackendOpt = "local",
    address: AddressOpt = None,
    images: Annotated[Path | None, typer.Option(
        help="Live mode: image sample (.npz with images, labels); default: CIFAR-10.")] = None,
    batch_size: Annotated[int, typer.Option(help="Live mode: images per proxy batch.")] = 64,
    num_classes: Annotated[int, typer.Option(
        help="Classes of the live networks' output layer (live mode).")] = 10,
    device: Annotated[str | None, typer.Option(help="Live mode: cpu or cuda "
                                                    "(default: cuda when present).")] = None,
    out: Annotated[Path | None, typer.Option(
        help=f"Folder for {RESULT_NAME} and {SUMMARY_NAME} (live mode also journals every "
             f"network to {JOURNAL_NAME} there).")] = None,
    resume: Annotated[bool, typer.Option(help="Live mode: continue the search in --out.")] = False,
    force: Annotated[bool, typer.Option(
        help="Live mode: start over in --out, discarding its journal.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result JSON.")] = False,
) -> None:
    """Search architectures that maximize a zero-cost metric (Aging Evolution or random)."""
    from gpsr.archsearch import MODES, search_architectures
    from gpsr.executor import make_executor

    if mode not in MODES:
        raise GpsrError(f"unknown --mode {mode!r}; known: {', '.join(MODES)}")
    journal = None
    if resume and force:
        raise GpsrError("--resume and --force exclude each other")
    if out is not None:
        if out.exists() and not out.is_dir():
            raise GpsrError(f"{out}: exists and is not a folder")
        if mode == "live":
            journal = out / JOURNAL_NAME
            if force:
                journal.unlink(missing_ok=True)
            if journal.exists() and not resume:
                raise GpsrError(f"{journal}: a search was started here (use --resume or --force)")
    elif resume or force:
        raise GpsrError("--resume and --force need --out, the folder of the live search")
    batch = None
    if mode == "live":
        from gpsr.proxies import batch_from_npz, default_batch

        batch = batch_from_npz(images, batch_size) if images else default_batch(batch_size)
        if batch is None:
            raise GpsrError("no --images given and no shared CIFAR-10 sample found "
                            "(set GPSR_SHARED)")
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("best {task.fields[best]}"), TimeElapsedColumn(),
               TimeRemainingColumn())
    progress = Progress(*columns, console=err_console, transient=True)
    task = progress.add_task(f"{algorithm} {mode}", total=evaluations, best="-")

    def on_progress(done: int, total: int, best: float) -> None:
        # Started at the first evaluation, so an input error prints only its one line.
        progress.start()
        progress.update(task, completed=done, best=f"{best:.6g}")

    try:
        result = search_architectures(
            metric, space, mode=mode, problem=problem, data=data or None, algorithm=algorithm,
            max_evaluations=evaluations, population_size=population, sample_size=sample_size,
            p_mutation=p_mutation, random_state=seed,
            executor=make_executor(backend, jobs, address) if mode == "live" else None,
            batch=batch, num_classes=num_classes, device=device, journal=journal,
            on_progress=on_progress,
        )
    finally:
        if progress.live.is_started:
            progress.stop()
    report = result.to_dict()
    summary = result.summary()
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / RESULT_NAME).write_text(json.dumps(report, indent=1) + "\n")
        (out / SUMMARY_NAME).write_text("# gpsr search\n\n```\n" + summary + "\n```\n")
    if as_json:
        print(json.dumps(report, indent=1))
        return
    console.print(summary, highlight=False, soft_wrap=True)
    if out is not None:
        console.print(f"wrote {out / RESULT_NAME} and {out / SUMMARY_NAME}")
