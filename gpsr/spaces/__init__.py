"""Benchmark search spaces: arch strings in, PyTorch networks out.

Each space module (``nb201``, ``nb101``, ``nb301``, ``tnb101``) defines the network of its
benchmark and cites the definition it follows; this module is the registry over them.
Arch strings use the formats of the NAS-Bench-Suite-Zero tables
(``shared/data/nas-bench-suite-zero/SOURCES.md``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gpsr.errors import GpsrError
from gpsr.spaces import nb101, nb201, nb301, tnb101
from gpsr.spaces.flops import count_flops, count_params, count_params_called


@dataclass(frozen=True)
class _Space:
    parse: Callable[[str], Any]
    build: Callable[..., nn.Module]
    sample: Callable[[int, int], list[str]]
    enumerate: Callable[[], list[str]] | None
    input_shape: tuple[int, ...]


_REGISTRY: dict[str, _Space] = {
    "nb201": _Space(nb201.parse, nb201.build, nb201.sample, nb201.all_archs, (1, 3, 32, 32)),
    "nb101": _Space(nb101.parse, nb101.build, nb101.sample, None, (1, 3, 32, 32)),
    "nb301": _Space(nb301.parse, nb301.build, nb301.sample, None, (1, 3, 32, 32)),
    "tnb101-micro": _Space(
        tnb101.parse_micro,
        tnb101.build_micro,
        tnb101.sample_micro,
        tnb101.all_micro,
        (1, 3, 256, 256),
    ),
    "tnb101-macro": _Space(
        tnb101.parse_macro,
        tnb101.build_macro,
        tnb101.sample_macro,
        tnb101.all_macro,
        (1, 3, 256, 256),
    ),
}

SPACES: tuple[str, ...] = tuple(_REGISTRY)

__all__ = [
    "SPACES",
    "all_archs",
    "build_network",
    "count_flops",
    "count_params",
    "count_params_called",
    "default_input_shape",
    "parse_arch",
    "sample_archs",
]


def _space(space: str) -> _Space:
    try:
        return _REGISTRY[space]
    except KeyError:
        raise GpsrError(f"unknown search space {space!r}; known: {', '.join(SPACES)}") from None


def parse_arch(space: str, arch: str) -> Any:
    """Validate ``arch`` for ``space`` and return its parsed form (space-specific).

    Raises :class:`GpsrError` with a one-line message when it does not parse.
    """
    if not isinstance(arch, str):
        raise GpsrError(f"{space} arch {arch!r}: expected a string, got {type(arch).__name__}")
    return _space(space).parse(arch)


def build_network(
    space: str, arch: str, num_classes: int = 10, seed: int | None = None, **kw: Any
) -> nn.Module:
    """The network of ``arch`` in ``space``, freshly initialised.

    ``seed`` fixes the initial weights (torch's global random state is left as it was);
    ``None`` draws them from that global state. ``kw`` passes space-specific size options
    (e.g. ``C``/``N`` for NB201); the defaults are the benchmark's. The forward pass returns
    logits of shape ``(batch, num_classes)``.
    """
    entry = _space(space)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise GpsrError(f"num_classes (--num-classes) must be >= 1, got {num_classes}")
    # The builders take the parsed arch first, then num_classes and their size options.
    options = list(inspect.signature(entry.build).parameters)[2:]
    unknown = sorted(set(kw) - set(options))
    if unknown:
        raise GpsrError(
            f"{space}: unknown network option(s) {', '.join(unknown)}; known: {', '.join(options)}"
        )
    parsed = parse_arch(space, arch)
    if seed is None:
        return entry.build(parsed, num_classes=num_classes, **kw)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return entry.build(parsed, num_classes=num_classes, **kw)


def sample_archs(space: str, n: int, seed: int) -> list[str]:
    """``n`` archs drawn uniformly (with replacement) from ``space``, in canonical format."""
    if n < 0:
        raise GpsrError(f"sample_archs: n must be >= 0, got {n}")
    return _space(space).sample(n, seed)


def all_archs(space: str) -> list[str]:
    """Every arch of a space small enough to enumerate: NB201 (15,625), TNB101-micro
    (4,096) and TNB101-macro (3,256); NB101 and NB301 raise :class:`GpsrError`."""
    entry = _space(space)
    if entry.enumerate is None:
        raise GpsrError(f"search space {space!r} is too large to enumerate; use sample_archs")
    return entry.enumerate()


def default_input_shape(space: str) -> tuple[int, ...]:
    """The input shape (batch of 1) the benchmark's FLOPs were counted on."""
    return _space(space).input_shape
