"""What every ``gpsr`` command shares: the consoles and the one-line error handling."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console

from gpsr.errors import GpsrError

console = Console()
err_console = Console(stderr=True)

# Options several commands take, spelled once.
BackendOpt = Annotated[str, typer.Option(help="Executor: local or ray.")]
AddressOpt = Annotated[str | None, typer.Option(help="Ray cluster address.")]
SpaceOpt = Annotated[str, typer.Option(help="Search space: nb201, nb101, nb301, tnb101-...")]
SentinelsOpt = Annotated[str, typer.Option(help="Failure sentinels: keep or drop rows.")]
SplitSeedOpt = Annotated[int, typer.Option(help="Seed of the input/test split.")]
PopulationOpt = Annotated[int, typer.Option(help="Population size N of each SR run.")]
GenerationsOpt = Annotated[int, typer.Option(help="Generations per SR run.")]
InputFractionOpt = Annotated[
    float, typer.Option(help="Share of each problem's rows a search or fit sees (input split).")
]


def friendly(command: Callable[..., None]) -> Callable[..., None]:
    """User errors become one line on stderr and exit status 2, never a traceback; an
    interruption says how to resume."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs) -> None:
        try:
            command(*args, **kwargs)
        except GpsrError as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted; run the same command again to resume "
                              "(with --resume where the command has it)")
            raise typer.Exit(130) from None

    return wrapper
