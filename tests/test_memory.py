"""Memory over time: the projection on a hand-built window, and sampling the sandbox while a stream grows."""

from __future__ import annotations

import os

import pandas as pd

import bsnexus_lab as bl
from bsnexus_lab import checks
from bsnexus_lab.areas import default_thresholds
from bsnexus_lab.areas.memory.plots import memory_over_time
from bsnexus_lab.areas.memory.probes import TICK_COLUMNS, projection
from bsnexus_lab.findings import Kind, Severity
from bsnexus_lab.sandbox import Sandbox

MIB = 1024 * 1024


def _window(used_mib: list[float], lengths: list[int], evicted: list[int] | None = None) -> pd.DataFrame:
    times = pd.date_range("2026-11-29 10:00", periods=len(used_mib), freq="10min", tz="UTC")
    rows = []
    for n, time in enumerate(times):
        rows.append(
            {"time": time, "stream": "", "used_memory": used_mib[n] * MIB, "maxmemory": 512 * MIB}
            | {"evicted_keys": (evicted or [0] * len(used_mib))[n]}
        )
        rows.append({"time": time, "stream": "events:board", "length": lengths[n], "memory_bytes": lengths[n] * 900})
    return pd.DataFrame(rows, columns=["time", *TICK_COLUMNS]).set_index("time")


def test_projection_reaches_maxmemory_in_the_expected_hours() -> None:
    # 112 MiB growing 10 MiB per 10 min = 60 MiB/h: (512 - 162) / 60 = 5.83 h after the last sample.
    frame = projection(_window([112, 122, 132, 142, 152, 162], [0, 1000, 2000, 3000, 4000, 5000]))
    redis_row = frame.set_index("series").loc["redis used_memory"]
    assert abs(redis_row["growth_per_h"] - 60 * MIB) < 1
    assert abs(redis_row["hours_to_limit"] - 350 / 60) < 1e-6
    findings = checks.run({"memory.projection": frame}, thresholds=default_thresholds(), area="memory")
    by_check = {f.check: f for f in findings for f in (f, *f.explains)}
    assert by_check["memory.unbounded_streams"].severity == Severity.WARNING
    assert by_check["memory.unbounded_streams"].kind == Kind.CAUSE
    assert by_check["memory.unbounded_streams"].evidence["gained"] == 5000
    assert by_check["memory.limit_projection"].severity == Severity.WARNING
    assert abs(by_check["memory.limit_projection"].evidence["hours_to_limit"] - 350 / 60) < 1e-6
    # The projection is the stream's consequence: it is nested under the cause.
    cause = next(f for f in findings if f.check == "memory.unbounded_streams")
    assert {f.check for f in cause.explains} == {"memory.limit_projection"}
    assert memory_over_time(_window([112, 162], [0, 1]), frame).axes


def test_a_trimmed_stream_and_flat_memory_raise_nothing() -> None:
    frame = projection(_window([100, 100, 100, 100], [1000, 1010, 990, 1005], evicted=[0, 0, 0, 0]))
    findings = checks.run({"memory.projection": frame}, thresholds=default_thresholds(), area="memory")
    assert all(f.severity == Severity.OK for f in findings)


def test_evictions_in_the_window_while_streams_hold_entries_are_critical() -> None:
    frame = projection(_window([500, 505, 510], [10, 10, 10], evicted=[0, 40, 90]))
    findings = checks.run({"memory.projection": frame}, thresholds=default_thresholds(), area="memory")
    evictions = next(f for f in findings if f.check == "memory.evictions")
    assert evictions.severity == Severity.CRITICAL and evictions.evidence["evicted"] == 90


def test_sampling_a_growing_stream(sandbox: Sandbox) -> None:
    facts = sandbox.load("memory-growth")
    with bl.connect("sandbox") as lab:
        samples = lab.memory.sample(every=0.25, duration=2.0, pid=os.getpid()).wait(timeout=60)
        frame = lab.memory.projection(samples)
        findings = lab.check({"memory.projection": frame}, area="memory")
    stream = frame.set_index("series").loc[f"stream {facts['stream']}"]
    assert stream["last"] > stream["first"] and not stream["shrank"]
    server = samples[samples["stream"] == ""]
    assert (server["process_rss_bytes"] > 0).all() and (server["maxmemory"] == 512 * MIB).all()
    unbounded = next(f for f in findings if f.check == "memory.unbounded_streams")
    assert unbounded.subject == (facts["stream"],) and unbounded.severity == Severity.WARNING


def test_sampling_the_healthy_world_raises_nothing(sandbox: Sandbox) -> None:
    sandbox.load("healthy")
    with bl.connect("sandbox") as lab:
        samples = lab.memory.sample(every=0.25, duration=1.5).wait(timeout=60)
        findings = lab.check({"memory.projection": lab.memory.projection(samples)}, area="memory")
    assert samples["error"].isna().all()
    assert [f.title for f in findings if f.severity.rank > Severity.INFO.rank] == []
