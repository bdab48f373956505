"""Evaluate a whole population of expression trees at once with batched torch ops.

The population is compiled into one program: every distinct subtree (by its
canonical infix) becomes one row of a value slab, however many trees share it;
rows are ordered by (height, operator) so that all nodes of one operator at one
height are computed by a single batched tensor op over all architectures. A
population of 100 trees thus costs a few dozen tensor calls, not thousands.
Runs on any torch device; float64 throughout so that distinct scores never
collapse into false ties.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import groupby

import numpy as np
import torch

from gpsr.errors import GpsrError
from gpsr.expressions import Expression
from gpsr.functions import PRIMITIVES, clean_terminal_values


@contextmanager
def single_threaded_torch(device: torch.device) -> Iterator[None]:
    """One intra-op thread on the CPU for the span of a search.

    The evaluator's tensors are too small to gain from intra-op threads, and OpenMP's
    spinning workers slow them 5-10x on a busy machine; parallelism comes from
    Kendall rows and from runs instead. Set once per search: resizing the pool per
    call costs milliseconds.
    """
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"`` picks CUDA when present, else the CPU."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class PopulationEvaluator:
    """Holds the proxy matrix on a device and evaluates lists of expressions against it.

    Subtree values persist between calls in a slab of rows (least recently used
    rows are reused): GP offspring share most subtrees with their parents, so a
    generation only computes the nodes its variation actually created.
    """

    def __init__(
        self,
        values: np.ndarray,
        proxies: Sequence[str],
        device: str | torch.device | None = None,
        cache_bytes: int = 128 * 2**20,
    ) -> None:
        self.device = resolve_device(device)
        self.proxies = tuple(proxies)
        clean = clean_terminal_values(values)  # (n_archs, n_proxies)
        self.n_archs = clean.shape[0]
        n_leaf = len(self.proxies)
        capacity = n_leaf + max(256, cache_bytes // (8 * max(1, self.n_archs)))
        # Touched once here: first writes to fresh pages would otherwise fault mid-search.
        self.slab = torch.zeros((capacity, self.n_archs), dtype=torch.float64, device=self.device)
        self.slab.fill_(0.0)
        self.slab[:n_leaf] = torch.as_tensor(clean.T.copy(), dtype=torch.float64,
                                             device=self.device)
        self.leaf_row = {p: i for i, p in enumerate(self.proxies)}
        self.row_of: OrderedDict[str, int] = OrderedDict()  # cached inner subtrees, LRU first
        self.free = list(range(capacity - 1, n_leaf - 1, -1))
        self._buffers = self._empty_buffers(0)

    def evaluate(self, expressions: Sequence[Expression]) -> torch.Tensor:
        """Values of each expression on every architecture: shape ``(len, n_archs)``."""
        for _ in self.stages(expressions):
            pass
        return self.values(expressions)

    def values(self, expressions: Sequence[Expression]) -> torch.Tensor:
        """Values of expressions already evaluated (a copy): shape ``(len, n_archs)``."""
        return self.slab.index_select(0, self._rows(expressions))

    def host_rows(self, expressions: Sequence[Expression]) -> tuple[np.ndarray, np.ndarray]:
        """Values of expressions already evaluated, for CPU code: ``(rows, ids)`` such that
        ``rows[ids[i]]`` holds expression i. On the CPU ``rows`` is the slab itself (no
        copy), valid until the next evaluation; on other devices a copy."""
        if self.device.type == "cpu":
            return self.slab.numpy(), np.array([self._row(e) for e in expressions], np.int64)
        return self.values(expressions).cpu().numpy(), np.arange(len(expressions))

    def stages(self, expressions: Sequence[Expression]) -> Iterator[tuple[list[int], bool]]:
        """Evaluate ``expressions``, yielding ``(positions, last)`` for those whose values
        are final (read them with :meth:`values` or :meth:`host_rows`, even while later
        steps run, until the next evaluation: their rows are not written again): those already
        cached and bare proxies first, then, after each height of the program, the
        expressions of that depth. A consumer can score finished expressions while
        deeper ones are still being computed; ``last`` says nothing is left to compute."""
        new: dict[str, Expression] = {}
        used: set[str] = set()
        for expr in expressions:
            self._collect(expr, new, used)
        self._reserve(len(new), used)
        ordered = sorted(new.values(), key=lambda e: (e.depth, e.name))
        for expr in ordered:
            self.row_of[expr.infix()] = self.free.pop()
        ready_at: dict[int, list[int]] = {}
        for pos, expr in enumerate(expressions):
            ready_at.setdefault(expr.depth if expr.infix() in new else 0, []).append(pos)
        if 0 in ready_at:
            yield ready_at[0], not ordered
        # The whole program as one index table: the row each node writes, and its operands'.
        program = np.array(
            [(self.row_of[e.infix()], self._row(e.children[0]), self._row(e.children[-1]))
             for e in ordered], dtype=np.int64).reshape(-1, 3)
        index = torch.from_numpy(program.T.copy()).to(self.device)
        groups = [(key, len(list(members)))
                  for key, members in groupby(ordered, key=lambda e: (e.depth, e.name))]
        a_all, b_all, mask_all = self._scratch(max((size for _, size in groups), default=0))
        start = 0
        for g, ((depth, name), size) in enumerate(groups):
            end = start + size
            prim = PRIMITIVES[name]
            a, b, mask = a_all[:size], b_all[:size], mask_all[:size]
            torch.index_select(self.slab, 0, index[1, start:end], out=a)
            if prim.arity == 2:
                torch.index_select(self.slab, 0, index[2, start:end], out=b)
            first, last = int(program[start, 0]), int(program[end - 1, 0])
            if last - first == size - 1:  # one block of rows (see _reserve)
                prim.torch_into(a, b, mask, self.slab[first : last + 1])
            else:
                self.slab.index_copy_(0, index[0, start:end], prim.torch_into(a, b, mask, a))
            start = end
            height_done = g + 1 == len(groups) or groups[g + 1][0][0] != depth
            if height_done and depth in ready_at:
                yield ready_at[depth], g + 1 == len(groups)

    def forget(self) -> None:
        """Drop every cached subtree (the slab and buffers stay allocated)."""
        self.free.extend(self.row_of.values())
        self.row_of.clear()

    def _scratch(self, rows: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reused operand buffers: fresh ones this large would page-fault on every group."""
        if self._buffers[0].shape[0] < rows:
            self._buffers = self._empty_buffers(max(rows, 2 * self._buffers[0].shape[0]))
        a, b, mask = self._buffers
        return a[:rows], b[:rows], mask[:rows]

    def _empty_buffers(self, rows: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Two operand buffers and the operators' 0/1 mask, all float64."""
        a, b, mask = (torch.empty((rows, self.n_archs), dtype=torch.float64, device=self.device)
                      for _ in range(3))
        return a, b, mask

    def _row(self, expr: Expression) -> int:
        return self.leaf_row[expr.name] if expr.is_leaf else self.row_of[expr.infix()]

    def _rows(self, exprs) -> torch.Tensor:
        return torch.tensor([self._row(e) for e in exprs], dtype=torch.long, device=self.device)

    def _collect(self, expr: Expression, new: dict[str, Expression], used: set[str]) -> None:
        if expr.is_leaf:
            if expr.name not in self.leaf_row:
                raise GpsrError(
                    f"expression uses proxy {expr.name!r} that the data lacks "
                    f"(available: {', '.join(self.proxies)})"
                )
            return
        key = expr.infix()
        if key in new or key in used:
            return
        if key in self.row_of:
            used.add(key)
            self.row_of.move_to_end(key)
            return
        for child in expr.children:
            self._collect(child, new, used)
        new[key] = expr

    def _reserve(self, n_rows: int, keep: set[str]) -> None:
        """Free ``n_rows`` rows by evicting unused subtrees, growing the slab if it must."""
        # Subtrees this call uses were moved to the end, so the oldest entries are evictable.
        while len(self.free) < n_rows and self.row_of:
            key = next(iter(self.row_of))
            if key in keep:
                break
            self.free.append(self.row_of.pop(key))
        if len(self.free) < n_rows:
            old = self.slab.shape[0]
            extra = max(n_rows - len(self.free), old)
            self.slab = torch.cat([self.slab, torch.empty((extra, self.n_archs),
                                   dtype=self.slab.dtype, device=self.device)])
            self.free.extend(range(old + extra - 1, old - 1, -1))
        # Popped from the end, a descending list hands out rows in ascending order, so a
        # group's rows are consecutive exactly when they span as many rows as it has.
        self.free.sort(reverse=True)
