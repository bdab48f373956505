"""``gpsr compare``: gpsr's SR against other ways to combine proxies, on the same data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from gpsr.cli.common import (
    AddressOpt,
    BackendOpt,
    GenerationsOpt,
    InputFractionOpt,
    PopulationOpt,
    SentinelsOpt,
    SplitSeedOpt,
    console,
    err_console,
    friendly,
)
from gpsr.errors import GpsrError


@friendly
def compare(
    data: Annotated[
        list[Path] | None,
        typer.Option("--data", help="Problem file (CSV or NASLib zc_*.json) or folder; "
                     "repeatable (default: the shipped mini benchmark)."),
    ] = None,
    problems: Annotated[
        list[str] | None,
        typer.Option("--problems", help="Problem names, comma-separated or repeated."),
    ] = None,
    accuracies: Annotated[
        list[Path] | None,
        typer.Option("--accuracies", help="Benchmark CSV whose val_accuracy joins a proxy table."),
    ] = None,
    methods: Annotated[str, typer.Option(help="Comma-separated method names, or 'all'.")] = "all",
    runs: Annotated[int, typer.Option(help="Seeded runs per SR fit (SR and its variants).")] = 31,
    population: PopulationOpt = 100,
    generations: GenerationsOpt = 50,
    seed: Annotated[int, typer.Option(help="Seed of SR run 0 and of stochastic baselines.")] = 0,
    loo_runs: Annotated[
        int | None, typer.Option(help="SR runs per leave-one-out fit (default: --runs).")
    ] = None,
    leave_one_out: Annotated[
        bool, typer.Option(help="Also fit on all problems but one and score the one left out.")
    ] = True,
    out: Annotated[Path, typer.Option(help="Folder for compare.json and the journal; an "
                                      "interrupted comparison there is continued.")] = Path(
        "gpsr-compare"),
    jobs: Annotated[int, typer.Option(help="Parallel fits (local processes).")] = 1,
    backend: BackendOpt = "local",
    address: AddressOpt = None,
    sentinels: SentinelsOpt = "keep",
    split_seed: SplitSeedOpt = 0,
    input_fraction: InputFractionOpt = 0.7,
    as_json: Annotated[bool, typer.Option("--json", help="Print compare.json to stdout.")] = False,
) -> None:
    """Fit every method (SR, best single proxy, AZ-NAS, UP-NAS, RoBoT, EZNAS, Auto-Prox, mean
    tau, random forest) on the input splits; Kendall tau on the test splits and on held-out
    problems, and the seconds each fit took."""
    from gpsr.cli.app import _load
    from gpsr.data import build_dataset
    from gpsr.executor import make_executor
    from gpsr.methods import ALL_METHODS, METHODS, mean_taus
    from gpsr.methods import compare as run_compare
    from gpsr.search import SearchConfig

    chosen = list(ALL_METHODS) if methods == "all" else [
        m.strip() for m in methods.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in METHODS]
    if unknown or not chosen:
        raise GpsrError(f"unknown method {unknown[0] if unknown else methods!r} "
                        f"(known: {', '.join(METHODS)}, or all)")
    loaded = _load(data, problems, accuracies)
    if leave_one_out and len(loaded) < 2:
        raise GpsrError("--leave-one-out needs at least two problems (or --no-leave-one-out)")
    if out.exists() and not out.is_dir():
        raise GpsrError(f"{out}: exists and is not a folder")
    config = SearchConfig(population_size=population, generations=generations)
    dataset = build_dataset(loaded, None, sentinels, split_seed, input_fraction)
    for note in dataset.notes:
        err_console.print(f"[dim]note: {note}[/dim]")
    executor = make_executor(backend, jobs, address)  # checks --jobs before --out is made
    with Progress(TextColumn("[bold]fits"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err_console, transient=True) as progress:
        task = progress.add_task("fits", total=None)
        result = run_compare(
            dataset.problems, chosen, runs, seed, leave_one_out,
            executor, out / "journal.jsonl", config=config, dataset=dataset,
            on_progress=lambda done, total: progress.update(task, completed=done, total=total),
            loo_runs=loo_runs)
    result["means"] = mean_taus(result)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(result, indent=1))
    if as_json:
        print(json.dumps(result, indent=1))
        return
    from rich.table import Table

    names = result["problems"]
    table = Table(title="Kendall tau, test split")
    for column in ("method", *names, "mean", "mean LOO" if leave_one_out else None, "seconds"):
        if column:
            table.add_column(column, justify="left" if column == "method" else "right")
    for row in result["methods"]:
        mean = result["means"][row["name"]]
        cells = [row["name"], *(_cell(row["taus"]["test"].get(n)) for n in names),
                 _cell(mean["test"])]
        if leave_one_out:
            cells.append(_cell(mean["leave_one_out"]))
        table.add_row(*cells, f"{row['seconds']:.1f}")
    console.print(table)
    console.print(f"wrote {out / 'compare.json'}")


def _cell(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"
