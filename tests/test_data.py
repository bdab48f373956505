"""Data layer: the shared CSVs, NASLib's JSON, bad input, terminal sets, sentinels, splits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import gpsr
from gpsr.data import (
    FAILURE_SENTINEL,
    MIN_ARCHITECTURES,
    Problem,
    build_dataset,
    load_csv,
    load_naslib_json,
    load_problems,
    problem_name,
    shared_dir,
)
from gpsr.errors import GpsrError

ALL13 = ("epe_nas", "fisher", "flops", "grad_norm", "grasp", "jacov", "l2_norm", "nwot",
         "params", "plain", "snip", "synflow", "zen")


@pytest.fixture(scope="module")
def suite() -> Path:
    shared = shared_dir()
    if shared is None:
        pytest.skip("shared data not found; set GPSR_SHARED")
    return shared / "data" / "nas-bench-suite-zero"


@pytest.fixture(scope="module")
def all_problems(suite) -> dict[str, Problem]:
    return {p.name: p for p in load_problems(suite)}


@pytest.fixture(scope="module")
def paper_problems(all_problems) -> list[Problem]:
    return [all_problems[n] for n in ("NB101-CF10", "NB201-CF10", "NB301-CF10")]


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def synthetic_rows(n: int = 20, seed: int = 0, proxies=("a", "b")) -> list[list]:
    rng = np.random.default_rng(seed)
    return [[f"arch{i}", float(rng.uniform(50, 95)), *map(float, rng.normal(size=len(proxies)))]
            for i in range(n)]


# ---- the shared CSVs -------------------------------------------------------------------
def test_problem_names(all_problems):
    assert {"NB101-CF10", "NB201-CF10", "NB201-CF100", "NB301-CF10", "TNB101-MICRO-OBJECT",
            "TNB101-MICRO-JIGSAW", "TNB101-MICRO-AUTOENC", "TNB101-MACRO-SCENE",
            "TNB101-MACRO-OBJECT", "TNB101-MACRO-JIGSAW", "TNB101-MACRO-AUTOENC"} <= set(
        all_problems)
    # extra/ is a subfolder: not read (the loader is not recursive)
    assert all("/extra/" not in p.source for p in all_problems.values())
    assert problem_name("nb201", "cifar10") == "NB201-CF10"
    assert problem_name("nb201", "ImageNet16-120") == "NB201-IMGNT"
    assert problem_name("tnb101-micro", "class_scene") == "TNB101-MICRO-SCENE"
    assert problem_name("foo", "bar") == "FOO-BAR"


def test_nb201_cifar10(all_problems):
    p = all_problems["NB201-CF10"]
    assert len(p) == 9445 and len(p.archs) == 9445
    assert p.proxies == ALL13
    assert p.values.shape == (9445, 13) and p.values.dtype == np.float64
    assert p.accuracy.shape == (9445,)
    assert (p.space, p.task) == ("nb201", "cifar10")
    assert p.source.endswith("nb201-cifar10.csv")
    assert p.archs[0].startswith("|") and len(set(p.archs)) == 9445
    assert 0 < p.accuracy.min() and p.accuracy.max() <= 100


def test_row_and_proxy_counts(all_problems):
    counts = {n: (len(p), len(p.proxies)) for n, p in all_problems.items()}
    assert counts["NB101-CF10"] == (500, 11)
    assert counts["NB301-CF10"] == (725, 12)
    assert counts["NB201-CF100"] == (15625, 1)
    assert counts["TNB101-MICRO-JIGSAW"] == (4096, 4)
    assert counts["TNB101-MACRO-SCENE"] == (3256, 3)


def test_load_problems_by_name(suite):
    files = [suite / "nb101-cifar10.csv", suite / "nb301-cifar10.csv"]
    chosen = load_problems(files, ["nb301-cf10", "NB101-CF10"])
    assert [p.name for p in chosen] == ["NB301-CF10", "NB101-CF10"]
    assert [p.name for p in load_problems(files[1])] == ["NB301-CF10"]


def test_terminal_set_of_the_paper_problems(paper_problems):
    ds = build_dataset(paper_problems)
    assert ds.proxies == tuple(p for p in ALL13 if p not in ("nwot", "zen"))
    assert "dropped proxy nwot: missing in NB101-CF10" in ds.notes
    assert "dropped proxy zen: missing in NB101-CF10, NB301-CF10" in ds.notes
    assert all(p.proxies == ds.proxies for p in ds.problems)
    assert ds.names == ["NB101-CF10", "NB201-CF10", "NB301-CF10"]
    described = ds.describe()
    assert described["proxies"] == list(ds.proxies)
    assert described["problems"]["NB201-CF10"]["architectures"] == 9445
    json.dumps(described)


def test_sentinels_keep_and_drop(all_problems):
    nb201 = all_problems["NB201-CF10"]
    bad = nb201.sentinel_rows()
    assert len(bad) == 1
    assert nb201.archs[bad[0]] == "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    assert (nb201.values[bad[0]] <= FAILURE_SENTINEL).any()

    keep = build_dataset([nb201])
    assert keep.sentinel_policy == "keep"
    assert len(keep.problems[0]) == 9445
    assert "NB201-CF10: kept 1 rows holding failure sentinels" in keep.notes

    drop = build_dataset([nb201], sentinel_policy="drop")
    assert len(drop.problems[0]) == 9444
    assert "NB201-CF10: dropped 1 rows holding failure sentinels" in drop.notes
    assert nb201.archs[bad[0]] not in drop.problems[0].archs
    assert len(drop.problems[0].sentinel_rows()) == 0
    assert len(drop.input_rows[0]) + len(drop.test_rows[0]) == 9444

    c100 = build_dataset([all_problems["NB201-CF100"]], sentinel_policy="drop")
    assert len(c100.problems[0]) == 15625 - 341


def test_sentinels_count_only_the_chosen_proxies(all_problems):
    nb201 = all_problems["NB201-CF10"]
    ds = build_dataset([nb201], proxies=["flops", "params"], sentinel_policy="drop")
    assert len(ds.problems[0]) == 9445  # the sentinel row has finite flops and params
    assert not any("sentinel" in n for n in ds.notes)


# ---- NASLib JSON ------------------------------------------------------------------------
def naslib_layout(problems: dict[str, Problem], extra_keys: bool = True) -> dict:
    data = {}
    for dataset, prob in problems.items():
        archs = {}
        for i, arch in enumerate(prob.archs):
            record = {p: {"score": float(prob.values[i, k]), "time": 0.01 * k}
                      for k, p in enumerate(prob.proxies)}
            record["val_accuracy"] = float(prob.accuracy[i])
            if extra_keys:
                record["id"] = i  # NASLib writes other fields too; only proxies are read
            archs[arch] = record
        data[dataset] = archs
    return data


def test_naslib_json_loads_like_the_csv(all_problems, tmp_path):
    rows = np.random.default_rng(0).choice(9445, 300, replace=False)
    rows = np.sort(np.append(rows, all_problems["NB201-CF10"].sentinel_rows()))
    sub = all_problems["NB201-CF10"].select(rows)
    path = tmp_path / "zc_nasbench201.json"
    path.write_text(json.dumps(naslib_layout({"cifar10": sub})))
    csv_path = write_csv(tmp_path / "nb201-cifar10.csv", ["arch", "val_accuracy", *sub.proxies],
                         [[a, repr(float(acc)), *map(repr, map(float, v))]
                          for a, acc, v in zip(sub.archs, sub.accuracy, sub.values)])
    (from_json,) = load_naslib_json(path)
    from_csv = load_csv(csv_path)
    for p in (from_json, from_csv):
        assert p.name == "NB201-CF10" and (p.space, p.task) == ("nb201", "cifar10")
        assert p.archs == sub.archs
        assert p.proxies == sub.proxies
        np.testing.assert_array_equal(p.values, sub.values)
        np.testing.assert_array_equal(p.accuracy, sub.accuracy)
    # and through load_problems / build_dataset they give the same dataset
    a = build_dataset(load_problems(path))
    b = build_dataset(load_problems(csv_path))
    assert a.proxies == b.proxies and a.notes == b.notes and a.names == b.names
    np.testing.assert_array_equal(a.input_rows[0], b.input_rows[0])
    np.testing.assert_array_equal(a.problems[0].values, b.problems[0].values)


def test_naslib_json_several_datasets_and_missing_proxies(tmp_path):
    rng = np.random.default_rng(1)
    data = {}
    for dataset in ("cifar10", "cifar100"):
        archs = {}
        for i in range(15):
            record = {"val_accuracy": float(rng.uniform(10, 90)),
                      "snip": {"score": float(rng.normal()), "time": 1.0},
                      "synflow": {"score": float(rng.normal()), "time": 1.0}}
            if dataset == "cifar100" and i == 3:
                del record["synflow"]  # missing for one arch: left out of that problem
            archs[f"({i}, 1, 2)"] = record
        data[dataset] = archs
    path = tmp_path / "zc_nasbench201.json"
    path.write_text(json.dumps(data))
    problems = load_naslib_json(path)
    assert [p.name for p in problems] == ["NB201-CF10", "NB201-CF100"]
    assert problems[0].proxies == ("snip", "synflow")
    assert problems[1].proxies == ("snip",)
    assert len(problems[0]) == 15
    assert problems[0].archs[0] == "(0, 1, 2)"
    np.testing.assert_array_equal(
        problems[1].column("snip"), [data["cifar100"][a]["snip"]["score"]
                                     for a in data["cifar100"]])
    # NASLib's other space names
    other = tmp_path / "zc_transbench101_micro.json"
    other.write_text(json.dumps({"class_object": data["cifar10"]}))
    assert load_naslib_json(other)[0].name == "TNB101-MICRO-OBJECT"


# ---- bad input ----------------------------------------------------------------------------
def error_of(fn, *args, **kwargs) -> str:
    with pytest.raises(GpsrError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_unknown_problem(tmp_path):
    write_csv(tmp_path / "nb201-cifar10.csv", ["arch", "val_accuracy", "a", "b"],
              synthetic_rows())
    msg = error_of(load_problems, tmp_path, ["NB201-CF10", "NB999-CF10"])
    assert "'NB999-CF10'" in msg and "loaded: NB201-CF10" in msg


def test_missing_path(tmp_path):
    msg = error_of(load_problems, tmp_path / "nope.csv")
    assert "nope.csv" in msg


@pytest.mark.parametrize("column", ["arch", "val_accuracy"])
def test_missing_column(tmp_path, column):
    header = ["arch", "val_accuracy", "a", "b"]
    idx = header.index(column)
    rows = [r[:idx] + r[idx + 1:] for r in synthetic_rows()]
    path = write_csv(tmp_path / "nb201-cifar10.csv", header[:idx] + header[idx + 1:], rows)
    msg = error_of(load_csv, path)
    assert str(path) in msg and repr(column) in msg


def test_no_proxy_columns(tmp_path):
    path = write_csv(tmp_path / "nb201-cifar10.csv", ["arch", "val_accuracy"],
                     [r[:2] for r in synthetic_rows()])
    assert str(path) in error_of(load_csv, path)


@pytest.mark.parametrize("bad, column", [("abc", "b"), ("", "a"), ("1.2.3", "val_accuracy")])
def test_non_numeric_value(tmp_path, bad, column):
    rows = synthetic_rows()
    rows[4][["arch", "val_accuracy", "a", "b"].index(column)] = bad
    path = write_csv(tmp_path / "nb201-cifar10.csv", ["arch", "val_accuracy", "a", "b"], rows)
    msg = error_of(load_csv, path)
    assert f"{path}:6" in msg  # line 6: header + 5th row
    assert repr(column) in msg and repr(bad) in msg


def test_wrong_field_count(tmp_path):
    rows = synthetic_rows()
    rows[2] = rows[2][:3]
    path = write_csv(tmp_path / "nb201-cifar10.csv", ["arch", "val_accuracy", "a", "b"], rows)
    assert f"{path}:4" in error_of(load_csv, path)


def test_empty_file(tmp_path):
    path = tmp_path / "nb201-cifar10.csv"
    path.write_text("")
    assert str(path) in error_of(load_csv, path)


def test_duplicate_architecture_csv(tmp_path):
    rows = synthetic_rows()
    rows[7][0] = rows[2][0]
    path = write_csv(tmp_path / "nb201-cifar10.csv", ["arch", "val_accuracy", "a", "b"], rows)
    msg = error_of(load_csv, path)
    assert str(path) in msg and repr(rows[2][0]) in msg and "duplicate" in msg


def test_duplicate_architecture_json(tmp_path):
    """A JSON object with a repeated arch key: json.load keeps the last silently."""
    records = [f'"arch{i}": {{"val_accuracy": {50 + i}, "snip": {{"score": {i * 1.5}}}}}'
               for i in range(12)]
    records.append('"arch3": {"val_accuracy": 99, "snip": {"score": -4.0}}')
    path = tmp_path / "zc_nasbench201.json"
    path.write_text('{"cifar10": {' + ", ".join(records) + "}}")
    msg = error_of(load_naslib_json, path)
    assert str(path) in msg and "'arch3'" in msg


@pytest.mark.parametrize("n", [0, 1, MIN_ARCHITECTURES - 1])
def test_too_few_architectures(tmp_path, n):
    path = write_csv(tmp_path / "nb201-cifar10.csv", ["arch", "val_accuracy", "a", "b"],
                     synthetic_rows(n))
    msg = error_of(load_csv, path)
    assert str(path) in msg and f"has {n} architectures" in msg


def test_too_few_architectures_json(tmp_path):
    data = {"cifar10": {f"a{i}": {"val_accuracy": i, "snip": {"score": i}} for i in range(5)}}
    path = tmp_path / "zc_nasbench201.json"
    path.write_text(json.dumps(data))
    msg = error_of(load_naslib_json, path)
    assert str(path) in msg and "has 5 architectures" in msg


def test_constant_accuracy(tmp_path):
    rows = synthetic_rows()
    for r in rows:
        r[1] = 42.5
    path = write_csv(tmp_path / "nb201-cifar10.csv", ["arch", "val_accuracy", "a", "b"], rows)
    msg = error_of(load_csv, path)
    assert str(path) in msg and "val_accuracy" in msg and "42.5" in msg


def test_non_finite_accuracy_is_bad_input(tmp_path):
    """'nan' parses as a float; an accuracy of NaN cannot be ranked, so it must be refused
    with a GpsrError naming the file and column, not fail later inside the Kendall kernel."""
    rows = synthetic_rows(40)
    rows[5][1] = "nan"
    path = write_csv(tmp_path / "nb201-cifar10.csv", ["arch", "val_accuracy", "a", "b"], rows)
    with pytest.raises(GpsrError) as info:
        gpsr.evaluate("a", build_dataset(load_problems(path)), "cpu")
    assert str(path) in str(info.value) and "val_accuracy" in str(info.value)


def test_smallest_loadable_problem_can_be_evaluated(tmp_path):
    """A problem with MIN_ARCHITECTURES rows loads, so it must also evaluate on its splits
    (today the 70/30 split re-checks the minimum on 7- and 3-row parts and fails)."""
    path = write_csv(tmp_path / "nb201-cifar10.csv", ["arch", "val_accuracy", "a", "b"],
                     synthetic_rows(MIN_ARCHITECTURES))
    ds = build_dataset(load_problems(path))
    taus = gpsr.evaluate("a", ds, "cpu")
    assert set(taus) == {"input", "test", "all"}


@pytest.mark.parametrize(
    "text, fragment",
    [
        ('{"cifar10": {', "malformed JSON"),
        ("[1, 2]", "expected an object"),
        ("{}", "expected an object"),
        ('{"cifar10": [1, 2]}', "'cifar10' is not an object"),
        ('{"cifar10": {"a1": {"snip": {"score": 1}}}}', "missing 'val_accuracy'"),
        ('{"cifar10": {"a1": 5}}', "missing 'val_accuracy'"),
    ],
)
def test_malformed_json(tmp_path, text, fragment):
    path = tmp_path / "zc_nasbench201.json"
    path.write_text(text)
    msg = error_of(load_naslib_json, path)
    assert str(path) in msg and fragment in msg


@pytest.mark.parametrize("score", ['"abc"', "null", "true", "[1]"])
def test_non_numeric_json_score(tmp_path, score):
    records = [f'"a{i}": {{"val_accuracy": {i}, "snip": {{"score": {i}}}}}' for i in range(11)]
    records.append(f'"bad": {{"val_accuracy": 3, "snip": {{"score": {score}}}}}')
    path = tmp_path / "zc_nasbench201.json"
    path.write_text('{"cifar10": {' + ", ".join(records) + "}}")
    msg = error_of(load_naslib_json, path)
    assert str(path) in msg and "'bad'" in msg and "'snip'" in msg and "non-numeric" in msg


def test_json_with_no_common_proxy(tmp_path):
    data = {"cifar10": {f"a{i}": {"val_accuracy": i, ("snip" if i % 2 else "zen"): {"score": i}}
                        for i in range(12)}}
    path = tmp_path / "zc_nasbench201.json"
    path.write_text(json.dumps(data))
    msg = error_of(load_naslib_json, path)
    assert str(path) in msg and "'cifar10'" in msg


def test_folder_without_problem_files(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    (tmp_path / "nasbench201.json").write_text("{}")  # not zc_*.json
    msg = error_of(load_problems, tmp_path)
    assert str(tmp_path) in msg and "no *.csv or zc_*.json" in msg


def test_problem_loaded_twice(tmp_path):
    write_csv(tmp_path / "nb201-cifar10.csv", ["arch", "val_accuracy", "a"], synthetic_rows(
        12, proxies=("a",)))
    write_csv(tmp_path / "nb201-cifar10.v2.csv", ["arch", "val_accuracy", "a"], synthetic_rows(
        12, proxies=("a",)))
    msg = error_of(load_problems, tmp_path)
    assert "NB201-CF10" in msg and "loaded twice" in msg


def test_problems_sharing_no_proxy(tmp_path):
    a = load_csv(write_csv(tmp_path / "nb201-cifar10.csv", ["arch", "val_accuracy", "snip"],
                           synthetic_rows(12, proxies=("snip",))))
    b = load_csv(write_csv(tmp_path / "nb101-cifar10.csv", ["arch", "val_accuracy", "zen"],
                           synthetic_rows(12, proxies=("zen",))))
    msg = error_of(build_dataset, [a, b])
    assert "share no proxy" in msg
    assert "NB201-CF10 has snip" in msg and "NB101-CF10 has zen" in msg


def test_build_dataset_bad_settings(tmp_path):
    p = load_csv(write_csv(tmp_path / "nb201-cifar10.csv", ["arch", "val_accuracy", "a", "b"],
                           synthetic_rows(30)))
    assert "'purge'" in error_of(build_dataset, [p], sentinel_policy="purge")
    assert "1.5" in error_of(build_dataset, [p], input_fraction=1.5)
    assert "0" in error_of(build_dataset, [p], input_fraction=0.0)
    msg = error_of(build_dataset, [p], proxies=["a", "zico"])
    assert "'zico'" in msg and "NB201-CF10" in msg
    assert "no problems" in error_of(build_dataset, [])


def test_explicit_terminal_set_keeps_its_order(tmp_path):
    p = load_csv(write_csv(tmp_path / "nb201-cifar10.csv", ["arch", "val_accuracy", "a", "b"],
                           synthetic_rows(30)))
    ds = build_dataset([p], proxies=["b", "a"])
    assert ds.proxies == ("b", "a")
    np.testing.assert_array_equal(ds.problems[0].values[:, 0], p.column("b"))


# ---- split -----------------------------------------------------------------------------------
def test_split_is_seeded_70_30_disjoint_and_stable(all_problems, paper_problems):
    ds = build_dataset(paper_problems, split_seed=3)
    for prob, inp, test in zip(ds.problems, ds.input_rows, ds.test_rows):
        n = len(prob)
        assert len(inp) == round(0.7 * n) and len(test) == n - len(inp)
        assert not set(inp) & set(test)
        np.testing.assert_array_equal(np.sort(np.concatenate([inp, test])), np.arange(n))
        assert (np.diff(inp) > 0).all() and (np.diff(test) > 0).all()
    again = build_dataset(paper_problems, split_seed=3)
    for a, b in zip(ds.input_rows, again.input_rows):
        np.testing.assert_array_equal(a, b)
    # stable per problem: the same rows whichever other problems are loaded with it
    alone = build_dataset([all_problems["NB301-CF10"]], split_seed=3)
    np.testing.assert_array_equal(alone.input_rows[0], ds.input_rows[2])
    # another seed, another split
    other = build_dataset(paper_problems, split_seed=4)
    assert not np.array_equal(other.input_rows[0], ds.input_rows[0])
    # parts hold the rows they say
    part = ds.part("input")[1]
    assert part.archs == [ds.problems[1].archs[i] for i in ds.input_rows[1]]
    assert ds.part("all")[1] is ds.problems[1]


@pytest.mark.parametrize("fraction", [0.5, 0.8, 1.0])
def test_split_fraction(tmp_path, fraction):
    p = load_csv(write_csv(tmp_path / "nb201-cifar10.csv", ["arch", "val_accuracy", "a", "b"],
                           synthetic_rows(200)))
    inp, test = p.split(0, fraction)
    assert len(inp) == round(fraction * 200) and len(inp) + len(test) == 200
    assert not set(inp) & set(test)


def test_input_fraction_one_can_be_evaluated(tmp_path):
    """input_fraction=1 is accepted (range (0, 1]): the test split is then empty, and its
    taus are undefined (null), not an error."""
    p = load_csv(write_csv(tmp_path / "nb201-cifar10.csv", ["arch", "val_accuracy", "a", "b"],
                           synthetic_rows(50)))
    ds = build_dataset([p], input_fraction=1.0)
    assert len(ds.test_rows[0]) == 0
    taus = gpsr.evaluate("a", ds, "cpu")
    assert taus["test"] == {"NB201-CF10": None}
    assert taus["input"] == taus["all"]
