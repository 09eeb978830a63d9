"""Redis memory over the sampled window, with the straight line to maxmemory."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from bsnexus_lab.areas.memory.probes import REDIS
from bsnexus_lab.plotting import figure

MIB = 1024 * 1024
HORIZON_H = 7 * 24  # a limit further away than a week is not drawn: the window says little about it


def memory_over_time(samples: pd.DataFrame, projection: pd.DataFrame) -> Figure:
    """used_memory (and maxmemory) over the window, extended by the projection when it reaches the limit."""
    fig, axes = figure((9, 4))
    ax = axes[0]
    server = samples[samples["stream"] == REDIS].dropna(subset=["used_memory"])
    if server.empty:
        ax.text(0.5, 0.5, "no samples", ha="center", transform=ax.transAxes)
        return fig
    ax.plot(server.index, server["used_memory"] / MIB, label="used_memory")
    limit = server["maxmemory"].iloc[-1]
    if limit:
        ax.axhline(limit / MIB, color="red", linestyle="--", label="maxmemory")
    row = projection[projection["series"] == "redis used_memory"]
    hours = row["hours_to_limit"].iloc[0] if len(row) else None
    if hours is not None and pd.notna(hours) and hours <= HORIZON_H:
        end = server.index[-1] + pd.Timedelta(hours=float(hours))
        ax.plot(
            [server.index[-1], end],
            [server["used_memory"].iloc[-1] / MIB, limit / MIB],
            linestyle=":",
            label=f"projection: limit in {hours:.1f} h",
        )
    ax.set_ylabel("MiB")
    ax.set_title("Redis memory over the sampled window")
    ax.legend(loc="best")
    return fig
