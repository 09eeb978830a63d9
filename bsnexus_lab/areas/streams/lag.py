"""Lag status over a sampled window: Burrow's consumer lag evaluation, adapted to streams and to BSNexus.

Burrow (LinkedIn's Kafka consumer lag checker) judges a consumer by its behaviour over a window of offset
commits instead of a fixed lag threshold. Its evaluator (``calculatePartitionStatus`` in
``core/internal/evaluator/caching.go``) goes, for a partition whose current lag is above zero:

1. STOP   when the consumer stopped committing: now - last commit > last commit - first commit. Burrow checks
          this first, "as this is a problem even if the consumer had zero lag at some point".
2. then, only if the lag was never zero in the window: REWIND (offsets went back), STALL (offsets all equal),
   WARN (lag never decreased);
3. otherwise OK. A partition with zero current lag is always OK.

A Redis Streams group has no commits: its offset (``entries-read`` on 7.x, the last-delivered id on 6.2)
only moves when something is delivered, and a BSNexus consumer with nothing to read commits nothing. So the
lab measures "since the last commit" from the later of the last offset move and the last time the group had
caught up (lag within ``allowed_lag``): a group that had nothing to do is not stopped. And because BSNexus
tasks take minutes, a queue that waits while every live worker holds a task is **SATURATED** (info, or a
warning once the oldest entry has waited ``saturation_wait_s``), not stalled: STALL and STOP are for groups
whose consumers are idle or gone while work waits. The rules, in order, for each (stream, group):

0. NODATA when the window has fewer than ``min_samples`` good samples or spans less than ``min_window_s``
   (sample gaps, a dependency lost mid-run, a window too short): no verdict is better than a wrong one.
1. OK        when the latest lag is within ``allowed_lag``.
2. STOP      when the offset moved in the window and work then waited unconsumed for longer than the span
             over which it moved (Burrow's rule 4, measured as above) - SATURATED instead when every live
             worker holds a task.
3. OK        when lag was within ``allowed_lag`` at some sample (it catches up now and then).
4. STALL     when the offset never moved while work waited - SATURATED instead when every live worker holds
             a task. (``min_window_s`` spans two polls, so an entry that just arrived on an idle queue is
             read within the window.)
5. WARN      when lag never decreased while the offset moved: consumers read, but slower than producers add,
             busy or not - except a lag that stayed level while every live worker holds a task: that is the
             pace of a busy queue (SATURATED), not falling behind.
6. OK        otherwise.

Gap rows (a tick whose Redis call failed) are left out of the window and counted.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bsnexus_lab.areas.streams.thresholds import StreamThresholds
from bsnexus_lab.checks import check
from bsnexus_lab.config import Conventions
from bsnexus_lab.findings import Finding, Kind, Severity
from bsnexus_lab.resp import entry_id
from bsnexus_lab.text import duration, plural

STATUS_COLUMNS = ["stream", "group", "status", "reason", "samples", "span_s", "first_lag", "last_lag"]
SEVERITY = {"STOP": Severity.CRITICAL, "STALL": Severity.CRITICAL, "WARN": Severity.WARNING}


def evaluate(
    samples: pd.DataFrame,
    thresholds: StreamThresholds | None = None,
    consumers: pd.DataFrame | None = None,
    summary: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per (stream, group) sampled: status OK/SATURATED/WARN/STALL/STOP/NODATA, and why.

    ``consumers`` (a ``streams.consumers`` frame) tells saturation from a stall; ``summary`` brings the age of
    the oldest waiting entry.
    """
    thresholds = thresholds or StreamThresholds()
    frame = samples.reset_index()
    good = frame[frame["group"].notna()]
    if "error" in good:
        good = good[good["error"].isna()]
    rows = []
    for (stream, group), window in good.groupby(["stream", "group"], sort=False):
        window = window.sort_values("time")
        busy = _saturation(consumers, stream, group)
        oldest_wait_s = _oldest_wait_s(summary, stream, group)
        status, reason = _status(window, thresholds, busy, oldest_wait_s)
        lags = window["lag"].astype("float")
        rows.append(
            {
                "stream": stream,
                "group": group,
                "status": status,
                "reason": reason,
                "samples": len(window),
                "span_s": round((window["time"].iloc[-1] - window["time"].iloc[0]).total_seconds(), 1),
                "first_lag": lags.iloc[0],
                "last_lag": lags.iloc[-1],
            }
        )
    return pd.DataFrame(rows, columns=STATUS_COLUMNS)


def _offsets(window: pd.DataFrame) -> list[Any]:
    if window["entries_read"].notna().all():
        return [int(v) for v in window["entries_read"]]
    return [entry_id(v) for v in window["last_delivered_id"]]


def _saturation(consumers: pd.DataFrame | None, stream: str, group: str) -> str | None:
    """'N live workers, all busy' when every live worker of the group holds a task (in any worker group: a
    worker reviewing is as busy as one executing); None otherwise or unknown."""
    if consumers is None or consumers.empty:
        return None
    names = Conventions.of(consumers)
    is_worker_row = [
        names.is_worker(c) and g in names.worker_groups
        for c, g in zip(consumers["consumer"], consumers["group"], strict=True)
    ]
    workers = consumers[is_worker_row]
    busy = set(workers.loc[workers["pending"] > 0, "consumer"])
    members = workers[(workers["stream"] == stream) & (workers["group"] == group)]
    live = set(members.loc[members["registered"].eq(True).fillna(False), "consumer"])
    if not live or not live <= busy:
        return None
    return f"{plural(len(live), 'live worker')}, all busy"


def _oldest_wait_s(summary: pd.DataFrame | None, stream: str, group: str) -> float | None:
    if summary is None or "oldest_wait_ms" not in summary:
        return None
    row = summary[(summary["stream"] == stream) & (summary["group"] == group)]
    if row.empty or pd.isna(row["oldest_wait_ms"].iloc[0]):
        return None
    return float(row["oldest_wait_ms"].iloc[0]) / 1000


def _status(
    window: pd.DataFrame, thresholds: StreamThresholds, busy: str | None, oldest_wait_s: float | None
) -> tuple[str, str]:
    times = list(window["time"])
    span = (times[-1] - times[0]).total_seconds() if times else 0.0
    if len(window) < thresholds.min_samples or span < thresholds.min_window_s:
        return "NODATA", (
            f"not enough data: {plural(len(window), 'sample')} over {span:.1f} s "
            f"(a verdict needs {thresholds.min_samples} over {thresholds.min_window_s:.0f} s)"
        )
    allowed = thresholds.allowed_lag
    lags = [float(v) for v in window["lag"]]
    if lags[-1] <= allowed:
        return "OK", f"lag is {lags[-1]:.0f} (allowed {allowed})"
    waiting = f"{plural(int(lags[-1]), 'entry', 'entries')} waiting"
    if oldest_wait_s is not None:
        waiting += f", the oldest for {duration(oldest_wait_s)}"
    saturated = ("SATURATED", f"{waiting}; {busy}") if busy else None
    offsets = _offsets(window)
    moves = [times[i] for i in range(1, len(offsets)) if offsets[i] > offsets[i - 1]]
    caught_up = [t for t, lag in zip(times, lags, strict=True) if lag <= allowed]
    if moves:
        since = max([moves[-1], *caught_up[-1:]])
        quiet = (times[-1] - since).total_seconds()
        moving = (moves[-1] - times[0]).total_seconds()
        if quiet > moving:
            return saturated or ("STOP", f"consumed nothing for {quiet:.1f} s after consuming for {moving:.1f} s")
    if caught_up:
        return "OK", f"lag reached {min(lags):.0f} (allowed {allowed}) in the window"
    if not moves:
        return saturated or ("STALL", f"offset did not move in {span:.1f} s while {waiting}")
    if all(lags[i] >= lags[i - 1] for i in range(1, len(lags))):
        if saturated and lags[-1] <= lags[0]:
            return saturated
        slower = f"lag never decreased ({lags[0]:.0f} -> {lags[-1]:.0f}) while consumers read"
        return "WARN", f"{slower}; {busy}" if busy else slower
    return "OK", "lag decreasing at times"


REMEDIES = {
    "STOP": "Consumers stopped mid-window: check the workers' processes and the backend's poll endpoint.",
    "STALL": "Nothing consumes this group: check that workers are registered, alive and polling.",
    "WARN": "Consumers are slower than producers: add workers or slow the producers.",
    "SATURATED": "Every live worker is busy: add workers if the wait matters (BSNexus tasks take minutes).",
}


@check("streams.lag_status", "Consumer groups falling behind (Burrow rules)", kind=Kind.CAUSE)
def lag_status(
    samples: pd.DataFrame,
    thresholds: StreamThresholds,
    consumers: pd.DataFrame | None = None,
    summary: pd.DataFrame | None = None,
) -> list[Finding]:
    """How a group's consumers keep up is the cause of what happens to its backlog (a STALL, STOP, WARN or
    SATURATED group explains the messages trimmed from it); a window that cannot be judged says so at info."""
    statuses = evaluate(samples, thresholds, consumers, summary)
    gaps = int(samples["error"].notna().sum()) if "error" in samples else 0
    worker_groups = Conventions.of(consumers, summary, samples).worker_groups
    findings = []
    for row in statuses.itertuples():
        if row.status == "OK":
            continue
        severity = SEVERITY.get(row.status, Severity.INFO)
        oldest = _oldest_wait_s(summary, row.stream, row.group)
        if row.status == "SATURATED" and oldest is not None and oldest >= thresholds.saturation_wait_s:
            severity = Severity.WARNING
        kind = Kind.SYMPTOM if row.status == "NODATA" else Kind.CAUSE
        evidence: dict[str, Any] = {
            "stream": row.stream,
            "group": row.group,
            "status": row.status,
            "samples": row.samples,
            "span_s": row.span_s,
            "first_lag": row.first_lag,
            "last_lag": row.last_lag,
        }
        if gaps:
            evidence["gaps"] = gaps
        findings.append(
            Finding(
                check="streams.lag_status",
                severity=severity,
                title=f"{row.stream}/{row.group} is {row.status}: {row.reason}",
                evidence=evidence,
                remedy=remedy_for(row.status, row.group, worker_groups),
                kind=kind,
                subject=(row.stream, row.group),
                # A window cut short by an outage is explained by it (deps.unreachable, deps.lost_during_run).
                scope=frozenset(
                    {f"stream:{row.stream}/{row.group}", *(["dep:redis"] if gaps and kind is Kind.SYMPTOM else [])}
                ),
            )
        )
    return findings


def remedy_for(status: str, group: str, worker_groups: frozenset[str]) -> str:
    """The remedy names the right component: the orchestrator reads results and escalations, not workers."""
    if status == "NODATA":
        return "Sample longer (see the gaps and the dependency findings) before judging this group."
    if status in {"STOP", "STALL"} and group not in worker_groups:
        return (
            f"The {group!r} group is read by the backend's orchestrator loop, which runs per started project and "
            "is not restarted with the backend: restart the project's orchestration "
            "(POST /api/v1/pm/{project_id}/start) and check orchestrator.log."
        )
    return REMEDIES[status]
