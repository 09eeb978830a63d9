"""Burrow-style lag evaluation on hand-built sample windows."""

from __future__ import annotations

import pandas as pd
import pytest

from bsnexus_lab.areas.streams.lag import evaluate, lag_status
from bsnexus_lab.areas.streams.thresholds import StreamThresholds
from bsnexus_lab.findings import Severity

DEFAULTS = StreamThresholds()


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


@pytest.mark.parametrize(
    ("lags", "reads", "status"),
    [
        ([5, 3, 0, 2], [1, 3, 6, 6], "OK"),  # rule 1: caught up once
        ([10, 12, 15, 20], [5, 6, 8, 9], "WARN"),  # rule 4: reading, lag never decreases
        ([10, 12, 14, 16], [5, 5, 5, 5], "STALL"),  # rule 3: offset frozen, lag above allowed
        ([10, 9, 9, 10, 11, 12], [5, 6, 6, 6, 6, 6], "STOP"),  # rule 2: moved once, quiet for longer since
        ([10, 8, 9, 7], [5, 7, 8, 10], "OK"),  # rule 6: lag goes down at times
        ([0, 5, 10, 15], [5, 5, 5, 5], "STALL"),  # drained, then nothing consumed while work arrives
        ([0, 4, 0, 3, 0, 2, 0, 2], [1, 2, 3, 4, 5, 6, 7, 8], "OK"),  # rule 4: catches up now and then
        ([8, 6, 0, 0, 0, 0, 0, 4], [1, 3, 9, 9, 9, 9, 9, 9], "STOP"),  # STOP wins over an earlier zero lag
    ],
)
def test_burrow_rules(lags: list[int], reads: list[int], status: str) -> None:
    [row] = evaluate(window(lags, reads)).itertuples()
    assert row.status == status, row.reason


def test_redis_62_offsets_come_from_last_delivered_id() -> None:
    samples = window([10, 12, 14], [5, 5, 5]).assign(entries_read=pd.array([None] * 3, dtype="Int64"))
    assert evaluate(samples).iloc[0]["status"] == "STALL"


def test_gap_rows_are_ignored_and_allowed_lag_applies() -> None:
    samples = window([10, 12, 14], [5, 6, 7])
    gap = pd.DataFrame(
        {"error": ["cannot reach Redis"]}, index=pd.Index([pd.Timestamp("2026-11-28T12:00:01.5Z")], name="time")
    )
    samples = pd.concat([samples, gap]).sort_index()
    assert evaluate(samples).iloc[0]["samples"] == 3
    assert evaluate(samples, StreamThresholds(allowed_lag=10)).iloc[0]["status"] == "OK"


def test_stop_and_stall_are_errors_warn_is_a_warning() -> None:
    assert [f.severity for f in lag_status(window([10, 12, 14, 16], [5, 5, 5, 5]), DEFAULTS)] == [Severity.CRITICAL]
    assert [f.severity for f in lag_status(window([10, 12, 15, 20], [5, 6, 8, 9]), DEFAULTS)] == [Severity.WARNING]
    assert lag_status(window([5, 0], [1, 6]), DEFAULTS) == []
