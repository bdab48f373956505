"""Check the network builders of gpsr.spaces against the benchmark's params/flops columns.

Every row of every NAS-Bench-Suite-Zero table that carries ``params`` (and ``flops``) is
rebuilt and counted with ``gpsr.spaces.count_params`` / ``count_flops``. Prints a
markdown table; the figures are recorded in ``results/spaces-params-check.md``.

Usage: python benchmarks/check_space_params.py [--limit N]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from gpsr.data import shared_dir
from gpsr.spaces import build_network, count_flops, count_params, default_input_shape

#: Rounding unit of the released columns (they are printed in millions to 1e-6).
EXACT = 0.5e-6
FLOPS_RTOL = 1e-3
JIGSAW_CLASSES = 1000
JIGSAW_TILES = 9
JIGSAW_TILE_SHAPE = (1, 3, 64, 64)
#: Counting only needs shapes; the meta device skips the arithmetic, which pays off for the
#: macro nets' large 256x256 convs but costs more than it saves on many small ops.
META_SPACES = {"tnb101-macro"}


@dataclass
class Check:
    file: str
    space: str
    head: str  # "class", "jigsaw" or "autoencoder"
    num_classes: int = 10
    rows: int = 0
    params_exact: int = 0
    params_max_err: float = 0.0
    flops_rows: int = 0
    flops_ok: int = 0
    flops_max_rel: float = 0.0
    decoder_params: dict[int, set[int]] = field(default_factory=dict)
    decoder_flops: list[float] = field(default_factory=list)


CHECKS = [
    Check("nb201-cifar10.csv", "nb201", "class", 10),
    Check("extra/nb201-cifar10.naslib-early-01f0f4ac.csv", "nb201", "class", 10),
    Check("extra/nb201-cifar100.naslib-early-01f0f4ac.csv", "nb201", "class", 100),
    Check("nb101-cifar10.csv", "nb101", "class", 10),
    Check("nb301-cifar10.csv", "nb301", "class", 10),
    Check(
        "extra/tnb101-micro-class_object.naslib-early-3715c8f1.csv", "tnb101-micro", "class", 100
    ),
    Check("extra/tnb101-micro-jigsaw.naslib-early-3715c8f1.csv", "tnb101-micro", "jigsaw"),
    Check(
        "extra/tnb101-micro-autoencoder.naslib-early-3715c8f1.csv", "tnb101-micro", "autoencoder"
    ),
    Check("extra/tnb101-macro-class_scene.naslib-early-14dafbcf.csv", "tnb101-macro", "class", 63),
    Check(
        "extra/tnb101-macro-class_object.naslib-early-14dafbcf.csv", "tnb101-macro", "class", 100
    ),
    Check("extra/tnb101-macro-jigsaw.naslib-early-14dafbcf.csv", "tnb101-macro", "jigsaw"),
    Check(
        "extra/tnb101-macro-autoencoder.naslib-early-14dafbcf.csv", "tnb101-macro", "autoencoder"
    ),
]


def _expected(check: Check, arch: str) -> tuple[float, float | None]:
    """Params and FLOPs (millions) our builder predicts for the benchmark's network.

    Jigsaw: TransNAS runs the encoder on 9 tiles of 64x64 and classifies the concatenated
    pooled features with a ``9C -> 1000`` linear layer; tensorwatch keeps only the last call
    of each module, so the encoder counts once and the pooling (on the stacked tiles) nine
    times. Autoencoder: only the encoder is predicted (``None`` FLOPs); the residual is the
    decoder's and is collected separately.
    """
    num_classes = JIGSAW_CLASSES if check.head == "jigsaw" else check.num_classes
    with torch.device("meta" if check.space in META_SPACES else "cpu"):
        net = build_network(check.space, arch, num_classes=num_classes)
    params = count_params(net)
    if check.head == "class":
        return params, count_flops(net, default_input_shape(check.space))
    c = net.classifier.in_features
    head_params = (c * num_classes + num_classes) / 1e6
    if check.head == "autoencoder":
        return params - head_params, None
    trunk = nn.Sequential(net.stem, net.layers)
    pool = count_flops(nn.Sequential(trunk, net.pool), JIGSAW_TILE_SHAPE) - count_flops(
        trunk, JIGSAW_TILE_SHAPE
    )
    tile = count_flops(net, JIGSAW_TILE_SHAPE)
    extra_tiles = JIGSAW_TILES - 1
    params += extra_tiles * c * num_classes / 1e6
    flops = tile + extra_tiles * (pool + c * num_classes / 1e6)
    return params, flops


def run(check: Check, root: Path, limit: int | None) -> None:
    with open(root / check.file, newline="") as fh:
        rows = list(csv.DictReader(fh))[:limit]
    for row in rows:
        params, flops = _expected(check, row["arch"])
        check.rows += 1
        bench_params = float(row["params"])
        err = abs(params - bench_params)
        if check.head == "autoencoder":
            with torch.device("meta"):
                width = build_network(check.space, row["arch"]).classifier.in_features
            residual = round((bench_params - params) * 1e6)
            check.decoder_params.setdefault(width, set()).add(residual)
            check.decoder_flops.append(float(row["flops"]))
            continue
        check.params_exact += err < EXACT
        check.params_max_err = max(check.params_max_err, err)
        if flops is not None and row.get("flops"):
            bench_flops = float(row["flops"])
            rel = abs(flops - bench_flops) / bench_flops
            check.flops_rows += 1
            check.flops_ok += rel < FLOPS_RTOL
            check.flops_max_rel = max(check.flops_max_rel, rel)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="rows per file (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    shared = shared_dir()
    if shared is None:
        print("shared data not found; set GPSR_SHARED", file=sys.stderr)
        return 1
    root = shared / "data" / "nas-bench-suite-zero"
    print(
        "| file | space | head | rows | params exact | params max abs err (M) "
        "| flops within 0.1 % | flops max rel err |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for check in CHECKS:
        start = time.perf_counter()
        run(check, root, args.limit)
        if check.head == "autoencoder":
            decoders = "; ".join(
                f"C={c}: {sorted(v)}" for c, v in sorted(check.decoder_params.items())
            )
            print(
                f"| {check.file} | {check.space} | autoencoder | {check.rows} "
                f"| encoder only; benchmark - encoder params by encoder width: {decoders} | | "
                f"decoder not built | |"
            )
        else:
            print(
                f"| {check.file} | {check.space} | {check.head} | {check.rows} "
                f"| {check.params_exact} | {check.params_max_err:.2e} "
                f"| {check.flops_ok}/{check.flops_rows} | {check.flops_max_rel:.2e} |"
            )
        print(f"<!-- {check.file}: {time.perf_counter() - start:.0f} s -->", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
