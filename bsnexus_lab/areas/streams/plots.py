"""Figures of the streams area, from probe frames. They never query: pass them what a probe returned."""

from __future__ import annotations

import math

import pandas as pd
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure

from bsnexus_lab.findings import Finding, Severity, flatten
from bsnexus_lab.findings.render import COLOURS
from bsnexus_lab.plotting import figure as _figure

STATUS_SEVERITY = {
    "OK": Severity.OK,
    "NODATA": Severity.INFO,
    "SATURATED": Severity.INFO,
    "WARN": Severity.WARNING,
    "STALL": Severity.CRITICAL,
    "STOP": Severity.CRITICAL,
}


def backlog(summary: pd.DataFrame) -> Figure:
    """Lag (not yet delivered) and pending (delivered, not acknowledged) per consumer group, right now."""
    groups = summary.dropna(subset=["group"])
    labels = [f"{row.stream}\n{row.group}" for row in groups.itertuples()]
    figure, [axes] = _figure(figsize=(max(6, 1.6 * len(labels)), 3.6))
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


def backlog_over_time(
    samples: pd.DataFrame, statuses: pd.DataFrame | None = None, findings: list[Finding] | None = None
) -> Figure:
    """Length, lag and pending of each group over the sampled window, shaded by the worst of its evaluated
    lag status and any finding about the group (a group with a dead consumer is not shown as OK in green).

    Gaps (ticks whose Redis call failed) are marked with a red line.
    """
    frame = samples.reset_index()
    good = frame[frame["group"].notna() & frame["error"].isna()]
    keys = list(dict.fromkeys(zip(good["stream"], good["group"], strict=True)))
    cols = min(2, max(1, len(keys)))
    rows = max(1, math.ceil(len(keys) / cols))
    figure, axes_list = _figure(figsize=(6.5 * cols, 2.8 * rows), rows=rows, cols=cols)
    status_of = {} if statuses is None else {(r.stream, r.group): r.status for r in statuses.itertuples()}
    gaps = frame.loc[frame["error"].notna(), "time"]
    for axes, (stream, group) in zip(axes_list, keys, strict=False):
        window = good[(good["stream"] == stream) & (good["group"] == group)]
        for column in ("length", "lag", "pending"):
            axes.plot(window["time"], window[column].astype(float), label=column, marker=".")
        status = status_of.get((stream, group))
        worst = _worst_about(findings or [], stream, group)
        severity = max([STATUS_SEVERITY.get(status or "OK", Severity.OK), *worst[:1]], key=lambda s: s.rank)
        if status or worst:
            axes.set_facecolor(COLOURS[severity.value])
        label = f": lag {status}" if status else ""
        if worst and worst[0].rank > STATUS_SEVERITY.get(status or "OK", Severity.OK).rank:
            label += f", {worst[0].value.upper()} finding"
        for gap in gaps:
            axes.axvline(gap, color="#c0392b", linewidth=1)
        axes.set_title(f"{stream} / {group}{label}", fontsize=9)
        axes.xaxis.set_major_formatter(DateFormatter("%H:%M:%S"))
        axes.tick_params(axis="x", labelrotation=30, labelsize=7)
        axes.legend(fontsize=7)
    for axes in axes_list[len(keys) :]:
        axes.set_visible(False)
    return figure


def pending_by_consumer(pending: pd.DataFrame, top: int = 20) -> Figure:
    """Who holds the pending entries: the ``top`` consumers by count, per stream/group."""
    counts = pending.groupby(["stream", "group", "consumer"]).size().sort_values(ascending=False).head(top)
    figure, [axes] = _figure(figsize=(7, 0.35 * max(3, len(counts)) + 1))
    labels = [f"{consumer[:36]}  ({stream}/{group})" for stream, group, consumer in counts.index]
    axes.barh(labels[::-1], counts.to_numpy()[::-1])
    axes.set_xlabel("pending entries")
    axes.set_title("Pending entries by consumer")
    return figure


def pending_idle(pending: pd.DataFrame) -> Figure:
    """How long pending entries have waited since their last delivery."""
    figure, [axes] = _figure(figsize=(6.5, 3.2))
    axes.hist((pending["idle_ms"].astype(float) / 1000).to_numpy(), bins=30)
    axes.set_xlabel("idle since last delivery (s)")
    axes.set_ylabel("entries")
    axes.set_title("Pending idle times")
    return figure


def deliveries(pending: pd.DataFrame) -> Figure:
    """How often pending entries have been delivered: a tail to the right is a poison message."""
    counts = pending["deliveries"].astype(int).value_counts().sort_index()
    figure, [axes] = _figure(figsize=(6.5, 3.2))
    axes.bar(counts.index.astype(str), counts.to_numpy())
    axes.set_xlabel("deliveries")
    axes.set_ylabel("entries")
    axes.set_title("Delivery counts of pending entries")
    return figure


def _worst_about(findings: list[Finding], stream: str, group: str) -> list[Severity]:
    """[the worst severity of the findings about this group], or [] when none is above OK."""
    about = [
        f.severity for f in flatten(findings) if f.severity.rank > Severity.OK.rank and f.subject[:2] == (stream, group)
    ]
    return [max(about, key=lambda s: s.rank)] if about else []
