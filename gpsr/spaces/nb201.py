"""NAS-Bench-201 networks in the NATS-Bench topology search space.

Definition (Dong & Yang, "NAS-Bench-201", ICLR 2020, Sec. 2.1 and Fig. 1; NATS-Bench,
TPAMI 2021, "topology search space"; reference code ``xautodl/models/cell_infers``
``tiny_network.py`` / ``cells.py`` and ``xautodl/models/cell_operations.py``):

* stem: 3x3 conv (no bias) + BN, ``C`` channels;
* three stages of ``N`` cells with ``C``, ``2C``, ``4C`` channels; between stages a
  ResNet basic block with stride 2 (ReLU-conv3x3-BN twice, shortcut = 2x2 average pool
  followed by a 1x1 conv without BN);
* the cell: 4 nodes, node ``j`` = sum over ``i < j`` of ``op_{j,i}(node_i)``; the output
  is node 3. Ops: ``none`` (zero), ``skip_connect`` (identity), ``nor_conv_1x1`` and
  ``nor_conv_3x3`` (ReLU-conv-BN, no conv bias), ``avg_pool_3x3`` (stride 1, padding 1,
  padding not counted in the mean);
* BN + ReLU, global average pooling, linear classifier.

Benchmark setting: ``C=16, N=5``; all BNs affine with running statistics.
The arch string is ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``: node 1, node 2, node 3,
each listing its input edges from node 0 upwards.
"""

from __future__ import annotations

import functools
import itertools
import random

import torch
from torch import nn

from gpsr.errors import GpsrError

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: (target node, source node) of the six edges, in arch-string order.
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NUM_ARCHS = len(OPS) ** len(EDGES)


@functools.lru_cache(maxsize=1 << 16)
def parse(arch: str) -> tuple[str, ...]:
    """The six edge ops of an arch string, in :data:`EDGES` order."""
    nodes = arch.strip().split("+")
    if len(nodes) != 3:
        raise GpsrError(f"NB201 arch {arch!r}: expected 3 '+'-separated nodes, got {len(nodes)}")
    ops: list[str] = []
    for j, node in enumerate(nodes, start=1):
        if not (node.startswith("|") and node.endswith("|")):
            raise GpsrError(f"NB201 arch {arch!r}: node {j} {node!r} is not enclosed in '|'")
        tokens = node[1:-1].split("|")
        if len(tokens) != j:
            raise GpsrError(f"NB201 arch {arch!r}: node {j} has {len(tokens)} edges, expected {j}")
        for i, token in enumerate(tokens):
            op, sep, src = token.partition("~")
            if not sep or src != str(i):
                raise GpsrError(f"NB201 arch {arch!r}: edge {token!r} should read 'op~{i}'")
            if op not in OPS:
                raise GpsrError(f"NB201 arch {arch!r}: unknown op {op!r}; known: {', '.join(OPS)}")
            ops.append(op)
    return tuple(ops)


def to_string(ops: tuple[str, ...]) -> str:
    """The canonical arch string of six edge ops (inverse of :func:`parse`)."""
    nodes, k = [], 0
    for j in range(1, 4):
        nodes.append("|" + "|".join(f"{ops[k + i]}~{i}" for i in range(j)) + "|")
        k += j
    return "+".join(nodes)


def all_archs() -> list[str]:
    """All 15,625 cells, first edge varying slowest (not NAS-Bench-201's index order)."""
    return [to_string(ops) for ops in itertools.product(OPS, repeat=len(EDGES))]


def sample(n: int, seed: int) -> list[str]:
    """``n`` cells drawn uniformly with replacement from the 15,625."""
    rng = random.Random(seed)
    return [to_string(tuple(rng.choice(OPS) for _ in EDGES)) for _ in range(n)]


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out),
        )


def _edge_op(name: str, channels: int) -> nn.Module | None:
    if name == "none":
        return None
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1)
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


class Cell(nn.Module):
    """One NB201 cell; ``none`` edges are left out of the sum instead of adding zeros."""

    def __init__(self, ops: tuple[str, ...], channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleDict()
        self.inputs: list[list[tuple[int, str]]] = [[] for _ in range(4)]
        for (dst, src), name in zip(EDGES, ops, strict=True):
            op = _edge_op(name, channels)
            if op is not None:
                key = f"{dst}<-{src}"
                self.edges[key] = op
                self.inputs[dst].append((src, key))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for dst in range(1, 4):
            terms = [self.edges[key](nodes[src]) for src, key in self.inputs[dst]]
            # A node with only 'none' inputs is all zeros (NB201's Zero op gives x * 0).
            nodes.append(sum(terms[1:], terms[0]) if terms else torch.zeros_like(x))
        return nodes[3]


class ResidualReduction(nn.Module):
    """NB201's stride-2 ResNet basic block between stages."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    def __init__(
        self, ops: tuple[str, ...], num_classes: int = 10, C: int = 16, N: int = 5
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, C, 3, padding=1, bias=False),
            nn.BatchNorm2d(C),
        )
        layers: list[nn.Module] = []
        channels = C
        for stage in range(3):
            if stage > 0:
                layers.append(ResidualReduction(channels, channels * 2))
                channels *= 2
            layers.extend(Cell(ops, channels) for _ in range(N))
        self.cells = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=False),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(self.cells(self.stem(x))))


def build(ops: tuple[str, ...], num_classes: int = 10, C: int = 16, N: int = 5) -> nn.Module:
    """The NB201 network of a parsed cell (``C``/``N`` default to the benchmark's 16/5)."""
    return NB201Network(ops, num_classes=num_classes, C=C, N=N)


def analytic_params(ops: tuple[str, ...], num_classes: int = 10, C: int = 16, N: int = 5) -> int:
    """Parameter count of :func:`build`'s network without building it.

    Only the convolutions of the cell depend on the arch; a ReLU-conv-BN edge with ``c``
    channels has ``k*k*c*c`` weights plus ``2c`` BN parameters.
    """
    stem = 3 * C * 9 + 2 * C
    fixed = stem
    for c in (C, 2 * C):
        fixed += 9 * c * 2 * c + 2 * 2 * c  # conv_a + BN
        fixed += 9 * 2 * c * 2 * c + 2 * 2 * c  # conv_b + BN
        fixed += c * 2 * c  # shortcut 1x1 conv
    c_last = 4 * C
    fixed += 2 * c_last + c_last * num_classes + num_classes
    per_cell = 0
    for c in (C, 2 * C, 4 * C):
        for name in ops:
            k = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}.get(name)
            if k is not None:
                per_cell += k * k * c * c + 2 * c
    return fixed + N * per_cell


# ---- search: neighbourhood and encoding ------------------------------------------------
def neighbours(ops: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The 24 cells one edge-op change away (the mutation of NAS-Bench-201's regularized
    evolution baseline, Dong & Yang 2020, Sec. 5: one edge gets another op)."""
    return [
        ops[:e] + (op,) + ops[e + 1 :] for e in range(len(EDGES)) for op in OPS if op != ops[e]
    ]


def encode(ops: tuple[str, ...]) -> tuple[int, ...]:
    """The op index of each edge; two cells differ in as many edges as positions here."""
    return tuple(OPS.index(op) for op in ops)


def mutate(ops: tuple[str, ...], rng: random.Random) -> tuple[str, ...]:
    """One edge, chosen uniformly, gets another op, chosen uniformly: a uniform draw from
    :func:`neighbours`."""
    e = rng.randrange(len(EDGES))
    return ops[:e] + (rng.choice([op for op in OPS if op != ops[e]]),) + ops[e + 1 :]
