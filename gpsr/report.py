"""Reports: tau tables of expressions and of the best single proxies, and the report page of
run folders (``gpsr report``): figures, a table of every method, and why each proxy is there."""

from __future__ import annotations

import base64
import html
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich import box
from rich.table import Table
from rich.text import Text

from gpsr.data import Dataset, Problem, finite_or_none
from gpsr.errors import GpsrError
from gpsr.expressions import Expression
from gpsr.fitness import TauScorer

SPLITS = ("input", "test", "all")


def taus_by_split(
    expressions: Sequence[Expression], dataset: Dataset, device: str = "auto"
) -> dict[str, np.ndarray]:
    """``{split: array (len(expressions), n_problems)}`` of raw taus (NaN where undefined)."""
    out = {}
    for split in SPLITS:
        problems = dataset.part(split)
        if any(len(p) < 2 for p in problems):
            out[split] = np.full((len(expressions), len(problems)), np.nan)
            continue
        out[split] = TauScorer(problems, dataset.proxies, device).taus(expressions)
    return out


def tau_dict(row: np.ndarray, names: Sequence[str]) -> dict[str, float | None]:
    return {name: finite_or_none(float(t)) for name, t in zip(names, row)}


#: The rows of every tau table, said once where one is printed.
SPLITS_NOTE = (
    "input: the rows the search saw (the input split, 70% of each problem by default); "
    "test: the held-out rest; all: both together."
)
#: The one rule for "the best single proxy", in ``gpsr run`` and ``gpsr bench report`` alike;
#: each says which rows it is chosen on.
BEST_PROXY_RULE = (
    "Best single proxy: per problem, the proxy with the highest signed Kendall tau (a proxy "
    "is used as it is: a higher value predicts a better network)"
)


def best_proxy(taus: Mapping[str, float | None]) -> str:
    """The proxy with the highest signed tau (:data:`BEST_PROXY_RULE`); an undefined tau
    (None or NaN) never wins, and a tie goes to the first in ``taus``' order."""
    if not taus:
        raise GpsrError("no proxies to choose the best single proxy from")

    def key(name: str) -> float:
        tau = taus[name]
        return -np.inf if tau is None or np.isnan(tau) else tau

    return max(taus, key=key)


def best_single_proxies(dataset: Dataset, device: str = "auto") -> dict[str, dict]:
    """Per problem, the best single proxy on the input split, with its taus on every split."""
    leaves = [Expression(p) for p in dataset.proxies]
    table = taus_by_split(leaves, dataset, device)
    best = {}
    for j, name in enumerate(dataset.names):
        chosen = best_proxy(dict(zip(dataset.proxies, table["input"][:, j].tolist())))
        k = dataset.proxies.index(chosen)
        best[name] = {"proxy": chosen} | {
            split: finite_or_none(float(table[split][k, j])) for split in SPLITS
        }
    return best


def tau_table(
    title: str, rows: dict[str, dict[str, float | None]], names: Sequence[str],
    best: dict[str, dict] | None = None,
) -> Table:
    """One row per problem, one column per label of ``rows`` (its taus), and with ``best``
    (:func:`best_single_proxies`) the best single proxy's name and its test and all taus.

    Problems are rows so that a table of any number of problems fits 80 columns (a problem
    name folds only where the terminal is narrower still)."""
    # Fixed widths: numbers never wrap ("-0.1234" is 7), headers wrap at their spaces, and a
    # name longer than 25 folds, so five columns of taus and a proxy name fit 80 columns.
    table = Table(title=Text(title), box=box.SIMPLE_HEAD, padding=(0, 0), pad_edge=False,
                  title_justify="left")
    table.add_column("problem", overflow="fold", width=min(25, max(map(len, names), default=7)))
    for label in rows:
        table.add_column(label, justify="right", width=7)
    if best is not None:
        width = max(5, *(len(b["proxy"]) for b in best.values()))
        table.add_column("best proxy", width=min(width, 12), overflow="fold")
        table.add_column("its test", justify="right", width=7)
        table.add_column("its all", justify="right", width=7)

    def fmt(tau: float | None) -> str:
        return "-" if tau is None else f"{tau:.4f}"

    for name in names:
        cells = [name] + [fmt(values.get(name)) for values in rows.values()]
        if best is not None:
            cells += [best[name]["proxy"], fmt(best[name]["test"]), fmt(best[name]["all"])]
        table.add_row(*cells)
    return table


# ---- the report page: ``gpsr report RUN_DIR...`` ---------------------------------------------
# A page is a list of blocks, rendered twice: markdown with PNG files beside it, and one
# self-contained HTML file with the same figures inlined.
#   ("h1" | "h2" | "h3" | "p", text)       text may hold `code` spans
#   ("list", [text, ...])
#   ("code", text)                         shown verbatim
#   ("table", header, rows, bold)          bold: set of (row, column) cells
#   ("figure", file name, png bytes, alt text, caption)


@dataclass
class Run:
    """A run folder as the report reads it: its result, and its problems reloaded if found."""

    folder: Path
    label: str
    result: dict
    dataset: Dataset | None
    notes: list[str]

    @property
    def expression(self) -> Expression:
        from gpsr.expressions import parse

        return parse(self.result["expression"]["infix"])


def gpsr_commit() -> str | None:
    """Short commit of the gpsr checkout this code runs from, ``-dirty`` when its code has
    uncommitted changes; None outside a git checkout."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                                  text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    # An installed copy may sit inside some other repository (a venv in a project folder).
    if top is None or Path(top).resolve() != root:
        return None
    head = git("rev-parse", "--short", "HEAD")
    if head is None:
        return None
    # Only the code counts: regenerating results/ must not mark its own commit dirty.
    dirty = git("status", "--porcelain", "--", "gpsr", "kernels", "cli", "pyproject.toml")
    return head + ("-dirty" if dirty else "")


def _locate(source: str, data_dirs: Sequence[Path]) -> Path | None:
    """A problem file recorded in a run: where written, else by name in ``data_dirs``, under
    the shared folder, or among the shipped problems."""
    from gpsr.data import shared_dir
    from gpsr.minibench import SHIPPED_DIR

    path = Path(source)
    candidates = [path, *(Path(d) / path.name for d in data_dirs)]
    shared = shared_dir()
    if shared is not None and "shared" in path.parts[:-1]:
        below = path.parts[len(path.parts) - path.parts[::-1].index("shared"):]
        candidates.append(shared.joinpath(*below))
    candidates.append(SHIPPED_DIR / path.name)
    return next((c for c in candidates if c.is_file()), None)


def _load_problem(name: str, source: str, data_dirs: Sequence[Path]) -> Problem:
    from gpsr.data import join_accuracies, load_csv, load_naslib_json

    parts = source.split(" joined with ")
    files = [_locate(part, data_dirs) for part in parts]
    if any(f is None for f in files):
        raise GpsrError(f"{name}: data not found ({source})")
    if len(files) == 2:
        problem = join_accuracies(*files)
    elif files[0].suffix == ".json":
        problem = next((p for p in load_naslib_json(files[0]) if p.name == name), None)
        if problem is None:
            raise GpsrError(f"{name}: not in {files[0]}")
    else:
        problem = load_csv(files[0])
    if problem.name != name:
        raise GpsrError(f"{name}: {files[0]} holds problem {problem.name}")
    return problem


def load_run(folder: str | Path, data_dirs: Sequence[str | Path] = ()) -> Run:
    """Read a run folder and reload the problems its ``result.json`` names, rebuilt with the
    run's terminal set, sentinel policy and split. A problem whose data is missing or differs
    from the run's is left out with a one-line note."""
    from gpsr.data import build_dataset
    from gpsr.search import read_result

    folder = Path(folder)
    if not folder.is_dir():
        raise GpsrError(f"{folder}: no such run folder")
    result = read_result(folder / "result.json")
    data = result.get("data", {})
    recorded = data.get("problems", {})
    proxies = data.get("proxies", [])
    problems, notes = [], []
    for name, info in recorded.items():
        try:
            problem = _load_problem(name, str(info.get("source", "")), [Path(d) for d in data_dirs])
        except GpsrError as exc:
            notes.append(str(exc))
            continue
        lacking = [p for p in proxies if p not in problem.proxies]
        if lacking:
            notes.append(f"{name}: {problem.source} lacks proxy {lacking[0]!r} the run used")
            continue
        problems.append(problem)
    dataset = None
    if problems:
        dataset = build_dataset(problems, proxies, data.get("sentinel_policy", "keep"),
                                data.get("split_seed", 0), data.get("input_fraction", 0.7))
        rebuilt = dataset.describe()["problems"]
        same = [p for p in problems if all(rebuilt[p.name][k] == recorded[p.name].get(k)
                                           for k in ("architectures", "input", "test"))]
        for p in problems:
            if p not in same:
                notes.append(f"{p.name}: {p.source} differs from the run's data "
                             f"({rebuilt[p.name]['architectures']} architectures, the run had "
                             f"{recorded[p.name].get('architectures')})")
        dataset = build_dataset(same, proxies, dataset.sentinel_policy, dataset.split_seed,
                                dataset.input_fraction) if same else None
    return Run(folder, folder.resolve().name, result, dataset, notes)


def read_methods(path: str | Path) -> dict:
    """A methods file (the schema in ``gpsr report --help``), checked field by field."""
    from gpsr.data import read_json

    path = Path(path)
    methods = read_json(path)
    if not isinstance(methods, dict):
        raise GpsrError(f"{path}: expected an object with problems, split and methods")
    for key, kind in (("problems", list), ("split", str), ("methods", list)):
        if not isinstance(methods.get(key), kind):
            raise GpsrError(f"{path}: field {key!r} missing or not a {kind.__name__}")
    for k, method in enumerate(methods["methods"]):
        if not isinstance(method, dict) or not isinstance(method.get("name"), str):
            raise GpsrError(f"{path}: methods[{k}] has no name")
        taus = method.get("taus")
        if not isinstance(taus, dict) or not all(isinstance(v, dict) for v in taus.values()):
            raise GpsrError(f"{path}: method {method['name']!r}: 'taus' must be "
                            "{split: {problem: tau or null}}")
        for split_taus in taus.values():
            _check_taus(split_taus, f"{path}: method {method['name']!r}")
        seconds = method.get("seconds")
        if seconds is not None and not _is_number(seconds):
            raise GpsrError(f"{path}: method {method['name']!r}: seconds is {seconds!r}")
    held_out = methods.get("leave_one_out") or {}
    if not isinstance(held_out, dict) or not all(isinstance(v, dict) for v in held_out.values()):
        raise GpsrError(f"{path}: 'leave_one_out' must be {{method: {{problem: tau}}}}")
    for name, taus in held_out.items():
        _check_taus(taus, f"{path}: leave_one_out of {name!r}")
    return methods


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_taus(taus: dict, where: str) -> None:
    for problem, tau in taus.items():
        if tau is not None and not _is_number(tau):
            raise GpsrError(f"{where}: tau of {problem} is {tau!r}")


def _seeds(seeds: Sequence[int]) -> str:
    """``0-30`` for a consecutive range, else the list."""
    seeds = list(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


def _fmt(tau: float | None, digits: int = 3) -> str:
    return "-" if tau is None or not np.isfinite(tau) else f"{tau:.{digits}f}"


def _bold_best(rows: list[list[float | None]]) -> set[tuple[int, int]]:
    """Cells holding the highest value of their column."""
    bold = set()
    for j in range(len(rows[0]) if rows else 0):
        column = [np.nan if r[j] is None else r[j] for r in rows]
        if np.isfinite(column).any():
            best = np.nanmax(column)
            bold |= {(i, j) for i, v in enumerate(column) if v == best}
    return bold


def _frequency(run: Run) -> dict[str, int]:
    """How many of the run's final expressions use each proxy of its terminal set."""
    from gpsr.expressions import parse

    counts = dict.fromkeys(run.result["data"]["proxies"], 0)
    for record in run.result["runs_summary"]["per_run"]:
        for proxy in parse(record["expression"]).proxies():
            counts[proxy] = counts.get(proxy, 0) + 1
    return counts


def build_report(
    run_dirs: Sequence[str | Path],
    methods: str | Path | None = None,
    split: str = "test",
    data_dirs: Sequence[str | Path] = (),
    command: str | None = None,
    device: str = "auto",
    also: Sequence[Problem] = (),
) -> tuple[list[tuple], list[str]]:
    """The report's blocks for some run folders, and the notes on what it could not show.

    ``also``: more problems for the heatmap and the methods table, on which each run's metric
    is evaluated where the problem has its proxies (a transfer, as the paper's figure 6).

    Tau heatmap (the paper's figure 6) and a table of every method, then per run folder:
    taus per split, accuracy-versus-score scatter plots (figure 8), how often each proxy
    appears in the runs' final expressions (figure 5), convergence, and the effect of
    removing or replacing each proxy of the chosen expression (table 18).
    """
    from gpsr import figures
    from gpsr.data import build_dataset

    if split not in SPLITS:
        raise GpsrError(f"unknown split {split!r} (use {', '.join(SPLITS)})")
    if not run_dirs:
        raise GpsrError("give at least one run folder")
    runs = [load_run(folder, data_dirs) for folder in run_dirs]
    labels = [run.label for run in runs]
    for k, run in enumerate(runs):
        if labels.count(run.label) > 1:
            run.label = f"{run.label} ({k + 1})"
    notes = [note for run in runs for note in run.notes]
    extra = read_methods(methods) if methods is not None else None

    # Columns in groups: each run's problems, the --also ones, those only the methods have.
    groups: list[tuple[str, list[str]]] = []
    columns: list[str] = []
    for run in runs:
        groups.append((f"the problems of `{run.label}`",
                       [n for n in run.result["taus"][split] if n not in columns]))
        columns += groups[-1][1]
    datasets = [run.dataset for run in runs if run.dataset is not None]
    groups.append(("more problems", []))
    for problem in also:
        if problem.name not in columns:
            columns.append(problem.name)
            groups[-1][1].append(problem.name)
            # Its own proxies and the runs' split settings' defaults: seed 0, 70 % input.
            datasets.append(build_dataset([problem]))
    if extra is not None:
        groups.append((f"problems only `{Path(methods).name}` has",
                       [n for n in extra["problems"] if n not in columns]))
        columns += groups[-1][1]
        if extra["split"] != split:
            notes.append(f"{methods}: its table is on the {extra['split']} split, the report on "
                         f"{split}; its taus on {split} are used where it has them")

    # taus[label][problem]: recorded for a run's own problems; computed from the data for every
    # proxy, and for each run's metric on the other problems that have its proxies.
    metric_rows = {f"gpsr: {run.label}": dict(run.result["taus"][split]) for run in runs}
    proxy_rows: dict[str, dict[str, float | None]] = {}
    done: set[str] = set()
    for dataset in datasets:
        fresh = [n for n in dataset.names if n not in done]
        done.update(fresh)
        leaves = [Expression(p) for p in dataset.proxies]
        foreign = [(f"gpsr: {r.label}", r.expression) for r in runs
                   if r.expression.proxies() <= set(dataset.proxies)]
        table = TauScorer(dataset.part(split), dataset.proxies, device).taus(
            leaves + [e for _, e in foreign])
        for j, name in enumerate(dataset.names):
            if name not in fresh:
                continue
            for i, leaf in enumerate(leaves):
                proxy_rows.setdefault(leaf.name, {})[name] = finite_or_none(float(table[i, j]))
            for i, (label, _) in enumerate(foreign):
                metric_rows[label].setdefault(name, finite_or_none(float(table[len(leaves) + i,
                                                                               j])))
    method_rows = {}
    if extra is not None:
        for method in extra["methods"]:
            method_rows[method["name"]] = dict(method["taus"].get(split, {}))
    everything = metric_rows | method_rows | {p: v for p, v in proxy_rows.items()
                                              if p not in metric_rows | method_rows}

    commit = gpsr_commit() or "unknown (not a git checkout)"
    blocks: list[tuple] = [("h1", "gpsr report")]
    blocks.append(("p", f"Report made at gpsr commit `{commit}`"
                   + (" with:" if command else ".")))
    if command:
        blocks.append(("code", command.replace(" --", " \\\n    --")))
    blocks.append(("p", f"Kendall tau is on the **{split}** split unless a table says "
                   "otherwise."))
    blocks.append(("list", [
        f"`{run.label}`: {run.result['runs']} run(s), seeds {_seeds(run.result['seeds'])}, "
        f"population {run.result['config']['population_size']}, "
        f"{run.result['config']['generations']} generations, problems "
        f"{', '.join(run.result['taus'][split])} (made by gpsr {run.result.get('gpsr_version')}"
        + (f" at commit `{run.result['gpsr_commit']}`" if run.result.get("gpsr_commit") else "")
        + ")"
        for run in runs
    ]))
    added = [p for p in also if p.name in {n for d in datasets for n in d.names}
             and not any(p.name in run.result["taus"][split] for run in runs)]
    if added:
        blocks.append(("p", "More problems, on which every metric is evaluated (the whole "
                       "problem is split as a run would, seed 0, 70 % input):"))
        blocks.append(("list", [f"{p.name}: `{Path(p.source).name}`" for p in added]))
    if notes:
        blocks.append(("p", "Not shown, and why:"))
        blocks.append(("list", notes))

    # ---- figure 6 and the methods table
    ranked = _by_mean_rank(everything, columns)
    matrix = np.array([[np.nan if everything[r].get(c) is None else everything[r][c]
                        for c in columns] for r in ranked])
    blocks.append(("h2", "Kendall tau of every metric on every problem"))
    sizes = [len(g) for _, g in groups if g]
    blocks.append(("figure", "tau-heatmap.png", figures.tau_heatmap(
        ranked, columns, matrix, np.cumsum(sizes)[:-1].tolist()),
                   f"Heatmap of Kendall tau on the {split} split: rows are gpsr's metrics, "
                   "other methods and single proxies, columns are problems",
                   f"Kendall tau on the {split} split (as the paper's figure 6). Rows are ordered "
                   "by their mean rank over the problems they have values for; the best of each "
                   "problem is boxed in red; black lines separate each run's problems and the "
                   "other problems; grey: no value (a proxy the problem lacks, data "
                   "not found, or a constant column, whose tau is undefined). A gpsr metric on a "
                   "problem outside its run's data is a transfer."))
    blocks += _methods_table(runs, extra, methods, everything, groups, split)

    for run in runs:
        blocks += _run_blocks(run, split, device)
    return blocks, notes


def _by_mean_rank(rows: dict[str, dict[str, float | None]], columns: Sequence[str]) -> list[str]:
    """Row labels ordered by mean rank over the columns each has a value for (1 = best)."""
    from scipy.stats import rankdata

    ranks: dict[str, list[float]] = {label: [] for label in rows}
    for column in columns:
        present = [(label, v[column]) for label, v in rows.items() if v.get(column) is not None]
        if present:
            for (label, _), rank in zip(present, rankdata([-t for _, t in present])):
                ranks[label].append(float(rank))
    return sorted(rows, key=lambda label: (np.mean(ranks[label]) if ranks[label] else np.inf,
                                           label))


def _methods_table(runs: list[Run], extra: dict | None, methods: str | Path | None,
                   everything: dict, groups: list[tuple[str, list[str]]],
                   split: str) -> list[tuple]:
    blocks: list[tuple] = [("h2", "Every method side by side")]
    labels = [f"gpsr: {run.label}" for run in runs]
    seconds: dict[str, float | None] = {
        label: run.result["search_seconds"]["per_run_median"] for label, run in zip(labels, runs)
    }
    if extra is not None:
        labels += [m["name"] for m in extra["methods"]]
        seconds |= {m["name"]: m.get("seconds") for m in extra["methods"]}
    labels += sorted(p for p in everything if p not in labels)
    text = (f"Kendall tau on the {split} split, one table per group of problems; the best of "
            "each problem in bold. seconds: for gpsr, the median search seconds of one run")
    if extra is not None:
        text += (f"; for the other methods, one whole fit (all of an SR method's runs) as "
                 f"`{Path(methods).name}` gives them (made at gpsr "
                 f"commit `{extra.get('gpsr_commit', 'unknown')}`, seeds "
                 f"{_seeds(extra.get('seeds', []))})")
    blocks.append(("p", text + ". A single proxy is one row each."))
    for k, (title, columns) in enumerate((t, c) for t, c in groups if c):
        values = [[everything[label].get(c) for c in columns] for label in labels]
        rows = [[label, *map(_fmt, row)] for label, row in zip(labels, values)]
        if k == 0:
            for label, row in zip(labels, rows):
                row.append("-" if seconds.get(label) is None else f"{seconds[label]:.2f}")
        blocks.append(("h3", title[0].upper() + title[1:]))
        blocks.append(("table", ["metric", *columns, *(["seconds"] if k == 0 else [])], rows,
                       {(i, j + 1) for i, j in _bold_best(values)}))
    columns = [c for _, group in groups for c in group]
    if extra is not None:
        blocks.append(("table", ["method", "follows", "expression"],
                       [[m["name"], m.get("follows") or "-",
                         f"`{m['expression']}`" if m.get("expression") else "-"]
                        for m in extra["methods"]], set()))
        held_out = extra.get("leave_one_out") or {}
        if held_out:
            problems = [c for c in columns if any(c in v for v in held_out.values())]
            values = [[held_out[m].get(c) for c in problems] for m in held_out]
            blocks.append(("p", "Leave one problem out: each problem's tau when the method "
                           "was fitted on the other problems only."))
            blocks.append(("table", ["method", *problems],
                           [[m, *map(_fmt, row)] for m, row in zip(held_out, values)],
                           {(i, j + 1) for i, j in _bold_best(values)}))
    return blocks


def _run_blocks(run: Run, split: str, device: str) -> list[tuple]:
    from gpsr import figures
    from gpsr.insight import ablation

    result = run.result
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in run.label)
    names = list(result["taus"][split])
    expression = result["expression"]
    blocks: list[tuple] = [("h2", f"Run folder `{run.label}`")]
    blocks.append(("p", f"Chosen expression (of {result['runs']} runs, seeds "
                   f"{_seeds(result['seeds'])}): `{expression['infix']}`, simplified "
                   f"`{expression['simplified']}`; it uses {', '.join(expression['proxies'])}."))
    rows, values = [], []
    for s in SPLITS:
        values.append([result["taus"][s].get(n) for n in names])
        rows.append([f"gpsr ({s})", *map(_fmt, values[-1])])
    summary = result["runs_summary"]["table15"]
    if result["runs"] > 1:
        rows.append([f"mean ± std over the {result['runs']} runs ({split})",
                     *(f"{summary[n][split]['mean']:.3f} ± {summary[n][split]['std']:.3f}"
                       for n in names)])
    best = result["best_single_proxy"]
    rows.append([f"best single proxy ({split})",
                 *(f"{best[n]['proxy']} {_fmt(best[n][split])}" for n in names)])
    blocks.append(("table", ["", *names], rows, set()))

    if run.dataset is not None:
        panels = []
        expr = run.expression
        for problem, test_rows in zip(run.dataset.problems, run.dataset.test_rows):
            test = np.zeros(len(problem), dtype=bool)
            test[test_rows] = True
            score = expr.evaluate({p: problem.column(p) for p in expr.proxies()})
            panels.append({"title": f"{problem.name}  (test tau "
                           f"{_fmt(result['taus']['test'].get(problem.name))})",
                           "score": score, "accuracy": problem.accuracy, "test": test})
        blocks.append(("h3", "Accuracy against the metric"))
        blocks.append(("figure", f"{stem}-scatter.png", figures.scatter_grid(panels),
                       f"Scatter plots of validation accuracy against the rank of the chosen "
                       f"metric's score, one per problem of {run.label}",
                       "Validation accuracy against the chosen metric's score rank (as the "
                       "paper's figure 8); orange: the test split, blue: the input split the "
                       "search saw."))

    counts = _frequency(run)
    blocks.append(("h3", "Proxies in the final expressions"))
    blocks.append(("figure", f"{stem}-proxy-frequency.png",
                   figures.proxy_frequency(counts, result["runs"]),
                   f"Bar chart: for each proxy, how many of the {result['runs']} runs' final "
                   "expressions use it",
                   f"How many of the {result['runs']} runs' final expressions use each proxy "
                   "of the terminal set (as the paper's figure 5)."))

    history = result.get("history") or []
    if history and all(h["generations"] for h in history):
        length = min(len(h["generations"]) for h in history)
        best_fit = np.array([[g["best_fitness"] for g in h["generations"][:length]]
                             for h in history])
        mean_fit = np.array([[g["mean_fitness"] for g in h["generations"][:length]]
                             for h in history])
        blocks.append(("h3", "Convergence"))
        blocks.append(("figure", f"{stem}-convergence.png",
                       figures.convergence(best_fit, mean_fit),
                       "Line chart of the best and mean fitness per generation, median over "
                       "seeds with a band",
                       f"Best and mean equation-1 fitness of the population per generation, "
                       f"median over {len(history)} seed(s), band from the 10th to the 90th "
                       "percentile. Equation 1 normalizes by the lowest and highest tau a run "
                       "has seen so far, so a run's best fitness can fall when a new extreme "
                       "widens its bounds."))

    if run.dataset is not None:
        blocks += _insight_blocks(run, ablation(run.expression, run.dataset, split,
                                                device=device), counts, split, stem)
    return blocks


def _insight_blocks(run: Run, found: dict, counts: dict[str, int], split: str,
                    stem: str) -> list[tuple]:
    from gpsr import figures

    names = found["problems"]
    base = [found["taus"][n] for n in names]

    def cells(taus: dict) -> list[str]:
        out = []
        for n, b in zip(names, base):
            t = taus.get(n)
            out.append(_fmt(t) if t is None or b is None else f"{t:.3f} ({t - b:+.3f})")
        return out

    def mean_delta(taus: dict) -> float:
        deltas = [taus[n] - b for n, b in zip(names, base)
                  if taus.get(n) is not None and b is not None]
        return float(np.mean(deltas)) if len(deltas) == len(names) else np.nan

    used = list(found["removed"])
    rows = [["chosen metric", *map(_fmt, base)]]
    for proxy in used:
        rows.append([f"without {proxy}", *cells(found["removed"][proxy]["taus"])])
        options = found["replaced"][proxy]
        unused = [q for q in options if q not in used]
        if unused:
            least = min(unused, key=lambda q: (counts.get(q, 0), q))
            rows.append([f"{proxy} → {least} (least used: {counts.get(least, 0)} of "
                         f"{run.result['runs']} runs)", *cells(options[least]["taus"])])
        if options:
            best = max(options, key=lambda q: np.nan_to_num(mean_delta(options[q]["taus"]),
                                                            nan=-np.inf))
            if unused and best == least:
                rows[-1][0] += ", also the best replacement"
            else:
                rows.append([f"{proxy} → {best} (best replacement)",
                             *cells(options[best]["taus"])])
    candidates = list(run.dataset.proxies)
    delta = np.array([[mean_delta(found["removed"][p]["taus"])]
                      + [np.nan if q == p else mean_delta(found["replaced"][p][q]["taus"])
                         for q in candidates] for p in used])
    return [
        ("h3", "Why each proxy is there"),
        ("p", f"Kendall tau on the {split} split (change against the chosen metric) when a "
         "proxy of the metric is removed or replaced, as in the paper's table 18. Removing "
         "proxy p cuts out every largest subtree made of p alone together with its parent "
         "operator, whose other operand takes its place (`snip - jacov` without jacov is "
         "`snip`); no constant is added. Replacing p by q turns every leaf p into q. The "
         "least used replacement is the proxy outside the metric that the fewest of the runs' "
         "final expressions use (the paper's choice); the best is the one with the highest "
         "mean tau. `gpsr.insight.ablation` computes these."),
        ("table", ["variant", *names], rows, set()),
        ("figure", f"{stem}-insight.png", figures.replacement_heatmap(
            used, ["removed", *candidates], delta),
         "Heatmap of the change in mean Kendall tau when each proxy of the chosen metric is "
         "removed or replaced by each other proxy",
         f"Change in Kendall tau on the {split} split, averaged over the problems, when a "
         "proxy of the chosen metric (row) is removed or replaced by another proxy (column); "
         "red: worse, blue: better, grey: not applicable or undefined."),
    ]


# ---- rendering ----------------------------------------------------------------------------------
def render_markdown(blocks: Sequence[tuple]) -> str:
    out = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + block[1])
        elif kind == "p":
            out.append(block[1])
        elif kind == "list":
            out.append("\n".join(f"* {item}" for item in block[1]))
        elif kind == "code":
            out.append(f"```\n{block[1]}\n```")
        elif kind == "table":
            _, header, rows, bold = block
            lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            for i, row in enumerate(rows):
                lines.append("| " + " | ".join(f"**{c}**" if (i, j) in bold else c
                                               for j, c in enumerate(row)) + " |")
            out.append("\n".join(lines))
        elif kind == "figure":
            _, name, _, alt, caption = block
            out.append(f"![{alt}]({name})\n\n*{caption}*")
    return "\n\n".join(out) + "\n"


def _inline_html(text: str) -> str:
    """Escape, then turn `code` and **bold** spans into tags."""
    text = html.escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1180px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #3182bd; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
pre { background: #f3f3f3; padding: .6em; overflow-x: auto; }
code { background: #f3f3f3; padding: 0 .2em; word-break: break-word; font-size: 90%; }
table { border-collapse: collapse; margin: 1em 0; font-size: 90%; display: block;
        overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f0f4f8; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 90%; color: #444; margin-top: .4em; }
"""


def render_html(blocks: Sequence[tuple], title: str = "gpsr report") -> str:
    """One self-contained page: the figures are inlined as base64 PNG."""
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"]
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3", "p"):
            out.append(f"<{kind}>{_inline_html(block[1])}</{kind}>")
        elif kind == "list":
            out.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in block[1])
                       + "</ul>")
        elif kind == "code":
            out.append(f"<pre><code>{html.escape(block[1], quote=False)}</code></pre>")
        elif kind == "table":
            _, header, rows, bold = block
            head = "".join(f"<th>{_inline_html(h)}</th>" for h in header)
            body = "".join(
                "<tr>" + "".join(
                    f"<td><strong>{_inline_html(c)}</strong></td>" if (i, j) in bold
                    else f"<td>{_inline_html(c)}</td>" for j, c in enumerate(row)) + "</tr>"
                for i, row in enumerate(rows))
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "figure":
            _, name, png, alt, caption = block
            data = base64.b64encode(png).decode("ascii")
            out.append(f'<figure id="{html.escape(name)}"><img src="data:image/png;base64,{data}" '
                       f'alt="{html.escape(alt)}"><figcaption>{_inline_html(caption)}'
                       "</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_report(blocks: Sequence[tuple], out: str | Path, html_page: bool = True) -> list[Path]:
    """``report.md`` with its PNG files, and ``report.html``, into the folder ``out``."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for block in blocks:
            if block[0] == "figure":
                (out / block[1]).write_bytes(block[2])
                written.append(out / block[1])
        (out / "report.md").write_text(render_markdown(blocks))
        written.insert(0, out / "report.md")
        if html_page:
            (out / "report.html").write_text(render_html(blocks))
            written.insert(1, out / "report.html")
    except OSError as exc:
        raise GpsrError(f"{out}: cannot write the report ({exc.strerror})") from None
    return written
