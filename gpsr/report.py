"""Tau tables: an expression (or many) on every problem and split, and the best single proxies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from rich import box
from rich.table import Table
from rich.text import Text

from gpsr.data import Dataset, finite_or_none
from gpsr.errors import GpsrError
from gpsr.expressions import Expression
from gpsr.fitness import TauScorer

SPLITS = ("input", "test", "all")


def taus_by_split(
    expressions: Sequence[Expression], dataset: Dataset, device: str = "auto"
) -> dict[str, np.ndarray]:
    """``{split: array (len(expressions), n_problems)}`` of raw taus (NaN where undefined)."""
    out = {}
    for split in SPLITS:
        problems = dataset.part(split)
        if any(len(p) < 2 for p in problems):
            out[split] = np.full((len(expressions), len(problems)), np.nan)
            continue
        out[split] = TauScorer(problems, dataset.proxies, device).taus(expressions)
    return out


def tau_dict(row: np.ndarray, names: Sequence[str]) -> dict[str, float | None]:
    return {name: finite_or_none(float(t)) for name, t in zip(names, row)}


#: The rows of every tau table, said once where one is printed.
SPLITS_NOTE = (
    "input: the rows the search saw (the input split, 70% of each problem by default); "
    "test: the held-out rest; all: both together."
)
#: The one rule for "the best single proxy", in ``gpsr run`` and ``gpsr bench report`` alike;
#: each says which rows it is chosen on.
BEST_PROXY_RULE = (
    "Best single proxy: per problem, the proxy with the highest signed Kendall tau (a proxy "
    "is used as it is: a higher value predicts a better network)"
)


def best_proxy(taus: Mapping[str, float | None]) -> str:
    """The proxy with the highest signed tau (:data:`BEST_PROXY_RULE`); an undefined tau
    (None or NaN) never wins, and a tie goes to the first in ``taus``' order."""
    if not taus:
        raise GpsrError("no proxies to choose the best single proxy from")

    def key(name: str) -> float:
        tau = taus[name]
        return -np.inf if tau is None or np.isnan(tau) else tau

    return max(taus, key=key)


def best_single_proxies(dataset: Dataset, device: str = "auto") -> dict[str, dict]:
    """Per problem, the best single proxy on the input split, with its taus on every split."""
    leaves = [Expression(p) for p in dataset.proxies]
    table = taus_by_split(leaves, dataset, device)
    best = {}
    for j, name in enumerate(dataset.names):
        chosen = best_proxy(dict(zip(dataset.proxies, table["input"][:, j].tolist())))
        k = dataset.proxies.index(chosen)
        best[name] = {"proxy": chosen} | {
            split: finite_or_none(float(table[split][k, j])) for split in SPLITS
        }
    return best


def tau_table(
    title: str, rows: dict[str, dict[str, float | None]], names: Sequence[str],
    best: dict[str, dict] | None = None,
) -> Table:
    """One row per problem, one column per label of ``rows`` (its taus), and with ``best``
    (:func:`best_single_proxies`) the best single proxy's name and its test and all taus.

    Problems are rows so that a table of any number of problems fits 80 columns (a problem
    name folds only where the terminal is narrower still)."""
    # Fixed widths: numbers never wrap ("-0.1234" is 7), headers wrap at their spaces, and a
    # name longer than 25 folds, so five columns of taus and a proxy name fit 80 columns.
    table = Table(title=Text(title), box=box.SIMPLE_HEAD, padding=(0, 0), pad_edge=False,
                  title_justify="left")
    table.add_column("problem", overflow="fold", width=min(25, max(map(len, names), default=7)))
    for label in rows:
        table.add_column(label, justify="right", width=7)
    if best is not None:
        width = max(5, *(len(b["proxy"]) for b in best.values()))
        table.add_column("best proxy", width=min(width, 12), overflow="fold")
        table.add_column("its test", justify="right", width=7)
        table.add_column("its all", justify="right", width=7)

    def fmt(tau: float | None) -> str:
        return "-" if tau is None else f"{tau:.4f}"

    for name in names:
        cells = [name] + [fmt(values.get(name)) for values in rows.values()]
        if best is not None:
            cells += [best[name]["proxy"], fmt(best[name]["test"]), fmt(best[name]["all"])]
        table.add_row(*cells)
    return table
