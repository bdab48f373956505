"""NAS-Bench-301 (DARTS space) networks.

Definition (Liu et al., "DARTS", ICLR 2019, Sec. 2.1 and App. A.2; reference code
``quark0/darts``: ``cnn/model.py`` ``NetworkCIFAR``/``Cell`` and ``cnn/operations.py``;
NAS-Bench-301, Siems et al. 2020, Sec. 3 and App. for the training setting):

* stem: 3x3 conv (no bias) + BN with ``3C`` channels;
* ``layers`` cells; the cells at ``layers // 3`` and ``2 * layers // 3`` are reduction cells
  that double the channels and halve the resolution;
* a cell takes the outputs of the two previous cells, each preprocessed to ``C`` channels
  (ReLU-conv1x1-BN, or a factorized reduce when the previous-but-one output has twice the
  resolution), builds 4 nodes as the sum of two ops on earlier states, and concatenates the
  4 nodes (``4C`` channels); in a reduction cell the ops on the two inputs have stride 2;
* ops: 3x3 max/avg pool (average without padding), identity (a factorized reduce when
  strided), separable convs (ReLU-depthwise-pointwise-BN, twice) 3x3 and 5x5, dilated
  convs (ReLU-depthwise dilated-pointwise-BN) 3x3 and 5x5; no conv has a bias;
* global average pooling and a linear classifier.

NB301 trained every architecture with ``C=32`` and 8 cells. The two training-only parts of the
DARTS evaluation network (App. A.2; ``cnn/model.py`` ``AuxiliaryHeadCIFAR``, ``cnn/utils.py``
``drop_path``) are built only when asked for, so the default network is the one the
benchmark's ``params``/``flops`` count:

* ``auxiliary=True`` adds the auxiliary head on the output of cell ``2 * layers // 3`` (ReLU,
  5x5 average pool with stride 3 and no padding counted, 1x1 conv to 128 + BN + ReLU, 2x2 conv
  to 768 + BN + ReLU, linear); :meth:`NB301Network.forward_with_aux` returns its logits in
  training mode, ``forward`` never does;
* ``drop_path_prob`` (an attribute, 0 by default; :mod:`gpsr.train` sets it every epoch): in
  training mode each op output of a cell other than an identity is zeroed per sample with that
  probability and the kept samples scaled by ``1 / (1 - p)``.

NAS-Bench-Suite-Zero's proxies (and its ``params``/``flops`` columns) were computed on
NASLib's DARTS graph, whose discretised ops keep the conventions of the DARTS *search*
model (``cnn/model_search.py`` ``MixedOp``): the BNs inside the ops have no affine
parameters and every pooling op is followed by a non-affine BN. The stem, the
preprocessing and the classifier are as in the evaluation network. ``build`` defaults to
this variant (``search_ops=True``) because it reproduces the benchmark's columns exactly.

Arch string: NASLib's compact genotype ``(((in, op) x 8), ((in, op) x 8))`` for the normal
and the reduction cell; pairs ``2k, 2k+1`` feed node ``k``; inputs 0 and 1 are the two
previous cells, ``i >= 2`` is node ``i - 2``; op indices follow :data:`OPS`.
"""

from __future__ import annotations

import ast
import functools
import random
import re

import torch
from torch import nn

from gpsr.errors import GpsrError

OPS = (
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
STEPS = 4

Genotype = tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]


_PAIRS = ", ".join([r"\((\d+), (\d+)\)"] * 2 * STEPS)
#: The compact genotype as gpsr and the NB301 files write it, read without ``ast``.
_GENOTYPE = re.compile(rf"\(\({_PAIRS}\), \({_PAIRS}\)\)")


@functools.lru_cache(maxsize=1 << 16)
def parse(arch: str) -> Genotype:
    """Validate a compact genotype; returns ``(normal, reduce)`` as tuples of (input, op)."""
    match = _GENOTYPE.fullmatch(arch.strip())
    if match:
        ints = [int(v) for v in match.groups()]
        pairs = [tuple(ints[i : i + 2]) for i in range(0, len(ints), 2)]
        value = (pairs[: 2 * STEPS], pairs[2 * STEPS :])
    else:
        value = _literal(arch)
    return _check(arch, value)


def _literal(arch: str) -> object:
    try:
        return ast.literal_eval(arch.strip())
    except (ValueError, SyntaxError):
        raise GpsrError(f"NB301 arch {arch!r}: not a compact genotype tuple") from None


def _check(arch: str, value: object) -> Genotype:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise GpsrError(f"NB301 arch {arch!r}: expected (normal cell, reduction cell)")
    cells = []
    for name, cell in zip(("normal", "reduction"), value, strict=True):
        if not isinstance(cell, (tuple, list)) or len(cell) != 2 * STEPS:
            raise GpsrError(f"NB301 arch {arch!r}: the {name} cell must have 8 (input, op) pairs")
        pairs = []
        for k, pair in enumerate(cell):
            ok = (
                isinstance(pair, (tuple, list))
                and len(pair) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
            )
            if not ok:
                raise GpsrError(f"NB301 arch {arch!r}: {name} pair {k} {pair!r} is not (int, int)")
            src, op = pair
            if not 0 <= src <= k // 2 + 1:
                raise GpsrError(
                    f"NB301 arch {arch!r}: {name} pair {k} reads state {src}, "
                    f"but node {k // 2} can only read states 0..{k // 2 + 1}"
                )
            if not 0 <= op < len(OPS):
                raise GpsrError(f"NB301 arch {arch!r}: {name} pair {k} has op {op}, not in 0..6")
            pairs.append((src, op))
        cells.append(tuple(pairs))
    return cells[0], cells[1]


def to_string(genotype: Genotype) -> str:
    return str(genotype)


def sample(n: int, seed: int) -> list[str]:
    """``n`` genotypes, each cell drawn as NASLib's DARTS sampler does.

    Every node picks two distinct inputs uniformly among its earlier states and an op for
    each uniformly among the 7 (NASLib ``DartsSearchSpace.sample_random_architecture``).
    """
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        cells = []
        for _cell in range(2):
            pairs = []
            for node in range(STEPS):
                for src in sorted(rng.sample(range(node + 2), 2)):
                    pairs.append((src, rng.randrange(len(OPS))))
            cells.append(tuple(pairs))
        out.append(to_string((cells[0], cells[1])))
    return out


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )


class FactorizedReduce(nn.Module):
    """Stride-2 1x1 convs on the input and on it shifted by one pixel, concatenated."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


def _dil_conv(
    c: int, kernel: int, stride: int, padding: int, dilation: int, affine: bool
) -> nn.Sequential:
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(c, c, kernel, stride, padding, dilation=dilation, groups=c, bias=False),
        nn.Conv2d(c, c, 1, bias=False),
        nn.BatchNorm2d(c, affine=affine),
    )


def _op(name: str, c: int, stride: int, search_ops: bool) -> nn.Module:
    affine = not search_ops
    if name.endswith("pool_3x3"):
        if name == "max_pool_3x3":
            pool: nn.Module = nn.MaxPool2d(3, stride=stride, padding=1)
        else:
            pool = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
        return nn.Sequential(pool, nn.BatchNorm2d(c, affine=False)) if search_ops else pool
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine)
    if name.startswith("sep_conv"):
        k = int(name[-1])
        return nn.Sequential(
            _dil_conv(c, k, stride, k // 2, 1, affine), _dil_conv(c, k, 1, k // 2, 1, affine)
        )
    k = int(name[-1])
    return _dil_conv(c, k, stride, k - 1, 2, affine)


def drop_path(x: torch.Tensor, prob: float) -> torch.Tensor:
    """Zero whole samples of ``x`` with probability ``prob``, scaling the rest (DARTS
    ``cnn/utils.py``); the mask comes from torch's global generator, as in DARTS."""
    keep = 1.0 - prob
    mask = torch.empty(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x / keep * mask


class Cell(nn.Module):
    def __init__(
        self,
        pairs: tuple[tuple[int, int], ...],
        c_prev_prev: int,
        c_prev: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
        search_ops: bool,
    ) -> None:
        super().__init__()
        self.preprocess0 = (
            FactorizedReduce(c_prev_prev, c) if reduction_prev else ReLUConvBN(c_prev_prev, c)
        )
        self.preprocess1 = ReLUConvBN(c_prev, c)
        self.sources = [src for src, _ in pairs]
        self.ops = nn.ModuleList(
            _op(OPS[op], c, 2 if reduction and src < 2 else 1, search_ops) for src, op in pairs
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        dropping = self.training and drop_prob > 0
        for node in range(STEPS):
            terms = []
            for k in (2 * node, 2 * node + 1):
                h = self.ops[k](states[self.sources[k]])
                if dropping and not isinstance(self.ops[k], nn.Identity):
                    h = drop_path(h, drop_prob)
                terms.append(h)
            states.append(terms[0] + terms[1])
        return torch.cat(states[2:], dim=1)


class AuxiliaryHeadCIFAR(nn.Module):
    """The DARTS auxiliary classifier for an 8x8 input (``cnn/model.py``)."""

    def __init__(self, c_in: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(c_in, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=False),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=False),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class NB301Network(nn.Module):
    def __init__(
        self,
        genotype: Genotype,
        num_classes: int = 10,
        C: int = 32,
        layers: int = 8,
        search_ops: bool = True,
        auxiliary: bool = False,
    ) -> None:
        super().__init__()
        self.drop_path_prob = 0.0
        self.auxiliary_at = 2 * layers // 3
        self.stem = nn.Sequential(
            nn.Conv2d(3, 3 * C, 3, padding=1, bias=False), nn.BatchNorm2d(3 * C)
        )
        c_prev_prev, c_prev, c = 3 * C, 3 * C, C
        reduction_prev = False
        self.cells = nn.ModuleList()
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c *= 2
            pairs = genotype[1] if reduction else genotype[0]
            self.cells.append(
                Cell(pairs, c_prev_prev, c_prev, c, reduction, reduction_prev, search_ops)
            )
            c_prev_prev, c_prev = c_prev, STEPS * c
            reduction_prev = reduction
            if i == self.auxiliary_at:
                c_auxiliary = c_prev
        self.auxiliary_head = AuxiliaryHeadCIFAR(c_auxiliary, num_classes) if auxiliary else None
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits, and the auxiliary head's logits in training mode (else None)."""
        aux = None
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.auxiliary_at and self.auxiliary_head is not None and self.training:
                aux = self.auxiliary_head(s1)
        return self.classifier(self.pool(s1).flatten(1)), aux

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_aux(x)[0]


def build(
    genotype: Genotype,
    num_classes: int = 10,
    C: int = 32,
    layers: int = 8,
    search_ops: bool = True,
    auxiliary: bool = False,
) -> nn.Module:
    """The NB301 network of a parsed genotype (defaults: NB301's ``C=32``, 8 cells).

    ``search_ops=True`` builds the cell ops as NASLib's DARTS graph does, the network on
    which NAS-Bench-Suite-Zero computed its proxies (see the module docstring);
    ``False`` gives the ops of the DARTS evaluation network (``cnn/model.py``; with ``C=36``,
    ``layers=20`` and ``auxiliary=True`` it is the network DARTS trained for its CIFAR-10
    results).
    """
    return NB301Network(genotype, num_classes, C=C, layers=layers, search_ops=search_ops,
                        auxiliary=auxiliary)


# ---- search: canonical form, neighbourhood and encoding ---------------------------------
def canonical(genotype: Genotype) -> Genotype:
    """The genotype with each node's two (input, op) pairs sorted: the order of a node's
    inputs does not change the network (its node sums them), but files list them either way."""
    cells = []
    for cell in genotype:
        pairs: list[tuple[int, int]] = []
        for node in range(STEPS):
            pairs += sorted(cell[2 * node : 2 * node + 2])
        cells.append(tuple(pairs))
    return cells[0], cells[1]


def neighbours(genotype: Genotype) -> list[Genotype]:
    """Genotypes one edit away, canonical and distinct: in one cell, one pair gets another
    op, or another input that its node's other pair does not read (the edits of NASLib's
    DARTS mutation, ``DartsSearchSpace.mutate``: one edge's op or one edge's input)."""
    genotype = canonical(genotype)
    out: dict[Genotype, None] = {}
    for c, cell in enumerate(genotype):
        for k, (src, op) in enumerate(cell):
            sibling = cell[k ^ 1][0]
            edits = [(src, o) for o in range(len(OPS)) if o != op]
            edits += [(s, op) for s in range(k // 2 + 2) if s not in (src, sibling)]
            for pair in edits:
                new_cell = cell[:k] + (pair,) + cell[k + 1 :]
                cells = (new_cell, genotype[1]) if c == 0 else (genotype[0], new_cell)
                out[canonical(cells)] = None
    out.pop(genotype, None)
    return list(out)


def encode(genotype: Genotype) -> tuple[int, ...]:
    """The canonical genotype flattened: (input, op) of the 16 pairs, normal cell first."""
    return tuple(v for cell in canonical(genotype) for pair in cell for v in pair)


def mutate(genotype: Genotype, rng: random.Random) -> Genotype:
    """After NASLib's DARTS mutation (``DartsSearchSpace.mutate``, from BANANAS): in a
    uniformly chosen cell and pair, change the op or, with probability 1/2, the input (to a
    state its node may read and its other pair does not; the op when there is none). NASLib
    may redraw the same value; here the change is forced, so the canonical genotype returned
    always differs from ``genotype``'s."""
    genotype = canonical(genotype)
    c, k = rng.randrange(2), rng.randrange(2 * STEPS)
    cell = genotype[c]
    src, op = cell[k]
    inputs = [s for s in range(k // 2 + 2) if s not in (src, cell[k ^ 1][0])]
    if inputs and rng.random() < 0.5:
        pair = (rng.choice(inputs), op)
    else:
        pair = (src, rng.choice([o for o in range(len(OPS)) if o != op]))
    new_cell = cell[:k] + (pair,) + cell[k + 1 :]
    return canonical((new_cell, genotype[1]) if c == 0 else (genotype[0], new_cell))
