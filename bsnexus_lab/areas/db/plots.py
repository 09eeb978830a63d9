"""Figures of the database area's frames; they never query."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from bsnexus_lab.plotting import figure


def connections(samples: pd.DataFrame) -> Figure:
    """Sessions over the sampled window, one stacked band per application and state."""
    fig, [ax] = figure((9, 3.5))
    rows = samples.dropna(subset=["application"]) if "application" in samples else samples.iloc[0:0]
    if rows.empty:
        ax.text(0.5, 0.5, "no sessions sampled", ha="center", va="center", transform=ax.transAxes)
    else:
        bands = (
            rows.assign(band=rows["application"] + " / " + rows["state"])
            .pivot_table(index=rows.index, columns="band", values="sessions", aggfunc="sum", fill_value=0)
            .astype(float)
        )  # the sampler's counts are nullable integers
        ax.stackplot(bands.index, bands.T.to_numpy(), labels=list(bands.columns))
        ax.legend(loc="upper left", fontsize="small", ncols=2)
    ax.set(title="Sessions by application and state", ylabel="sessions")
    return fig


def blocking_tree(locks: pd.DataFrame) -> Figure:
    """The lock tree: root blockers on the left, each waiter one step right of the session it waits for."""
    fig, [ax] = figure((9, max(2.0, 0.45 * len(locks) + 1)))
    ax.set_axis_off()
    if locks.empty:
        ax.text(0.5, 0.5, "nobody is waiting for a lock", ha="center", va="center", transform=ax.transAxes)
        return fig
    y_of: dict[tuple[int, int], float] = {}
    for y, row in enumerate(locks.itertuples()):
        y_of[(row.root, row.pid)] = -y
        if row.parent is not None and not pd.isna(row.parent):
            parent_y = y_of[(row.root, int(row.parent))]
            ax.plot([row.depth - 1, row.depth - 1, row.depth], [parent_y, -y, -y], color="grey", lw=1)
        waited = f", waiting {row.wait_s:.0f} s" if row.wait_s is not None and not pd.isna(row.wait_s) else ""
        label = f"pid {row.pid} {row.application or ''} ({row.state}{waited})"
        colour = "#f8d7da" if row.depth == 0 else "#fff3cd"
        ax.text(row.depth, -y, label, va="center", fontsize="small", bbox={"fc": colour, "ec": "grey"})
    ax.set_xlim(-0.2, int(locks["depth"].max()) + 3)
    ax.set_ylim(-len(locks), 1)
    ax.set_title("Blocking tree (root blockers first)")
    return fig


def top_statements(statements: pd.DataFrame, top: int = 10) -> Figure:
    """Total execution time of the top statements, labelled with calls and mean time."""
    fig, [ax] = figure((9, 0.4 * min(top, max(len(statements), 1)) + 1.5))
    shown = statements.head(top).iloc[::-1]
    labels = [
        f"{' '.join(str(q or '').split())[:60]}  ({c} calls, {m:.1f} ms)"
        for q, c, m in zip(shown["query"], shown["calls"], shown["mean_ms"], strict=True)
    ]
    ax.barh(range(len(shown)), shown["total_ms"] / 1000)
    ax.set_yticks(range(len(shown)), labels, fontsize="x-small")
    ax.set(title="Top statements by total time", xlabel="total execution time (s)")
    return fig


def table_bloat(tables: pd.DataFrame, top: int = 10) -> Figure:
    """Live and dead rows of the tables with the most dead rows."""
    fig, [ax] = figure((9, 0.4 * min(top, max(len(tables), 1)) + 1.5))
    shown = tables.sort_values("dead_rows", ascending=False).head(top).iloc[::-1]
    ax.barh(shown["table"], shown["live_rows"], label="live rows")
    ax.barh(shown["table"], shown["dead_rows"], left=shown["live_rows"], label="dead rows")
    ax.legend(loc="lower right", fontsize="small")
    ax.set(title="Table bloat (dead rows awaiting vacuum)", xlabel="rows")
    return fig
