"""Benchmark search spaces: arch strings in, PyTorch networks out; sampling and mutation.

Each space module (``nb201``, ``nb101``, ``nb301``, ``tnb101``) defines the network of its
benchmark, its sampler, neighbourhood, mutation and encoding, and cites the definitions it
follows; this module is the registry of :class:`SearchSpace` objects over them, the mini
spaces of :mod:`gpsr.minibench` included (``get_space("mini201")``).
Arch strings use the formats of the NAS-Bench-Suite-Zero tables
(``shared/data/nas-bench-suite-zero/SOURCES.md``).
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from gpsr.errors import GpsrError
from gpsr.spaces import nb101, nb201, nb301, tnb101
from gpsr.spaces.flops import count_flops, count_params, count_params_called


@dataclass(frozen=True)
class SearchSpace:
    """One search space, in one place: arch strings, networks, sampler and neighbourhood.

    ``options`` are size options bound to the builder (the mini spaces: a benchmark space at
    a smaller size); ``base`` names the benchmark space whose cells it shares. ``key`` is an
    arch's identity (two strings with the same key are the same network: NB101 by graph
    fingerprint, NB301 with each node's inputs sorted, the others by their canonical string);
    ``neighbours`` lists the valid archs one mutation away, each with a key different from the
    arch's; ``encode`` is a fixed-length integer vector (positions differ where archs differ).
    """

    name: str
    base: str
    parse_fn: Callable[[str], Any]
    build_fn: Callable[..., nn.Module]
    sample_fn: Callable[[int, int], list[str]]
    enumerate_fn: Callable[[], list[str]] | None
    key_fn: Callable[[str], str]
    neighbours_fn: Callable[[str], list[str]]
    encode_fn: Callable[[str], tuple[int, ...]]
    input_shape: tuple[int, ...]
    options: dict[str, int] = field(default_factory=dict)
    #: A direct mutation where one is cheaper than listing the neighbours (None: a uniform
    #: draw from :meth:`neighbours`).
    mutate_fn: Callable[[str, random.Random], str] | None = None

    def parse(self, arch: str) -> Any:
        """Validate ``arch`` and return its parsed form; :class:`GpsrError` when invalid."""
        return self.parse_fn(_string(self.name, arch))

    def build(self, arch: str, num_classes: int = 10, **kw: Any) -> nn.Module:
        """The network of ``arch``, freshly initialised (``kw`` overrides size options)."""
        # The builders take the parsed arch first, then num_classes and their size options.
        known = list(inspect.signature(self.build_fn).parameters)[2:]
        unknown = sorted(set(kw) - set(known))
        if unknown:
            raise GpsrError(
                f"{self.name}: unknown network option(s) {', '.join(unknown)}; "
                f"known: {', '.join(known)}"
            )
        return self.build_fn(self.parse(arch), num_classes=num_classes, **(self.options | kw))

    def sample(self, n: int, seed: int) -> list[str]:
        """``n`` archs drawn uniformly (with replacement), in canonical format."""
        if n < 0:
            raise GpsrError(f"sample_archs: n must be >= 0, got {n}")
        return self.sample_fn(n, seed)

    def enumerate(self) -> list[str]:
        """Every arch; :class:`GpsrError` for spaces too large to enumerate."""
        if self.enumerate_fn is None:
            raise GpsrError(
                f"search space {self.name!r} is too large to enumerate; use sample_archs"
            )
        return self.enumerate_fn()

    def key(self, arch: str) -> str:
        """The identity of ``arch``'s network (see the class docstring)."""
        return self.key_fn(_string(self.name, arch))

    def neighbours(self, arch: str) -> list[str]:
        """The valid archs one edit away, each a different network from ``arch``."""
        return list(self.neighbours_fn(_string(self.name, arch)))

    def mutate(self, arch: str, rng: random.Random) -> str:
        """A valid arch one mutation away, a different network from ``arch``.

        NB201 and TNB101-micro: a uniform draw from :meth:`neighbours`; TNB101-macro: the
        same, its neighbour lists cached; NB101 and NB301: the mutations of their benchmarks'
        evolution baselines (:func:`nb101.mutate`, :func:`nb301.mutate`).
        """
        if self.mutate_fn is not None:
            return self.mutate_fn(_string(self.name, arch), rng)
        return rng.choice(self.neighbours(arch))

    def encode(self, arch: str) -> tuple[int, ...]:
        """A fixed-length integer encoding of ``arch``."""
        return self.encode_fn(_string(self.name, arch))


def _string(space: str, arch: object) -> str:
    if not isinstance(arch, str):
        raise GpsrError(f"{space} arch {arch!r}: expected a string, got {type(arch).__name__}")
    return arch


def _strings(
    parse: Callable[[str], Any], neighbours: Callable[[Any], Any], to_string: Callable
) -> Callable[[str], list[str]]:
    return lambda arch: [to_string(n) for n in neighbours(parse(arch))]


def _nb201() -> SearchSpace:
    return SearchSpace(
        "nb201", "nb201", nb201.parse, nb201.build, nb201.sample, nb201.all_archs,
        key_fn=lambda a: nb201.to_string(nb201.parse(a)),
        neighbours_fn=_strings(nb201.parse, nb201.neighbours, nb201.to_string),
        encode_fn=lambda a: nb201.encode(nb201.parse(a)),
        input_shape=(1, 3, 32, 32),
        mutate_fn=lambda a, rng: nb201.to_string(nb201.mutate(nb201.parse(a), rng)),
    )


def _nb101() -> SearchSpace:
    return SearchSpace(
        "nb101", "nb101", nb101.parse, nb101.build, nb101.sample, None,
        key_fn=nb101.arch_hash,
        neighbours_fn=nb101.neighbours,
        encode_fn=nb101.encode,
        input_shape=(1, 3, 32, 32),
        mutate_fn=nb101.mutate,
    )


def _nb301() -> SearchSpace:
    return SearchSpace(
        "nb301", "nb301", nb301.parse, nb301.build, nb301.sample, None,
        key_fn=lambda a: nb301.to_string(nb301.canonical(nb301.parse(a))),
        neighbours_fn=_strings(nb301.parse, nb301.neighbours, nb301.to_string),
        encode_fn=lambda a: nb301.encode(nb301.parse(a)),
        input_shape=(1, 3, 32, 32),
        mutate_fn=lambda a, rng: nb301.to_string(nb301.mutate(nb301.parse(a), rng)),
    )


def _micro(name: str = "tnb101-micro", **options: int) -> SearchSpace:
    return SearchSpace(
        name, "tnb101-micro", tnb101.parse_micro, tnb101.build_micro, tnb101.sample_micro,
        tnb101.all_micro,
        key_fn=lambda a: str(tnb101.parse_micro(a)),
        neighbours_fn=_strings(tnb101.parse_micro, tnb101.micro_neighbours, str),
        encode_fn=tnb101.parse_micro,
        input_shape=(1, 3, 256, 256) if not options else (1, 3, 16, 16),
        options=options,
        mutate_fn=lambda a, rng: str(tnb101.micro_mutate(tnb101.parse_micro(a), rng)),
    )


def _macro(name: str = "tnb101-macro", **options: int) -> SearchSpace:
    return SearchSpace(
        name, "tnb101-macro", tnb101.parse_macro, tnb101.build_macro, tnb101.sample_macro,
        tnb101.all_macro,
        key_fn=lambda a: str(tnb101.parse_macro(a)),
        neighbours_fn=_strings(tnb101.parse_macro, tnb101.macro_neighbours, str),
        encode_fn=lambda a: tnb101.macro_encode(tnb101.parse_macro(a)),
        input_shape=(1, 3, 256, 256) if not options else (1, 3, 16, 16),
        options=options,
    )


def _mini201() -> SearchSpace:
    space = _nb201()
    return SearchSpace(**(vars(space) | {"name": "mini201", "options": {"C": 8, "N": 1},
                                         "input_shape": (1, 3, 16, 16)}))


#: The benchmark spaces, then gpsr's mini spaces (reduced sizes of the same cells, trained
#: on 16x16 digits: :mod:`gpsr.minibench`).
_REGISTRY: dict[str, SearchSpace] = {
    s.name: s
    for s in (
        _nb201(), _nb101(), _nb301(), _micro(), _macro(),
        _mini201(), _macro("minimacro", base_channels=8), _micro("minimicro", base_channels=8),
    )
}

SPACES: tuple[str, ...] = tuple(_REGISTRY)

__all__ = [
    "SPACES",
    "SearchSpace",
    "all_archs",
    "build_network",
    "count_flops",
    "count_params",
    "count_params_called",
    "default_input_shape",
    "get_space",
    "parse_arch",
    "sample_archs",
]


def get_space(space: str) -> SearchSpace:
    """The :class:`SearchSpace` named ``space``; a one-line :class:`GpsrError` if unknown."""
    try:
        return _REGISTRY[space]
    except (KeyError, TypeError):
        raise GpsrError(f"unknown search space {space!r}; known: {', '.join(SPACES)}") from None


def parse_arch(space: str, arch: str) -> Any:
    """Validate ``arch`` for ``space`` and return its parsed form (space-specific).

    Raises :class:`GpsrError` with a one-line message when it does not parse.
    """
    return get_space(space).parse(arch)


def build_network(
    space: str, arch: str, num_classes: int = 10, seed: int | None = None, **kw: Any
) -> nn.Module:
    """The network of ``arch`` in ``space``, freshly initialised.

    ``seed`` fixes the initial weights (torch's global random state is left as it was);
    ``None`` draws them from that global state. ``kw`` passes space-specific size options
    (e.g. ``C``/``N`` for NB201); the defaults are the benchmark's (a mini space's own
    sizes). The forward pass returns logits of shape ``(batch, num_classes)``.
    """
    entry = get_space(space)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise GpsrError(f"num_classes (--num-classes) must be >= 1, got {num_classes}")
    if seed is None:
        return entry.build(arch, num_classes, **kw)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return entry.build(arch, num_classes, **kw)


def sample_archs(space: str, n: int, seed: int) -> list[str]:
    """``n`` archs drawn uniformly (with replacement) from ``space``, in canonical format."""
    return get_space(space).sample(n, seed)


def all_archs(space: str) -> list[str]:
    """Every arch of a space small enough to enumerate: NB201 (15,625), TNB101-micro
    (4,096) and TNB101-macro (3,256), and the mini spaces built on them; NB101 and NB301
    raise :class:`GpsrError`."""
    return get_space(space).enumerate()


def default_input_shape(space: str) -> tuple[int, ...]:
    """The input shape (batch of 1) the benchmark's FLOPs were counted on (the mini spaces:
    their 16x16 digits)."""
    return get_space(space).input_shape
