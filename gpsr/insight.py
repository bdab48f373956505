"""Why each term is there: a metric with one of its proxies removed or replaced (table 18).

The paper (appendix, table 18) replaces the proxies its final metric uses most with the ones
the 31 runs used least, and reads the drop in Kendall tau as evidence that the replaced
proxies are building blocks. :func:`ablation` does that for every proxy an expression uses,
against every other proxy of the terminal set, and adds a removal:

* **removal** of proxy ``p`` (:func:`remove_proxy`): every maximal subtree whose leaves are all
  ``p`` is cut out together with its parent operator, and the parent's other operand takes the
  parent's place (``snip - jacov`` becomes ``snip``, ``x / neg(jacov)`` becomes ``x``). No
  constant is introduced (gpsr's expressions have none). An expression made of ``p`` alone has
  nothing left; its removal is reported as null.
* **replacement** of ``p`` by ``q`` (:func:`replace_proxy`): every leaf ``p`` becomes ``q``.
"""

from __future__ import annotations

from collections.abc import Sequence

from gpsr.data import Dataset
from gpsr.errors import GpsrError
from gpsr.expressions import Expression
from gpsr.fitness import TauScorer
from gpsr.report import tau_dict


def remove_proxy(expression: Expression, proxy: str) -> Expression | None:
    """``expression`` without ``proxy`` (see the module docstring); None when nothing is left."""
    if expression.is_leaf:
        return None if expression.name == proxy else expression
    kept = [remove_proxy(child, proxy) for child in expression.children]
    if all(child is None for child in kept):
        return None
    if any(child is None for child in kept):
        # A binary operator lost one operand: its sibling stands in for it.
        return next(child for child in kept if child is not None)
    return Expression(expression.name, kept)


def replace_proxy(expression: Expression, proxy: str, by: str) -> Expression:
    """``expression`` with every leaf ``proxy`` replaced by the leaf ``by``."""
    if expression.is_leaf:
        return Expression(by) if expression.name == proxy else expression
    return Expression(
        expression.name, [replace_proxy(child, proxy, by) for child in expression.children]
    )


def ablation(
    expression: Expression,
    dataset: Dataset,
    split: str = "test",
    replacements: Sequence[str] | None = None,
    device: str = "auto",
) -> dict:
    """Kendall tau per problem of ``expression`` and of each variant with one proxy removed or
    replaced (by each of ``replacements``, default: every other proxy of the terminal set).

    Returns ``{"split", "problems", "expression", "taus", "removed": {p: {"expression",
    "taus"}}, "replaced": {p: {q: {"expression", "taus"}}}}``; taus are ``{problem: tau}``
    with null where undefined (a constant variant).
    """
    unknown = sorted(expression.proxies() - set(dataset.proxies))
    if unknown:
        raise GpsrError(f"expression {expression.infix()!r} uses {unknown[0]!r}, "
                        f"which the data lacks (available: {', '.join(dataset.proxies)})")
    if replacements is not None:
        for q in replacements:
            if q not in dataset.proxies:
                raise GpsrError(f"unknown replacement proxy {q!r} "
                                f"(available: {', '.join(dataset.proxies)})")
    candidates = list(dataset.proxies if replacements is None else replacements)
    used = sorted(expression.proxies())
    removed = {p: remove_proxy(expression, p) for p in used}
    replaced = {p: {q: replace_proxy(expression, p, q) for q in candidates if q != p}
                for p in used}
    variants = [expression, *(e for e in removed.values() if e is not None),
                *(e for by in replaced.values() for e in by.values())]
    scorer = TauScorer(dataset.part(split), dataset.proxies, device)
    taus = dict(zip((e.infix() for e in variants), scorer.taus(variants)))
    names = dataset.names

    def entry(e: Expression | None) -> dict:
        if e is None:
            return {"expression": None, "taus": dict.fromkeys(names)}
        return {"expression": e.infix(), "taus": tau_dict(taus[e.infix()], names)}

    return {
        "split": split,
        "problems": names,
        "expression": expression.infix(),
        "taus": tau_dict(taus[expression.infix()], names),
        "removed": {p: entry(e) for p, e in removed.items()},
        "replaced": {p: {q: entry(e) for q, e in by.items()} for p, by in replaced.items()},
    }
