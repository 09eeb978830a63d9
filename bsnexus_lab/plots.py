"""Figures from probe frames. They never query: pass them what a probe returned."""

from __future__ import annotations

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def _figure(figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """A figure that renders inline in Jupyter (pyplot registers the formatter) but is not kept open by pyplot."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=figsize, layout="constrained")
    plt.close(figure)
    return figure, axes


def backlog(summary: pd.DataFrame) -> Figure:
    """Lag (not yet delivered) and pending (delivered, not acknowledged) per consumer group."""
    groups = summary.dropna(subset=["group"])
    labels = [f"{row.stream}\n{row.group}" for row in groups.itertuples()]
    figure, axes = _figure(figsize=(max(6, 1.6 * len(labels)), 3.6))
    positions = range(len(labels))
    axes.bar([p - 0.2 for p in positions], groups["lag"].fillna(0).astype(float), 0.4, label="lag (undelivered)")
    axes.bar([p + 0.2 for p in positions], groups["pending"].fillna(0).astype(float), 0.4, label="pending (unacked)")
    for p, exact in zip(positions, groups["lag_exact"], strict=True):
        if exact is False:
            axes.annotate("≈", (p - 0.2, 0), ha="center", va="bottom")
    axes.set_xticks(list(positions), labels)
    axes.set_ylabel("entries")
    axes.set_title("Stream backlog by consumer group")
    axes.legend()
    return figure
