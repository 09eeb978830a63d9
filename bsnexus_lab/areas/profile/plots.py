"""The profile area's plots: they take frames, never capture."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from bsnexus_lab.plotting import figure


def memory_over_time(rss: pd.DataFrame, capture_timeline: pd.DataFrame | None = None) -> Figure:
    """RSS per process from the sampler, with memray's own RSS line when a capture ran over the window."""
    fig, [ax] = figure((9, 3.5))
    valid = rss.dropna(subset=["rss_mb"]) if "rss_mb" in rss else rss.iloc[0:0]
    for pid, group in valid.groupby("pid"):
        ax.plot(group.index, group["rss_mb"], marker=".", label=f"pid {pid} (psutil)")
    if capture_timeline is not None and len(capture_timeline):
        ax.plot(capture_timeline.index, capture_timeline["rss_mb"], alpha=0.6, label="memray capture")
    ax.set_ylabel("RSS (MiB)")
    ax.set_title("Memory over time")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left")
    return fig
