"""``gpsr bench``: build gpsr's mini benchmark problems and report their figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from gpsr.cli.common import AddressOpt, BackendOpt, console, err_console, friendly
from gpsr.errors import GpsrError
from gpsr.report import BEST_PROXY_RULE

bench_app = typer.Typer(no_args_is_help=True,
                        help="gpsr's mini benchmark: build problems, report their figures.")


@bench_app.command("build")
@friendly
def build(
    space: Annotated[str, typer.Option(help="mini201, minimacro or minimicro.")],
    task: Annotated[str, typer.Option(help="digits-class or digits-rotation.")],
    out: Annotated[Path, typer.Option(help="Problem file to write, <space>-<task>.csv.")],
    archs: Annotated[int, typer.Option(help="Architectures to sample (distinct).")] = 200,
    epochs: Annotated[int, typer.Option(help="Training epochs per architecture.")] = 4,
    seed: Annotated[int, typer.Option(help="Seed of the sample and of the proxy batch.")] = 0,
    train_seed: Annotated[
        int | None, typer.Option(help="Seed of initial weights and training (default: --seed).")
    ] = None,
    jobs: Annotated[int, typer.Option(help="Parallel workers (one CPU thread each).")] = 1,
    backend: BackendOpt = "local",
    address: AddressOpt = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue an interrupted build, or extend a finished "
                     "one to more --archs (a finished CSV is trusted to match the other "
                     "options)."),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing output.")] = False,
    repair: Annotated[
        bool, typer.Option("--repair", help="With --resume: drop corrupt records of the "
                           "journal (they are trained again), keep the rest.")
    ] = False,
) -> None:
    """Train sampled architectures with gpsr's fixed recipe and write their proxies and scores.

    The recipe is documented in gpsr.minibench (python -c 'help("gpsr.minibench")').
    """
    from gpsr.data import MIN_ARCHITECTURES
    from gpsr.minibench import build as build_problem

    if 1 <= archs < MIN_ARCHITECTURES:
        err_console.print(f"warning: --archs {archs} builds fewer than {MIN_ARCHITECTURES} "
                          "architectures, a problem gpsr run refuses; extend it later with "
                          f"--resume --archs {MIN_ARCHITECTURES} or more", highlight=False,
                          soft_wrap=True)

    with Progress(TextColumn(f"[bold]{space} {task}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                  console=err_console, transient=True) as progress:
        bar = progress.add_task("build", total=None)

        def show(done: int, total: int) -> None:
            progress.update(bar, completed=done, total=total)

        result = build_problem(space, task, archs, epochs, seed, out, train_seed=train_seed,
                               jobs=jobs, backend=backend, address=address, resume=resume,
                               force=force, on_progress=show, repair=repair)
    console.print(f"wrote {result.out}: {result.architectures} architectures, "
                  f"{result.trained} trained in {result.seconds:.1f} s")


@bench_app.command("reproxy")
@friendly
def reproxy(
    file: Annotated[Path, typer.Argument(help="A finished build, <space>-<task>.csv.")],
    seed: Annotated[int, typer.Option(help="The build's --seed.")] = 0,
    train_seed: Annotated[
        int | None, typer.Option(help="The build's --train-seed (default: --seed).")
    ] = None,
    jobs: Annotated[int, typer.Option(help="Parallel workers (one CPU thread each).")] = 1,
    backend: BackendOpt = "local",
    address: AddressOpt = None,
) -> None:
    """Recompute a build's proxy columns with the current gpsr.proxies, keeping its scores."""
    from gpsr.minibench import refresh_proxies

    with Progress(TextColumn(f"[bold]{file.name}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                  console=err_console, transient=True) as progress:
        bar = progress.add_task("reproxy", total=None)
        n = refresh_proxies(file, seed, train_seed=train_seed, jobs=jobs, backend=backend,
                            address=address,
                            on_progress=lambda done, total: progress.update(
                                bar, completed=done, total=total))
    console.print(f"wrote {file}: proxies of {n} architectures recomputed")


@bench_app.command("report")
@friendly
def report(
    files: Annotated[list[Path], typer.Argument(help="Problem files written by bench build.")],
    second_seed: Annotated[
        list[Path] | None,
        typer.Option(help="Rebuilds with another --train-seed, matched to FILES by name."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Spread of scores, Kendall tau of every proxy, and agreement between training seeds."""
    from gpsr.data import load_csv
    from gpsr.minibench import figures

    reruns = {rerun.name: rerun for rerun in map(load_csv, second_seed or [])}
    problems = list(map(load_csv, files))
    for rerun in reruns.values():
        if rerun.name not in {p.name for p in problems}:
            raise GpsrError(f"--second-seed {rerun.source}: no FILES problem is named "
                            f"{rerun.name} (a rebuild is matched to FILES by file name)")
    results = [figures(p, reruns.get(p.name)) for p in problems]
    if as_json:
        print(json.dumps([r.to_dict() for r in results], indent=1))
        return
    # Problem names stay whole; the other cells wrap at their spaces to fit 80 columns.
    table = Table(title="mini benchmark problems", box=box.SIMPLE_HEAD, padding=(0, 0),
                  pad_edge=False, title_justify="left")
    table.add_column("problem", no_wrap=True)
    # Minimum widths: the longest word of each column (header or cell), never cut.
    for column, width in (("n", 3), ("val min / median / max", 6), ("val std", 5),
                          ("best proxy (tau)", 9), ("two-seed tau (n)", 8),
                          ("s train / proxies", 7)):
        table.add_column(column, justify="right", min_width=width)
    for r in results:
        best, tau = r.best_proxy
        seed_tau = "-" if r.two_seed_tau is None else \
            f"{r.two_seed_tau:.3f} ({r.two_seed_architectures})"
        table.add_row(r.name, str(r.architectures),
                      f"{r.val_min:.1f} / {r.val_median:.1f} / {r.val_max:.1f}",
                      f"{r.val_std:.2f}", f"{best} {tau:.3f}", seed_tau,
                      f"{r.seconds_train_median or 0:.2f} / {r.seconds_proxies_median or 0:.2f}")
    console.print(table)
    console.print(f"{BEST_PROXY_RULE}, on all rows.", markup=False, highlight=False)
