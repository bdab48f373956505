"""Evaluate a whole population of expression trees at once with batched torch ops.

The population is compiled into one program: every distinct subtree (by its
canonical infix) becomes one row of a value buffer, however many trees share it;
rows are ordered by (height, operator) so that all nodes of one operator at one
height are computed by a single batched tensor op over all architectures. A
population of 100 trees thus costs a few dozen tensor calls, not thousands.
Runs on any torch device; float64 throughout so that distinct scores never
collapse into false ties.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from gpsr.errors import GpsrError
from gpsr.expressions import Expression
from gpsr.functions import PRIMITIVES, clean_terminal_values


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"`` picks CUDA when present, else the CPU."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class PopulationEvaluator:
    """Holds the proxy matrix on a device and evaluates lists of expressions against it."""

    def __init__(
        self, values: np.ndarray, proxies: Sequence[str], device: str | torch.device | None = None
    ) -> None:
        self.device = resolve_device(device)
        self.proxies = tuple(proxies)
        self._column = {p: i for i, p in enumerate(self.proxies)}
        clean = clean_terminal_values(values)  # (n_archs, n_proxies)
        self.terminals = torch.as_tensor(clean.T.copy(), dtype=torch.float64, device=self.device)
        self.n_archs = clean.shape[0]

    def evaluate(self, expressions: Sequence[Expression]) -> torch.Tensor:
        """Values of each expression on every architecture: shape ``(len, n_archs)``."""
        n_leaf = len(self.proxies)
        inner: dict[str, Expression] = {}
        for expr in expressions:
            self._collect(expr, inner)
        ordered = sorted(inner.values(), key=lambda e: (e.depth, e.name))
        row = {e.infix(): n_leaf + k for k, e in enumerate(ordered)}
        for p, i in self._column.items():
            row[p] = i

        buffer = torch.empty((n_leaf + len(ordered), self.n_archs), dtype=torch.float64,
                             device=self.device)
        buffer[:n_leaf] = self.terminals
        start = 0
        while start < len(ordered):
            end = start
            key = (ordered[start].depth, ordered[start].name)
            while end < len(ordered) and (ordered[end].depth, ordered[end].name) == key:
                end += 1
            group = ordered[start:end]
            prim = PRIMITIVES[key[1]]
            args = []
            for k in range(prim.arity):
                idx = torch.tensor([row[e.children[k].infix()] for e in group],
                                   dtype=torch.long, device=self.device)
                args.append(buffer.index_select(0, idx))
            buffer[n_leaf + start : n_leaf + end] = prim.torch_fn(*args)
            start = end
        roots = torch.tensor([row[e.infix()] for e in expressions], dtype=torch.long,
                             device=self.device)
        return buffer.index_select(0, roots)

    def _collect(self, expr: Expression, inner: dict[str, Expression]) -> None:
        if expr.is_leaf:
            if expr.name not in self._column:
                raise GpsrError(
                    f"expression uses proxy {expr.name!r} that the data lacks "
                    f"(available: {', '.join(self.proxies)})"
                )
            return
        key = expr.infix()
        if key in inner:
            return
        for child in expr.children:
            self._collect(child, inner)
        inner[key] = expr
