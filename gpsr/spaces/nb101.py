"""NAS-Bench-101 networks.

Definition (Ying et al., "NAS-Bench-101", ICML 2019, Sec. 2.1-2.2; reference code
``google-research/nasbench``: ``nasbench/lib/model_builder.py`` and ``model_spec.py``; the
PyTorch port NASLib uses for its zero-cost tables, ``naslib/predictors/utils/models/
nasbench1.py``):

* a cell is a DAG of at most 7 vertices and 9 edges given by an upper-triangular
  adjacency matrix; vertex 0 is the input, the last vertex the output, interior
  vertices are ``conv3x3-bn-relu``, ``conv1x1-bn-relu`` or ``maxpool3x3`` (stride 1);
* vertices that are not on an input-to-output path are pruned first;
* channel rule: the output's channels are split evenly (remainder to the first vertices)
  among the interior vertices feeding the output, which are concatenated; other interior
  vertices take the maximum of their successors' channels; an edge into a vertex with
  fewer channels keeps only the first channels (truncation); every edge out of the input
  goes through a 1x1 conv-BN-ReLU projection, and a direct input-to-output edge is
  projected and added to the concatenation;
* network: 3x3 conv-BN-ReLU stem with 128 channels, 3 stacks of 3 cells, a 2x2 max pool
  before stacks 2 and 3 where the channel count doubles (the first cell of the stack does
  the doubling), global average pooling, linear classifier. Convs have no bias.

Arch string: NASLib's tuple, the flattened ``n x n`` adjacency followed by ``n`` op codes
(0 input, 1 output, 2 maxpool3x3, 3 conv1x1-bn-relu, 4 conv3x3-bn-relu); NAS-Bench-Suite-Zero
always writes ``n = 7`` (56 numbers).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import random
import re
from dataclasses import dataclass

import torch
from torch import nn

from gpsr.errors import GpsrError

OP_CODES = ("input", "output", "maxpool3x3", "conv1x1-bn-relu", "conv3x3-bn-relu")
INTERIOR_CODES = (2, 3, 4)
MAX_VERTICES = 7
MAX_EDGES = 9


@dataclass(frozen=True)
class Spec:
    """A pruned NB101 cell: adjacency rows and op codes of the surviving vertices."""

    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[int, ...]

    @property
    def num_vertices(self) -> int:
        return len(self.ops)


#: A flat tuple of non-negative integers, the format every NB101 file writes: read without
#: ``ast`` (ten times faster, which lookup searches feel).
_FLAT_INTS = re.compile(r"\(\s*\d+(?:\s*,\s*\d+)*\s*,?\s*\)")


def _literal_ints(arch: str) -> list[int]:
    if _FLAT_INTS.fullmatch(arch.strip()):
        return [int(v) for v in re.findall(r"\d+", arch)]
    try:
        value = ast.literal_eval(arch.strip())
    except (ValueError, SyntaxError):
        raise GpsrError(f"NB101 arch {arch!r}: not a tuple of integers") from None
    if not isinstance(value, (tuple, list)) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise GpsrError(f"NB101 arch {arch!r}: not a tuple of integers")
    return list(value)


def _prune(matrix: list[list[int]], ops: list[int]) -> tuple[list[list[int]], list[int]] | None:
    """Drop vertices off every input-to-output path; ``None`` if the output is unreachable."""
    n = len(ops)
    forward = {0}
    for v in range(1, n):
        if any(matrix[u][v] for u in forward):
            forward.add(v)
    backward = {n - 1}
    for v in range(n - 2, -1, -1):
        if any(matrix[v][w] for w in backward):
            backward.add(v)
    if n - 1 not in forward:
        return None
    keep = sorted(forward & backward)
    return [[matrix[u][v] for v in keep] for u in keep], [ops[v] for v in keep]


@functools.lru_cache(maxsize=1 << 16)
def parse(arch: str) -> Spec:
    """Validate a NASLib NB101 tuple and return its pruned cell."""
    values = _literal_ints(arch)
    n = next((k for k in range(2, MAX_VERTICES + 1) if k * k + k == len(values)), None)
    if n is None:
        raise GpsrError(
            f"NB101 arch {arch!r}: {len(values)} numbers; expected n*n + n for n in 2..7 (56)"
        )
    matrix = [values[i * n : (i + 1) * n] for i in range(n)]
    ops = values[n * n :]
    for i in range(n):
        for j in range(n):
            if matrix[i][j] not in (0, 1) or (j <= i and matrix[i][j]):
                raise GpsrError(
                    f"NB101 arch {arch!r}: the adjacency matrix must be 0/1 and strictly "
                    f"upper-triangular (entry {i},{j} is {matrix[i][j]})"
                )
    if ops[0] != 0 or ops[-1] != 1 or any(op not in INTERIOR_CODES for op in ops[1:-1]):
        raise GpsrError(
            f"NB101 arch {arch!r}: op codes {ops} must be 0 (input), then 2/3/4, then 1 (output)"
        )
    pruned = _prune(matrix, ops)
    if pruned is None:
        raise GpsrError(f"NB101 arch {arch!r}: no path from the input to the output vertex")
    edges = sum(map(sum, pruned[0]))
    if edges > MAX_EDGES:
        raise GpsrError(f"NB101 arch {arch!r}: {edges} edges after pruning, at most 9 allowed")
    return Spec(tuple(tuple(row) for row in pruned[0]), tuple(pruned[1]))


def sample(n: int, seed: int) -> list[str]:
    """``n`` 7-vertex cells, each drawn as in NASLib/nasbench's random spec sampler.

    Each adjacency entry above the diagonal is a fair coin and each interior op uniform;
    draws that are invalid (no input-output path, more than 9 edges after pruning) are
    rejected. This is uniform over valid labelled 7-vertex specs, not over the 423,624
    unique graphs: isomorphic cells are not merged.
    """
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        matrix = [
            [int(j > i and rng.random() < 0.5) for j in range(MAX_VERTICES)]
            for i in range(MAX_VERTICES)
        ]
        ops = [0] + [rng.choice(INTERIOR_CODES) for _ in range(MAX_VERTICES - 2)] + [1]
        pruned = _prune(matrix, ops)
        if pruned is None or sum(map(sum, pruned[0])) > MAX_EDGES:
            continue
        out.append(str(tuple(v for row in matrix for v in row) + tuple(ops)))
    return out


def vertex_channels(
    in_channels: int, out_channels: int, matrix: tuple[tuple[int, ...], ...]
) -> list[int]:
    """Channels of every vertex under NB101's splitting rule (see the module docstring)."""
    n = len(matrix)
    channels = [0] * n
    channels[0], channels[-1] = in_channels, out_channels
    if n == 2:
        return channels
    # Edges from the input are projections, so they do not share the output's channels.
    fan_in = sum(matrix[v][n - 1] for v in range(1, n - 1))
    base, extra = divmod(out_channels, fan_in)
    for v in range(1, n - 1):
        if matrix[v][n - 1]:
            channels[v] = base + (1 if extra > 0 else 0)
            extra -= 1
    for v in range(n - 3, 0, -1):
        if not matrix[v][n - 1]:
            channels[v] = max(channels[w] for w in range(v + 1, n - 1) if matrix[v][w])
    return channels


class ConvBnRelu(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=False),
        )


def _vertex_op(code: int, channels: int) -> nn.Module:
    if code == 2:
        return nn.MaxPool2d(3, stride=1, padding=1)
    return ConvBnRelu(channels, channels, 1 if code == 3 else 3)


class Cell(nn.Module):
    def __init__(self, spec: Spec, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.matrix = spec.matrix
        n = spec.num_vertices
        self.channels = vertex_channels(in_channels, out_channels, spec.matrix)
        self.ops = nn.ModuleDict(
            {str(t): _vertex_op(spec.ops[t], self.channels[t]) for t in range(1, n - 1)}
        )
        self.projections = nn.ModuleDict(
            {
                str(t): ConvBnRelu(in_channels, self.channels[t], 1)
                for t in range(1, n)
                if spec.matrix[0][t]
            }
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(self.matrix)
        values = [x]
        concat = []
        for t in range(1, n - 1):
            c = self.channels[t]
            terms = [values[s][:, :c] for s in range(1, t) if self.matrix[s][t]]
            if self.matrix[0][t]:
                terms.append(self.projections[str(t)](x))
            values.append(self.ops[str(t)](sum(terms[1:], terms[0])))
            if self.matrix[t][n - 1]:
                concat.append(values[t])
        if not concat:
            return self.projections[str(n - 1)](x)
        out = concat[0] if len(concat) == 1 else torch.cat(concat, dim=1)
        if self.matrix[0][n - 1]:
            out = out + self.projections[str(n - 1)](x)
        return out


class GlobalAvgPool(nn.Module):
    """Mean over H and W. A plain mean, not an AdaptiveAvgPool2d: NASLib's port averages
    with ``torch.mean``, which its FLOPs counter does not see."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class NB101Network(nn.Module):
    def __init__(
        self,
        spec: Spec,
        num_classes: int = 10,
        stem_channels: int = 128,
        num_stacks: int = 3,
        cells_per_stack: int = 3,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBnRelu(3, stem_channels, 3)]
        c_in = c_out = stem_channels
        for stack in range(num_stacks):
            if stack > 0:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                c_out *= 2
            for _ in range(cells_per_stack):
                layers.append(Cell(spec, c_in, c_out))
                c_in = c_out
        self.features = nn.Sequential(*layers)
        self.pool = GlobalAvgPool()
        self.classifier = nn.Linear(c_out, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


def build(
    spec: Spec,
    num_classes: int = 10,
    stem_channels: int = 128,
    num_stacks: int = 3,
    cells_per_stack: int = 3,
) -> nn.Module:
    """The NB101 network of a parsed cell (defaults: the benchmark's 128 / 3 / 3)."""
    return NB101Network(spec, num_classes, stem_channels, num_stacks, cells_per_stack)


# ---- search: identity, neighbourhood and encoding ----------------------------------------
def graph_hash(spec: Spec) -> str:
    """An isomorphism-invariant fingerprint of a pruned cell (NAS-Bench-101's
    ``nasbench/lib/graph_util.py`` ``hash_module``: each vertex starts from its out/in degree
    and op, then absorbs its neighbours' hashes once per vertex; the sorted hashes are the
    fingerprint). Two cells with the same fingerprint are the same network."""
    n = spec.num_vertices
    matrix = spec.matrix
    hashes = [
        hashlib.md5(str((sum(matrix[v]), sum(row[v] for row in matrix), op)).encode()).hexdigest()
        for v, op in enumerate(spec.ops)
    ]
    for _ in range(n):
        hashes = [
            hashlib.md5(
                (
                    "".join(sorted(hashes[w] for w in range(n) if matrix[w][v]))
                    + "|"
                    + "".join(sorted(hashes[w] for w in range(n) if matrix[v][w]))
                    + "|"
                    + hashes[v]
                ).encode()
            ).hexdigest()
            for v in range(n)
        ]
    return hashlib.md5(str(sorted(hashes)).encode()).hexdigest()


@functools.lru_cache(maxsize=1 << 16)
def arch_hash(arch: str) -> str:
    """:func:`graph_hash` of an arch string (validated; cached, as searches ask again)."""
    return graph_hash(parse(arch))


def raw_cell(arch: str) -> tuple[list[list[int]], list[int]]:
    """The unpruned adjacency and op codes of a valid arch string, as 7 vertices: a smaller
    cell gets unconnected interior vertices (maxpool) before its output, which pruning drops."""
    parse(arch)
    values = _literal_ints(arch)
    n = next(k for k in range(2, MAX_VERTICES + 1) if k * k + k == len(values))
    matrix = [values[i * n : (i + 1) * n] for i in range(n)]
    ops = values[n * n :]
    pad = MAX_VERTICES - n
    index = list(range(n - 1)) + [MAX_VERTICES - 1]
    full = [[0] * MAX_VERTICES for _ in range(MAX_VERTICES)]
    for i in range(n):
        for j in range(n):
            full[index[i]][index[j]] = matrix[i][j]
    return full, ops[:-1] + [2] * pad + [1]


def to_string(matrix: list[list[int]], ops: list[int]) -> str:
    """NASLib's flattened tuple of an adjacency and its op codes."""
    return str(tuple(v for row in matrix for v in row) + tuple(ops))


def neighbours(arch: str) -> list[str]:
    """Cells one edit away that are valid and a different network: one adjacency entry
    above the diagonal flipped, or one interior vertex given another op (the two mutations of
    NAS-Bench-101's evolution baseline, Ying et al. 2019, Sec. 5.1), kept when the result has
    an input-output path and at most 9 edges after pruning and its :func:`graph_hash`
    differs from the parent's."""
    matrix, ops = raw_cell(arch)
    parent = arch_hash(arch)
    candidates = []
    for i in range(MAX_VERTICES):
        for j in range(i + 1, MAX_VERTICES):
            flipped = [row[:] for row in matrix]
            flipped[i][j] ^= 1
            candidates.append(to_string(flipped, ops))
    for v in range(1, MAX_VERTICES - 1):
        for code in INTERIOR_CODES:
            if code != ops[v]:
                candidates.append(to_string(matrix, ops[:v] + [code] + ops[v + 1 :]))
    out = []
    for candidate in candidates:
        try:
            if arch_hash(candidate) != parent:
                out.append(candidate)
        except GpsrError:
            continue
    return out


@functools.lru_cache(maxsize=1 << 16)
def encode(arch: str) -> tuple[int, ...]:
    """The 21 entries above the diagonal of the 7-vertex adjacency, then the 5 interior ops."""
    matrix, ops = raw_cell(arch)
    upper = [matrix[i][j] for i in range(MAX_VERTICES) for j in range(i + 1, MAX_VERTICES)]
    return tuple(upper + ops[1:-1])


_UPPER = [(i, j) for i in range(MAX_VERTICES) for j in range(i + 1, MAX_VERTICES)]


def mutate(arch: str, rng: random.Random) -> str:
    """A different valid network by single edits, the edits of NAS-Bench-101's evolution
    baseline (Ying et al. 2019, Sec. 5.1: edges flipped, ops changed): with probability 1/2
    one of the 21 adjacency entries above the diagonal is flipped, else one interior vertex
    gets a random op; an invalid result is drawn again, and a valid one that is still the
    same network (its :func:`graph_hash` unchanged, e.g. an edit of a pruned vertex) is
    edited further. Unlike a draw from :func:`neighbours` it terminates also for cells that
    have none (a lone input-output edge)."""
    parent = arch_hash(arch)
    matrix, ops = raw_cell(arch)
    while True:
        new_matrix, new_ops = [row[:] for row in matrix], ops[:]
        if rng.random() < 0.5:
            i, j = rng.choice(_UPPER)
            new_matrix[i][j] ^= 1
        else:
            new_ops[rng.randrange(1, MAX_VERTICES - 1)] = rng.choice(INTERIOR_CODES)
        candidate = to_string(new_matrix, new_ops)
        try:
            if arch_hash(candidate) != parent:
                return candidate
        except GpsrError:
            continue
        matrix, ops = new_matrix, new_ops
