"""TransNAS-Bench-101 networks (micro and macro spaces) with a classification head.

Definition (Duan et al., "TransNAS-Bench-101", CVPR 2021, Sec. 3.1-3.2 and Fig. 2;
reference code of the benchmark, vendored in NASLib as
``naslib/search_spaces/transbench101/tnb101/models/net_infer/net_macro.py``,
``cell_micro.py`` and ``net_ops/cell_ops.py``):

* network code ``<base>-<macro>-<micro>``: stem = 3x3 conv stride 2 to ``base/2`` channels
  + BN, then ReLU-conv3x3-BN stride 2 to ``base`` channels;
* one *module* per macro digit, each of two cells; the digit says what the first cell of
  the module does: 1 keeps resolution and channels, 2 doubles the channels, 3 halves the
  resolution (stride 2), 4 does both;
* micro space: the macro skeleton is fixed to ``64-41414``; the cell is NAS-Bench-201-like
  (4 nodes, 6 edges, node ``j`` sums its inputs) with ops 0 zero, 1 identity (a factorized
  reduce when the cell changes shape), 2 ReLU-conv1x1-BN, 3 ReLU-conv3x3-BN; edges out of
  node 0 carry the cell's stride and channel change;
* macro space: base 64, 4 to 6 modules, every cell a ResNet basic block (ReLU-conv3x3-BN
  twice, projection shortcut conv1x1-BN when the shape changes);
* classification head (``structure='full'``): global average pooling, linear layer.

The benchmark trains task-specific decoders on this encoder (jigsaw: a siamese encoder on
9 tiles with a ``9 * C`` linear layer; autoencoder: a generative decoder); only the
classification head is built here. Arch strings: NASLib's tuples, the micro 6 op codes in
the order of the TransNAS string ``a_bc_def`` (node 1 from 0; node 2 from 0, 1; node 3 from
0, 1, 2), the macro 4-6 block codes.
"""

from __future__ import annotations

import ast
import functools
import itertools
import random

import torch
from torch import nn

from gpsr.errors import GpsrError

MICRO_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3")
#: (target node, source node) of the six micro edges, in arch-tuple order.
MICRO_EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
MICRO_SKELETON = (4, 1, 4, 1, 4)
BASE_CHANNELS = 64
MACRO_LENGTHS = (4, 5, 6)


def _int_tuple(space: str, arch: str) -> tuple[int, ...]:
    try:
        value = ast.literal_eval(arch.strip())
    except (ValueError, SyntaxError):
        raise GpsrError(f"{space} arch {arch!r}: not a tuple of integers") from None
    if not isinstance(value, (tuple, list)) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise GpsrError(f"{space} arch {arch!r}: not a tuple of integers")
    return tuple(value)


@functools.lru_cache(maxsize=1 << 13)
def parse_micro(arch: str) -> tuple[int, ...]:
    """The six op codes (0-3) of a micro cell."""
    ops = _int_tuple("TNB101-micro", arch)
    if len(ops) != len(MICRO_EDGES) or any(not 0 <= op < len(MICRO_OPS) for op in ops):
        raise GpsrError(f"TNB101-micro arch {arch!r}: expected 6 op codes in 0..3")
    return ops


@functools.lru_cache(maxsize=1 << 13)
def parse_macro(arch: str) -> tuple[int, ...]:
    """The 4-6 module codes (1-4) of a macro skeleton."""
    codes = _int_tuple("TNB101-macro", arch)
    if len(codes) not in MACRO_LENGTHS or any(not 1 <= c <= 4 for c in codes):
        raise GpsrError(f"TNB101-macro arch {arch!r}: expected 4 to 6 module codes in 1..4")
    if not _macro_counts_ok(codes):
        raise GpsrError(
            f"TNB101-macro arch {arch!r}: the space has 1-4 downsampling modules (3, 4) "
            "and 1-3 channel-doubling modules (2, 4)"
        )
    return codes


def _macro_counts_ok(codes: tuple[int, ...]) -> bool:
    return 1 <= sum(c >= 3 for c in codes) <= 4 and 1 <= sum(c % 2 == 0 for c in codes) <= 3


def all_micro() -> list[str]:
    """All 4,096 micro cells."""
    return [str(ops) for ops in itertools.product(range(len(MICRO_OPS)), repeat=6)]


def all_macro() -> list[str]:
    """All 3,256 macro skeletons (1-4 downsamplings, 1-3 doublings, 4-6 modules)."""
    out = []
    for n in MACRO_LENGTHS:
        for codes in itertools.product((1, 2, 3, 4), repeat=n):
            try:
                parse_macro(str(codes))
            except GpsrError:
                continue
            out.append(str(codes))
    return out


def sample_micro(n: int, seed: int) -> list[str]:
    """``n`` micro cells drawn uniformly with replacement from the 4,096."""
    rng = random.Random(seed)
    return [str(tuple(rng.randrange(len(MICRO_OPS)) for _ in MICRO_EDGES)) for _ in range(n)]


def sample_macro(n: int, seed: int) -> list[str]:
    """``n`` macro skeletons drawn uniformly with replacement from the 3,256."""
    space = all_macro()
    rng = random.Random(seed)
    return [rng.choice(space) for _ in range(n)]


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


class FactorizedReduce(nn.Module):
    """TransNAS's shape-changing identity: two 1x1 convs (the second on the input shifted
    by one pixel, zero-padded at the far edge), concatenated, then BN."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=stride, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=stride, bias=False)
        self.pad = nn.ConstantPad2d((0, 1, 0, 1), 0.0)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = self.pad(x)[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class MicroCell(nn.Module):
    """A micro cell; ``none`` edges are left out of the sum (the benchmark adds zeros)."""

    def __init__(self, ops: tuple[int, ...], c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.edges = nn.ModuleDict()
        self.inputs: list[list[tuple[int, str]]] = [[] for _ in range(4)]
        for (dst, src), code in zip(MICRO_EDGES, ops, strict=True):
            if code == 0:
                continue
            # Only edges out of the cell input change the shape.
            ci, s = (c_in, stride) if src == 0 else (c_out, 1)
            if code == 1:
                op: nn.Module = (
                    nn.Identity() if s == 1 and ci == c_out else FactorizedReduce(ci, c_out, s)
                )
            else:
                op = ReLUConvBN(ci, c_out, 1 if code == 2 else 3, s)
            key = f"{dst}<-{src}"
            self.edges[key] = op
            self.inputs[dst].append((src, key))
        self.c_out, self.stride = c_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        nodes = [x]
        for dst in range(1, 4):
            terms = [self.edges[key](nodes[src]) for src, key in self.inputs[dst]]
            if terms:
                nodes.append(sum(terms[1:], terms[0]))
            else:
                # TransNAS's Zero op returns zeros of the cell's output shape.
                size = ((h - 1) // self.stride + 1, (w - 1) // self.stride + 1)
                nodes.append(x.new_zeros((n, self.c_out, *size)))
        return nodes[3]


class BasicBlock(nn.Module):
    """ResNet basic block of the macro space (pre-activation ReLU-conv-BN ordering)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1)
        self.shortcut: nn.Module = (
            nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class TNB101Network(nn.Module):
    def __init__(
        self,
        macro: tuple[int, ...],
        micro: tuple[int, ...] | None,
        num_classes: int,
        base_channels: int = BASE_CHANNELS,
    ) -> None:
        super().__init__()
        half = base_channels // 2
        self.stem = nn.Sequential(
            nn.Conv2d(3, half, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(half),
            ReLUConvBN(half, base_channels, 3, 2),
        )
        layers: list[nn.Module] = []
        c = base_channels
        for code in macro:
            c_out = 2 * c if code % 2 == 0 else c
            stride = 2 if code > 2 else 1
            for c_in, s in ((c, stride), (c_out, 1)):
                if micro is None:
                    layers.append(BasicBlock(c_in, c_out, s))
                else:
                    layers.append(MicroCell(micro, c_in, c_out, s))
            c = c_out
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.layers(self.stem(x))).flatten(1))


def build_micro(
    ops: tuple[int, ...], num_classes: int = 10, base_channels: int = BASE_CHANNELS
) -> nn.Module:
    """The ``64-41414-<cell>`` encoder with a classification head."""
    return TNB101Network(MICRO_SKELETON, ops, num_classes, base_channels)


def build_macro(
    codes: tuple[int, ...], num_classes: int = 10, base_channels: int = BASE_CHANNELS
) -> nn.Module:
    """The ``64-<codes>-basic`` encoder with a classification head."""
    return TNB101Network(codes, None, num_classes, base_channels)


# ---- search: neighbourhoods and encodings ----------------------------------------------
def micro_neighbours(ops: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The 18 cells one edge-op change away."""
    return [
        ops[:e] + (op,) + ops[e + 1 :]
        for e in range(len(MICRO_EDGES))
        for op in range(len(MICRO_OPS))
        if op != ops[e]
    ]


@functools.cache
def macro_neighbours(codes: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """Valid skeletons one edit away: one module's code changed, one module inserted
    (any code, any position) or one module deleted, keeping 4-6 modules, 1-4 downsamplings
    and 1-3 doublings. Distinct and different from ``codes``."""
    edits: list[tuple[int, ...]] = []
    for i in range(len(codes)):
        edits += [codes[:i] + (c,) + codes[i + 1 :] for c in (1, 2, 3, 4) if c != codes[i]]
        edits.append(codes[:i] + codes[i + 1 :])
    for i in range(len(codes) + 1):
        edits += [codes[:i] + (c,) + codes[i:] for c in (1, 2, 3, 4)]
    return tuple(
        edit
        for edit in dict.fromkeys(edits)
        if edit != codes and len(edit) in MACRO_LENGTHS and _macro_counts_ok(edit)
    )


def macro_encode(codes: tuple[int, ...]) -> tuple[int, ...]:
    """The module codes padded with zeros to 6 (NASLib's padding of the op indices)."""
    return codes + (0,) * (max(MACRO_LENGTHS) - len(codes))


def micro_mutate(ops: tuple[int, ...], rng: random.Random) -> tuple[int, ...]:
    """A uniform draw from :func:`micro_neighbours`."""
    e = rng.randrange(len(MICRO_EDGES))
    return ops[:e] + (rng.choice([op for op in range(len(MICRO_OPS)) if op != ops[e]]),) + ops[
        e + 1 :
    ]
