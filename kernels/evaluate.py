"""Evaluate a whole population of expression trees at once with batched torch ops.

The population is compiled into one program: every distinct subtree (by its
canonical infix) becomes one row of a value slab, however many trees share it;
rows are ordered by (wave, height, operator) so that all nodes of one operator at
one height of a wave are computed by a single batched tensor op over all
architectures. A wave holds the subtrees first needed by the expressions of one
depth, so shallow expressions are final early and can be scored while the rest
is computed. A population of 100 trees costs a few hundred tensor calls, not
thousands.
Runs on any torch device; float64 throughout so that distinct scores never
collapse into false ties.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import groupby, islice

import numpy as np
import torch

from gpsr.errors import GpsrError
from gpsr.expressions import Expression
from gpsr.functions import PRIMITIVES, clean_terminal_values

#: Nodes computed per batched call at most: larger steps spill the operand buffers out
#: of the CPU's caches (one step of 180 rows ran 25% slower than six of 32).
STEP_ROWS = 32


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
        self._host: np.ndarray | None = None

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
            if self._host is None or self._host.shape != self.slab.shape:  # the slab grew
                self._host = self.slab.numpy()  # one object per slab: callers compare them
            return self._host, np.array([self._row(e) for e in expressions], np.int64)
        return self.values(expressions).cpu().numpy(), np.arange(len(expressions))

    def stages(self, expressions: Sequence[Expression],
               last_wave: int = 0) -> Iterator[tuple[list[int], bool]]:
        """Evaluate ``expressions``, yielding ``(positions, last)`` for those whose values
        are final (read them with :meth:`values` or :meth:`host_rows`, even while later
        steps run, until the next evaluation: their rows are not written again): first
        those already cached, then the rest, shallowest first, as their roots are
        computed. A consumer can score finished expressions while deeper ones are still
        being computed; ``last`` says nothing is left to compute. The deepest
        ``last_wave`` expressions are computed in a wave of their own, at the end, so
        that little is left to score once evaluation is over."""
        # Collected shallowest expression first, each new subtree joins the wave of the
        # first (shallowest) expression that needs it, and waves run in that order: the
        # shallow expressions are final after a small part of the work, not at its end.
        new: dict[str, Expression] = {}
        wave: dict[str, int] = {}
        used: set[str] = set()
        by_depth = sorted(expressions, key=lambda e: e.depth)
        final = by_depth[-1].depth + 1 if by_depth else 0
        for rank, expr in enumerate(by_depth):
            self._collect(expr, new, used)
            number = expr.depth if rank < len(by_depth) - last_wave else final
            for key in islice(new, len(wave), None):
                wave[key] = number
        self._reserve(len(new), used)
        ready_at: dict[tuple, list[int]] = {}
        for pos, expr in enumerate(expressions):  # an expression is final with its root
            key = expr.infix()
            ready_at.setdefault((wave[key], expr.depth) if key in new else (), []).append(pos)
        if () in ready_at:
            yield ready_at[()], not new
        # Inside a wave, binary operators come first at each height, so that one gather
        # per operand serves the whole height and the second covers a prefix.
        nodes = sorted(new.values(), key=lambda e: (wave[e.infix()], e.depth, -len(e.children),
                                                    e.name))
        waves = [(number, list(members))
                 for number, members in groupby(nodes, key=lambda e: wave[e.infix()])]
        for w, (number, members) in enumerate(waves):
            # Each wave's program is built only when it runs: scoring of earlier waves
            # overlaps with it.
            for height, done in self._run(members):
                if (number, height) in ready_at:
                    yield ready_at[number, height], done and w + 1 == len(waves)

    def _run(self, nodes: list[Expression]) -> Iterator[tuple[int, bool]]:
        """Compute ``nodes`` (by height, binary operators first, then by name; children
        computed earlier or among them), yielding ``(height, last)`` once a height is done."""
        program = np.array([(self._claim(e), self._row(e.children[0]), self._row(e.children[-1]))
                            for e in nodes], dtype=np.int64)  # rows written and read per node
        index = torch.from_numpy(program.T.copy()).to(self.device)
        heights = [(height, list(same)) for height, same in groupby(nodes, key=lambda e: e.depth)]
        start = 0
        for h, (height, members) in enumerate(heights):
            for chunk in range(0, len(members), STEP_ROWS):
                step = members[chunk : chunk + STEP_ROWS]
                self._step(step, program[start:], index[:, start:])
                start += len(step)
            yield height, h + 1 == len(heights)

    def _step(self, nodes: list[Expression], program: np.ndarray, index: torch.Tensor) -> None:
        """Compute ``nodes`` of one height (binary operators first), whose rows begin
        ``program`` and ``index``: one gather per operand, one call per operator."""
        a_all, b_all, mask_all = self._scratch(len(nodes))
        binary = sum(len(e.children) == 2 for e in nodes)
        torch.index_select(self.slab, 0, index[1, : len(nodes)], out=a_all)
        if binary:
            torch.index_select(self.slab, 0, index[2, :binary], out=b_all[:binary])
        start = 0
        for name, same in groupby(nodes, key=lambda e: e.name):
            end = start + len(list(same))
            a, b, mask = a_all[start:end], b_all[start:end], mask_all[start:end]
            first, last = int(program[start, 0]), int(program[end - 1, 0])
            if last - first == end - start - 1:  # one block of rows (see _reserve)
                PRIMITIVES[name].torch_into(a, b, mask, self.slab[first : last + 1])
            else:
                self.slab.index_copy_(0, index[0, start:end],
                                      PRIMITIVES[name].torch_into(a, b, mask, a))
            start = end

    def _claim(self, expr: Expression) -> int:
        row = self.row_of[expr.infix()] = self.free.pop()
        return row

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
