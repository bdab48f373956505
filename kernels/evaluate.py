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
from operator import itemgetter

import numpy as np
import torch

from gpsr.errors import GpsrError
from gpsr.expressions import Expression
from gpsr.functions import FUSED_OPERATORS, PRIMITIVES, Primitive, clean_terminal_values
from gpsr.kernels.kendall import plain_rows

_CODE = {name: code for code, name in enumerate(FUSED_OPERATORS, 1)}  # the kernel's codes

#: Operand bytes per batched call at most: larger steps spill the operand buffers out of
#: the CPU's caches (with 7,469 architectures, one step of 180 rows ran 25% slower than
#: six of 32); shorter rows make larger steps, so that short problems need few calls.
STEP_BYTES = 2 * 2**20


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
    """``None``/``"auto"`` picks CUDA when present, else the CPU; a device this machine
    lacks (``tpu``, ``cuda`` without a GPU, ``cuda:7`` on a one-GPU machine) is refused with
    a :class:`GpsrError`."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise GpsrError(f"bad device {device!r} (use auto, cpu, cuda or cuda:N)") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise GpsrError(f"device {device!r} asked for, but CUDA is not available here")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise GpsrError(f"device {device!r} asked for, but this machine has "
                            f"{torch.cuda.device_count()} CUDA device(s)")
    elif resolved.type == "mps" and not torch.backends.mps.is_available():
        raise GpsrError(f"device {device!r} asked for, but MPS is not available here")
    elif resolved.type not in ("cpu", "mps"):
        raise GpsrError(f"device {device!r}: gpsr runs on cpu or cuda")
    return resolved


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
        # At most 16384 cached subtrees however small the problems: the free list is
        # sorted on every call, and a run of 50 generations makes fewer subtrees than that.
        capacity = n_leaf + max(256, min(cache_bytes // (8 * max(1, self.n_archs)), 2**14))
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
        # Roots, and some of their operands, that the last evaluation left to its reader.
        self._fused: set[str] = set()
        self._fused_operands: set[str] = set()
        self.step_rows = max(1, STEP_BYTES // (8 * max(1, self.n_archs)))

    def evaluate(self, expressions: Sequence[Expression]) -> torch.Tensor:
        """Values of each expression on every architecture: shape ``(len, n_archs)``."""
        for _ in self.stages(expressions):
            pass
        return self.values(expressions)

    def values(self, expressions: Sequence[Expression]) -> torch.Tensor:
        """Values of expressions already evaluated (a copy): shape ``(len, n_archs)``."""
        return self.slab.index_select(0, self._rows(expressions))

    def host_program(self, expressions: Sequence[Expression]) -> tuple[np.ndarray, np.ndarray]:
        """Expressions already evaluated, for CPU code: ``(rows, program)`` with one
        Kendall candidate per expression (see ``KendallTargets.tau_blocks``): row ``r`` of
        ``rows`` as ``(0, 0, r, r, 0, r, r)``, or a fused root (see :meth:`stages`) as its
        operator and operands. On the CPU ``rows`` is the slab itself (no copy), valid
        until the next evaluation; on other devices a copy, with no fused roots."""
        if self.device.type != "cpu":
            return self.values(expressions).cpu().numpy(), plain_rows(range(len(expressions)))
        if self._host is None or self._host.shape != self.slab.shape:  # the slab grew
            self._host = self.slab.numpy()  # one object per slab: callers compare them
        program = []
        for expr in expressions:
            if expr.infix() in self._fused:
                left, right = self._operand(expr.children[0]), self._operand(expr.children[-1])
                program.append((_CODE[expr.name], *left, *right))
            else:
                row = self._row(expr)
                program.append((0, 0, row, row, 0, row, row))
        return self._host, np.array(program, dtype=np.int64).reshape(-1, 7)

    def _operand(self, expr: Expression) -> tuple[int, int, int]:
        """A fused root's operand, for the Kendall kernel: ``(0, row, row)``, or a fused
        operator and its operand rows."""
        if expr.infix() in self._fused_operands:
            return _CODE[expr.name], self._row(expr.children[0]), self._row(expr.children[-1])
        row = self._row(expr)
        return 0, row, row

    def stages(self, expressions: Sequence[Expression], waves: bool = False,
               last_wave: int = 0, fuse_roots: bool = False) -> Iterator[tuple[list[int], bool]]:
        """Evaluate ``expressions``, yielding ``(positions, last)`` for those whose values
        are final (read them with :meth:`values` or :meth:`host_program`, even while later
        steps run, until the next evaluation: their rows are not written again): first
        those already cached, then the rest, shallowest first, as their roots are
        computed. A consumer can score finished expressions while deeper ones are still
        being computed; ``last`` says nothing is left to compute.

        With ``waves``, each new subtree joins the wave of the first (shallowest)
        expression that needs it, one wave per depth, and waves run in that order: the
        shallow expressions are final after a small part of the work, not at its end,
        for three times the tensor calls. The deepest ``last_wave`` expressions are
        computed in a wave of their own, at the end, so that little is left to score
        once evaluation is over.

        With ``fuse_roots`` (on the CPU), a new root whose operator is one of
        ``FUSED_OPERATORS`` and that no other new subtree reads is not computed, nor are
        those of its children whose operator is one too and that only it reads: such an
        expression is final once the rows these read are, and :meth:`host_program` hands
        over the operators and rows, for the consumer to apply as it reads them (the
        Kendall kernel does). That saves their passes over the data and two steps per
        wave, and gives the consumer's thread a share of the evaluation; their values
        are not cached (GP rarely reuses a whole tree or its top)."""
        new: dict[str, Expression] = {}
        wave: dict[str, int] = {}
        used: set[str] = set()
        by_depth = sorted(expressions, key=lambda e: e.depth)
        final = by_depth[-1].depth + 1 if by_depth else 0
        for rank, expr in enumerate(by_depth):
            known = len(new)
            self._collect(expr, new, used)
            number = ((expr.depth if waves else 0) if rank < len(by_depth) - last_wave
                      else final)
            for key in islice(new, known, None):
                wave[key] = number
        fuse_roots = fuse_roots and self.device.type == "cpu"
        self._fused, self._fused_operands = (self._fusible(expressions, new) if fuse_roots
                                             else (set(), set()))
        for key in (*self._fused, *self._fused_operands):
            del new[key]
        self._reserve(len(new), used)
        # One entry per new subtree, sorted into program order: by wave, height, binary
        # operators first (one gather per operand then serves a whole step, the second
        # a prefix of it), operator, and the order found (which makes entries unique).
        plan = sorted((wave[key], node.depth, -len(node.children), node.name, i)
                      for i, (key, node) in enumerate(new.items()))
        ready_at: dict[tuple, list[int]] = {}  # (wave, height) -> positions final then
        for pos, expr in enumerate(expressions):
            key = expr.infix()
            if key in self._fused:  # final with the last node its operands read
                at = ()
                for child in expr.children:
                    fused = child.infix() in self._fused_operands
                    for node in child.children if fused else (child,):
                        if node.infix() in new:
                            at = max(at, (wave[node.infix()], node.depth))
            else:  # final with its root
                at = (wave[key], expr.depth) if key in new else ()
            ready_at.setdefault(at, []).append(pos)
        done = len(ready_at.get((), []))
        if done:
            yield ready_at[()], done == len(expressions)
        nodes = list(new.values())
        for number, in_wave in groupby(plan, key=itemgetter(0)):
            entries = list(in_wave)
            # Each wave's program is built only when it runs: scoring of earlier waves
            # overlaps with it.
            for height in self._run([nodes[entry[4]] for entry in entries], entries):
                if (number, height) in ready_at:
                    done += len(ready_at[number, height])
                    yield ready_at[number, height], done == len(expressions)

    def _fusible(self, expressions: Sequence[Expression],
                 new: dict[str, Expression]) -> tuple[set[str], set[str]]:
        """The keys of new roots whose operator a consumer can apply and that no other new
        subtree reads, and of their children that it can apply too: new, read by that root
        alone, and not expressions of their own."""
        readers: dict[str, set[str]] = {}
        for key, node in new.items():
            for child in node.children:
                if child.children:
                    readers.setdefault(child.infix(), set()).add(key)
        roots = {expr.infix() for expr in expressions
                 if expr.name in FUSED_OPERATORS and expr.infix() in new
                 and expr.infix() not in readers}
        whole = {expr.infix() for expr in expressions}
        operands = {child.infix() for key in roots for child in new[key].children
                    if child.name in FUSED_OPERATORS and child.infix() in new
                    and readers[child.infix()] == {key} and child.infix() not in whole}
        return roots, operands

    def _run(self, nodes: list[Expression],
             plan: list[tuple[int, int, int, str, int]]) -> Iterator[int]:
        """Compute ``nodes`` in the order of their ``plan`` entries (children computed
        earlier or among them), yielding each height once it is done."""
        rows: list[tuple[int, int, int]] = []  # the row each node writes, and its operands'
        for expr in nodes:
            row = self.row_of[expr.infix()] = self.free.pop()
            rows.append((row, self._row(expr.children[0]), self._row(expr.children[-1])))
        program = np.array(rows, dtype=np.int64).reshape(-1, 3)
        steps: list[tuple[int, int, list[tuple[Primitive, int]]]] = []  # height, start, groups
        start = 0
        for height, at_height in groupby(plan, key=itemgetter(1)):
            entries = list(at_height)
            for chunk in range(0, len(entries), self.step_rows):
                groups = [(PRIMITIVES[name], len(list(same))) for name, same in
                          groupby(entries[chunk : chunk + self.step_rows], key=itemgetter(3))]
                steps.append((height, start, groups))
                start += sum(n for _, n in groups)
        # Each step's operand rows, first operands then second ones, in one index made
        # once: a step is one gather, and each torch call costs microseconds.
        operands: list[np.ndarray] = []
        bounds = [0]
        for _, begin, groups in steps:
            size = sum(n for _, n in groups)
            binary = sum(n for prim, n in groups if prim.arity == 2)
            operands += [program[begin : begin + size, 1], program[begin : begin + binary, 2]]
            bounds.append(bounds[-1] + size + binary)
        gather = torch.from_numpy(np.concatenate(operands)).to(self.device)
        for k, (height, begin, groups) in enumerate(steps):
            self._step(groups, program[begin:, 0], gather[bounds[k] : bounds[k + 1]])
            if k + 1 == len(steps) or steps[k + 1][0] != height:
                yield height

    def _step(self, groups: list[tuple[Primitive, int]], targets: np.ndarray,
              gather: torch.Tensor) -> None:
        """Compute one step: ``(operator, count)`` groups of nodes of one height, binary
        operators first, into the slab rows that begin ``targets``, from the operand rows
        ``gather`` (every node's first operand, then the binary ones' second): one
        gather, one call per operator."""
        sizes = [n for _, n in groups]
        size = sum(sizes)
        operands, mask_all = self._scratch(size, gather.shape[0])
        torch.index_select(self.slab, 0, gather, out=operands)
        # Views made by one split each: slicing them one by one costs more than small ops.
        parts = operands.split_with_sizes(sizes + [n for prim, n in groups if prim.arity == 2])
        seconds = parts[len(groups):]  # the binary groups come first
        masks = mask_all.split_with_sizes(sizes)
        first, last = int(targets[0]), int(targets[size - 1])
        if last - first == size - 1:  # one block of rows (see _reserve)
            outs = self.slab[first : last + 1].split_with_sizes(sizes)
            for i, ((prim, _), mask, out) in enumerate(zip(groups, masks, outs)):
                prim.torch_into(parts[i], seconds[i] if prim.arity == 2 else None, mask, out)
        else:
            start = 0
            for i, ((prim, n), mask) in enumerate(zip(groups, masks)):
                result = prim.torch_into(parts[i], seconds[i] if prim.arity == 2 else None,
                                         mask, parts[i])
                rows = torch.from_numpy(targets[start : start + n].copy()).to(self.device)
                self.slab.index_copy_(0, rows, result)
                start += n

    def forget(self) -> None:
        """Drop every cached subtree (the slab and buffers stay allocated)."""
        self.free.extend(self.row_of.values())
        self.row_of.clear()
        self._fused, self._fused_operands = set(), set()

    def _scratch(self, rows: int, operands: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Reused buffers for ``operands`` operand rows and the masks of ``rows`` nodes:
        fresh ones this large would page-fault on every step."""
        if self._buffers[1].shape[0] < rows:
            self._buffers = self._empty_buffers(max(rows, 2 * self._buffers[1].shape[0]))
        held, mask = self._buffers
        return held[:operands], mask[:rows]

    def _empty_buffers(self, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Operands of ``rows`` nodes (two each at most) and their 0/1 masks, float64."""
        return (torch.empty((2 * rows, self.n_archs), dtype=torch.float64, device=self.device),
                torch.empty((rows, self.n_archs), dtype=torch.float64, device=self.device))

    def _row(self, expr: Expression) -> int:
        key = expr.infix()  # a proxy's is its name, which no inner subtree's can be
        row = self.row_of.get(key)
        return self.leaf_row[key] if row is None else row

    def _rows(self, exprs) -> torch.Tensor:
        return torch.tensor([self._row(e) for e in exprs], dtype=torch.long, device=self.device)

    def _collect(self, expr: Expression, new: dict[str, Expression], used: set[str]) -> None:
        if not expr.children:
            if expr.name not in self.leaf_row:
                raise self._missing(expr.name)
            return
        key = expr.infix()
        if key in new or key in used:
            return
        if key in self.row_of:
            used.add(key)
            self.row_of.move_to_end(key)
            return
        for child in expr.children:  # leaves checked here: a call per leaf costs more
            if child.children:
                self._collect(child, new, used)
            elif child.name not in self.leaf_row:
                raise self._missing(child.name)
        new[key] = expr

    def _missing(self, proxy: str) -> GpsrError:
        return GpsrError(f"expression uses proxy {proxy!r} that the data lacks "
                         f"(available: {', '.join(self.proxies)})")

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
