"""``gpsr`` command line: thin wrappers that parse options, call the library and print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from gpsr.cli.bench import bench_app
from gpsr.cli.common import (
    AddressOpt,
    BackendOpt,
    GenerationsOpt,
    InputFractionOpt,
    PopulationOpt,
    SentinelsOpt,
    SpaceOpt,
    SplitSeedOpt,
    console,
    err_console,
    friendly,
)
from gpsr.cli.compare import compare
from gpsr.cli.report import report as report_command
from gpsr.cli.search import search as search_command
from gpsr.cli.train import train as train_command
from gpsr.data import build_dataset, load_problems
from gpsr.errors import GpsrError
from gpsr.executor import make_executor
from gpsr.expressions import Expression, parse
from gpsr.genetic import SearchConfig
from gpsr.report import BEST_PROXY_RULE, SPLITS, SPLITS_NOTE, tau_table
from gpsr.search import GENERATION_HEADER, read_result

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Synthesize zero-cost NAS proxies by symbolic regression.")
app.add_typer(bench_app, name="bench")
app.command("report")(report_command)
app.command("compare")(compare)
app.command("train")(train_command)
app.command("search")(search_command)


def _print_version(value: bool) -> None:
    if value:
        from gpsr import __version__

        print(f"gpsr {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", help="Print gpsr's version and exit.",
                           callback=_print_version, is_eager=True)
    ] = False,
) -> None:
    """Synthesize zero-cost NAS proxies by symbolic regression."""


DataOpt = Annotated[
    list[Path] | None,
    typer.Option("--data", help="Problem file (CSV or NASLib zc_*.json) or folder; repeatable."),
]
AccuraciesOpt = Annotated[
    list[Path] | None,
    typer.Option("--accuracies", help="Benchmark CSV whose val_accuracy joins a proxy table."),
]
CalibrationOpt = Annotated[
    str, typer.Option(help="Terminal calibration per problem: none, quantile, robust or log.")
]
ProblemsOpt = Annotated[
    list[str] | None,
    typer.Option("--problems", help="Problem names, comma-separated or repeated (default: all)."),
]
DeviceOpt = Annotated[str, typer.Option(help="auto (CUDA when present), cpu or cuda.")]
LiveDeviceOpt = Annotated[
    str | None, typer.Option("--device", help="cpu or cuda (default: CUDA when present).")
]
NumClassesOpt = Annotated[int, typer.Option(help="Classes of the network's output layer.")]
BatchSizeOpt = Annotated[int, typer.Option(help="Images in the proxies' minibatch.")]
LiveSeedOpt = Annotated[
    int, typer.Option(help="Seed of the networks' initial weights and of the proxies' draws.")
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

    err_console.print(f"[dim]data: the shipped mini benchmark ({escape(str(SHIPPED_DIR))})[/dim]")
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
    population: PopulationOpt = 100,
    generations: GenerationsOpt = 50,
    runs: Annotated[int, typer.Option(help="Independent seeded runs.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of run 0; run k uses seed + k.")] = 0,
    jobs: Annotated[int, typer.Option(help="Parallel runs (local processes).")] = 1,
    backend: BackendOpt = "local",
    address: AddressOpt = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    tournament_size: Annotated[int, typer.Option(help="Candidates per tournament.")] = 2,
    p_crossover: Annotated[
        float, typer.Option(help="Probability that a pair of parents is crossed over.")
    ] = 0.7,
    p_subtree: Annotated[float, typer.Option(help="Probability of subtree mutation.")] = 0.1,
    p_hoist: Annotated[float, typer.Option(help="Probability of hoist mutation.")] = 0.5,
    p_point: Annotated[float, typer.Option(help="Probability of point mutation.")] = 0.1,
    min_depth: Annotated[int, typer.Option(help="Smallest tree depth kept.")] = 2,
    max_depth: Annotated[int, typer.Option(help="Largest tree depth kept.")] = 10,
    proxies: Annotated[
        str | None, typer.Option(help="Terminal set, comma-separated (default: shared proxies).")
    ] = None,
    sentinels: SentinelsOpt = "keep",
    split_seed: SplitSeedOpt = 0,
    input_fraction: InputFractionOpt = 0.7,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v",
                           help="One line per generation: best and mean fitness, size, seconds.")
    ] = False,
    calibration: CalibrationOpt = "none",
    parsimony: Annotated[
        float, typer.Option(help="Parsimony coefficient: equation 1 minus this per node.")
    ] = 0.0,
    final_choice: Annotated[
        str, typer.Option(help="Final metric by equation 1 (sum) or by its worst problem.")
    ] = "sum",
    as_json: Annotated[bool, typer.Option("--json", help="Print result.json to stdout.")] = False,
) -> None:
    """Synthesize a zero-cost proxy over several NAS problems (paper, section 3).

    Without --data: the mini benchmark that ships with gpsr.

    The same command on the same --out folder resumes an interrupted synthesis."""
    from gpsr.kernels.kendall import warm_up
    from gpsr.search import synthesize

    terminals = [p.strip() for p in proxies.split(",") if p.strip()] if proxies else None
    dataset = build_dataset(_load(data, problems, accuracies), terminals, sentinels, split_seed,
                            input_fraction, calibration)
    for note in dataset.notes:
        err_console.print(f"[dim]note: {escape(note)}[/dim]")
    config = SearchConfig(
        population_size=population, generations=generations, tournament_size=tournament_size,
        p_crossover=p_crossover, p_subtree_mutation=p_subtree, p_hoist_mutation=p_hoist,
        p_point_mutation=p_point, min_depth=min_depth, max_depth=max_depth,
        init_depth=(max(2, min_depth), min(6, max_depth)), parsimony_coefficient=parsimony,
        final_choice=final_choice, random_state=seed, device=device,
    )
    executor = make_executor(backend, jobs, address)
    with err_console.status("preparing the kernels (compiled on first use, then cached)"):
        warm_up()
    if verbose:
        # Plain lines, no progress bar: worker processes print to the same stderr.
        err_console.print(GENERATION_HEADER, highlight=False)
        result = synthesize(dataset, config, runs, executor, out, verbose=True)
    else:
        with Progress(TextColumn("[bold]runs"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=err_console, transient=True) as progress:
            task = progress.add_task("runs", total=runs)
            result = synthesize(dataset, config, runs, executor, out,
                                on_run_done=lambda _: progress.advance(task))
    report = result.report
    if as_json:
        print(json.dumps(report, indent=1))
        return
    _print_run(report, dataset.names, runs, out, *result.resumed_counts())


def _print_run(report: dict, names: list[str], runs: int, out: Path, reused: int,
               continued: int) -> None:
    if reused == runs:
        console.print(f"{out} already holds this finished synthesis: showing its result "
                      "(nothing was searched; choose another --out to search again)",
                      markup=False, highlight=False)
    elif reused or continued:
        console.print(f"resumed {out}: {reused} of {runs} run(s) were finished before, "
                      f"{continued} continued from their checkpoints",
                      markup=False, highlight=False)
    expr = report["expression"]
    console.print(f"expression  {expr['infix']}", markup=False, highlight=False)
    console.print(f"simplified  {expr['simplified']}", markup=False, highlight=False)
    rows = {f"gpsr {split}": report["taus"][split] for split in SPLITS}
    console.print(tau_table("Kendall tau on each problem (higher is better)", rows, names,
                            report["best_single_proxy"]))
    console.print(f"{SPLITS_NOTE} {BEST_PROXY_RULE}, chosen on the input rows.",
                  markup=False, highlight=False)
    seconds = report["search_seconds"]["per_run_median"]
    when = " (when they were searched)" if reused else ""
    console.print(f"{runs} run(s): search {seconds:.2f} s median per run{when}; this call "
                  f"{report['wall_seconds']:.1f} s; wrote {out / 'result.json'}",
                  markup=False, highlight=False)


def _expression_from(text: str) -> tuple[Expression, dict]:
    """EXPR, a proxy name, or a result.json (whose split and sentinel settings are reused)."""
    if text.endswith(".json"):
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
    calibration: Annotated[
        str | None,
        typer.Option(help="none, quantile, robust or log (default: a result.json's, else none).")
    ] = None,
    device: DeviceOpt = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Kendall tau of an expression on every problem that has its proxies (a calibrated
    metric is evaluated with maps fitted on each problem's own input rows)."""
    from gpsr import evaluate as evaluate_expression

    expression, settings = _expression_from(expr)
    loaded = _load(data, problems, accuracies)
    needed = sorted(expression.proxies())
    usable = [p for p in loaded if set(needed) <= set(p.proxies)]
    skipped = [p.name for p in loaded if p not in usable]
    if not usable:
        raise GpsrError(f"no loaded problem has every proxy of {expression.infix()!r} ({needed})")
    dataset = build_dataset(usable, needed, settings.get("sentinel_policy", "keep"),
                            settings.get("split_seed", 0), settings.get("input_fraction", 0.7),
                            calibration or settings.get("calibration", "none"))
    for note in dataset.notes:
        err_console.print(f"[dim]note: {note}[/dim]")
    taus = evaluate_expression(expression, dataset, device)
    if as_json:
        print(json.dumps({"expression": expression.infix(), "taus": taus, "skipped": skipped},
                         indent=1))
        return
    console.print(tau_table(f"Kendall tau of {expression.infix()} (higher is better)",
                            {s: taus[s] for s in SPLITS}, dataset.names))
    console.print(SPLITS_NOTE, markup=False, highlight=False)
    if skipped:
        console.print(f"[dim]skipped (lacking a proxy): {escape(', '.join(skipped))}[/dim]")


@app.command("bench-throughput")
@friendly
def bench_throughput(
    data: DataOpt = None,
    problems: ProblemsOpt = None,
    population: Annotated[int, typer.Option(help="Expressions per random population.")] = 100,
    repeats: Annotated[int, typer.Option(help="Timed repeats; the median is reported.")] = 5,
    device: DeviceOpt = "auto",
    save: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Expressions per second: gpsr's batched engine against numpy + scipy, one by one."""
    from gpsr.bench import bench_throughput as measure

    dataset = build_dataset(_load(data, problems))
    result = measure(dataset, population, repeats, device)
    if save:
        try:
            save.parent.mkdir(parents=True, exist_ok=True)
            save.write_text(json.dumps(result, indent=1))
        except OSError as exc:
            raise GpsrError(f"{save}: cannot write ({exc.strerror})") from None
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
        except UnicodeDecodeError as exc:
            raise GpsrError(f"{archs_file}: not UTF-8 text (byte {exc.start})") from None
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
    reference: Annotated[str | None, typer.Option(
        help="A calibrated metric's reference: a problem of its result.json, or a proxy "
             "table of the space (gpsr proxies-table).")] = None,
    arch: ArchOpt = None,
    archs_file: Annotated[Path | None, typer.Option(help="One architecture per line.")] = None,
    num_classes: NumClassesOpt = 10,
    images: ImagesOpt = None,
    batch_size: BatchSizeOpt = 64,
    device: LiveDeviceOpt = None,
    seed: LiveSeedOpt = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Score live networks with a synthesized metric (computes only the proxies it needs)."""
    from gpsr.metric import Metric
    from gpsr.spaces import parse_arch

    scorer = Metric.load(metric, reference, seed, device)
    if scorer.reference_space not in (None, space):
        raise GpsrError(f"reference {reference} is a problem of space {scorer.reference_space}, "
                        f"not {space}; give a reference of {space}")
    names = _archs(arch, archs_file)
    for name in names:
        parse_arch(space, name)
    values = scorer.score_archs(space, names, _live_batch(images, batch_size), num_classes)
    if as_json:
        print(json.dumps({"metric": scorer.expression.infix(), "space": space,
                          "scores": dict(zip(names, values))}, indent=1))
        return
    console.print(f"score of {scorer.expression.infix()} on {space} networks (seed {seed}; "
                  "higher predicts a better network)", markup=False, highlight=False)
    console.print("score\tarch", markup=False, highlight=False)
    for name, value in zip(names, values):
        # One line per network whatever the width, so the output stays machine-readable.
        console.print(f"{value:.6g}\t{name}", markup=False, highlight=False, soft_wrap=True)


@app.command()
@friendly
def proxies(
    space: SpaceOpt,
    arch: ArchOpt = None,
    num_classes: NumClassesOpt = 10,
    images: ImagesOpt = None,
    batch_size: BatchSizeOpt = 64,
    device: LiveDeviceOpt = None,
    seed: LiveSeedOpt = 0,
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
    seed: Annotated[
        int, typer.Option(help="Seed of the sample; each network's weights follow from it.")
    ] = 0,
    num_classes: NumClassesOpt = 10,
    images: ImagesOpt = None,
    batch_size: BatchSizeOpt = 64,
    jobs: Annotated[int, typer.Option(help="Parallel workers (local processes).")] = 1,
    backend: BackendOpt = "local",
    address: AddressOpt = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted table.")] = False,
    force: Annotated[bool, typer.Option(help="Overwrite an existing --out.")] = False,
    repair: Annotated[
        bool, typer.Option("--repair", help="With --resume: drop corrupt records of the "
                           "journal (they are computed again), keep the rest.")
    ] = False,
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
                             repair=repair,
                             only=[n.strip() for n in only.split(",")] if only else None)
    console.print(f"wrote {path}")


def main() -> None:
    """Console entry point."""
    app()
