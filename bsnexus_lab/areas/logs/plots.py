"""Figures of log records. They never read files: pass them what :func:`read` returned."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from bsnexus_lab.areas.logs.errors import error_records, shape
from bsnexus_lab.plotting import figure


def errors_over_time(records: pd.DataFrame, every: str = "1min", top: int = 5) -> Figure:
    """Errors per ``every`` (UTC), one stacked band per exception type (the ``top`` most frequent)."""
    errors = error_records(records)
    fig, [axes] = figure((9, 3.4))
    axes.set_ylabel(f"errors per {every}")
    axes.set_xlabel("time (UTC)")
    if errors.empty:
        axes.set_title("No errors in the window")
        return fig
    label = errors["exception"].fillna(errors["message"].map(shape).str.slice(0, 40))
    kept = label.value_counts().index[:top]
    label = label.where(label.isin(kept), "other")
    counts = errors.assign(kind=label).set_index("time").groupby("kind").resample(every).size().unstack(0).fillna(0)
    axes.stackplot(counts.index, counts.T.to_numpy(), labels=list(counts.columns), step="post")
    axes.legend(loc="upper left", fontsize="small")
    axes.set_title(f"{len(errors)} errors, {errors['time'].min():%Y-%m-%d %H:%M} to {errors['time'].max():%H:%M} UTC")
    return fig
