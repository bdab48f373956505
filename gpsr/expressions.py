"""Expression trees over proxies: printing, parsing, JSON, sympy, LaTeX and callables.

Leaves are proxy names only (no constants, paper section 3.3). Depth follows the
gplearn convention: a lone proxy has depth 0, ``log(snip)`` depth 1.

The infix form printed by :meth:`Expression.infix` parses back to the very same
tree (operators are left-associative, and the printer adds exactly the
parentheses needed for that), so the string is also the canonical cache key.

Trees are at most :data:`MAX_DEPTH` deep: printing, evaluation and the sympy export walk
them recursively, and a deeper tree (10,000 nested ``neg(``, a 10,000-term sum) would
exhaust Python's stack. The search's own limit (``--max-depth``, 10 by default) must stay
within it; a deeper tree is refused with a :class:`GpsrError`, whether parsed, read from
JSON or built.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch

from gpsr.errors import GpsrError
from gpsr.functions import PRIMITIVES, PROTECTED_VALUE, clean_terminal_values

#: The deepest tree gpsr builds, parses or prints (see the module docstring).
MAX_DEPTH = 100
#: A proxy name: what the infix parser reads as a leaf.
_NAME = r"[A-Za-z_][A-Za-z0-9_.]*"
_PRECEDENCE = {"add": 1, "sub": 1, "mul": 2, "div": 2}
_BY_SYMBOL = {"+": "add", "-": "sub", "*": "mul", "/": "div"}


class Expression:
    """An immutable expression tree node. Leaves carry a proxy name and no children."""

    __slots__ = ("name", "children", "depth", "size", "_infix", "_leaf_mask", "_positions")

    def __init__(self, name: str, children: Sequence[Expression] = ()) -> None:
        self.name = name
        self.children = tuple(children)
        # Children are built first, so both are known at once; GP reads them constantly.
        self.depth: int = 1 + max(c.depth for c in self.children) if self.children else 0
        if self.depth > MAX_DEPTH:
            raise GpsrError(f"expression is {self.depth} deep; gpsr handles depth up to "
                            f"{MAX_DEPTH}")
        self.size: int = 1 + sum(c.size for c in self.children)
        self._infix: str | None = None
        self._leaf_mask: tuple[bool, ...] | None = None
        self._positions: tuple[tuple[int, ...], tuple[int, ...]] | None = None

    # ---- structure -------------------------------------------------------
    @property
    def is_leaf(self) -> bool:
        return not self.children

    def nodes(self) -> Iterator[Expression]:
        """Pre-order traversal; the index of a node in it is its address in the tree."""
        yield self
        for child in self.children:
            yield from child.nodes()

    @property
    def leaf_mask(self) -> tuple[bool, ...]:
        """For each node in pre-order, whether it is a leaf."""
        if self._leaf_mask is None:
            mask: tuple[bool, ...] = (self.is_leaf,)
            for child in self.children:
                mask += child.leaf_mask
            self._leaf_mask = mask
        return self._leaf_mask

    def positions(self, leaves: bool) -> tuple[int, ...]:
        """Pre-order indices of the leaves (``leaves=True``) or of the inner nodes."""
        if self._positions is None:
            mask = self.leaf_mask
            self._positions = (
                tuple(i for i, leaf in enumerate(mask) if not leaf),
                tuple(i for i, leaf in enumerate(mask) if leaf),
            )
        return self._positions[leaves]

    def proxies(self) -> set[str]:
        return {n.name for n in self.nodes() if n.is_leaf}

    def subtree(self, index: int) -> Expression:
        """The node at pre-order ``index``, found by descending on subtree sizes."""
        node = self
        while index:
            index -= 1
            for child in node.children:
                if index < child.size:
                    node = child
                    break
                index -= child.size
            else:
                raise IndexError(index)
        return node

    def replace(self, index: int, new: Expression) -> Expression:
        """A copy of this tree with the pre-order node ``index`` replaced by ``new``."""
        if index == 0:
            return new
        offset = 1
        children = list(self.children)
        for k, child in enumerate(children):
            if index < offset + child.size:
                children[k] = child.replace(index - offset, new)
                return Expression(self.name, children)
            offset += child.size
        raise IndexError(index)

    # ---- identity --------------------------------------------------------
    def infix(self) -> str:
        if self._infix is None:
            self._infix = self._render()
        return self._infix

    def _render(self) -> str:
        if self.is_leaf:
            return self.name
        prim = PRIMITIVES[self.name]
        if prim.arity == 1:
            return f"{self.name}({self.children[0].infix()})"
        left, right = self.children
        prec = _PRECEDENCE[self.name]
        ltxt, rtxt = left.infix(), right.infix()
        if _PRECEDENCE.get(left.name, 99) < prec:
            ltxt = f"({ltxt})"
        if _PRECEDENCE.get(right.name, 99) <= prec:
            rtxt = f"({rtxt})"
        return f"{ltxt} {prim.symbol} {rtxt}"

    def __str__(self) -> str:
        return self.infix()

    def __repr__(self) -> str:
        return f"Expression({self.infix()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expression) and self.infix() == other.infix()

    def __hash__(self) -> int:
        return hash(self.infix())

    # ---- serialisation ---------------------------------------------------
    def to_json(self) -> list | str:
        """Nested lists ``["op", child, ...]``; a leaf is its proxy name."""
        if self.is_leaf:
            return self.name
        return [self.name, *(c.to_json() for c in self.children)]

    @classmethod
    def from_json(cls, data: list | str, _level: int = 0) -> Expression:
        if _level > MAX_DEPTH:  # checked on the way down: the recursion is what would fail
            raise GpsrError(f"expression JSON nests deeper than gpsr's depth limit {MAX_DEPTH}")
        if isinstance(data, str):
            return cls(data)
        if not isinstance(data, list) or not data or data[0] not in PRIMITIVES:
            raise GpsrError(f"malformed expression JSON: {json.dumps(data)[:80]}")
        if len(data) - 1 != PRIMITIVES[data[0]].arity:
            raise GpsrError(f"operator {data[0]!r} takes {PRIMITIVES[data[0]].arity} arguments")
        return cls(data[0], [cls.from_json(c, _level + 1) for c in data[1:]])

    def to_sympy(self, simplify: bool = False):
        """The plain (unprotected) algebra of this expression as a sympy object."""
        import sympy

        def build(node: Expression):
            if node.is_leaf:
                return sympy.Symbol(node.name, positive=False)
            args = [build(c) for c in node.children]
            return {
                "add": lambda a, b: a + b,
                "sub": lambda a, b: a - b,
                "mul": lambda a, b: a * b,
                "div": lambda a, b: a / b,
                "neg": lambda a: -a,
                "log": sympy.log,
                "sqrt": sympy.sqrt,
            }[node.name](*args)

        expr = build(self)
        return sympy.simplify(expr) if simplify else expr

    def to_latex(self) -> str:
        import sympy

        names = {sympy.Symbol(p, positive=False): rf"\mathrm{{{p}}}" for p in self.proxies()}
        latex_names = {s: n.replace("_", r"\_") for s, n in names.items()}
        return sympy.latex(self.to_sympy(), symbol_names=latex_names)

    # ---- evaluation ------------------------------------------------------
    def evaluate(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """Evaluate with numpy on a mapping ``proxy -> values`` (protected semantics)."""
        if self.is_leaf:
            if self.name not in values:
                raise GpsrError(f"expression uses proxy {self.name!r} that the data lacks")
            return clean_terminal_values(values[self.name])
        args = [c.evaluate(values) for c in self.children]
        return PRIMITIVES[self.name].numpy_fn(*args)

    def evaluate_torch(self, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Evaluate with torch (any device, autograd-friendly) on ``proxy -> tensor``."""
        if self.is_leaf:
            if self.name not in values:
                raise GpsrError(f"expression uses proxy {self.name!r} that the data lacks")
            v = values[self.name]
            return torch.nan_to_num(
                v.to(torch.float64), nan=PROTECTED_VALUE, posinf=float("inf"), neginf=float("-inf")
            )
        args = [c.evaluate_torch(values) for c in self.children]
        return PRIMITIVES[self.name].torch_fn(*args)


# ---- parsing ---------------------------------------------------------------
_TOKEN = re.compile(rf"\s*(?:({_NAME})|(\*\*|[-+*/(),]))")


def is_proxy_name(name: str) -> bool:
    """Whether ``name`` can be a leaf of an expression (and so a proxy of the search)."""
    return re.fullmatch(_NAME, name) is not None


def _shorten(text: str, limit: int = 120) -> str:
    """``repr`` of ``text``, cut in the middle when long (a message stays one readable line)."""
    if len(text) <= limit:
        return repr(text)
    return repr(text[: limit // 2]) + f" ... ({len(text)} characters) ... " + repr(
        text[-limit // 2 :])


def _tokenize(text: str) -> list[str]:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise GpsrError(
                f"cannot parse expression {_shorten(text)}: unexpected {text[pos:pos + 10]!r}")
        tokens.append(m.group(1) or m.group(2))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0
        self.level = 0  # open parentheses, calls and unary minuses around the current token

    def fail(self, why: str) -> GpsrError:
        return GpsrError(f"cannot parse expression {_shorten(self.text)}: {why}")

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None:
            raise self.fail("unexpected end")
        if expected is not None and tok != expected:
            raise self.fail(f"expected {expected!r}, found {tok!r}")
        self.pos += 1
        return tok

    def parse(self) -> Expression:
        expr = self.sum()
        if self.peek() is not None:
            raise self.fail(f"unexpected {self.peek()!r}")
        return expr

    def sum(self) -> Expression:
        node = self.product()
        while self.peek() in ("+", "-"):
            node = self.node(_BY_SYMBOL[self.take()], [node, self.product()])
        return node

    def product(self) -> Expression:
        node = self.unary()
        while self.peek() in ("*", "/"):
            node = self.node(_BY_SYMBOL[self.take()], [node, self.unary()])
        return node

    def node(self, name: str, children: list[Expression]) -> Expression:
        if 1 + max(c.depth for c in children) > MAX_DEPTH:  # e.g. a 10,000-term sum
            raise self.fail(f"deeper than gpsr's depth limit {MAX_DEPTH}")
        return Expression(name, children)

    def nest(self) -> None:
        # Refused before recursing: each level costs the parser several stack frames.
        self.level += 1
        if self.level > MAX_DEPTH:
            raise self.fail(f"nested deeper than gpsr's depth limit {MAX_DEPTH}")

    def unary(self) -> Expression:
        if self.peek() == "-":
            self.take()
            self.nest()
            node = self.node("neg", [self.unary()])
            self.level -= 1
            return node
        return self.atom()

    def atom(self) -> Expression:
        tok = self.take()
        if tok == "(":
            self.nest()
            node = self.sum()
            self.take(")")
            self.level -= 1
            return node
        if not re.match(r"[A-Za-z_]", tok):
            raise self.fail(f"unexpected {tok!r}")
        if self.peek() == "(":
            if tok not in PRIMITIVES:
                raise self.fail(f"unknown function {tok!r} (known: {', '.join(PRIMITIVES)})")
            self.take("(")
            self.nest()
            args = [self.sum()]
            while self.peek() == ",":
                self.take()
                args.append(self.sum())
            self.take(")")
            self.level -= 1
            if len(args) != PRIMITIVES[tok].arity:
                raise self.fail(f"{tok} takes {PRIMITIVES[tok].arity} argument(s), got {len(args)}")
            return self.node(tok, args)
        return Expression(tok)


def parse(text: str, proxies: Sequence[str] | None = None) -> Expression:
    """Parse infix (``log(flops) * snip``) or call form (``mul(log(flops), snip)``).

    With ``proxies`` given, every leaf must name one of them. Trees deeper than
    :data:`MAX_DEPTH` are refused.
    """
    if not isinstance(text, str):
        raise GpsrError(f"an expression is text, got {type(text).__name__}")
    expr = _Parser(text).parse()
    if proxies is not None:
        unknown = sorted(expr.proxies() - set(proxies))
        if unknown:
            raise GpsrError(
                f"expression {_shorten(text)} names proxy {unknown[0]!r} that the data lacks "
                f"(available: {', '.join(proxies)})"
            )
    return expr
