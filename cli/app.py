"""``gpsr`` command line: thin wrappers that parse options, call the library and print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from gpsr.cli.bench import bench_app
from gpsr.cli.common import (
    AddressOpt,
    BackendOpt,
    SpaceOpt,
    console,
    err_console,
    friendly,
)
from gpsr.data import build_dataset, load_problems
from gpsr.errors import GpsrError
from gpsr.executor import make_executor
from gpsr.expressions import Expression, parse
from gpsr.genetic import SearchConfig
from gpsr.report import SPLITS, tau_table
from gpsr.search import read_result

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Synthesize zero-cost NAS proxies by symbolic regression.")
app.add_typer(bench_app, name="bench")

DataOpt = Annotated[
    list[Path] | None,
    typer.Option("--data", help="Problem file (CSV or NASLib zc_*.json) or folder; repeatable."),
]
AccuraciesOpt = Annotated[
    list[Path] | None,
    typer.Option("--accuracies", help="Benchmark CSV whose val_accuracy joins a proxy table."),
]
ProblemsOpt = Annotated[
    list[str] | None,
    typer.Option("--problems", help="Problem names, comma-separated or repeated (default: all)."),
]


def _problem_names(problems: list[str] | None) -> list[str] | None:
    if not problems:
        return None
    return [name.strip() for item in problems for name in item.split(",") if name.strip()]


def _load(data: list[Path] | None, problems: list[str] | None,
          accuracies: list[Path] | None = None):
    """The problems of ``--data``; without it, the benchmark that ships with gpsr."""
    names = _problem_names(problems)
    if data:
        return load_problems(data, names, accuracies or ())
    from gpsr.minibench import SHIPPED_DIR, shipped_problems

    err_console.print(f"[dim]data: the shipped mini benchmark ({SHIPPED_DIR})[/dim]")
    return shipped_problems(names)


@app.command()
@friendly
def run(
    data: DataOpt = None,
    problems: ProblemsOpt = None,
    accuracies: AccuraciesOpt = None,
    out: Annotated[Path, typer.Option(help="Run folder; an existing one is resumed.")] = Path(
        "gpsr-run"
    ),
    population: Annotated[int, typer.Option(help="Population size N.")] = 100,
    generations: int = 50,
    runs: Annotated[int, typer.Option(help="Independent seeded runs.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of run 0; run k uses seed + k.")] = 0,
    jobs: Annotated[int, typer.Option(help="Parallel runs (local processes).")] = 1,
    backend: BackendOpt = "local",
    address: AddressOpt = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    tournament_size: int = 2,
    p_crossover: float = 0.7,
    p_subtree: float = 0.1,
    p_hoist: float = 0.5,
    p_point: float = 0.1,
    min_depth: int = 2,
    max_depth: int = 10,
    proxies: Annotated[
        str | None, typer.Option(help="Terminal set, comma-separated (default: shared proxies).")
    ] = None,
    sentinels: Annotated[str, typer.Option(help="Failure sentinels: keep or drop rows.")] = "keep",
    split_seed: int = 0,
    input_fraction: float = 0.7,
    as_json: Annotated[bool, typer.Option("--json", help="Print result.json to stdout.")] = False,
) -> None:
    """Synthesize a zero-cost proxy over several NAS problems (paper, section 3)."""
    from gpsr.kernels.kendall import warm_up
    from gpsr.search import synthesize

    terminals = [p.strip() for p in proxies.split(",") if p.strip()] if proxies else None
    dataset = build_dataset(_load(data, problems, accuracies), terminals, sentinels, split_seed,
                            input_fraction)
    for note in dataset.notes:
        err_console.print(f"[dim]note: {note}[/dim]")
    config = SearchConfig(
        population_size=population, generations=generations, tournament_size=tournament_size,
        p_crossover=p_crossover, p_subtree_mutation=p_subtree, p_hoist_mutation=p_hoist,
        p_point_mutation=p_point, min_depth=min_depth, max_depth=max_depth,
        init_depth=(max(2, min_depth), min(6, max_depth)), random_state=seed, device=device,
    )
    executor = make_executor(backend, jobs, address)
    with err_console.status("preparing the kernels (compiled on first use, then cached)"):
        warm_up()
    with Progress(TextColumn("[bold]runs"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err_console, transient=True) as progress:
        task = progress.add_task("runs", total=runs)
        result = synthesize(dataset, config, runs, executor, out,
                            on_run_done=lambda _: progress.advance(task))
    report = result.report
    if as_json:
        print(json.dumps(report, indent=1))
        return
    expr = report["expression"]
    console.print(f"[bold]expression[/bold]  {expr['infix']}")
    console.print(f"[bold]simplified[/bold]  {expr['simplified']}")
    rows = {f"gpsr ({split})": report["taus"][split] for split in SPLITS}
    for split in ("test", "all"):
        rows[f"best single proxy ({split})"] = {
            name: best[split] for name, best in report["best_single_proxy"].items()
        }
    console.print(tau_table("Kendall tau", rows, dataset.names))
    console.print(
        "best single proxies: "
        + ", ".join(f"{n}: {b['proxy']}" for n, b in report["best_single_proxy"].items())
    )
    console.print(
        f"{runs} run(s), search {report['search_seconds']['per_run_median']:.2f} s median per run, "
        f"wall {report['wall_seconds']:.1f} s; wrote {out / 'result.json'}"
    )


def _expression_from(text: str) -> tuple[Expression, dict]:
    """EXPR, a proxy name, or a result.json (whose split and sentinel settings are reused)."""
    if text.endswith(".json") and Path(text).is_file():
        report = read_result(Path(text))
        return parse(report["expression"]["infix"]), report.get("data", {})
    return parse(text), {}


@app.command()
@friendly
def evaluate(
    expr: Annotated[str, typer.Option("--expr", help="Expression, proxy name or result.json.")],
    data: DataOpt = None,
    problems: ProblemsOpt = None,
    accuracies: AccuraciesOpt = None,
    device: str = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Kendall tau of an expression on every problem that has its proxies."""
    from gpsr import evaluate as evaluate_expression

    expression, settings = _expression_from(expr)
    loaded = _load(data, problems, accuracies)
    needed = sorted(expression.proxies())
    usable = [p for p in loaded if set(needed) <= set(p.proxies)]
    skipped = [p.name for p in loaded if p not in usable]
    if not usable:
        raise GpsrError(f"no loaded problem has every proxy of {expression.infix()!r} ({needed})")
    dataset = build_dataset(usable, needed, settings.get("sentinel_policy", "keep"),
                            settings.get("split_seed", 0), settings.get("input_fraction", 0.7))
    taus = evaluate_expression(expression, dataset, device)
    if as_json:
        print(json.dumps({"expression": expression.infix(), "taus": taus, "skipped": skipped},
                         indent=1))
        return
    console.print(tau_table(expression.infix(), {s: taus[s] for s in SPLITS}, dataset.names))
    if skipped:
        console.print(f"[dim]skipped (lacking a proxy): {', '.join(skipped)}[/dim]")


@app.command("bench-throughput")
@friendly
def bench_throughput(
    data: DataOpt = None,
    problems: ProblemsOpt = None,
    population: int = 100,
    repeats: int = 5,
    device: str = "auto",
    save: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Expressions per second: gpsr's batched engine against numpy + scipy, one by one."""
    from gpsr.bench import bench_throughput as measure

    dataset = build_dataset(_load(data, problems))
    result = measure(dataset, population, repeats, device)
    if save:
        save.parent.mkdir(parents=True, exist_ok=True)
        save.write_text(json.dumps(result, indent=1))
    if as_json:
        print(json.dumps(result, indent=1))
        return
    for who in ("gpsr", "reference"):
        r = result[who]
        console.print(f"{who:>9}: {r['expressions_per_s']:10.1f} expr/s  "
                      f"{r['expr_arch_evals_per_s']:14.0f} expr x arch/s")
    ours = result["gpsr"]
    console.print(f"     gpsr: {1e3 * ours['median_seconds']:.1f} ms per population: evaluation "
                  f"{1e3 * ours['evaluate_median_seconds']:.1f} ms, Kendall tau "
                  f"{1e3 * ours['kendall_median_seconds']:.1f} ms (timed apart)")
    console.print(f"    ratio: {result['ratio']:.1f}x on {result['device']} "
                  f"({result['architectures']} architectures, max |tau diff| "
                  f"{result['max_abs_tau_difference']:.1e})")


def _live_batch(images: Path | None, batch_size: int):
    from gpsr.proxies import batch_from_npz, default_batch

    batch = batch_from_npz(images, batch_size) if images else default_batch(batch_size)
    if batch is None:
        raise GpsrError("no --images given and no shared CIFAR-10 sample found (set GPSR_SHARED)")
    return batch


def _archs(arch: list[str] | None, archs_file: Path | None) -> list[str]:
    found = list(arch or [])
    if archs_file:
        try:
            found += [line.strip() for line in archs_file.read_text().splitlines() if line.strip()]
        except OSError as exc:
            raise GpsrError(f"{archs_file}: cannot read ({exc.strerror})") from None
    if not found:
        raise GpsrError("give --arch ARCH (repeatable) or --archs-file FILE")
    return found


ImagesOpt = Annotated[
    Path | None, typer.Option(help="Image sample (.npz with images, labels); default: CIFAR-10.")
]
ArchOpt = Annotated[list[str] | None, typer.Option("--arch", help="Architecture string.")]


@app.command()
@friendly
def score(
    metric: Annotated[str, typer.Option(help="result.json, expression or proxy name.")],
    space: SpaceOpt,
    arch: ArchOpt = None,
    archs_file: Annotated[Path | None, typer.Option(help="One architecture per line.")] = None,
    num_classes: int = 10,
    images: ImagesOpt = None,
    batch_size: int = 64,
    device: str | None = None,
    seed: int = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Score live networks with a synthesized metric (computes only the proxies it needs)."""
    from gpsr.metric import Metric
    from gpsr.spaces import parse_arch

    scorer = Metric.load(metric)
    names = _archs(arch, archs_file)
    for name in names:
        parse_arch(space, name)
    values = scorer.score_archs(space, names, _live_batch(images, batch_size), num_classes,
                                device, seed)
    if as_json:
        print(json.dumps({"metric": scorer.expression.infix(), "space": space,
                          "scores": dict(zip(names, values))}, indent=1))
        return
    for name, value in zip(names, values):
        console.print(f"{value:.6g}\t{name}", highlight=False)


@app.command()
@friendly
def proxies(
    space: SpaceOpt,
    arch: ArchOpt = None,
    num_classes: int = 10,
    images: ImagesOpt = None,
    batch_size: int = 64,
    device: str | None = None,
    seed: int = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """All 16 zero-cost proxies of live networks, in shared passes."""
    import torch
    from rich.table import Table

    from gpsr.proxies import PROXIES, compute_proxies
    from gpsr.spaces import build_network

    batch = _live_batch(images, batch_size)
    names = _archs(arch, None)
    rows = {}
    for name in names:
        torch.manual_seed(seed)  # a fixed initialisation makes the values reproducible
        rows[name] = compute_proxies(build_network(space, name, num_classes), batch,
                                     device=device, seed=seed)
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    table = Table(title=f"zero-cost proxies ({space})")
    table.add_column("proxy")
    for k in range(len(names)):
        table.add_column(f"arch {k}", justify="right")
    for proxy in PROXIES:
        table.add_row(proxy, *(f"{rows[n][proxy]:.6g}" for n in names))
    console.print(table)


@app.command("proxies-table")
@friendly
def proxies_table(
    space: SpaceOpt,
    archs: Annotated[int, typer.Option(help="Architectures, sampled uniformly with --seed.")],
    out: Annotated[Path, typer.Option(help="CSV to write: arch, 16 proxies, seconds.")],
    seed: int = 0,
    num_classes: int = 10,
    images: ImagesOpt = None,
    batch_size: int = 64,
    jobs: Annotated[int, typer.Option(help="Parallel workers (local processes).")] = 1,
    backend: BackendOpt = "local",
    address: AddressOpt = None,
    resume: bool = False,
    force: bool = False,
    only: Annotated[
        str | None,
        typer.Option(help="Comma-separated proxies: recompute only these columns of an "
                     "existing table (same seeds), keeping the others."),
    ] = None,
) -> None:
    """gpsr's own proxy data: all 16 proxies for a seeded sample of a space (resumable)."""
    from gpsr.proxies.table import compute_table

    executor = make_executor(backend, jobs, address)
    with Progress(TextColumn("[bold]networks"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err_console) as progress:
        task = progress.add_task("networks", total=archs)
        path = compute_table(space, archs, out, executor, seed, num_classes,
                             str(images) if images else None, batch_size, resume, force,
                             on_progress=lambda done, total: progress.update(task, completed=done),
                             only=[n.strip() for n in only.split(",")] if only else None)
    console.print(f"wrote {path}")


def main() -> None:
    """Console entry point."""
    app()
