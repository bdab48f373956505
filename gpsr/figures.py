"""The report's figures, drawn with matplotlib's Agg canvas and returned as PNG bytes.

No pyplot: each figure is a standalone ``matplotlib.figure.Figure``, so drawing one never
touches a global backend or a display, and the figures of one report cannot leak into
each other.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

DPI = 100
_MISSING = "#d9d9d9"


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def _annotated_grid(ax, matrix: np.ndarray, cmap: str) -> None:
    """Colour cells on a symmetric scale, write each value, grey out undefined ones."""
    finite = matrix[np.isfinite(matrix)]
    # Symmetric around 0, so colour says the sign; at least 0.05 so noise stays pale.
    limit = max(0.05, float(np.max(np.abs(finite)))) if finite.size else 1.0
    ax.set_facecolor(_MISSING)
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap=cmap, vmin=-limit, vmax=limit,
                      aspect="auto")
    for (i, j), value in np.ndenumerate(matrix):
        if np.isnan(value):
            ax.text(j, i, "-", ha="center", va="center", fontsize=8, color="#555555")
        else:
            strong = abs(value) > 0.6 * limit
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if strong else "black")
    return image


def tau_heatmap(rows: Sequence[str], columns: Sequence[str], taus: np.ndarray,
                breaks: Sequence[int] = ()) -> bytes:
    """Kendall tau of each metric (row) on each problem (column), the best of each column
    boxed in red, as in the paper's figure 6. ``taus`` is (rows, columns), NaN where unknown;
    a black line goes before each column index in ``breaks`` (groups of problems)."""
    taus = np.asarray(taus, dtype=float).reshape(len(rows), len(columns))
    fig = Figure(figsize=(2.8 + 0.85 * len(columns), 1.2 + 0.36 * len(rows)))
    ax = fig.add_subplot()
    # Brown to teal: the red boxes stay visible on every cell.
    image = _annotated_grid(ax, taus, "BrBG")
    for j in range(len(columns)):
        column = taus[:, j]
        if np.isfinite(column).any():
            i = int(np.nanargmax(column))
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", lw=2))
    for j in breaks:
        ax.axvline(j - 0.5, color="black", lw=2)
    ax.set_xticks(range(len(columns)), columns, rotation=30, ha="right", fontsize=9)
    ax.set_yticks(range(len(rows)), rows, fontsize=9)
    ax.tick_params(length=0)
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="Kendall tau")
    return _png(fig)


def scatter_grid(panels: Sequence[dict]) -> bytes:
    """Accuracy against the metric's rank, one panel per problem (the paper's figure 8).

    Each panel: ``{"title", "score", "accuracy", "test": bool mask}``. The x axis is the
    score's rank scaled to [0, 1]: tau depends on ranks only, and raw scores of synthesized
    metrics span many orders of magnitude.
    """
    from scipy.stats import rankdata

    n = len(panels)
    columns = min(3, max(1, n))
    lines = -(-n // columns)
    fig = Figure(figsize=(4.1 * columns, 3.4 * lines))
    for k, panel in enumerate(panels):
        ax = fig.add_subplot(lines, columns, k + 1)
        score = np.asarray(panel["score"], dtype=float)
        rank = (rankdata(score) - 1) / max(1, len(score) - 1)
        test = np.asarray(panel["test"], dtype=bool)
        size = 6 if len(score) > 2000 else 12
        ax.scatter(rank[~test], np.asarray(panel["accuracy"])[~test], s=size, alpha=0.35,
                   color="#9ecae1", label="input split", rasterized=True, linewidths=0)
        ax.scatter(rank[test], np.asarray(panel["accuracy"])[test], s=size, alpha=0.6,
                   color="#d95f02", label="test split", rasterized=True, linewidths=0)
        ax.set_title(panel["title"], fontsize=10)
        ax.set_xlabel("rank of the metric's score (0 = lowest)", fontsize=8)
        ax.set_ylabel("validation accuracy", fontsize=8)
        ax.tick_params(labelsize=8)
        if k == 0:
            ax.legend(fontsize=8, loc="lower right", markerscale=2)
    fig.tight_layout()
    return _png(fig)


def proxy_frequency(counts: Mapping[str, int], runs: int) -> bytes:
    """How many of the runs' final expressions use each proxy (the paper's figure 5)."""
    order = sorted(counts, key=lambda p: (counts[p], p))
    fig = Figure(figsize=(6.4, 0.8 + 0.3 * len(order)))
    ax = fig.add_subplot()
    bars = ax.barh(range(len(order)), [counts[p] for p in order], color="#3182bd")
    ax.bar_label(bars, padding=2, fontsize=8)
    ax.set_yticks(range(len(order)), order, fontsize=9)
    ax.set_xlim(0, runs * 1.08 + 0.5)
    ax.set_xlabel(f"final expressions using the proxy (of {runs} runs)", fontsize=9)
    return _png(fig)


def convergence(best: np.ndarray, mean: np.ndarray) -> bytes:
    """Best and mean fitness per generation, the median over seeds with the 10th-90th
    percentile band. ``best`` and ``mean`` are (seeds, generations)."""
    fig = Figure(figsize=(7.2, 3.6))
    ax = fig.add_subplot()
    for values, label, colour in ((best, "best fitness", "#d95f02"),
                                  (mean, "mean fitness", "#1b9e77")):
        values = np.asarray(values, dtype=float)
        generations = np.arange(values.shape[1])
        ax.plot(generations, np.median(values, axis=0), color=colour, label=f"{label} (median)")
        if values.shape[0] > 1:
            low, high = np.percentile(values, [10, 90], axis=0)
            ax.fill_between(generations, low, high, color=colour, alpha=0.2,
                            label=f"{label}, 10th-90th percentile of seeds")
    ax.set_xlabel("generation", fontsize=9)
    ax.set_ylabel("equation-1 fitness (input split)", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return _png(fig)


def replacement_heatmap(rows: Sequence[str], columns: Sequence[str], delta: np.ndarray) -> bytes:
    """Change in mean tau when a used proxy (row) is removed or replaced (column)."""
    delta = np.asarray(delta, dtype=float).reshape(len(rows), len(columns))
    fig = Figure(figsize=(2.2 + 0.62 * len(columns), 1.3 + 0.45 * len(rows)))
    ax = fig.add_subplot()
    image = _annotated_grid(ax, delta, "RdBu")
    ax.set_xticks(range(len(columns)), columns, rotation=40, ha="right", fontsize=9)
    ax.set_yticks(range(len(rows)), rows, fontsize=9)
    ax.set_xlabel("removed, or replaced by", fontsize=9)
    ax.set_ylabel("proxy of the metric", fontsize=9)
    ax.tick_params(length=0)
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="change in mean Kendall tau")
    return _png(fig)
