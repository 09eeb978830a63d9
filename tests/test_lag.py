"""Lag evaluation (Burrow's rules adapted to streams and BSNexus) on hand-built sample windows."""

from __future__ import annotations

import pandas as pd
import pytest

from bsnexus_lab.areas.streams.lag import evaluate, lag_status
from bsnexus_lab.areas.streams.thresholds import StreamThresholds
from bsnexus_lab.findings import Kind, Severity

DEFAULTS = StreamThresholds()
SHORT = StreamThresholds(min_samples=4, min_window_s=3)  # the rules themselves, on short windows
W1, W2, W3 = (
    "0b7c4a52-3f0e-4a57-9d1e-6c1f0c2b9a11",
    "5d2e8f61-0a9b-4c3d-8e7f-1a2b3c4d5e6f",
    "9a8b7c6d-1e2f-4a3b-8c9d-0e1f2a3b4c5d",
)


def window(lags: list[int], reads: list[int], every_s: float = 1.0) -> pd.DataFrame:
    start = pd.Timestamp("2026-11-28T12:00:00Z")
    return pd.DataFrame(
        {
            "time": [start + pd.Timedelta(seconds=every_s * i) for i in range(len(lags))],
            "stream": "tasks:queue",
            "group": "workers",
            "lag": pd.array(lags, dtype="Int64"),
            "entries_read": pd.array(reads, dtype="Int64"),
            "last_delivered_id": [f"{1000 + r}-0" for r in reads],
            "error": None,
        }
    ).set_index("time")


def consumers(*rows: tuple[str, str, int, bool | None]) -> pd.DataFrame:
    """(group, consumer, pending, registered) rows of a streams.consumers frame."""
    stream = {"workers": "tasks:queue", "reviewers": "tasks:qa", "pm": "tasks:results"}
    frame = pd.DataFrame(
        [{"stream": stream[g], "group": g, "consumer": c, "pending": p, "registered": r} for g, c, p, r in rows]
    )
    frame["registered"] = frame["registered"].astype("boolean")
    return frame


@pytest.mark.parametrize(
    ("lags", "reads", "status"),
    [
        ([5, 3, 0, 2], [1, 3, 6, 6], "OK"),  # caught up once
        ([10, 12, 15, 20], [5, 6, 8, 9], "WARN"),  # reading, lag never decreases
        ([10, 12, 14, 16], [5, 5, 5, 5], "STALL"),  # offset frozen, lag above allowed
        ([10, 9, 9, 10, 11, 12], [5, 6, 6, 6, 6, 6], "STOP"),  # moved once, work waited unread for longer since
        ([10, 8, 9, 7], [5, 7, 8, 10], "OK"),  # lag goes down at times
        ([0, 5, 10, 15], [5, 5, 5, 5], "OK"),  # Burrow: a window that reached zero lag is not stalled
        ([0, 4, 0, 3, 0, 2, 0, 2], [1, 2, 3, 4, 5, 6, 7, 8], "OK"),  # catches up now and then
        # A delivery, then nothing to do, then a new task at the last tick: not STOP (it had caught up).
        ([8, 6, 0, 0, 0, 0, 0, 1], [1, 3, 9, 9, 9, 9, 9, 9], "OK"),
        # A task that arrives on an idle queue at the last tick: not STALL.
        ([0, 0, 0, 0, 0, 1], [7, 7, 7, 7, 7, 7], "OK"),
    ],
)
def test_burrow_rules(lags: list[int], reads: list[int], status: str) -> None:
    [row] = evaluate(window(lags, reads), SHORT).itertuples()
    assert row.status == status, row.reason


def test_too_few_samples_or_too_short_a_window_is_not_enough_data() -> None:
    [two] = evaluate(window([10, 12], [5, 5]), DEFAULTS).itertuples()
    [short] = evaluate(window([10, 12, 14, 16, 18, 20], [5, 5, 5, 5, 5, 5], every_s=1.0), DEFAULTS).itertuples()
    [enough] = evaluate(window([10, 12, 14, 16, 18, 20], [5, 5, 5, 5, 5, 5], every_s=2.0), DEFAULTS).itertuples()
    assert (two.status, short.status, enough.status) == ("NODATA", "NODATA", "STALL")
    assert short.reason == "not enough data: 6 samples over 5.0 s (a verdict needs 5 over 10 s)"
    [finding] = lag_status(window([10, 12], [5, 5]), DEFAULTS)
    assert (finding.severity, finding.kind) == (Severity.INFO, Kind.SYMPTOM)


def test_every_live_worker_busy_is_saturation_not_a_stall() -> None:
    busy = consumers(("workers", W1, 1, True), ("workers", W2, 1, True), ("reviewers", W3, 1, True))
    busy = pd.concat([busy, consumers(("workers", W3, 0, True))])  # W3 reviews: busy in another worker group
    frozen = window([1, 1, 1, 1, 1, 2], [9, 9, 9, 9, 9, 9], every_s=2.0)
    [row] = evaluate(frozen, DEFAULTS, busy).itertuples()
    assert (row.status, row.reason) == ("SATURATED", "2 entries waiting; 3 live workers, all busy")
    one_idle = pd.concat([busy, consumers(("workers", "7e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b", 0, True))])
    assert evaluate(frozen, DEFAULTS, one_idle).iloc[0]["status"] == "STALL"
    dead_only = consumers(("workers", W1, 1, False))
    assert evaluate(frozen, DEFAULTS, dead_only).iloc[0]["status"] == "STALL"


def test_saturation_is_info_until_the_oldest_entry_waited_too_long() -> None:
    busy = consumers(("workers", W1, 1, True))
    frozen = window([1, 1, 1, 1, 1, 1], [9, 9, 9, 9, 9, 9], every_s=2.0)
    summary = pd.DataFrame([{"stream": "tasks:queue", "group": "workers", "oldest_wait_ms": 10 * 60_000}])
    [fresh] = lag_status(frozen, DEFAULTS, busy, summary)
    assert (fresh.severity, fresh.kind) == (Severity.INFO, Kind.CAUSE)
    assert (
        fresh.title
        == "tasks:queue/workers is SATURATED: 1 entry waiting, the oldest for 10 min; 1 live worker, all busy"
    )
    [old] = lag_status(frozen, DEFAULTS, busy, summary.assign(oldest_wait_ms=45 * 60_000))
    assert old.severity is Severity.WARNING


def test_producers_outpacing_busy_workers_still_warn() -> None:
    busy = consumers(("workers", W1, 1, True))
    [row] = evaluate(window([800, 810, 820, 830, 840, 850], [5, 6, 7, 8, 9, 10], 2.0), DEFAULTS, busy).itertuples()
    assert row.status == "WARN" and row.reason.endswith("1 live worker, all busy")


def test_a_level_queue_while_every_worker_is_busy_is_saturated_not_falling_behind() -> None:
    """One task waits while three workers each finish one and take the next (the busy sandbox on a loaded machine)."""
    busy = consumers(("workers", W1, 1, True), ("workers", W2, 1, True), ("workers", W3, 1, True))
    [row] = evaluate(window([1, 1, 1, 1, 1, 1], [5, 5, 6, 6, 7, 7], 2.0), DEFAULTS, busy).itertuples()
    assert (row.status, row.reason) == ("SATURATED", "1 entry waiting; 3 live workers, all busy")
    idle = consumers(("workers", W1, 0, True))
    [row] = evaluate(window([1, 1, 1, 1, 1, 1], [5, 5, 6, 6, 7, 7], 2.0), DEFAULTS, idle).itertuples()
    assert row.status == "WARN"  # a free worker and the queue never shrinks: Burrow's WARN


def test_redis_62_offsets_come_from_last_delivered_id() -> None:
    samples = window([10, 12, 14, 16], [5, 5, 5, 5]).assign(entries_read=pd.array([None] * 4, dtype="Int64"))
    assert evaluate(samples, SHORT).iloc[0]["status"] == "STALL"


def test_gap_rows_are_ignored_and_allowed_lag_applies() -> None:
    samples = window([10, 12, 14, 16], [5, 6, 7, 8])
    gap = pd.DataFrame(
        {"error": ["cannot reach Redis"]}, index=pd.Index([pd.Timestamp("2026-11-28T12:00:01.5Z")], name="time")
    )
    samples = pd.concat([samples, gap]).sort_index()
    assert evaluate(samples, SHORT).iloc[0]["samples"] == 4
    assert evaluate(samples, StreamThresholds(min_samples=4, min_window_s=3, allowed_lag=20)).iloc[0]["status"] == "OK"
    [finding] = lag_status(samples, SHORT)
    assert finding.evidence["gaps"] == 1


def test_stop_and_stall_are_critical_causes_warn_a_warning_and_the_orchestrator_gets_its_own_remedy() -> None:
    [stall] = lag_status(window([10, 12, 14, 16], [5, 5, 5, 5]), SHORT)
    [warn] = lag_status(window([10, 12, 15, 20], [5, 6, 8, 9]), SHORT)
    assert (stall.severity, stall.kind, warn.severity) == (Severity.CRITICAL, Kind.CAUSE, Severity.WARNING)
    assert stall.scope == {"stream:tasks:queue/workers"} and "workers are registered" in stall.remedy
    results = window([3, 4, 5, 6], [1, 1, 1, 1]).assign(stream="tasks:results", group="pm")
    [orchestrator] = lag_status(results, SHORT)
    assert "orchestrator loop" in orchestrator.remedy and "/api/v1/pm/{project_id}/start" in orchestrator.remedy
    assert lag_status(window([5, 0, 0, 0], [1, 6, 6, 6]), SHORT) == []
