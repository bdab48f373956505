"""A battery of bad inputs to every gpsr command and public entry point, run in-process.

Each :class:`Case` is data: a command line (or a Python call), the files it needs, and
what a clean outcome is:

* ``error``: exit status 2 with exactly one ``error:`` line on stderr (or click's usage
  error) that matches ``match`` (the bad file, option or value), no traceback, and none
  of the ``absent`` paths left behind (no half-made run folder);
* ``note``: the command succeeds and prints a note matching ``match`` (a refusal matching
  it is clean too): the input is accepted, but not silently;
* ``ok``: the input is valid after all (e.g. a UTF-8 BOM) and the command succeeds.

Python API cases pass when the call raises :class:`gpsr.GpsrError` with a one-line message
matching ``match`` (``error``) or returns something whose ``repr`` or notes match (``note``).

Run ``python benchmarks/bad_inputs.py`` to print the table and write
``results/bad-inputs.md``; ``tests/test_bad_inputs.py`` runs the same cases. To add a case,
append to :data:`CASES` (see :func:`err`, :func:`note`, :func:`api`); a new command needs
nothing else.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import gpsr
import gpsr.proxies
import gpsr.spaces

ROOT = Path(__file__).resolve().parents[1]
PROXIES = ("flops", "snip", "synflow")
SMALL = ("--population", "10", "--generations", "2", "--max-depth", "4", "--device", "cpu")
FileSpec = bytes | str | Callable[[Path], None]


@dataclass
class Case:
    id: str
    expect: str  # "error", "note" or "ok"
    match: str = ""  # regex (case-insensitive) the error line or the note must contain
    args: tuple[str, ...] = ()  # CLI arguments; {tmp}, {data}, {npz}, ... are filled in
    files: dict[str, FileSpec] = field(default_factory=dict)  # relative to {tmp}
    call: Callable[[Path], object] | None = None  # Python API case: call(tmp)
    absent: tuple[str, ...] = ()  # paths (relative to {tmp}) that must not exist afterwards
    needs: str | None = None  # "no-cuda": skipped where CUDA is available

    @property
    def command(self) -> str:
        if self.call is not None:
            return "api"
        words = [a for a in self.args[:2] if not a.startswith("-")]
        return " ".join(words[:2]) if words and words[0] == "bench" else words[0]


def err(id: str, match: str, *args: str, files: dict | None = None,
        absent: tuple[str, ...] = (), **kw) -> Case:
    return Case(id, "error", match, args, files or {}, absent=absent, **kw)


def note(id: str, match: str, *args: str, files: dict | None = None, **kw) -> Case:
    return Case(id, "note", match, args, files or {}, **kw)


def fine(id: str, *args: str, files: dict | None = None, **kw) -> Case:
    return Case(id, "ok", "", args, files or {}, **kw)


def api(id: str, match: str, call: Callable[[Path], object], expect: str = "error",
        files: dict | None = None, **kw) -> Case:
    return Case(id, expect, match, (), files or {}, call=call, **kw)


# ---- files ---------------------------------------------------------------------------------
def csv_text(n: int = 40, seed: int = 0, header: str | None = None,
             proxies: tuple[str, ...] = PROXIES, arch_prefix: str = "arch-") -> str:
    """A learnable problem in the shared CSV layout."""
    rng = np.random.default_rng(seed)
    values = rng.lognormal(size=(n, len(proxies)))
    acc = 60 + 10 * np.log(values[:, 0] + 1) * values[:, -1] + rng.normal(size=n)
    lines = [header or "arch,val_accuracy," + ",".join(proxies)]
    lines += [f"{arch_prefix}{i},{float(acc[i])!r}," + ",".join(repr(float(v)) for v in values[i])
              for i in range(n)]
    return "\n".join(lines) + "\n"


def csv_cell(row: int, column: int, value: str, n: int = 40) -> str:
    """:func:`csv_text` with the cell at data row ``row``, column ``column`` set to ``value``."""
    lines = csv_text(n).splitlines()
    cells = lines[row + 1].split(",")
    cells[column] = value
    lines[row + 1] = ",".join(cells)
    return "\n".join(lines) + "\n"


def table_text(n: int = 40, seed: int = 3) -> str:
    """A proxy table (no val_accuracy) for the archs of :func:`csv_text`."""
    rng = np.random.default_rng(seed)
    rows = [f"arch-{i},{rng.normal()!r},{rng.normal()!r}" for i in range(n)]
    return "arch,zen,nwot\n" + "\n".join(rows) + "\n"


def naslib_json(n: int = 30, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"cifar10": {f"({i},)": {"val_accuracy": float(60 + 10 * rng.random()),
                                    **{p: {"score": float(rng.normal()), "time": 0.1}
                                       for p in PROXIES}}
                        for i in range(n)}}


def npz_bytes(**arrays) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        np.savez(path, **arrays)
    return write


def good_npz(n: int = 8) -> Callable[[Path], None]:
    rng = np.random.default_rng(0)
    return npz_bytes(images=rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
                     labels=rng.integers(0, 10, n))


def object_npz(path: Path) -> None:
    images = np.empty(4, dtype=object)
    images[:] = [np.zeros((32, 32, 3), np.uint8)] * 4
    np.savez(path, images=images, labels=np.arange(4))


def result_json(infix: str) -> str:
    return json.dumps({"expression": {"infix": infix}})


RANDOM = bytes(np.random.default_rng(7).integers(0, 256, 3000, dtype=np.uint8))
LATIN1 = csv_text().replace("arch,val_accuracy,flops", "arch,val_accuracy,flops_é").encode(
    "latin-1")
BOM = b"\xef\xbb\xbf" + csv_text().encode()
DEEP_NEG = "neg(" * 10_000 + "snip" + ")" * 10_000
LONG_SUM = " + ".join(["snip"] * 10_000)
DEEP_PARENS = "(" * 10_000 + "snip" + ")" * 10_000
NB201_ARCH = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|none~1|"
              "avg_pool_3x3~2|")


class _StopsAfterTwo(gpsr.Executor):
    """Hands back made-up records for the first two networks, then is interrupted: a real
    journal of an interrupted proxies-table, without computing any network."""

    def map(self, fn, items):
        from gpsr.proxies import PROXIES

        for i, job in enumerate(list(items)[:2]):
            yield i, {"arch": job.arch, "proxies": {p: i + 0.5 for p in PROXIES},
                      "seconds_proxies": 0.0}
        raise KeyboardInterrupt

    def describe(self) -> dict:
        return {"backend": "interrupted"}


def interrupted_table(path: Path) -> None:
    """``{tmp}/t.csv.partial.jsonl`` as :data:`TABLE` leaves it when stopped after two rows."""
    from gpsr.proxies.table import compute_table

    good_npz()(path.parent / "img.npz")
    try:
        compute_table("tnb101-micro", 4, path.parent / "t.csv", _StopsAfterTwo(),
                      images=str(path.parent / "img.npz"), batch_size=4)
    except KeyboardInterrupt:
        pass


def corrupt_line(lineno: int, junk: bytes) -> Callable[[Path], None]:
    """An interrupted proxies-table journal whose line ``lineno`` (1-based) is ``junk``."""
    def write(path: Path) -> None:
        interrupted_table(path)
        journal = path.parent / "t.csv.partial.jsonl"
        lines = journal.read_bytes().splitlines()
        lines[lineno - 1] = junk
        journal.write_bytes(b"\n".join(lines) + b"\n")
    return write


def finished_run(corrupt: str | None = None, junk: bytes = RANDOM,
                 extra: tuple[str, ...] = ()) -> Callable[[Path], None]:
    """A finished two-run folder ``{tmp}/out`` made with :data:`RUN`; ``corrupt`` names a file
    in it to overwrite with ``junk``."""
    def write(path: Path) -> None:
        from typer.testing import CliRunner

        from gpsr.cli.app import app

        res = CliRunner().invoke(app, fill(RUN + ("--runs", "2", *extra), path.parent))
        assert res.exit_code == 0, res.output
        if corrupt:
            (path.parent / "out" / corrupt).write_bytes(junk)
    return write


def finished_build(path: Path) -> None:
    """A finished ``bench build --space minimicro --archs 2 --seed 0`` file (made-up scores):
    extending it with ``--resume`` trains nothing."""
    from gpsr.minibench import TIME_COLUMNS, sample
    from gpsr.proxies import PROXIES

    rows = [",".join(["arch", "val_accuracy", *PROXIES, *TIME_COLUMNS])]
    rows += [",".join([f'"{arch}"', str(50.0 + k), *(["0.5"] * len(PROXIES)), "1.0", "0.1"])
             for k, arch in enumerate(sample("minimicro", 2, 0))]
    path.write_text("\n".join(rows) + "\n")


def data_folder(path: Path) -> None:
    path.mkdir()
    (path / "nb201-cifar10.csv").write_text(csv_text(80, 0))
    (path / "nb101-cifar10.csv").write_text(csv_text(60, 1))


# ---- the cases ---------------------------------------------------------------------------
D = ("--data", "{tmp}/p.csv")
DATA = ("--data", "{tmp}/data")
RUN = ("run", *DATA, "--out", "{tmp}/out", *SMALL)
EVAL = ("evaluate", *DATA, "--device", "cpu")
BENCH = ("bench-throughput", *DATA, "--device", "cpu", "--population", "10", "--repeats", "1")
IMG = ("--images", "{tmp}/img.npz", "--batch-size", "4")
SCORE = ("score", "--metric", "snip", "--space", "nb201", "--arch", NB201_ARCH, *IMG,
         "--device", "cpu")
PROX = ("proxies", "--space", "nb201", "--arch", NB201_ARCH, *IMG, "--device", "cpu")
TABLE = ("proxies-table", "--space", "tnb101-micro", "--archs", "2", *IMG)
BUILD = ("bench", "build", "--space", "minimicro", "--task", "digits-class", "--epochs", "1")
BASE = {"data": data_folder, "img.npz": good_npz()}
OUT = ("out",)


# ---- the newer commands: search, train, report, compare --------------------------------------
MINI_ARCH = "(2, 1, 1, 0, 0, 0)"


def mini_csv(n: int = 30, repeat: bool = False) -> str:
    """A tiny lookup problem over real minimicro archs (``repeat``: one arch, written under
    several spellings so its rows are distinct but the network is one)."""
    from gpsr.minibench import sample

    archs = sample("minimicro", n, 0)
    if repeat:
        archs = [archs[0].replace(", ", "," + " " * k) for k in range(n)]
    rng = np.random.default_rng(5)
    rows = ["arch,val_accuracy,flops,snip"]
    rows += [f'"{a}",{50 + 10 * rng.random()!r},{rng.random()!r},{rng.random()!r}'
             for a in archs]
    return "\n".join(rows) + "\n"


def torch_save(obj: object) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        import torch

        torch.save(obj, path)
    return write


def _train_config(**changes) -> object:
    from gpsr.train import TrainConfig

    config = TrainConfig(**changes)
    config.check()
    return config


def _train_api(tmp: Path, **changes) -> object:
    from gpsr.train import train_arch

    return train_arch("minimicro", MINI_ARCH, tmp / "t", task="digits-class", epochs=1,
                      **changes)


def _methods():
    import gpsr.methods

    return gpsr.methods


MINI = {"minimicro-t.csv": mini_csv()}
TINY = ("--evaluations", "10", "--population", "4", "--sample-size", "2")
SEARCH = ("search", "--metric", "snip", "--problem", "MINIMICRO-T", "--data",
          "{tmp}/minimicro-t.csv", *TINY)
TRAIN = ("train", "--space", "minimicro", "--arch", MINI_ARCH, "--out", "{tmp}/t", "--device",
         "cpu", "--task", "digits-class")
RUN_FILES = {**BASE, ".made": finished_run()}
REPORT = ("report", "{tmp}/out", "--device", "cpu", "--no-html", "--out", "{tmp}/rep")
COMPARE = ("compare", "--data", "{tmp}/data", "--runs", "1", "--out", "{tmp}/cmp")


def run_case(id: str, match: str, *extra: str, files: dict | None = None, **kw) -> Case:
    """``gpsr run`` on the good data folder with ``extra`` options; must leave no folder."""
    return err(id, match, *RUN, *extra, files={**BASE, **(files or {})}, absent=OUT, **kw)


def data_case(id: str, match: str, content: FileSpec, name: str = "nb201-cifar10.csv",
              command: tuple[str, ...] = ("run", "--out", "{tmp}/out", *SMALL),
              expect: str = "error") -> Case:
    """A command reading one bad problem file ``{tmp}/NAME``."""
    args = (*command, "--data", "{tmp}/" + name)
    if expect == "ok":
        return fine(id, *args, files={name: content})
    return Case(id, expect, match, args, {name: content},
                absent=OUT if command[0] == "run" else ())


def _dataset(tmp: Path, **kw) -> gpsr.Dataset:
    return gpsr.build_dataset(gpsr.load_problems(tmp / "data"), **kw)


def _parsed(text: str, then: str | None = None) -> Callable[[Path], object]:
    def call(tmp: Path) -> object:
        expr = gpsr.parse(text)
        if then == "sympy":
            return expr.to_sympy(simplify=True)
        if then == "latex":
            return expr.to_latex()
        if then == "evaluate":
            return expr.evaluate({"snip": np.ones(3)})
        return expr
    return call


def _nested(depth: int) -> object:
    return functools.reduce(lambda inner, _: ["neg", inner], range(depth), "snip")


def _chain(depth: int) -> gpsr.Expression:
    return functools.reduce(lambda inner, _: gpsr.Expression("neg", [inner]), range(depth),
                            gpsr.Expression("snip"))


CASES: list[Case] = [
    # ---- problem files (read by run, evaluate, bench-throughput) ----
    err("data-missing-file", r"missing\.csv", *RUN[:1], "--data", "{tmp}/missing.csv",
        "--out", "{tmp}/out", *SMALL, absent=OUT),
    err("data-empty-folder", r"empty", "run", "--data", "{tmp}/empty", "--out", "{tmp}/out",
        *SMALL, files={"empty/.keep": ""}, absent=OUT),
    data_case("csv-empty-file", r"p\.csv|empty", "", "p.csv"),
    data_case("csv-header-only", r"architectures|no rows", "arch,val_accuracy,snip\n"),
    data_case("csv-no-arch-column", r"'arch'", "name,val_accuracy,snip\na,1,2\n"),
    data_case("csv-no-proxy-columns", r"no proxy", "arch,val_accuracy\na,1\n"),
    data_case("csv-non-numeric", r"'snip'.*'abc'", csv_cell(3, 3, "abc")),
    data_case("csv-ragged-row", r"fields", csv_text() + "arch-x,1\n"),
    data_case("csv-duplicate-arch", r"duplicate architecture", csv_text() + "\n".join(
        csv_text().splitlines()[1:2]) + "\n"),
    data_case("csv-nan-accuracy", r"val_accuracy", csv_cell(1, 1, "nan")),
    data_case("csv-inf-accuracy", r"val_accuracy", csv_cell(1, 1, "inf")),
    data_case("csv-constant-accuracy", r"constant", "arch,val_accuracy,snip\n" + "".join(
        f"a{i},50,{i}\n" for i in range(20))),
    data_case("csv-too-few-archs", r"at least", csv_text(5)),
    data_case("csv-binary", r"nb201-cifar10\.csv.*(UTF-8|binary|text)", RANDOM),
    data_case("csv-latin1", r"nb201-cifar10\.csv.*UTF-8", LATIN1),
    data_case("csv-utf8-bom", "", BOM, expect="ok"),
    data_case("csv-duplicate-column", r"duplicate column 'snip'",
              csv_text(header="arch,val_accuracy,flops,snip,snip", proxies=("a", "b", "c"))),
    data_case("csv-empty-column-name", r"column",
              csv_text(header="arch,val_accuracy,flops,,synflow")),
    data_case("csv-proxy-name-space", r"snip score",
              csv_text(header="arch,val_accuracy,flops,snip score,synflow")),
    data_case("csv-proxy-name-dash", r"snip-2",
              csv_text(header="arch,val_accuracy,flops,snip-2,synflow")),
    data_case("csv-proxy-name-digit", r"'1x'",
              csv_text(header="arch,val_accuracy,flops,1x,synflow")),
    data_case("csv-empty-cell", r"'flops'.*''", csv_cell(2, 2, "")),
    data_case("csv-evaluate-binary", r"nb201-cifar10\.csv", RANDOM,
              command=("evaluate", "--expr", "snip")),
    data_case("csv-bench-binary", r"nb201-cifar10\.csv", RANDOM,
              command=("bench-throughput", "--repeats", "1")),
    data_case("json-malformed", r"malformed JSON", "{not json", "zc_nasbench201.json"),
    data_case("json-list", r"expected an object", "[1, 2]", "zc_nasbench201.json"),
    data_case("json-empty-object", r"expected an object", "{}", "zc_nasbench201.json"),
    data_case("json-dataset-not-object", r"'cifar10'", '{"cifar10": 3}', "zc_nasbench201.json"),
    data_case("json-no-accuracy", r"val_accuracy",
              '{"cifar10": {"a": {"snip": {"score": 1}}}}', "zc_nasbench201.json"),
    data_case("json-non-numeric-score", r"'flops'.*'x-0", json.dumps(naslib_json()).replace(
        '"score": ', '"score": "x', 1).replace(', "time"', '", "time"', 1), "zc_nasbench201.json"),
    data_case("json-duplicate-key", r"duplicate key",
              '{"cifar10": {"a": {"val_accuracy": 1}, "a": {"val_accuracy": 2}}}',
              "zc_nasbench201.json"),
    data_case("json-binary", r"zc_nasbench201\.json", RANDOM, "zc_nasbench201.json"),
    data_case("json-deeply-nested", r"zc_nasbench201\.json.*(nest|deep)", "[" * 100_000,
              "zc_nasbench201.json"),
    data_case("json-bom", "", b"\xef\xbb\xbf" + json.dumps(naslib_json()).encode(),
              "zc_nasbench201.json", expect="ok"),
    data_case("json-no-common-proxy", r"no proxy", json.dumps({"cifar10": {
        f"a{i}": {"val_accuracy": i, **({"snip": {"score": i}} if i % 2 else
                                         {"zen": {"score": i}})} for i in range(20)}}),
              "zc_nasbench201.json"),
    data_case("json-evaluate-malformed", r"malformed JSON", "{", "zc_nasbench201.json",
              command=("evaluate", "--expr", "snip")),
    # ---- --problems, --accuracies, terminal set, splits ----
    run_case("problems-unknown", r"NB999", "--problems", "NB999-CF10"),
    run_case("problems-twice", r"NB201-CF10.*twice", "--problems", "NB201-CF10,nb201-cf10"),
    run_case("problems-empty", r"--problems", "--problems", ","),
    err("accuracies-missing-table", r"--accuracies", "run", "--data", "{tmp}/t.csv", "--out",
        "{tmp}/out", *SMALL, files={"t.csv": table_text()}, absent=OUT),
    err("accuracies-missing-file", r"missing\.csv", "run", "--data", "{tmp}/t.csv",
        "--accuracies", "{tmp}/missing.csv", "--out", "{tmp}/out", *SMALL,
        files={"t.csv": table_text()}, absent=OUT),
    err("accuracies-no-common-arch", r"no architecture in common", "run", "--data",
        "{tmp}/t.csv", "--accuracies", "{tmp}/nb201-cifar10.csv", "--out", "{tmp}/out", *SMALL,
        files={"t.csv": table_text(), "nb201-cifar10.csv": csv_text(arch_prefix="other-")},
        absent=OUT),
    note("accuracies-drop-rows", r"left out 20 architectures|20 .*(dropped|left out)", "run",
         "--data", "{tmp}/t.csv", "--accuracies", "{tmp}/nb201-cifar10.csv", "--out",
         "{tmp}/out", *SMALL, files={"t.csv": table_text(60), "nb201-cifar10.csv": csv_text()}),
    err("accuracies-without-table", r"--accuracies", *RUN, "--accuracies",
        "{tmp}/data/nb201-cifar10.csv", files=BASE, absent=OUT),
    err("accuracies-is-table", r"val_accuracy", "run", "--data", "{tmp}/t.csv", "--accuracies",
        "{tmp}/u.csv", "--out", "{tmp}/out", *SMALL,
        files={"t.csv": table_text(), "u.csv": table_text()}, absent=OUT),
    run_case("sentinels-unknown", r"purge", "--sentinels", "purge"),
    run_case("input-fraction-zero", r"input.fraction", "--input-fraction", "0"),
    run_case("input-fraction-big", r"input.fraction", "--input-fraction", "1.5"),
    run_case("input-fraction-tiny", r"input.fraction|input split", "--input-fraction", "0.01"),
    run_case("input-fraction-nan", r"input.fraction", "--input-fraction", "nan"),
    run_case("proxies-unknown", r"'zen'", "--proxies", "zen"),
    run_case("proxies-empty", r"--proxies", "--proxies", ","),
    run_case("proxies-twice", r"'snip'.*twice", "--proxies", "snip,snip"),
    run_case("proxies-cost-column", r"seconds_x", "--proxies", "seconds_x"),
    # ---- search settings ----
    run_case("population-zero", r"population", "--population", "0"),
    run_case("population-odd", r"population", "--population", "7"),
    run_case("population-text", r"population", "--population", "ten"),
    run_case("generations-negative", r"generations", "--generations", "-1"),
    run_case("runs-zero", r"runs", "--runs", "0"),
    run_case("runs-negative", r"runs", "--runs", "-3"),
    run_case("tournament-zero", r"tournament", "--tournament-size", "0"),
    run_case("tournament-too-big", r"tournament", "--tournament-size", "11"),
    run_case("p-crossover-big", r"p_crossover", "--p-crossover", "1.5"),
    run_case("p-hoist-negative", r"p_hoist", "--p-hoist", "-0.1"),
    run_case("p-point-nan", r"p_point", "--p-point", "nan"),
    run_case("depth-inverted", r"depth", "--min-depth", "5", "--max-depth", "3"),
    run_case("depth-negative", r"depth", "--max-depth", "-1"),
    run_case("depth-huge", r"max.depth", "--max-depth", "5000"),
    run_case("seed-negative", r"seed", "--seed", "-1"),
    run_case("split-seed-negative", r"split.seed", "--split-seed", "-1"),
    run_case("jobs-zero", r"jobs", "--jobs", "0"),
    run_case("jobs-negative", r"jobs", "--jobs", "-1"),
    run_case("backend-unknown", r"spark", "--backend", "spark"),
    run_case("device-tpu", r"tpu", "--device", "tpu"),
    run_case("device-cuda-no-gpu", r"cuda", "--device", "cuda", needs="no-cuda"),
    run_case("device-cuda-index", r"cuda:7", "--device", "cuda:7"),
    run_case("device-empty", r"device", "--device", ""),
    err("out-is-file", r"f\.txt.*is a file", *RUN[:3], "--out", "{tmp}/f.txt",
        *SMALL, files={**BASE, "f.txt": "mine"}),
    err("out-parent-is-file", r"f\.txt", *RUN[:3], "--out", "{tmp}/f.txt/sub", *SMALL,
        files={**BASE, "f.txt": "mine"}),
    err("out-occupied", r"not a gpsr run folder", *RUN, files={**BASE, "out/mine.txt": "x"}),
    err("out-other-settings", r"other settings", *RUN, "--runs", "3",
        files={**BASE, ".made": finished_run()}),
    err("checkpoint-random-bytes", r"run-000\.json.*delete", *RUN, "--runs", "2",
        files={**BASE, ".made": finished_run("runs/run-000.json")}),
    err("checkpoint-truncated", r"run-001\.json.*delete", *RUN, "--runs", "2",
        files={**BASE, ".made": finished_run("runs/run-001.json", b'{"done": true, "se')}),
    err("checkpoint-wrong-shape", r"run-000\.json.*delete", *RUN, "--runs", "2",
        files={**BASE, ".made": finished_run("runs/run-000.json", b'{"done": false}')}),
    err("checkpoint-bad-state", r"run-000\.json.*delete", *RUN, "--runs", "2",
        files={**BASE, ".made": finished_run(
            "runs/run-000.json", b'{"done": false, "state": {"generation": "x"}}')}),
    err("checkpoint-bad-expression", r"run-001\.json.*delete", *RUN, "--runs", "2",
        files={**BASE, ".made": finished_run(
            "runs/run-001.json", b'{"done": true, "seed": 1, "expression": "zen((", '
                                 b'"search_seconds": 0, "history": []}')}),
    err("config-json-random-bytes", r"config\.json", *RUN, "--runs", "2",
        files={**BASE, ".made": finished_run("config.json")}),
    # ---- evaluate ----
    err("expr-unparsable", r"cannot parse", *EVAL, "--expr", "log((", files=BASE),
    err("expr-unknown-function", r"foo", *EVAL, "--expr", "foo(snip)", files=BASE),
    err("expr-unknown-proxy", r"zen", *EVAL, "--expr", "zen * snip", files=BASE),
    err("expr-empty", r"expression|--expr", *EVAL, "--expr", "", files=BASE),
    err("expr-number", r"cannot parse", *EVAL, "--expr", "2 * snip", files=BASE),
    err("expr-arity", r"sqrt", *EVAL, "--expr", "sqrt(snip, flops)", files=BASE),
    err("expr-juxtaposed", r"cannot parse", *EVAL, "--expr", "snip snip", files=BASE),
    err("expr-deep-neg", r"deep|depth", *EVAL, "--expr", DEEP_NEG, files=BASE),
    err("expr-long-sum", r"deep|depth", *EVAL, "--expr", LONG_SUM, files=BASE),
    err("expr-deep-parens", r"deep|depth|nest", *EVAL, "--expr", DEEP_PARENS, files=BASE),
    err("expr-missing-json", r"missing\.json", *EVAL, "--expr", "{tmp}/missing.json",
        files=BASE),
    err("expr-json-malformed", r"r\.json", *EVAL, "--expr", "{tmp}/r.json",
        files={**BASE, "r.json": "{oops"}),
    err("expr-json-binary", r"r\.json", *EVAL, "--expr", "{tmp}/r.json",
        files={**BASE, "r.json": RANDOM}),
    err("expr-json-no-expression", r"r\.json", *EVAL, "--expr", "{tmp}/r.json",
        files={**BASE, "r.json": "{}"}),
    err("expr-json-bad-infix", r"cannot parse", *EVAL, "--expr", "{tmp}/r.json",
        files={**BASE, "r.json": result_json("snip +")}),
    err("expr-json-deep", r"r\.json", *EVAL, "--expr", "{tmp}/r.json",
        files={**BASE, "r.json": "[" * 100_000}),
    note("evaluate-nan-proxies", r"failure sentinel", "evaluate", "--data", "{tmp}/p",
         "--expr", "snip", "--device", "cpu",
         files={"p/nb201-cifar10.csv": csv_cell(4, 3, "nan")}),
    note("evaluate-inf-proxies", r"failure sentinel", "evaluate", "--data", "{tmp}/p",
         "--expr", "snip", "--device", "cpu",
         files={"p/nb201-cifar10.csv": csv_cell(4, 3, "inf")}),
    err("evaluate-device-tpu", r"tpu", *EVAL[:-2], "--device", "tpu", "--expr", "snip",
        files=BASE),
    err("evaluate-device-cuda", r"cuda", *EVAL[:-2], "--device", "cuda", "--expr", "snip",
        files=BASE, needs="no-cuda"),
    err("evaluate-input-fraction-tiny", r"input", *EVAL, "--expr", "{tmp}/r.json",
        files={**BASE, "r.json": json.dumps({"expression": {"infix": "snip"},
                                             "data": {"input_fraction": 0.01}})}),
    err("evaluate-problems-twice", r"twice", *EVAL, "--expr", "snip", "--problems",
        "NB201-CF10,NB201-CF10", files=BASE),
    # ---- bench-throughput ----
    err("bench-repeats-zero", r"repeats", *BENCH[:-2], "--repeats", "0", files=BASE),
    err("bench-repeats-negative", r"repeats", *BENCH[:-2], "--repeats", "-2", files=BASE),
    err("bench-population-zero", r"population", *BENCH[:-4], "--population", "0",
        "--repeats", "1", files=BASE),
    err("bench-population-odd", r"population", *BENCH[:-4], "--population", "7",
        "--repeats", "1", files=BASE),
    err("bench-device-tpu", r"tpu", *BENCH[:-6], "--population", "10", "--repeats", "1",
        "--device", "tpu", files=BASE),
    err("bench-save-parent-file", r"f\.txt", *BENCH, "--save", "{tmp}/f.txt/b.json",
        files={**BASE, "f.txt": "x"}),
    err("bench-data-empty", r"empty|no proxy|\.csv", "bench-throughput", "--data",
        "{tmp}/e", files={"e/.keep": ""}),
    # ---- score ----
    err("score-metric-unparsable", r"cannot parse", *SCORE[:1], "--metric", "snip +",
        *SCORE[3:], files=BASE),
    err("score-metric-unknown-proxy", r"zen2", *SCORE[:1], "--metric", "zen2", *SCORE[3:],
        files=BASE),
    err("score-metric-missing-json", r"missing\.json", *SCORE[:1], "--metric",
        "{tmp}/missing.json", *SCORE[3:], files=BASE),
    err("score-metric-binary-json", r"r\.json", *SCORE[:1], "--metric", "{tmp}/r.json",
        *SCORE[3:], files={**BASE, "r.json": RANDOM}),
    err("score-metric-deep", r"deep|depth", *SCORE[:1], "--metric", DEEP_NEG, *SCORE[3:],
        files=BASE),
    err("score-space-unknown", r"nb999", *SCORE[:3], "--space", "nb999", *SCORE[5:],
        files=BASE),
    err("score-arch-bad", r"nb201", *SCORE[:5], "--arch", "|bogus~0|", *SCORE[7:], files=BASE),
    err("score-no-arch", r"--arch", *SCORE[:5], *SCORE[7:], files=BASE),
    err("score-archs-file-missing", r"archs\.txt", *SCORE[:5], "--archs-file", "{tmp}/archs.txt",
        *SCORE[7:], files=BASE),
    err("score-archs-file-binary", r"archs\.txt", *SCORE[:5], "--archs-file",
        "{tmp}/archs.txt", *SCORE[7:], files={**BASE, "archs.txt": RANDOM}),
    err("score-num-classes-zero", r"num.classes", *SCORE, "--num-classes", "0", files=BASE),
    err("score-num-classes-negative", r"num.classes", *SCORE, "--num-classes", "-2",
        files=BASE),
    err("score-batch-size-one", r"\b1\b|batch", *SCORE, "--batch-size", "1", files=BASE),
    err("score-batch-too-big", r"img\.npz", *SCORE, "--batch-size", "100", files=BASE),
    err("score-images-missing", r"nope\.npz", *SCORE, "--images", "{tmp}/nope.npz", files=BASE),
    err("score-images-not-npz", r"img\.npz", *SCORE, files={"img.npz": "just text"}),
    err("score-images-random-bytes", r"img\.npz", *SCORE, files={"img.npz": RANDOM}),
    err("score-images-object-arrays", r"img\.npz", *SCORE, files={"img.npz": object_npz}),
    err("score-images-no-labels", r"labels", *SCORE,
        files={"img.npz": npz_bytes(images=np.zeros((8, 32, 32, 3), np.uint8))}),
    err("score-images-float", r"uint8|float", *SCORE, files={"img.npz": npz_bytes(
        images=np.zeros((8, 32, 32, 3), np.float32), labels=np.zeros(8, int))}),
    err("score-images-label-count", r"labels", *SCORE, files={"img.npz": npz_bytes(
        images=np.zeros((8, 32, 32, 3), np.uint8), labels=np.zeros(3, int))}),
    err("score-images-3d", r"img\.npz|dims|shape", *SCORE, files={"img.npz": npz_bytes(
        images=np.zeros((8, 32, 32), np.uint8), labels=np.zeros(8, int))}),
    err("score-images-negative-labels", r"labels", *SCORE, files={"img.npz": npz_bytes(
        images=np.zeros((8, 32, 32, 3), np.uint8), labels=-np.ones(8, int))}),
    err("score-images-zip-not-npz", r"img\.npz", *SCORE,
        files={"img.npz": lambda p: zipfile.ZipFile(p, "w").writestr("x.txt", "hi")}),
    err("score-device-tpu", r"tpu", *SCORE[:-2], "--device", "tpu", files=BASE),
    err("score-device-cuda", r"cuda", *SCORE[:-2], "--device", "cuda", files=BASE,
        needs="no-cuda"),
    # ---- proxies ----
    err("proxies-space-unknown", r"nb999", *PROX[:1], "--space", "nb999", *PROX[3:],
        files=BASE),
    err("proxies-arch-bad", r"nb201", *PROX[:3], "--arch", "garbage", *PROX[5:], files=BASE),
    err("proxies-no-arch", r"--arch", *PROX[:3], *PROX[5:], files=BASE),
    err("proxies-num-classes-zero", r"num.classes", *PROX, "--num-classes", "0", files=BASE),
    err("proxies-batch-size-zero", r"0|batch", *PROX, "--batch-size", "0", files=BASE),
    err("proxies-images-object-arrays", r"img\.npz", *PROX, files={"img.npz": object_npz}),
    err("proxies-images-not-npz", r"img\.npz", *PROX, files={"img.npz": "text"}),
    err("proxies-device-tpu", r"tpu", *PROX[:-2], "--device", "tpu", files=BASE),
    # ---- proxies-table ----
    err("table-archs-zero", r"archs", *TABLE[:3], "--archs", "0", *TABLE[5:], "--out",
        "{tmp}/t.csv", files=BASE, absent=("t.csv", "t.csv.partial.jsonl")),
    err("table-archs-too-many", r"5000", *TABLE[:3], "--archs", "5000", *TABLE[5:], "--out",
        "{tmp}/t.csv", files=BASE, absent=("t.csv.partial.jsonl",)),
    err("table-out-not-csv", r"t\.txt", *TABLE, "--out", "{tmp}/t.txt", files=BASE),
    err("table-out-exists", r"t\.csv.*--resume", *TABLE, "--out", "{tmp}/t.csv",
        files={**BASE, "t.csv": "arch\n"}),
    err("table-resume-force", r"--resume", *TABLE, "--out", "{tmp}/t.csv", "--resume",
        "--force", files=BASE),
    err("table-space-unknown", r"nb999", *TABLE[:1], "--space", "nb999", *TABLE[3:], "--out",
        "{tmp}/t.csv", files=BASE, absent=("t.csv.partial.jsonl",)),
    err("table-jobs-zero", r"jobs", *TABLE, "--out", "{tmp}/t.csv", "--jobs", "0",
        files=BASE, absent=("t.csv.partial.jsonl",)),
    err("table-out-parent-file", r"f\.txt", *TABLE, "--out", "{tmp}/f.txt/t.csv",
        files={**BASE, "f.txt": "x"}),
    err("table-num-classes-zero", r"num.classes", *TABLE, "--out", "{tmp}/t.csv",
        "--num-classes", "0", files=BASE, absent=("t.csv.partial.jsonl",)),
    err("table-batch-size-one", r"\b1\b|batch", *TABLE, "--out", "{tmp}/t.csv", "--batch-size", "1",
        files=BASE, absent=("t.csv.partial.jsonl",)),
    err("table-images-object", r"img\.npz", *TABLE, "--out", "{tmp}/t.csv",
        files={"img.npz": object_npz}, absent=("t.csv.partial.jsonl",)),
    err("table-existing-not-table", r"t\.csv", *TABLE, "--out", "{tmp}/t.csv", "--resume",
        files={**BASE, "t.csv": "a,b\n1,2\n"}),
    err("table-existing-binary", r"t\.csv", *TABLE, "--out", "{tmp}/t.csv", "--resume",
        files={**BASE, "t.csv": RANDOM}),
    err("journal-random-bytes", r"partial\.jsonl.*(delete|--repair)", *TABLE[:3], "--archs",
        "4", *TABLE[5:], "--out", "{tmp}/t.csv", "--resume",
        files={**BASE, "t.csv.partial.jsonl": RANDOM}),
    err("journal-corrupt-header", r"partial\.jsonl.*delete", *TABLE[:3], "--archs", "4",
        *TABLE[5:], "--out", "{tmp}/t.csv", "--resume",
        files={**BASE, ".made": corrupt_line(1, b"{garbage")}),
    err("journal-corrupt-record", r"partial\.jsonl:2.*--repair", *TABLE[:3], "--archs", "4",
        *TABLE[5:], "--out", "{tmp}/t.csv", "--resume",
        files={**BASE, ".made": corrupt_line(2, b'{"arch": "x", "pro')}),
    err("journal-record-not-object", r"partial\.jsonl:2.*--repair", *TABLE[:3], "--archs", "4",
        *TABLE[5:], "--out", "{tmp}/t.csv", "--resume",
        files={**BASE, ".made": corrupt_line(2, b'[1, 2]')}),
    err("journal-record-binary", r"partial\.jsonl:2.*--repair", *TABLE[:3], "--archs", "4",
        *TABLE[5:], "--out", "{tmp}/t.csv", "--resume",
        files={**BASE, ".made": corrupt_line(2, RANDOM[:40].replace(b"\n", b"x"))}),
    err("journal-other-options", r"seed", *TABLE[:3], "--archs", "4", *TABLE[5:], "--out",
        "{tmp}/t.csv", "--resume", "--seed", "3",
        files={**BASE, ".made": interrupted_table}),
    # ---- bench build ----
    err("build-space-unknown", r"nb999", "bench", "build", "--space", "nb999", "--task",
        "digits-class", "--out", "{tmp}/b.csv", absent=("b.csv.partial.jsonl",)),
    err("build-task-unknown", r"cats", *BUILD[:4], "--task", "cats", "--out", "{tmp}/b.csv",
        absent=("b.csv.partial.jsonl",)),
    err("build-archs-zero", r"archs", *BUILD, "--archs", "0", "--out", "{tmp}/b.csv",
        absent=("b.csv.partial.jsonl",)),
    err("build-archs-too-many", r"archs", *BUILD, "--archs", "999999", "--out", "{tmp}/b.csv",
        absent=("b.csv.partial.jsonl",)),
    err("build-epochs-zero", r"epochs", *BUILD[:-2], "--epochs", "0", "--out", "{tmp}/b.csv",
        absent=("b.csv.partial.jsonl",)),
    err("build-out-not-csv", r"b\.txt", *BUILD, "--out", "{tmp}/b.txt"),
    err("build-out-exists", r"--resume", *BUILD, "--out", "{tmp}/b.csv",
        files={"b.csv": "x\n"}),
    err("build-resume-force", r"--resume", *BUILD, "--out", "{tmp}/b.csv", "--resume",
        "--force"),
    err("build-jobs-zero", r"jobs", *BUILD, "--out", "{tmp}/b.csv", "--jobs", "0",
        absent=("b.csv.partial.jsonl",)),
    err("build-backend-unknown", r"spark", *BUILD, "--out", "{tmp}/b.csv", "--backend",
        "spark", absent=("b.csv.partial.jsonl",)),
    err("build-out-parent-file", r"f\.txt", *BUILD, "--archs", "10", "--out",
        "{tmp}/f.txt/b.csv", files={"f.txt": "x"}),
    err("build-existing-binary", r"b\.csv", *BUILD, "--archs", "10", "--out", "{tmp}/b.csv",
        "--resume", files={"b.csv": RANDOM}),
    err("build-journal-binary", r"partial\.jsonl.*(delete|--repair)", *BUILD, "--archs", "10",
        "--out", "{tmp}/b.csv", "--resume", files={"b.csv.partial.jsonl": RANDOM}),
    err("build-journal-bad-header", r"partial\.jsonl.*delete", *BUILD, "--archs", "10",
        "--out", "{tmp}/b.csv", "--resume", files={"b.csv.partial.jsonl": "{oops\n"}),
    note("build-too-few-archs", r"fewer than 10", *BUILD, "--archs", "2", "--out",
         "{tmp}/minimicro-digits-class.csv", "--resume",
         files={"minimicro-digits-class.csv": finished_build}),
    # ---- bench reproxy ----
    err("reproxy-missing-file", r"missing\.csv.*(no such|not found|exist)", "bench", "reproxy",
        "{tmp}/missing.csv"),
    err("reproxy-missing-named", r"(no such|not found|exist)", "bench", "reproxy",
        "{tmp}/minimicro-digits-class.csv"),
    err("reproxy-bad-name", r"foo", "bench", "reproxy", "{tmp}/foo.csv",
        files={"foo.csv": csv_text()}),
    err("reproxy-not-bench-file", r"not a gpsr bench file", "bench", "reproxy",
        "{tmp}/minimicro-digits-class.csv", files={"minimicro-digits-class.csv": csv_text()}),
    err("reproxy-binary", r"minimicro-digits-class\.csv", "bench", "reproxy",
        "{tmp}/minimicro-digits-class.csv", files={"minimicro-digits-class.csv": RANDOM}),
    err("reproxy-jobs-zero", r"jobs", "bench", "reproxy", "{tmp}/minimicro-digits-class.csv",
        "--jobs", "0", files={"minimicro-digits-class.csv": csv_text()}),
    err("reproxy-other-seed", r"seed", "bench", "reproxy", "{tmp}/minimicro-digits-class.csv",
        "--seed", "5", files={"minimicro-digits-class.csv": lambda p: p.write_text(
            (ROOT / "gpsr" / "shipped" / "minimicro-digits-class.csv").read_text())}),
    err("reproxy-bad-number", r"minimicro-digits-class\.csv", "bench", "reproxy",
        "{tmp}/minimicro-digits-class.csv", files={
            "minimicro-digits-class.csv": lambda p: p.write_text(
                (ROOT / "gpsr" / "shipped" / "minimicro-digits-class.csv").read_text()
                .replace(",", ",x", 3))}),
    # ---- bench report ----
    err("report-missing-file", r"missing\.csv", "bench", "report", "{tmp}/missing.csv"),
    err("report-binary", r"mini\.csv", "bench", "report", "{tmp}/mini.csv",
        files={"mini.csv": RANDOM}),
    err("report-too-few", r"at least", "bench", "report", "{tmp}/mini.csv",
        files={"mini.csv": csv_text(4)}),
    err("report-second-seed-missing", r"other\.csv", "bench", "report", "{tmp}/mini.csv",
        "--second-seed", "{tmp}/other.csv", files={"mini.csv": csv_text()}),
    err("report-second-seed-unmatched", r"other\.csv", "bench", "report", "{tmp}/mini.csv",
        "--second-seed", "{tmp}/x/other.csv", files={"mini.csv": csv_text(),
                                                     "x/other.csv": csv_text()}),
    err("report-proxy-table", r"val_accuracy", "bench", "report", "{tmp}/t.csv",
        files={"t.csv": table_text()}),
    err("report-no-files", r"FILES", "bench", "report"),
    # ---- search (lookup mode on a tiny synthetic minimicro problem) ----
    err("search-unknown-space", r"nb999", *SEARCH, "--space", "nb999", files=MINI),
    err("search-space-mismatch", r"nb201", *SEARCH, "--space", "nb201", files=MINI),
    err("search-unknown-problem", r"NB999", "search", "--metric", "snip", "--problem",
        "NB999-CF10", "--data", "{tmp}/minimicro-t.csv", *TINY, files=MINI),
    err("search-no-problem", r"problem", "search", "--metric", "snip", "--data",
        "{tmp}/minimicro-t.csv", *TINY, files=MINI),
    err("search-unknown-metric", r"zen2", "search", "--metric", "zen2", *SEARCH[3:],
        files=MINI),
    err("search-metric-lacks-proxy", r"'zen'.*lacks", "search", "--metric", "zen * snip",
        *SEARCH[3:], files=MINI),
    err("search-metric-unparsable", r"cannot parse", "search", "--metric", "snip +",
        *SEARCH[3:], files=MINI),
    err("search-unknown-algorithm", r"bayes", *SEARCH, "--algorithm", "bayes", files=MINI),
    err("search-unknown-mode", r"offline", *SEARCH, "--mode", "offline", files=MINI),
    err("search-budget-below-population", r"population|budget|evaluations", "search",
        "--metric", "snip", *SEARCH[3:7], "--evaluations", "3", "--population", "8",
        "--sample-size", "2", files=MINI),
    err("search-budget-zero", r"budget|evaluations", "search", "--metric", "snip",
        *SEARCH[3:7], "--evaluations", "0", "--algorithm", "random", files=MINI),
    err("search-population-one", r"population", "search", "--metric", "snip", *SEARCH[3:7],
        "--evaluations", "10", "--population", "1", files=MINI),
    err("search-sample-too-big", r"sample", *SEARCH, "--sample-size", "9", files=MINI),
    err("search-p-mutation-big", r"mutation", *SEARCH, "--p-mutation", "1.5", files=MINI),
    err("search-p-mutation-nan", r"mutation", *SEARCH, "--p-mutation", "nan", files=MINI),
    err("search-seed-negative", r"seed", *SEARCH, "--seed", "-1", files=MINI),
    err("search-out-is-file", r"f\.txt", *SEARCH, "--out", "{tmp}/f.txt",
        files={**MINI, "f.txt": "mine"}),
    err("search-resume-no-out", r"--out", *SEARCH, "--resume", files=MINI),
    err("search-data-binary", r"minimicro-t\.csv", *SEARCH, files={"minimicro-t.csv": RANDOM}),
    err("search-data-latin1", r"minimicro-t\.csv.*UTF-8", *SEARCH,
        files={"minimicro-t.csv": mini_csv().encode().replace(b"snip", "sni\xe9".encode(
            "latin-1"))}),
    err("search-problem-one-arch", r"single network|at least", *SEARCH,
        files={"minimicro-t.csv": mini_csv(repeat=True)}),
    err("search-live-no-space", r"space", "search", "--metric", "snip", "--mode", "live",
        "--images", "{tmp}/img.npz", "--batch-size", "4", *TINY, files={"img.npz": good_npz()}),
    err("search-live-unknown-space", r"nb999", "search", "--metric", "snip", "--mode", "live",
        "--space", "nb999", "--images", "{tmp}/img.npz", "--batch-size", "4", *TINY,
        files={"img.npz": good_npz()}),
    err("search-live-journal-corrupt", r"evaluations\.jsonl", "search", "--metric", "flops",
        "--mode", "live", "--space", "minimicro", "--images", "{tmp}/img.npz", "--batch-size",
        "4", "--num-classes", "4", "--device", "cpu", *TINY, "--out", "{tmp}/s", "--resume",
        files={"img.npz": good_npz(), "s/evaluations.jsonl": RANDOM}),
    # ---- train (mini space, one epoch at most) ----
    err("train-unknown-space", r"nb999", "train", "--space", "nb999", "--arch", MINI_ARCH,
        "--out", "{tmp}/t"),
    err("train-bad-arch", r"not-an-arch|arch", *TRAIN[:4], "not-an-arch", *TRAIN[5:]),
    err("train-epochs-zero", r"epochs", *TRAIN, "--epochs", "0", absent=("t/checkpoint.pt",)),
    err("train-epochs-negative", r"epochs", *TRAIN, "--epochs", "-2",
        absent=("t/checkpoint.pt",)),
    err("train-batch-zero", r"batch.size", *TRAIN, "--batch-size", "0",
        absent=("t/checkpoint.pt",)),
    err("train-lr-negative", r"learning.rate", *TRAIN, "--lr", "-0.1",
        absent=("t/checkpoint.pt",)),
    err("train-lr-nan", r"learning.rate", *TRAIN, "--lr", "nan", absent=("t/checkpoint.pt",)),
    err("train-unknown-task", r"cats", *TRAIN[:-1], "cats"),
    err("train-mini-no-task", r"task", *TRAIN[:-2]),
    err("train-mini-images", r"images", *TRAIN, "--images", "{tmp}/img.npz",
        files={"img.npz": good_npz()}),
    err("train-device-tpu", r"tpu", *TRAIN, "--device", "tpu"),
    err("train-out-is-file", r"f\.txt", *TRAIN[:6], "{tmp}/f.txt", *TRAIN[7:],
        files={"f.txt": "mine"}),
    err("train-checkpoint-random", r"checkpoint\.pt", *TRAIN,
        files={"t/checkpoint.pt": RANDOM}),
    err("train-checkpoint-foreign", r"checkpoint\.pt.*gpsr", *TRAIN,
        files={"t/checkpoint.pt": torch_save({"weights": [1, 2, 3]})}),
    err("train-checkpoint-empty", r"checkpoint\.pt", *TRAIN, files={"t/checkpoint.pt": b""}),
    err("train-nb201-task", r"task", "train", "--space", "nb201", "--arch", NB201_ARCH, "--out",
        "{tmp}/t", "--task", "digits-class"),
    err("train-images-missing", r"missing\.npz", "train", "--space", "nb201", "--arch",
        NB201_ARCH, "--out", "{tmp}/t", "--images", "{tmp}/missing.npz", "--epochs", "1"),
    err("train-images-binary", r"img\.npz", "train", "--space", "nb201", "--arch", NB201_ARCH,
        "--out", "{tmp}/t", "--images", "{tmp}/img.npz", "--epochs", "1",
        files={"img.npz": RANDOM}),
    # ---- report ----
    err("report-not-run-folder", r"nothing|run folder|result\.json", "report", "{tmp}/x",
        "--out", "{tmp}/rep", files={"x/mine.txt": "x"}, absent=("rep",)),
    err("report-missing-folder", r"nope", "report", "{tmp}/nope", "--out", "{tmp}/rep",
        absent=("rep",)),
    err("report-run-is-file", r"f\.txt", "report", "{tmp}/f.txt", "--out", "{tmp}/rep",
        files={"f.txt": "mine"}, absent=("rep",)),
    err("report-result-binary", r"result\.json", "report", "{tmp}/x", "--out", "{tmp}/rep",
        files={"x/result.json": RANDOM}, absent=("rep",)),
    err("report-result-latin1", r"result\.json", "report", "{tmp}/x", "--out", "{tmp}/rep",
        files={"x/result.json": '{"expression": "caf\xe9"}'.encode("latin-1")},
        absent=("rep",)),
    err("report-result-malformed", r"result\.json", "report", "{tmp}/x", "--out", "{tmp}/rep",
        files={"x/result.json": "{oops"}, absent=("rep",)),
    err("report-unknown-split", r"validation", *REPORT, "--split", "validation",
        files=RUN_FILES),
    err("report-methods-malformed", r"m\.json.*malformed", *REPORT, "--methods", "{tmp}/m.json",
        files={**RUN_FILES, "m.json": "{oops"}),
    err("report-methods-binary", r"m\.json", *REPORT, "--methods", "{tmp}/m.json",
        files={**RUN_FILES, "m.json": RANDOM}),
    err("report-methods-list", r"m\.json", *REPORT, "--methods", "{tmp}/m.json",
        files={**RUN_FILES, "m.json": "[1, 2]"}),
    err("report-methods-missing", r"missing\.json", *REPORT, "--methods", "{tmp}/missing.json",
        files=RUN_FILES),
    err("report-methods-bad-tau", r"m\.json.*tau", *REPORT, "--methods", "{tmp}/m.json",
        files={**RUN_FILES, "m.json": json.dumps({
            "problems": ["NB201-CF10"], "split": "test", "methods": [
                {"name": "x", "taus": {"test": {"NB201-CF10": "high"}}, "seconds": 1}]})}),
    err("report-out-is-file", r"f\.txt", *REPORT[:-1], "{tmp}/f.txt",
        files={**RUN_FILES, "f.txt": "mine"}),
    err("report-also-missing", r"missing\.csv", *REPORT, "--also", "{tmp}/missing.csv",
        files=RUN_FILES),
    # ---- compare ----
    err("compare-unknown-method", r"'magic'", *COMPARE, "--methods", "magic", files=BASE,
        absent=("cmp",)),
    err("compare-methods-empty", r"method", *COMPARE, "--methods", ",", files=BASE,
        absent=("cmp",)),
    err("compare-runs-zero", r"runs", *COMPARE, "--methods", "sr", "--runs", "0", files=BASE,
        absent=("cmp",)),
    err("compare-loo-one-problem", r"leave.one.out", *COMPARE[:2], "{tmp}/data/nb201-cifar10.csv",
        *COMPARE[3:], "--methods", "best-single", "--leave-one-out", files=BASE,
        absent=("cmp",)),
    err("compare-out-is-file", r"f\.txt", *COMPARE[:-1], "{tmp}/f.txt", "--methods",
        "best-single", files={**BASE, "f.txt": "mine"}),
    err("compare-input-fraction-zero", r"input.fraction", *COMPARE, "--methods", "best-single",
        "--input-fraction", "0", files=BASE, absent=("cmp",)),
    err("compare-data-binary", r"p\.csv", "compare", "--data", "{tmp}/p.csv", "--out",
        "{tmp}/cmp", "--methods", "best-single", files={"p.csv": RANDOM}, absent=("cmp",)),
    err("compare-journal-corrupt", r"journal\.jsonl", *COMPARE, "--methods", "best-single",
        files={**BASE, "cmp/journal.jsonl": RANDOM}),
    err("compare-jobs-zero", r"jobs", *COMPARE, "--methods", "best-single", "--jobs", "0",
        files=BASE, absent=("cmp",)),
    err("compare-population-odd", r"population", *COMPARE, "--methods", "sr",
        "--population", "7", files=BASE, absent=("cmp",)),
    err("compare-generations-negative", r"generations", *COMPARE, "--methods", "sr",
        "--generations", "-1", files=BASE, absent=("cmp",)),
    # ---- run / evaluate / score: the newer options ----
    run_case("calibration-unknown", r"zscore", "--calibration", "zscore"),
    run_case("parsimony-negative", r"parsimony", "--parsimony", "-0.1"),
    run_case("parsimony-nan", r"parsimony", "--parsimony", "nan"),
    run_case("final-choice-unknown", r"median", "--final-choice", "median"),
    err("evaluate-calibration-unknown", r"zscore", *EVAL, "--expr", "snip", "--calibration",
        "zscore", files=BASE),
    err("score-reference-other-space", r"space|nb201", *SCORE[:1], "--metric",
        "{tmp}/out/result.json",
        *SCORE[3:], "--reference", "NB101-CF10",
        files={**BASE, ".made": finished_run(extra=("--calibration", "quantile"))}),
    err("score-reference-unknown", r"NB999", *SCORE[:1], "--metric",
        "{tmp}/out/result.json",
        *SCORE[3:], "--reference", "NB999-CF10",
        files={**BASE, ".made": finished_run(extra=("--calibration", "quantile"))}),
    err("score-reference-uncalibrated", r"reference|calibrat", *SCORE, "--reference",
        "NB201-CF10", files=BASE),
    # ---- Python API of the newer modules ----
    api("api-search-unknown-space", r"nb999", lambda tmp: gpsr.search_architectures(
        "snip", "nb999", problem="MINIMICRO-T", data=tmp / "minimicro-t.csv",
        max_evaluations=10, population_size=4, sample_size=2), files=MINI),
    api("api-search-unknown-algorithm", r"bayes", lambda tmp: gpsr.search_architectures(
        "snip", problem="MINIMICRO-T", data=tmp / "minimicro-t.csv", algorithm="bayes",
        max_evaluations=10, population_size=4, sample_size=2), files=MINI),
    api("api-search-budget-below-population", r"population|budget|evaluations",
        lambda tmp: gpsr.search_architectures(
            "snip", problem="MINIMICRO-T", data=tmp / "minimicro-t.csv", max_evaluations=3,
            population_size=8, sample_size=2), files=MINI),
    api("api-search-metric-not-str", r"metric", lambda tmp: gpsr.search_architectures(
        3.5, problem="MINIMICRO-T", data=tmp / "minimicro-t.csv", max_evaluations=10,
        population_size=4, sample_size=2), files=MINI),
    api("api-train-config-epochs", r"epochs", lambda tmp: _train_config(epochs=0)),
    api("api-train-config-lr", r"learning_rate", lambda tmp: _train_config(learning_rate=-1.0)),
    api("api-train-config-schedule", r"hourly", lambda tmp: _train_config(schedule="hourly")),
    api("api-train-config-drop-path", r"drop_path", lambda tmp: _train_config(drop_path=1.0)),
    api("api-train-arch-unknown-option", r"colour", lambda tmp: _train_api(tmp, colour=1)),
    api("api-train-arch-batch-zero", r"batch_size", lambda tmp: _train_api(tmp, batch_size=0)),
    api("api-train-arch-bad-arch", r"arch|nope", lambda tmp: gpsr.train.train_arch(
        "minimicro", "nope", tmp / "t", task="digits-class", epochs=1)),
    api("api-make-method-unknown", r"magic", lambda tmp: _methods().make_method("magic")),
    api("api-make-method-bad-setting", r"colour", lambda tmp: _methods().make_method(
        "best-single", colour=1)),
    # ---- command line itself ----
    err("unknown-command", r"frobnicate", "frobnicate"),
    err("unknown-option", r"--colour", "run", "--colour"),
    # ---- Python API ----
    api("api-load-missing", r"nope", lambda tmp: gpsr.load_problems(tmp / "nope")),
    api("api-load-unknown-name", r"NB999",
        lambda tmp: gpsr.load_problems(tmp / "data", ["NB999-CF10"]), files=BASE),
    api("api-load-name-twice", r"twice",
        lambda tmp: gpsr.load_problems(tmp / "data", ["NB201-CF10", "nb201-cf10"]), files=BASE),
    api("api-load-binary", r"p\.csv", lambda tmp: gpsr.load_csv(tmp / "p.csv"),
        files={"p.csv": RANDOM}),
    api("api-load-latin1", r"p\.csv", lambda tmp: gpsr.load_problems(tmp / "p.csv"),
        files={"p.csv": LATIN1}),
    api("api-load-json-deep", r"zc_x\.json", lambda tmp: gpsr.load_naslib_json(tmp / "zc_x.json"),
        files={"zc_x.json": "[" * 100_000}),
    api("api-load-accuracies-drop", r"left out 20", lambda tmp: gpsr.build_dataset(
        gpsr.load_problems(tmp / "t.csv", accuracies=[tmp / "nb201-cifar10.csv"])).notes,
        expect="note", files={"t.csv": table_text(60), "nb201-cifar10.csv": csv_text()}),
    api("api-dataset-empty", r"no problems", lambda tmp: gpsr.build_dataset([])),
    api("api-dataset-unknown-proxy", r"zen", lambda tmp: _dataset(tmp, proxies=["zen"]),
        files=BASE),
    api("api-dataset-tiny-split", r"input", lambda tmp: _dataset(tmp, input_fraction=0.01),
        files=BASE),
    api("api-dataset-bad-policy", r"purge", lambda tmp: _dataset(tmp, sentinel_policy="purge"),
        files=BASE),
    api("api-dataset-negative-seed", r"seed", lambda tmp: _dataset(tmp, split_seed=-1),
        files=BASE),
    api("api-dataset-proxy-twice", r"twice", lambda tmp: _dataset(tmp, proxies=["snip", "snip"]),
        files=BASE),
    api("api-parse-empty", r"cannot parse|empty", _parsed("")),
    api("api-parse-deep-neg", r"deep|depth", _parsed(DEEP_NEG)),
    api("api-parse-long-sum", r"deep|depth", _parsed(LONG_SUM)),
    api("api-parse-deep-parens", r"deep|depth|nest", _parsed(DEEP_PARENS)),
    api("api-parse-not-str", r"str|text", lambda tmp: gpsr.parse(3)),
    api("api-parse-deep-sympy", r"deep|depth", _parsed(DEEP_NEG, "sympy")),
    api("api-parse-deep-latex", r"deep|depth", _parsed(LONG_SUM, "latex")),
    api("api-parse-deep-evaluate", r"deep|depth", _parsed(DEEP_NEG, "evaluate")),
    api("api-deep-expression-object", r"deep|depth", lambda tmp: _chain(5000).infix()),
    api("api-from-json-deep", r"deep|depth", lambda tmp: gpsr.Expression.from_json(
        _nested(3000))),
    api("api-metric-unknown", r"zen2", lambda tmp: gpsr.Metric.load("zen2")),
    api("api-metric-missing-json", r"missing\.json",
        lambda tmp: gpsr.Metric.load(str(tmp / "missing.json"))),
    api("api-metric-bad-batch", r"batch|pair", lambda tmp: gpsr.Metric("snip")(
        gpsr.spaces.build_network("nb201", NB201_ARCH), 3)),
    api("api-config-population", r"population",
        lambda tmp: gpsr.SearchConfig(population_size=0)),
    api("api-config-depth", r"max.depth", lambda tmp: gpsr.SearchConfig(max_depth=5000)),
    api("api-synthesize-runs-zero", r"runs", lambda tmp: gpsr.synthesize(_dataset(tmp), runs=0),
        files=BASE),
    api("api-executor-jobs-zero", r"jobs", lambda tmp: gpsr.make_executor("local", 0)),
    api("api-executor-backend", r"spark", lambda tmp: gpsr.make_executor("spark")),
    api("api-evaluate-unknown-proxy", r"zen",
        lambda tmp: gpsr.evaluate("zen", _dataset(tmp), "cpu"), files=BASE),
    api("api-evaluate-device", r"tpu", lambda tmp: gpsr.evaluate("snip", _dataset(tmp), "tpu"),
        files=BASE),
    api("api-npz-object", r"img\.npz", lambda tmp: gpsr.proxies.batch_from_npz(
        tmp / "img.npz", 4), files={"img.npz": object_npz}),
    api("api-build-network-bad", r"nb201", lambda tmp: gpsr.spaces.build_network("nb201", "x")),
    api("api-build-network-classes", r"num.classes",
        lambda tmp: gpsr.spaces.build_network("nb201", NB201_ARCH, 0)),
]


# ---- running and judging -------------------------------------------------------------------
def fill(args: tuple[str, ...], tmp: Path) -> list[str]:
    return [a.replace("{tmp}", str(tmp)) for a in args]


def _squeeze(text: str) -> str:
    return " ".join(text.split())


def prepare(case: Case, tmp: Path) -> None:
    # Plain files first: a setup step (a callable) may read them (the data folder, images).
    for rel, spec in sorted(case.files.items(), key=lambda kv: callable(kv[1])):
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(spec):
            spec(path)
        elif isinstance(spec, bytes):
            path.write_bytes(spec)
        else:
            path.write_text(spec)


def judge(case: Case, tmp: Path) -> tuple[bool, str]:
    """Run one case in ``tmp``; ``(clean, what happened)``."""
    prepare(case, tmp)
    if case.call is not None:
        ok, what = _judge_api(case, tmp)
    else:
        ok, what = _judge_cli(case, tmp)
    left = [rel for rel in case.absent if (tmp / rel).exists()]
    if ok and left:
        return False, f"left {', '.join(left)} behind in the folder ({what})"
    return ok, what


def _judge_api(case: Case, tmp: Path) -> tuple[bool, str]:
    from gpsr.errors import GpsrError

    try:
        value = case.call(tmp)
    except GpsrError as exc:
        text = str(exc)
        if "\n" in text:
            return False, f"multi-line error: {text[:100]!r}"
        if not re.search(case.match, text, re.I):
            return False, f"error does not name /{case.match}/: {text[:150]}"
        return True, f"error: {text[:150]}"
    except BaseException as exc:  # noqa: BLE001 - the battery records every escape
        return False, f"traceback: {type(exc).__name__}: {str(exc)[:100]}"
    try:
        text = _squeeze(repr(value))
    except RecursionError:
        return False, f"returned a {type(value).__name__} too deep to print"
    if case.expect == "note":
        if re.search(case.match, text, re.I):
            return True, f"note: {text[:150]}"
        return False, f"no note /{case.match}/: {text[:120]}"
    return False, f"accepted silently: {text[:100]}"


def _judge_cli(case: Case, tmp: Path) -> tuple[bool, str]:
    from typer.testing import CliRunner

    from gpsr.cli.app import app

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    result = CliRunner().invoke(app, fill(case.args, tmp))
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return False, (f"traceback: {type(exc).__name__}: {_squeeze(str(exc))[:90]} "
                       f"({Path(where.filename).name}:{where.lineno})")
    out, errs, code = result.stdout, result.stderr, result.exit_code
    if "Traceback" in out + errs:
        return False, "traceback printed"
    errors = [line for line in errs.splitlines() if line.startswith("error:")]
    usage = "Usage:" in errs
    if case.expect == "ok":
        if code == 0:
            return True, "accepted (valid input)"
        return False, f"exit {code}: {_squeeze(errs)[:150]}"
    if code == 2 and (errors or usage):
        if len(errors) > 1:
            return False, f"{len(errors)} error lines"
        text = errors[0] if errors else _squeeze(errs.replace("│", " "))
        if not re.search(case.match, text, re.I):
            return False, f"error does not name /{case.match}/: {text[:150]}"
        return True, text[:150]
    if code == 0:
        if case.expect == "error":
            return False, "accepted silently"
        text = _squeeze(out + " " + errs)
        if re.search(case.match, text, re.I):
            return True, "note: " + re.search(rf".{{0,60}}{case.match}.{{0,60}}", text,
                                              re.I).group(0)
        return False, f"accepted without a note /{case.match}/"
    return False, f"exit {code}: {_squeeze(errs)[-150:]}"


def skip_reason(case: Case) -> str | None:
    if case.needs == "no-cuda":
        import torch

        if torch.cuda.is_available():
            return "CUDA is available here"
    return None


def run_battery(cases: list[Case]) -> list[dict]:
    rows = []
    for case in cases:
        reason = skip_reason(case)
        if reason:
            rows.append({"id": case.id, "command": case.command, "status": "skipped",
                         "what": reason, "seconds": 0.0})
            continue
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            try:
                ok, what = judge(case, Path(tmp))
            except BaseException as exc:  # noqa: BLE001 - a broken setup is a failure too
                ok, what = False, f"setup failed: {type(exc).__name__}: {exc}"
        rows.append({"id": case.id, "command": case.command, "status": "clean" if ok else "FAIL",
                     "what": what, "seconds": time.perf_counter() - start})
        print(f"{rows[-1]['status']:>7}  {case.id:<32} {what[:110]}", flush=True)
    return rows


def read_log(path: Path) -> dict[str, tuple[str, str]]:
    """``{case id: (status, what)}`` from the table this script prints (e.g. of an older
    gpsr, run from another checkout), for the before/after comparison."""
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^\s*(clean|FAIL)\s+(\S+)\s+(.*)$", line)
        if match:
            found[match.group(2)] = (match.group(1), match.group(3))
    return found


def write_markdown(rows: list[dict], path: Path, command: str,
                   before: tuple[str, dict[str, tuple[str, str]]] | None = None) -> None:
    ran = [r for r in rows if r["status"] != "skipped"]
    clean = [r for r in ran if r["status"] == "clean"]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    lines = [
        "# Bad inputs: every command, one battery",
        "",
        f"Command: `{command}` (gpsr commit {commit}; cases in `benchmarks/bad_inputs.py`, "
        "also run by `tests/test_bad_inputs.py`).",
        "",
        f"**{len(clean)} of {len(ran)} bad inputs handled cleanly**"
        + (f" ({len(rows) - len(ran)} skipped)" if len(rows) > len(ran) else "") + ".",
        "",
        "Clean: exit 2 with one `error:` line naming the bad file, option or value (or click's "
        "usage error), no traceback, no half-made output left behind; or, for inputs that "
        "are accepted, a printed note saying what was done to them.",
        "",
    ]
    if before:
        label, earlier = before
        both = [r for r in ran if r["id"] in earlier]
        was_clean = sum(earlier[r["id"]][0] == "clean" for r in both)
        lines += [f"Before ({label}): **{was_clean} of {len(both)}** of the same cases handled "
                  "cleanly; the case-by-case outcome is in the `before` column below.", ""]
    failed = [r for r in ran if r["status"] != "clean"]
    lines += ["## Remaining failures", ""]
    lines += [f"- `{r['id']}` ({r['command']}): {r['what']}" for r in failed] or ["None."]
    lines += ["", "## Every case", "", "| case | command | before | outcome | what happened |",
              "|---|---|---|---|---|"]
    for r in rows:
        what = r["what"].replace("|", "\\|")
        was = before[1].get(r["id"], ("-", ""))[0] if before else "-"
        lines.append(f"| {r['id']} | {r['command']} | {was} | {r['status']} | {what[:160]} |")
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bad-inputs.md")
    parser.add_argument("--only", help="Run only cases whose id contains this.")
    parser.add_argument("--before", type=Path, help="This script's printed table from an "
                        "older gpsr, to compare with (its label: --before-label).")
    parser.add_argument("--before-label", default="an older gpsr")
    args = parser.parse_args()
    cases = [c for c in CASES if not args.only or args.only in c.id]
    rows = run_battery(cases)
    ran = [r for r in rows if r["status"] != "skipped"]
    print(f"\n{sum(r['status'] == 'clean' for r in ran)} of {len(ran)} handled cleanly")
    if not args.only:
        before = (args.before_label, read_log(args.before)) if args.before else None
        command = shlex.join(["python", "benchmarks/bad_inputs.py", *sys.argv[1:]])
        write_markdown(rows, args.out, command, before)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
