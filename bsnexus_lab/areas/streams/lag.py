"""Lag status over a sampled window, after Burrow's consumer lag evaluation rules, adapted to streams.

Burrow (LinkedIn's Kafka consumer lag checker, https://github.com/linkedin/Burrow/wiki/Consumer-Lag-Evaluation-Rules)
judges a consumer by its behaviour over a sliding window of offset commits instead of a fixed lag threshold.
A Redis Streams group has one "partition" per stream; its "offset" is ``entries-read`` (Redis 7) or the
last-delivered id (6.2), its lag the group's lag, and the window the sampler's ticks. Rules, in Burrow's
order (its evaluator checks STOP before asking whether lag was ever zero):

1. OK    when the latest lag is within the allowed lag (``StreamThresholds.allowed_lag``).
2. STOP  when the offset moved in the window but has not moved for longer than the span over which it was
         seen moving (Burrow: now - last commit > last commit - first commit): the group stopped consuming.
3. STALL when the offset did not move at all in the window while work waits (Burrow: offsets all equal).
4. OK    when lag was within the allowed lag at some sample: the group catches up now and then.
5. WARN  when lag never decreased between two samples while the offset moved: consumers fall behind.
6. OK    otherwise.

STOP and STALL are errors (critical findings), WARN a warning. A group's status is its worst over its streams.
Gap rows (a tick whose Redis call failed) are left out; fewer than two good samples cannot be judged.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bsnexus_lab.areas.streams.thresholds import StreamThresholds
from bsnexus_lab.checks import check
from bsnexus_lab.findings import Finding, Severity
from bsnexus_lab.resp import entry_id

STATUS_COLUMNS = ["stream", "group", "status", "reason", "samples", "first_lag", "last_lag"]
SEVERITY = {"STOP": Severity.CRITICAL, "STALL": Severity.CRITICAL, "WARN": Severity.WARNING}


def evaluate(samples: pd.DataFrame, thresholds: StreamThresholds | None = None) -> pd.DataFrame:
    """One row per (stream, group) sampled: status OK/WARN/STALL/STOP, and why."""
    good = samples.reset_index()
    good = good[good["error"].isna() & good["group"].notna()] if "error" in good else good[good["group"].notna()]
    rows = []
    for (stream, group), window in good.groupby(["stream", "group"], sort=False):
        window = window.sort_values("time")
        status, reason = _status(window, (thresholds or StreamThresholds()).allowed_lag)
        lags = window["lag"].astype("float")
        rows.append(
            {
                "stream": stream,
                "group": group,
                "status": status,
                "reason": reason,
                "samples": len(window),
                "first_lag": lags.iloc[0],
                "last_lag": lags.iloc[-1],
            }
        )
    return pd.DataFrame(rows, columns=STATUS_COLUMNS)


def _offsets(window: pd.DataFrame) -> list[Any]:
    if window["entries_read"].notna().all():
        return [int(v) for v in window["entries_read"]]
    return [entry_id(v) for v in window["last_delivered_id"]]


def _status(window: pd.DataFrame, allowed_lag: int) -> tuple[str, str]:
    if len(window) < 2:
        return "OK", "fewer than two samples"
    lags = [float(v) for v in window["lag"]]
    if lags[-1] <= allowed_lag:
        return "OK", f"lag is {lags[-1]:.0f} (allowed {allowed_lag})"
    offsets, times = _offsets(window), list(window["time"])
    moves = [times[i] for i in range(1, len(offsets)) if offsets[i] > offsets[i - 1]]
    if moves:
        quiet = (times[-1] - moves[-1]).total_seconds()
        moving = (moves[-1] - times[0]).total_seconds()
        if quiet > moving:
            return "STOP", f"consumed nothing for {quiet:.1f} s after consuming for {moving:.1f} s"
    else:
        span = (times[-1] - times[0]).total_seconds()
        return "STALL", f"offset did not move in {span:.1f} s while lag was {lags[-1]:.0f}"
    if min(lags) <= allowed_lag:
        return "OK", f"lag reached {min(lags):.0f} (allowed {allowed_lag}) in the window"
    if all(lags[i] >= lags[i - 1] for i in range(1, len(lags))):
        return "WARN", f"lag never decreased ({lags[0]:.0f} -> {lags[-1]:.0f}) while consumers read"
    return "OK", "lag decreasing at times"


@check("streams.lag_status", "Consumer groups falling behind (Burrow rules)")
def lag_status(samples: pd.DataFrame, thresholds: StreamThresholds) -> list[Finding]:
    statuses = evaluate(samples, thresholds)
    return [
        Finding(
            check="streams.lag_status",
            severity=SEVERITY[row.status],
            title=f"{row.stream}/{row.group} is {row.status}: {row.reason}",
            evidence={
                "stream": row.stream,
                "group": row.group,
                "status": row.status,
                "samples": row.samples,
                "first_lag": row.first_lag,
                "last_lag": row.last_lag,
            },
            remedy={
                "STOP": "Consumers stopped mid-window: check the workers' processes and the backend's poll endpoint.",
                "STALL": "Nothing consumes this group: check that workers are registered, alive and polling.",
                "WARN": "Consumers are slower than producers: add workers or slow the producers.",
            }[row.status],
        )
        for row in statuses.itertuples()
        if row.status in SEVERITY
    ]
