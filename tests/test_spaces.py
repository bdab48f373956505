"""gpsr.spaces: the builders reproduce the benchmark's params/flops; parsing and sampling.

NB201 params are checked on all 9,445 rows of nb201-cifar10.csv through the analytic count
``nb201.analytic_params`` (building 9,445 networks takes minutes), and the analytic count is
checked to equal the built network's parameter count on a seeded sample of 200 cells.
The other spaces are checked on seeded samples of their rows; the full-row check is
``benchmarks/check_space_params.py`` (figures in results/spaces-params-check.md).
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
import torch

from gpsr.data import shared_dir
from gpsr.errors import GpsrError
from gpsr.spaces import (
    SPACES,
    all_archs,
    build_network,
    count_flops,
    count_params,
    count_params_called,
    default_input_shape,
    nb201,
    parse_arch,
    sample_archs,
)

EXACT = 0.5e-6  # the released columns are millions printed to 1e-6


def _rows(name: str) -> list[dict[str, str]]:
    shared = shared_dir()
    if shared is None:
        pytest.skip("shared data folder not found; set GPSR_SHARED")
    path = Path(shared) / "data" / "nas-bench-suite-zero" / name
    if not path.is_file():
        pytest.skip(f"{path} not found; set GPSR_SHARED")
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _sample(rows: list[dict[str, str]], k: int, seed: int = 0) -> list[dict[str, str]]:
    return random.Random(seed).sample(rows, min(k, len(rows)))


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- NAS-Bench-201 ---------------------------------------------------------------------


def test_nb201_params_all_rows_analytic():
    rows = _rows("nb201-cifar10.csv")
    assert len(rows) == 9445
    bad = [
        r["arch"]
        for r in rows
        if abs(nb201.analytic_params(parse_arch("nb201", r["arch"])) / 1e6 - float(r["params"]))
        >= EXACT
    ]
    assert bad == []


def test_nb201_analytic_params_equal_built_network():
    for arch in sample_archs("nb201", 200, seed=1234):
        with torch.device("meta"):
            net = build_network("nb201", arch)
        assert sum(p.numel() for p in net.parameters()) == nb201.analytic_params(
            parse_arch("nb201", arch)
        ), arch


@pytest.mark.parametrize("num_classes", [10, 100, 120])
def test_nb201_num_classes(num_classes):
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
    net = build_network("nb201", arch, num_classes=num_classes)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, num_classes)
    assert round(count_params(net) * 1e6) == nb201.analytic_params(
        parse_arch("nb201", arch), num_classes=num_classes
    )


def test_nb201_flops_sample():
    rows = _sample(_rows("nb201-cifar10.csv"), 25)
    for r in rows:
        flops = count_flops(build_network("nb201", r["arch"]), (1, 3, 32, 32))
        assert flops == pytest.approx(float(r["flops"]), rel=1e-3), r["arch"]


def test_nb201_cifar100_early_rows():
    for r in _sample(_rows("extra/nb201-cifar100.naslib-early-01f0f4ac.csv"), 10):
        net = build_network("nb201", r["arch"], num_classes=100)
        assert abs(count_params(net) - float(r["params"])) < EXACT, r["arch"]
        assert count_flops(net) == pytest.approx(float(r["flops"]), rel=1e-3), r["arch"]


def test_nb201_all_archs():
    archs = all_archs("nb201")
    assert len(archs) == len(set(archs)) == 15625
    assert all(parse_arch("nb201", a) for a in archs[:50])
    ops = parse_arch("nb201", archs[-1])
    assert nb201.to_string(ops) == archs[-1]


def test_nb201_zero_node_forward():
    # Node 1 and 2 only have 'none' inputs: the cell must still produce a tensor.
    arch = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    assert build_network("nb201", arch)(torch.randn(1, 3, 32, 32)).shape == (1, 10)


# --- other spaces, on sampled rows -----------------------------------------------------

ROW_CHECKS = [
    ("nb101-cifar10.csv", "nb101", 10),
    ("nb301-cifar10.csv", "nb301", 10),
    ("extra/tnb101-micro-class_object.naslib-early-3715c8f1.csv", "tnb101-micro", 100),
    ("extra/tnb101-macro-class_object.naslib-early-14dafbcf.csv", "tnb101-macro", 100),
    ("extra/tnb101-macro-class_scene.naslib-early-14dafbcf.csv", "tnb101-macro", 63),
]


@pytest.mark.parametrize("name,space,num_classes", ROW_CHECKS)
def test_params_on_rows(name, space, num_classes):
    for r in _sample(_rows(name), 30):
        with torch.device("meta"):
            net = build_network(space, r["arch"], num_classes=num_classes)
        assert abs(count_params(net) - float(r["params"])) < EXACT, r["arch"]


@pytest.mark.parametrize("name,space,num_classes", ROW_CHECKS)
def test_flops_on_rows(name, space, num_classes):
    shape = default_input_shape(space)
    for r in _sample(_rows(name), 3, seed=1):
        # Shapes are all FLOPs need; the meta device skips the 256x256 arithmetic.
        device = "meta" if shape[-1] > 32 else "cpu"
        with torch.device(device):
            net = build_network(space, r["arch"], num_classes=num_classes)
        assert count_flops(net, shape) == pytest.approx(float(r["flops"]), rel=1e-3), r["arch"]


def test_tnb101_jigsaw_params_are_encoder_plus_siamese_head():
    # TransNAS's jigsaw network: the encoder on 9 tiles, then Linear(9C, 1000).
    for r in _sample(_rows("extra/tnb101-micro-jigsaw.naslib-early-3715c8f1.csv"), 5):
        with torch.device("meta"):
            net = build_network("tnb101-micro", r["arch"], num_classes=1000)
        c = net.classifier.in_features
        expected = count_params(net) + 8 * c * 1000 / 1e6
        assert abs(expected - float(r["params"])) < EXACT, r["arch"]


def test_nb301_params_called_equal_params():
    # The benchmark counts only modules run in eval mode; our net has no idle module.
    arch = sample_archs("nb301", 1, seed=3)[0]
    net = build_network("nb301", arch)
    assert count_params_called(net) == pytest.approx(count_params(net), abs=1e-12)


def test_nb101_input_output_only_cell():
    # A cell whose only path is input -> output (a projection), as in many benchmark rows.
    matrix = [[0] * 7 for _ in range(7)]
    matrix[0][6] = 1
    arch = str(tuple(v for row in matrix for v in row) + (0, 2, 3, 4, 2, 3, 1))
    assert parse_arch("nb101", arch).num_vertices == 2
    assert build_network("nb101", arch)(torch.randn(1, 3, 32, 32)).shape == (1, 10)


# --- registry, sampling, parse errors --------------------------------------------------


@pytest.mark.parametrize("space", SPACES)
def test_sample_is_seeded_parseable_and_builds(space):
    archs = sample_archs(space, 4, seed=7)
    assert archs == sample_archs(space, 4, seed=7)
    assert archs != sample_archs(space, 4, seed=8)
    for arch in archs:
        parse_arch(space, arch)
    side = 64 if space.startswith("tnb101") else 32
    net = build_network(space, archs[0], num_classes=5)
    assert net(torch.randn(2, 3, side, side)).shape == (2, 5)


def test_enumerable_space_sizes():
    assert len(set(all_archs("tnb101-micro"))) == 4096
    assert len(set(all_archs("tnb101-macro"))) == 3256
    for space in ("nb101", "nb301"):
        with pytest.raises(GpsrError):
            all_archs(space)


BAD_ARCHS = [
    ("nb201", "|nor_conv_3x3~0|+|none~0|none~1|"),
    ("nb201", "|conv_7x7~0|+|none~0|none~1|+|none~0|none~1|none~2|"),
    ("nb201", "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|"),
    ("nb101", "(0, 1, 2)"),
    ("nb101", "not a tuple"),
    ("nb101", str(tuple([0] * 49) + (0, 2, 2, 2, 2, 2, 1))),  # no input-output path
    ("nb101", str(tuple([1] * 49) + (0, 2, 2, 2, 2, 2, 1))),  # not upper-triangular
    ("nb101", str(tuple([0, 1, 1, 1, 1, 1, 1] + [0] * 42) + (0, 5, 2, 2, 2, 2, 1))),
    ("nb301", "(((0, 0),), ((0, 0),))"),
    ("nb301", str((((0, 7),) * 8, ((0, 0),) * 8))),
    ("nb301", str((((0, 0),) * 7 + ((5, 0),), ((0, 0),) * 8))),
    ("tnb101-micro", "(1, 2, 3)"),
    ("tnb101-micro", "(1, 2, 3, 4, 0, 0)"),
    ("tnb101-macro", "(1, 1, 1)"),
    ("tnb101-macro", "(1, 1, 1, 1)"),  # no downsampling, no doubling
    ("tnb101-macro", "(5, 1, 3, 2)"),
]


@pytest.mark.parametrize("space,arch", BAD_ARCHS)
def test_parse_errors_are_one_line_gpsr_errors(space, arch):
    with pytest.raises(GpsrError) as info:
        parse_arch(space, arch)
    message = str(info.value)
    assert "\n" not in message
    assert repr(arch) in message
    with pytest.raises(GpsrError):
        build_network(space, arch)


def test_unknown_space_and_bad_inputs():
    with pytest.raises(GpsrError, match="unknown search space"):
        build_network("nb999", "x")
    with pytest.raises(GpsrError):
        parse_arch("nb201", 17)
    with pytest.raises(GpsrError):
        sample_archs("nb201", -1, 0)
    with pytest.raises(GpsrError, match="unknown network option"):
        build_network("nb201", all_archs("nb201")[0], width=3)
