"""Memory checks over a sampled window: streams that only grow, the time left to maxmemory, evictions."""

from __future__ import annotations

import pandas as pd

from bsnexus_lab.areas.memory.thresholds import MemoryThresholds
from bsnexus_lab.checks import check
from bsnexus_lab.findings import Finding, Kind, Severity


@check("memory.unbounded_streams", "Streams growing without trimming", kind=Kind.CAUSE)
def unbounded_streams(projection: pd.DataFrame, thresholds: MemoryThresholds) -> list[Finding]:
    streams = projection[projection["series"].str.startswith("stream ")]
    findings = []
    for row in streams.itertuples():
        gained = row.last - row.first
        if row.shrank or gained < thresholds.stream_growth_min_entries:
            continue
        name = row.series.removeprefix("stream ")
        share = f", {row.memory_share:.0%} of Redis memory" if row.memory_share is not None else ""
        findings.append(
            Finding(
                check="memory.unbounded_streams",
                severity=Severity.WARNING,
                title=f"Stream {name} grows without trimming: +{gained:.0f} entries in {row.window_s:.0f} s "
                f"(about {row.growth_per_h:,.0f} entries/h{share})",
                evidence={
                    "stream": name,
                    "length": int(row.last),
                    "gained": int(gained),
                    "window_s": row.window_s,
                    "growth_per_h": row.growth_per_h,
                    "memory_share": row.memory_share,
                },
                remedy=(
                    "Nothing in BSNexus calls trim_streams(): schedule XTRIM MINID up to the oldest entry still "
                    "pending or undelivered (trimming by MAXLEN ~ 1000 drops undelivered tasks once a backlog "
                    "passes it), and check the consumers keep up (lab.streams.summary())."
                ),
                subject=(name,),
                scope=frozenset({"redis:memory", f"stream:{name}"}),
            )
        )
    return findings


@check("memory.limit_projection", "maxmemory reached soon at the current growth")
def limit_projection(projection: pd.DataFrame, thresholds: MemoryThresholds) -> list[Finding]:
    server = projection[projection["series"] == "redis used_memory"]
    if server.empty or pd.isna(server["hours_to_limit"].iloc[0]):
        return []
    row = server.iloc[0]
    hours = float(row["hours_to_limit"])
    if hours > thresholds.limit_warning_h or row["last"] - row["first"] < thresholds.limit_min_growth_bytes:
        return []
    severity = Severity.CRITICAL if hours <= thresholds.limit_critical_h else Severity.WARNING
    return [
        Finding(
            check="memory.limit_projection",
            severity=severity,
            title=f"At the growth of the last {row['window_s']:.0f} s ({row['growth_per_h'] / 1048576:,.1f} MiB/h), "
            f"maxmemory is reached in about {hours:.1f} h",
            evidence={
                "used_memory": int(row["last"]),
                "maxmemory": int(row["limit"]),
                "growth_bytes_per_h": row["growth_per_h"],
                "hours_to_limit": hours,
                "window_s": row["window_s"],
            },
            remedy="See which stream or prefix grows (the stream rows here, lab.keys.audit()) and stop it.",
            subject=("used_memory",),
            scope=frozenset({"redis:memory"}),
        )
    ]


@check("memory.evictions", "Keys evicted during the sampled window")
def evictions(projection: pd.DataFrame, thresholds: MemoryThresholds) -> list[Finding]:
    server = projection[projection["series"] == "redis used_memory"]
    if server.empty or not server["evicted_in_window"].iloc[0]:
        return []
    evicted = int(server["evicted_in_window"].iloc[0])
    growing = projection[projection["series"].str.startswith("stream ") & (projection["last"] > 0)]
    return [
        Finding(
            check="memory.evictions",
            severity=Severity.CRITICAL if len(growing) else Severity.WARNING,
            title=f"Redis evicted {evicted} keys during the window"
            + (f" while {len(growing)} stream(s) hold entries: a stream may be next" if len(growing) else ""),
            evidence={"evicted": evicted, "streams": [s.removeprefix("stream ") for s in growing["series"]]},
            remedy="Stop the growth or raise maxmemory; with allkeys-* switch to noeviction or volatile-*.",
            subject=("evictions",),
            scope=frozenset({"redis:memory"}),
        )
    ]
