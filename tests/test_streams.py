"""Stream probes against real servers, on every Redis this machine has (7.x system, 6.2 embedded)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
import redis as sync_redis

import bsnexus_lab as bl
from bsnexus_lab.areas.streams import commands, probes
from bsnexus_lab.findings import Severity
from bsnexus_lab.sandbox import Sandbox


def row(frame: Any, **match: Any) -> Any:
    selected = frame
    for key, value in match.items():
        selected = selected[selected[key] == value]
    assert len(selected) == 1, f"expected one row for {match}, got {len(selected)}"
    return selected.iloc[0]


def test_summary_shows_the_planted_backlog(stuck: dict[str, Any]) -> None:
    with bl.connect("sandbox") as lab:
        summary = lab.streams.summary()
    queue = row(summary, stream="tasks:queue", group="workers")
    # Two live workers each hold a task of the busy healthy world, the dead one the three planted; one task waits.
    assert queue["pending"] == stuck["pending"] + len(stuck["executing"]) == 5
    assert queue["lag"] == len(stuck["waiting"]) == 1 and bool(queue["lag_exact"])
    assert queue["oldest_waiting_id"] == queue["last_id"] and 0 <= queue["oldest_wait_ms"] < 600_000
    assert queue["max_pending_idle_ms"] >= stuck["idle_ms"]
    assert queue["consumers"] == 4
    board = row(summary, stream="events:board")
    assert board["length"] > 0 and pd.isna(board["group"])
    assert list(summary.columns) == probes.SUMMARY_COLUMNS


def test_consumers_name_the_dead_worker(stuck: dict[str, Any]) -> None:
    with bl.connect("sandbox") as lab:
        consumers = lab.streams.consumers()
        findings = lab.streams.check(consumers=consumers)
    dead = row(consumers, consumer=stuck["dead_consumer"])
    assert (dead["stream"], dead["group"], dead["pending"]) == ("tasks:queue", "workers", 3)
    assert dead["oldest_pending_idle_ms"] >= 900_000
    assert not dead["registered"]
    live = consumers[consumers["consumer"].isin(stuck["live_workers"])]
    assert live["registered"].all() and (live["registry_ttl_s"] <= 90).all()
    top = findings[0]
    assert (top.check, top.severity) == ("streams.dead_consumer", Severity.CRITICAL)
    assert top.evidence["consumer"] == stuck["dead_consumer"] and top.evidence["pending"] == 3
    assert top.target == "sandbox"


def test_healthy_world_raises_nothing_above_info(healthy: dict[str, Any]) -> None:
    with bl.connect("sandbox") as lab:
        findings = lab.check({"deps.health": lab.health(), "streams.consumers": lab.streams.consumers()})
    assert findings and all(f.severity.rank <= Severity.INFO.rank for f in findings)


def test_summary_costs_four_round_trips(stuck: dict[str, Any]) -> None:
    with bl.connect("sandbox") as lab:
        lab.streams.summary()
        # Connecting costs its own handshake; count only what the probe sends. A waiting task is a backlog,
        # which the counting script measures in a round trip of its own (three without a backlog).
        before = lab.counters.round_trips
        lab.streams.summary()
        assert lab.counters.round_trips - before == 4


def lagged_group(writer: sync_redis.Redis, entries: int, read: int, deleted: int) -> Any:
    """A stream of ``entries`` whose group read ``read`` of them, with entry ``deleted`` removed; its summary row."""
    writer.delete("lab:lagged")
    ids = [writer.xadd("lab:lagged", {"n": str(n)}) for n in range(entries)]
    writer.xgroup_create("lab:lagged", "g", id="0")
    writer.xreadgroup("g", "c", {"lab:lagged": ">"}, count=read)
    writer.xdel("lab:lagged", ids[deleted])
    with bl.connect("sandbox") as lab:
        return row(lab.streams.summary("lab:lagged"), group="g")  # a single name is one stream


def test_lag_is_counted_when_redis_does_not_report_it(sandbox: Sandbox, writer: sync_redis.Redis) -> None:
    """Redis 6.2 has no lag, and 7.x reports none after a deletion inside the unread range: both are counted."""
    got = lagged_group(writer, entries=10, read=4, deleted=6)
    assert (got["lag"], bool(got["lag_exact"]), got["pending"]) == (5, True, 4)


def test_lag_beyond_the_scan_bound_is_an_estimate(
    sandbox: Sandbox, writer: sync_redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(probes, "LAG_SCAN_LIMIT", 5)
    got = lagged_group(writer, entries=40, read=2, deleted=20)
    assert not bool(got["lag_exact"])
    assert 6 <= got["lag"] <= 39


def test_missing_stream_and_group_are_named(sandbox: Sandbox) -> None:
    with bl.connect("sandbox") as lab:
        with pytest.raises(bl.NotFound, match="no stream named 'tasks:nope'"):
            lab.streams.summary(["tasks:nope"])
        with pytest.raises(bl.NotFound, match="no consumer group named 'ghosts'"):
            lab.streams.consumers(["tasks:queue"], group="ghosts")
        with pytest.raises(bl.NotFound, match="NOGROUP"):
            lab.streams.pending("tasks:queue", "ghosts")
        assert lab.streams.peek("tasks:escalation").empty  # an empty stream is no error


def test_key_of_another_type_under_a_stream_name(sandbox: Sandbox, writer: sync_redis.Redis) -> None:
    writer.set("lab:not-a-stream", "x")
    with bl.connect("sandbox") as lab, pytest.raises(bl.WrongType, match="'lab:not-a-stream' is not a stream"):
        lab.streams.summary(["lab:not-a-stream"])


def test_odd_consumer_names_and_binary_values_do_not_break_probes(sandbox: Sandbox, writer: sync_redis.Redis) -> None:
    writer.delete("lab:odd")
    writer.xadd("lab:odd", {"body": b"\xff\xfe not utf-8"})
    writer.xgroup_create("lab:odd", "g", id="0")
    writer.xreadgroup("g", "worker with spaces ü", {"lab:odd": ">"})
    writer.xreadgroup("g", b"bin\xffname", {"lab:odd": "0"})
    with bl.connect("sandbox") as lab:
        consumers = lab.streams.consumers(["lab:odd"])
    assert set(consumers["consumer"]) == {"worker with spaces ü", "bin\\xffname"}


def test_the_lab_refuses_writes(stuck: dict[str, Any], writer: sync_redis.Redis) -> None:
    with bl.connect("sandbox") as lab:
        with pytest.raises(bl.PermissionDenied, match="XACK writes, and this Lab is read-only"):
            lab._loop.run(lab._clients.redis().xack("tasks:queue", "workers", "0-1"))
        with pytest.raises(bl.PermissionDenied, match="EVAL writes"):  # only the lab's own read-only scripts
            lab._loop.run(lab._clients.redis().eval("return redis.call('SET', 'x', '1')", 0))
        smuggled = "EVAL return(redis.call('SET','lab:smuggled','1')) 0"  # redis-py splits the first argument
        with pytest.raises(bl.PermissionDenied, match="EVAL writes"):
            lab._loop.run(lab._clients.redis().execute_command(smuggled, commands.COUNT_SCRIPT))
        assert writer.exists("lab:smuggled") == 0
        with pytest.raises(bl.PermissionDenied, match="read-only"):
            lab.query("UPDATE tasks SET status = 'done'")
        queued = len(stuck["executing"]) + len(stuck["waiting"]) + stuck["pending"]
        assert lab.query("SELECT count(*) AS n FROM tasks WHERE status = 'queued'")["n"][0] == queued == 6
