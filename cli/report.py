"""``gpsr report``: a page of figures and tables from run folders."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from gpsr.cli.common import console, err_console, friendly
from gpsr.errors import GpsrError


@friendly
def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run folders written by gpsr run.")],
    out: Annotated[Path, typer.Option(help="Folder for report.md, its PNGs and report.html.")]
    = Path("gpsr-report"),
    methods: Annotated[
        Path | None,
        typer.Option(help='Methods table (JSON: {"problems": [...], "split": "test", '
                     '"methods": [{"name", "follows", "taus": {split: {problem: tau}}, '
                     '"seconds", "expression"}], "leave_one_out", "gpsr_commit", "seeds"}).'),
    ] = None,
    split: Annotated[str, typer.Option(help="Split of the taus shown: input, test or all.")]
    = "test",
    data: Annotated[
        list[Path] | None,
        typer.Option("--data", help="Folder to look for the runs' problem files in, when they "
                     "are not where the run found them; repeatable."),
    ] = None,
    also: Annotated[
        list[Path] | None,
        typer.Option("--also", help="More problem files or folders: each run's metric and every "
                     "proxy are evaluated on them too (heatmap and methods table); repeatable."),
    ] = None,
    also_problems: Annotated[
        str | None, typer.Option(help="Keep only these problems of --also, comma-separated.")
    ] = None,
    html: Annotated[bool, typer.Option(help="Also write the self-contained report.html.")]
    = True,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Figures and tables of run folders: tau heatmap, every method side by side, accuracy
    against the metric, proxy frequency, convergence, and why each proxy is there."""
    from gpsr.data import load_problems
    from gpsr.report import build_report, write_report

    if out.exists() and not out.is_dir():
        raise GpsrError(f"{out}: exists and is not a folder")  # before the report is computed
    words = ["gpsr", "report", *map(str, run_dirs), "--out", str(out)]
    if methods is not None:
        words += ["--methods", str(methods)]
    if split != "test":
        words += ["--split", split]
    for folder in data or []:
        words += ["--data", str(folder)]
    for path in also or []:
        words += ["--also", str(path)]
    if also_problems:
        words += ["--also-problems", also_problems]
    names = [n.strip() for n in also_problems.split(",") if n.strip()] if also_problems else None
    more = load_problems(also, names) if also else []
    blocks, notes = build_report(run_dirs, methods, split, data or [], shlex.join(words), device,
                                 more)
    for note in notes:
        err_console.print(f"[yellow]note:[/yellow] {note}", highlight=False, soft_wrap=True)
    written = write_report(blocks, out, html)
    pages = 2 if html else 1
    console.print(f"wrote {', '.join(map(str, written[:pages]))} and "
                  f"{len(written) - pages} figure(s)")
