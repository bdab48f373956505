"""NAS problems: loading proxy scores and accuracies, terminal sets, sentinels, splits.

A *problem* is one search space on one task (paper, footnote 2). Two on-disk
layouts are read:

* CSV: ``arch, val_accuracy, <proxy>...``, one file per problem, named
  ``<space>-<task>.csv`` (the layout of ../shared/data/nas-bench-suite-zero);
* NASLib's NAS-Bench-Suite-Zero JSON ``zc_<space>.json``:
  ``{dataset: {arch: {proxy: {"score": x, "time": t}, ..., "val_accuracy": a}}}``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from gpsr.calibration import Calibration
from gpsr.calibration import check_method as check_calibration
from gpsr.errors import GpsrError
from gpsr.expressions import is_proxy_name

#: NASLib writes a failed proxy computation as -1e8.
FAILURE_SENTINEL = -1e8
#: Columns whose name starts so are costs (e.g. seconds_train), not proxies.
COST_PREFIX = "seconds_"
MIN_ARCHITECTURES = 10
#: Kendall tau ranks pairs: an input split needs two architectures at the very least.
MIN_INPUT_ARCHITECTURES = 2

_SPACE_NAMES = {
    "nb101": "NB101",
    "nb201": "NB201",
    "nb301": "NB301",
    "tnb101-micro": "TNB101-MICRO",
    "tnb101-macro": "TNB101-MACRO",
}
_JSON_SPACES = {
    "zc_nasbench101": "nb101",
    "zc_nasbench201": "nb201",
    "zc_nasbench301": "nb301",
    "zc_transbench101_micro": "tnb101-micro",
    "zc_transbench101_macro": "tnb101-macro",
}
_TASK_NAMES = {
    "cifar10": "CF10",
    "cifar100": "CF100",
    "imagenet16-120": "IMGNT",
    "class_scene": "SCENE",
    "class_object": "OBJECT",
    "autoencoder": "AUTOENC",
    "jigsaw": "JIGSAW",
}


def problem_name(space: str, task: str) -> str:
    """The paper's name of a problem, e.g. ``("nb201", "cifar10") -> "NB201-CF10"``."""
    space_name = _SPACE_NAMES.get(space.lower(), space.upper())
    return f"{space_name}-{_TASK_NAMES.get(task.lower(), task.upper())}"


@dataclass
class Problem:
    name: str
    space: str
    task: str
    archs: list[str]
    proxies: tuple[str, ...]
    values: np.ndarray  # (n_archs, n_proxies), float64, as released
    accuracy: np.ndarray  # (n_archs,)
    source: str = ""
    #: ``seconds_*`` columns: what computing a row cost; never proxies.
    costs: dict[str, np.ndarray] = field(default_factory=dict)
    #: What loading did to the input (e.g. rows a join left out), for the dataset's notes.
    notes: list[str] = field(default_factory=list)

    def validate(self) -> Problem:
        """Check a whole problem (not a split of one) can be learned from; returns it."""
        where = self.source or self.name
        bad = np.flatnonzero(~np.isfinite(self.accuracy))
        if len(bad):
            raise GpsrError(
                f"{where}: val_accuracy of arch {self.archs[bad[0]]!r} is {self.accuracy[bad[0]]}"
            )
        n = len(self.archs)
        if n < MIN_ARCHITECTURES:
            raise GpsrError(
                f"{self.source or self.name}: problem {self.name} has {n} architectures; "
                f"at least {MIN_ARCHITECTURES} are needed"
            )
        if np.all(self.accuracy == self.accuracy[0]):
            raise GpsrError(
                f"{self.source or self.name}: val_accuracy is constant ({self.accuracy[0]}) "
                f"in problem {self.name}, so no ranking can be learned"
            )
        return self

    def __len__(self) -> int:
        return len(self.archs)

    def column(self, proxy: str) -> np.ndarray:
        return self.values[:, self.proxies.index(proxy)]

    def select(
        self, rows: np.ndarray | None = None, proxies: Sequence[str] | None = None
    ) -> Problem:
        rows = np.arange(len(self)) if rows is None else np.asarray(rows)
        proxies = tuple(self.proxies if proxies is None else proxies)
        cols = [self.proxies.index(p) for p in proxies]
        return Problem(
            self.name,
            self.space,
            self.task,
            [self.archs[i] for i in rows],
            proxies,
            self.values[np.ix_(rows, cols)],
            self.accuracy[rows],
            self.source,
            {k: v[rows] for k, v in self.costs.items()},
            self.notes,
        )

    def sentinel_rows(self) -> np.ndarray:
        """Rows where any proxy holds a failure value (-1e8 or below, +/-inf, NaN)."""
        bad = ~np.isfinite(self.values) | (self.values <= FAILURE_SENTINEL)
        return np.flatnonzero(bad.any(axis=1))

    def split(self, seed: int, input_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """Seeded input/test row split, stable per problem name."""
        rng = np.random.default_rng([seed, zlib.crc32(self.name.encode())])
        order = rng.permutation(len(self))
        cut = int(round(input_fraction * len(self)))
        return np.sort(order[:cut]), np.sort(order[cut:])


# ---- loaders -----------------------------------------------------------------
def parse_float(text: str, where: str) -> float:
    """``float(text)``; a non-number raises :class:`GpsrError` saying ``where`` it is."""
    try:
        return float(text)
    except ValueError:
        raise GpsrError(f"{where}: non-numeric value {text!r}") from None


def _read_table(path: Path, with_accuracy: bool):
    """``(archs, accuracy or None, proxies, values, costs)`` of a CSV with an ``arch`` column.

    Columns named ``seconds_*`` are costs (what a row took to compute), not proxies.
    """
    rows = read_csv_rows(path)
    if not rows:
        raise GpsrError(f"{path}: empty file")
    header = [h.strip() for h in rows[0]]
    required = ("arch", "val_accuracy") if with_accuracy else ("arch",)
    for column in required:
        if column not in header:
            raise GpsrError(f"{path}: missing column {column!r} (header: {', '.join(header)})")
    for k, column in enumerate(header):
        if not column:
            raise GpsrError(f"{path}: column {k + 1} of the header has no name")
        if column in header[:k]:
            raise GpsrError(f"{path}: duplicate column {column!r} in the header")
    costs = tuple(h for h in header if h.startswith(COST_PREFIX))
    proxies = tuple(h for h in header if h not in ("arch", "val_accuracy", *costs))
    if not proxies:
        raise GpsrError(f"{path}: no proxy columns besides {' and '.join(required)}")
    arch_col = header.index("arch")
    acc_col = header.index("val_accuracy") if with_accuracy else None
    proxy_cols = [header.index(p) for p in (*proxies, *costs)]
    archs, acc, values = [], [], []
    for lineno, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise GpsrError(f"{path}:{lineno}: {len(row)} fields, header has {len(header)}")
        archs.append(row[arch_col])
        if acc_col is not None:
            acc.append(parse_float(row[acc_col], f"{path}:{lineno} column 'val_accuracy'"))
        values.append(
            [parse_float(row[c], f"{path}:{lineno} column {header[c]!r}") for c in proxy_cols]
        )
    _check_unique(archs, str(path))
    matrix = np.asarray(values, dtype=np.float64).reshape(len(archs), len(proxies) + len(costs))
    accuracy = np.asarray(acc, dtype=np.float64) if with_accuracy else None
    cost_values = {c: matrix[:, len(proxies) + k] for k, c in enumerate(costs)}
    return archs, accuracy, proxies, matrix[:, : len(proxies)], cost_values


def read_csv_rows(path: Path) -> list[list[str]]:
    """Every row of a UTF-8 CSV (a byte-order mark is allowed); unreadable, binary or
    non-UTF-8 files raise :class:`GpsrError` naming the file."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            return list(csv.reader(fh))
    except OSError as exc:
        raise GpsrError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise GpsrError(f"{path}: not UTF-8 text (byte {exc.start}); a problem file is a "
                        "UTF-8 CSV or JSON") from None
    except csv.Error as exc:
        raise GpsrError(f"{path}: not a readable CSV ({exc})") from None


def read_csv_records(path: Path) -> list[dict[str, str]]:
    """The rows of a UTF-8 CSV as ``{column: text}``; a row with the wrong number of fields
    raises :class:`GpsrError` naming its line."""
    rows = read_csv_rows(path)
    header = rows[0] if rows else []
    records = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise GpsrError(f"{path}:{lineno}: {len(row)} fields, header has {len(header)}")
        records.append(dict(zip(header, row)))
    return records


def _is_proxy_table(path: Path) -> bool:
    rows = read_csv_rows(path)
    header = [h.strip() for h in rows[0]] if rows else []
    return "arch" in header and "val_accuracy" not in header


def _name_of(path: Path) -> tuple[str, str, str]:
    space, task = _split_stem(path.stem.split(".")[0])
    return problem_name(space, task), space, task


def load_csv(path: str | Path) -> Problem:
    """Load one problem from a CSV in the shared layout (``arch, val_accuracy, proxies...``)."""
    path = Path(path)
    archs, accuracy, proxies, values, costs = _read_table(path, with_accuracy=True)
    name, space, task = _name_of(path)
    return Problem(name, space, task, archs, proxies, values, accuracy, str(path),
                   costs).validate()


def join_accuracies(proxy_table: str | Path, accuracies: str | Path) -> Problem:
    """A problem from a proxy table (``arch, <proxies>``, e.g. gpsr's computed proxies) and the
    ``val_accuracy`` column of a benchmark file, joined on ``arch``; named after the latter.

    Architectures of the table that the benchmark file lacks are left out.
    """
    proxy_table, accuracies = Path(proxy_table), Path(accuracies)
    archs, _, proxies, values, costs = _read_table(proxy_table, with_accuracy=False)
    bench_archs, bench_acc, _, _, _ = _read_table(accuracies, with_accuracy=True)
    accuracy_of = dict(zip(bench_archs, bench_acc))
    rows = [i for i, a in enumerate(archs) if a in accuracy_of]
    if not rows:
        raise GpsrError(f"{proxy_table}: no architecture in common with {accuracies}")
    name, space, task = _name_of(accuracies)
    notes = []
    if len(rows) < len(archs):
        notes.append(f"{name}: left out {len(archs) - len(rows)} architectures of "
                     f"{proxy_table.name} that {accuracies.name} lacks ({len(rows)} kept)")
    return Problem(
        name,
        space,
        task,
        [archs[i] for i in rows],
        proxies,
        values[rows],
        np.array([accuracy_of[archs[i]] for i in rows]),
        f"{proxy_table} joined with {accuracies}",
        {k: v[rows] for k, v in costs.items()},
        notes,
    ).validate()


def _split_stem(stem: str) -> tuple[str, str]:
    for space in sorted(_SPACE_NAMES, key=len, reverse=True):
        if stem.lower().startswith(space + "-"):
            return space, stem[len(space) + 1 :]
    if "-" in stem:
        space, task = stem.split("-", 1)
        return space, task
    return stem, "task"


def _check_unique(archs: Sequence[str], where: str) -> None:
    seen: set[str] = set()
    for arch in archs:
        if arch in seen:
            raise GpsrError(f"{where}: duplicate architecture {arch!r}")
        seen.add(arch)


def _unique_keys(path: Path):
    """A JSON object hook that refuses repeated keys (json.load would keep the last)."""

    def hook(pairs: list[tuple[str, object]]) -> dict:
        out: dict = {}
        for key, value in pairs:
            if key in out:
                raise GpsrError(f"{path}: duplicate key {key!r} (an architecture given twice?)")
            out[key] = value
        return out

    return hook


def read_json(path: Path, **kw) -> object:
    """A UTF-8 JSON file (a byte-order mark is allowed); unreadable, binary, malformed or
    too deeply nested files raise :class:`GpsrError` naming the file."""
    try:
        with path.open(encoding="utf-8-sig") as fh:
            return json.load(fh, **kw)
    except OSError as exc:
        raise GpsrError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise GpsrError(f"{path}: not UTF-8 text (byte {exc.start}); expected JSON") from None
    except json.JSONDecodeError as exc:
        raise GpsrError(f"{path}: malformed JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise GpsrError(f"{path}: JSON nested too deeply to read") from None


def load_naslib_json(path: str | Path) -> list[Problem]:
    """Load every dataset of a NAS-Bench-Suite-Zero ``zc_<space>.json`` as one problem each.

    Proxies missing for some architectures of a dataset are left out of that problem.
    """
    path = Path(path)
    data = read_json(path, object_pairs_hook=_unique_keys(path))
    space = _JSON_SPACES.get(path.stem, path.stem.removeprefix("zc_"))
    if not isinstance(data, dict) or not data:
        raise GpsrError(f"{path}: expected an object {{dataset: {{arch: {{...}}}}}}")
    problems = []
    for dataset, archs in data.items():
        if not isinstance(archs, dict):
            raise GpsrError(f"{path}: dataset {dataset!r} is not an object of architectures")
        names: list[str] = []
        acc: list[float] = []
        scores: list[dict[str, float]] = []
        for arch, record in archs.items():
            where = f"{path}: dataset {dataset!r} arch {arch!r}"
            if not isinstance(record, dict) or "val_accuracy" not in record:
                raise GpsrError(f"{where}: missing 'val_accuracy'")
            names.append(arch)
            acc.append(_as_float(record["val_accuracy"], f"{where} field 'val_accuracy'"))
            row = {}
            for key, value in record.items():
                if isinstance(value, dict) and "score" in value:
                    row[key] = _as_float(value["score"], f"{where} proxy {key!r}")
            scores.append(row)
        common = set.intersection(*(set(r) for r in scores)) if scores else set()
        proxies = tuple(sorted(common))
        if not proxies:
            raise GpsrError(f"{path}: dataset {dataset!r} has no proxy present for every arch")
        values = np.array([[r[p] for p in proxies] for r in scores], dtype=np.float64)
        problems.append(
            Problem(
                problem_name(space, dataset),
                space,
                dataset,
                names,
                proxies,
                values,
                np.asarray(acc, dtype=np.float64),
                str(path),
            ).validate()
        )
    return problems


def _as_float(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise GpsrError(f"{where}: non-numeric value {value!r}")
    return parse_float(str(value), where) if isinstance(value, str) else float(value)


def load_problems(
    paths: str | Path | Iterable[str | Path],
    names: Sequence[str] | None = None,
    accuracies: Sequence[str | Path] = (),
) -> list[Problem]:
    """Load problems from files and folders (``*.csv`` and ``zc_*.json``, not recursive).

    A CSV without ``val_accuracy`` is a proxy table: it makes one problem per file in
    ``accuracies`` (see :func:`join_accuracies`). ``names`` keeps only those problems,
    in that order (case-insensitive).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.glob("*.csv")) + sorted(p.glob("zc_*.json"))
            if not found:
                raise GpsrError(f"{p}: no *.csv or zc_*.json problem files in this folder")
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            raise GpsrError(f"{p}: no such file or folder")
    if names is not None:
        if not names:
            raise GpsrError("--problems names no problem")
        twice = [n for k, n in enumerate(names) if n.upper() in map(str.upper, names[:k])]
        if twice:
            raise GpsrError(f"problem {twice[0].upper()} is named twice in --problems")
    problems: list[Problem] = []
    joined = False
    for f in files:
        if f.suffix == ".json":
            problems.extend(load_naslib_json(f))
        elif _is_proxy_table(f):
            if not accuracies:
                raise GpsrError(f"{f}: has no val_accuracy column; join it with --accuracies FILE")
            problems.extend(join_accuracies(f, a) for a in accuracies)
            joined = True
        else:
            problems.append(load_csv(f))
    if accuracies and not joined:
        raise GpsrError(f"--accuracies {accuracies[0]} given, but no --data file is a proxy "
                        "table (arch and proxies, no val_accuracy) to join it with")
    by_name: dict[str, Problem] = {}
    for prob in problems:
        if prob.name in by_name:
            raise GpsrError(
                f"problem {prob.name} is loaded twice ({by_name[prob.name].source}, {prob.source})"
            )
        by_name[prob.name] = prob
    if names is None:
        return problems
    chosen = []
    for name in names:
        if name.upper() not in by_name:
            raise GpsrError(f"unknown problem {name!r} (loaded: {', '.join(by_name)})")
        chosen.append(by_name[name.upper()])
    return chosen


# ---- the dataset the search sees ---------------------------------------------
SENTINEL_POLICIES = ("keep", "drop")


@dataclass
class Dataset:
    """Problems restricted to one terminal set, with the sentinel policy applied and split."""

    problems: list[Problem]
    proxies: tuple[str, ...]
    input_rows: list[np.ndarray]
    test_rows: list[np.ndarray]
    sentinel_policy: str
    split_seed: int
    input_fraction: float
    notes: list[str] = field(default_factory=list)
    #: Terminal calibration (``gpsr.calibration``): the method, and per problem the maps
    #: fitted on its input rows, which every split of ``problems`` has been passed through.
    calibration: str = "none"
    calibrations: dict[str, Calibration] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.problems]

    def part(self, split: str) -> list[Problem]:
        """The problems restricted to ``"input"``, ``"test"`` or ``"all"`` rows."""
        if split == "all":
            return self.problems
        rows = {"input": self.input_rows, "test": self.test_rows}[split]
        return [p.select(r) for p, r in zip(self.problems, rows)]

    def describe(self) -> dict:
        calibrated = {} if self.calibration == "none" else {"calibration": self.calibration}
        return calibrated | {
            "problems": {
                p.name: {
                    "source": p.source,
                    "architectures": len(p),
                    "input": len(i),
                    "test": len(t),
                }
                for p, i, t in zip(self.problems, self.input_rows, self.test_rows)
            },
            "proxies": list(self.proxies),
            "sentinel_policy": self.sentinel_policy,
            "split_seed": self.split_seed,
            "input_fraction": self.input_fraction,
            "notes": self.notes,
        }


def build_dataset(
    problems: Sequence[Problem],
    proxies: Sequence[str] | None = None,
    sentinel_policy: str = "keep",
    split_seed: int = 0,
    input_fraction: float = 0.7,
    calibration: str = "none",
) -> Dataset:
    """Choose the terminal set, apply the sentinel policy and split each problem.

    The terminal set is, by default, the proxies every problem has; the notes say
    which proxies were dropped and which problems lack them. Sentinels are kept by
    default (the paper's taus include them); ``"drop"`` removes those rows.
    ``calibration`` (``none``, ``quantile``, ``robust``, ``log``; see :mod:`gpsr.calibration`)
    maps each problem's terminals through maps fitted on that problem's input rows.
    """
    check_calibration(calibration)
    if not problems:
        raise GpsrError("no problems to search over")
    if sentinel_policy not in SENTINEL_POLICIES:
        raise GpsrError(f"unknown sentinel policy {sentinel_policy!r} (use keep or drop)")
    if not 0 < input_fraction <= 1:
        raise GpsrError(f"input fraction {input_fraction} must be in (0, 1]")
    if split_seed < 0:
        raise GpsrError(f"split seed {split_seed} must be >= 0")
    notes: list[str] = list(dict.fromkeys(n for prob in problems for n in prob.notes))
    everything = list(dict.fromkeys(p for prob in problems for p in prob.proxies))
    if proxies is None:
        proxies = [p for p in everything if all(p in prob.proxies for prob in problems)]
        for p in everything:
            if p not in proxies:
                lacking = [prob.name for prob in problems if p not in prob.proxies]
                notes.append(f"dropped proxy {p}: missing in {', '.join(lacking)}")
        if not proxies:
            raise GpsrError(
                "the problems share no proxy: "
                + "; ".join(f"{prob.name} has {', '.join(prob.proxies)}" for prob in problems)
                + " (choose problems with --problems)"
            )
    else:
        if not proxies:
            raise GpsrError("--proxies names no proxy")
        twice = [p for k, p in enumerate(proxies) if p in proxies[:k]]
        if twice:
            raise GpsrError(f"proxy {twice[0]!r} is named twice in --proxies")
        for p in proxies:
            for prob in problems:
                if p not in prob.proxies:
                    raise GpsrError(f"unknown proxy {p!r} for problem {prob.name} ({prob.source})")
    chosen: list[Problem] = []
    for prob in problems:
        prob = prob.validate().select(proxies=proxies)
        bad = prob.sentinel_rows()
        if len(bad):
            if sentinel_policy == "drop":
                keep = np.setdiff1d(np.arange(len(prob)), bad)
                notes.append(f"{prob.name}: dropped {len(bad)} rows holding failure sentinels")
                prob = prob.select(keep).validate()
            else:
                notes.append(f"{prob.name}: kept {len(bad)} rows holding failure sentinels")
        chosen.append(prob)
    unnamed = [p for p in proxies if not is_proxy_name(p)]
    if unnamed:
        where = next(prob.source for prob in chosen if unnamed[0] in prob.proxies)
        raise GpsrError(
            f"{where}: proxy column {unnamed[0]!r} is not a name an expression can hold "
            "(letters, digits, _ and ., not starting with a digit); rename the column or "
            "leave it out with --proxies"
        )
    splits = [p.split(split_seed, input_fraction) for p in chosen]
    for prob, (rows, _) in zip(chosen, splits):
        if len(rows) < MIN_INPUT_ARCHITECTURES:
            raise GpsrError(
                f"input fraction {input_fraction} leaves {len(rows)} of the {len(prob)} "
                f"architectures of {prob.name} in the input split; the search needs at least "
                f"{MIN_INPUT_ARCHITECTURES} (raise --input-fraction)"
            )
    calibrations = {}
    if calibration != "none":
        for k, (prob, (rows, _)) in enumerate(zip(chosen, splits)):
            fitted = Calibration.fit(calibration, prob.values[rows], prob.proxies,
                                     prob.source or prob.name)
            calibrations[prob.name] = fitted
            chosen[k] = replace(prob, values=fitted.apply(prob.values, prob.proxies))
    return Dataset(
        chosen,
        tuple(proxies),
        [s[0] for s in splits],
        [s[1] for s in splits],
        sentinel_policy,
        split_seed,
        input_fraction,
        notes,
        calibration,
        calibrations,
    )


def finite_or_none(x: float) -> float | None:
    """JSON has no NaN: undefined values are written as null."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def shared_dir() -> Path | None:
    """The shared data folder: ``$GPSR_SHARED``, else a ``shared/`` beside the working
    directory or beside the gpsr checkout; ``None`` when there is none."""
    env = os.environ.get("GPSR_SHARED")
    if env:
        return Path(env) if Path(env).is_dir() else None
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        candidate = base.parent / "shared"
        if (candidate / "data").is_dir():
            return candidate
    return None
