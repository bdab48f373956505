"""Tau tables: an expression (or many) on every problem and split, and the best single proxies."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rich.table import Table

from gpsr.data import Dataset, finite_or_none
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


def best_single_proxies(dataset: Dataset, device: str = "auto") -> dict[str, dict]:
    """Per problem, the proxy with the highest input-split tau, with its taus on every split."""
    leaves = [Expression(p) for p in dataset.proxies]
    table = taus_by_split(leaves, dataset, device)
    best = {}
    for j, name in enumerate(dataset.names):
        k = int(np.nanargmax(np.nan_to_num(table["input"][:, j], nan=-np.inf)))
        best[name] = {"proxy": dataset.proxies[k]} | {
            split: finite_or_none(float(table[split][k, j])) for split in SPLITS
        }
    return best


def tau_table(title: str, rows: dict[str, dict[str, float | None]], names: Sequence[str]) -> Table:
    """A rich table with one row per label and one column per problem."""
    table = Table(title=title)
    table.add_column("")
    for name in names:
        table.add_column(name, justify="right")
    for label, values in rows.items():
        table.add_row(label, *("-" if values.get(n) is None else f"{values[n]:.4f}" for n in names))
    return table
