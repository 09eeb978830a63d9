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
    assert dead["max_pending_idle_ms"] >= 900_000
    assert not dead["registered"]
    live = consumers[consumers["consumer"].isin(stuck["live_workers"])]
    assert live["registered"].all() and (live["registry_ttl_s"] <= 90).all()
    top = findings[0]
    assert (top.check, top.severity) == ("streams.dead_consumer", Severity.CRITICAL)
    assert top.evidence["consumer"] == stuck["dead_consumer"] and top.evidence["pending"] == 3
    assert top.target == "sandbox"


def held_for(writer: sync_redis.Redis, stream: str, idles_ms: list[int]) -> list[str]:
    """A consumer ``c`` of group ``g`` holding one entry per idle time, in id order; the entries' ids."""
    writer.delete(stream)
    ids = [writer.xadd(stream, {"n": str(n)}).decode() for n in range(len(idles_ms))]
    writer.xgroup_create(stream, "g", id="0")
    writer.xreadgroup("g", "c", {stream: ">"})
    for entry, idle in zip(ids, idles_ms, strict=True):
        writer.xclaim(stream, "g", "c", 0, [entry], idle=idle, justid=True)
    return ids


def test_a_redelivered_old_id_does_not_hide_entries_idle_for_15_minutes(
    sandbox: Sandbox, writer: sync_redis.Redis
) -> None:
    """A consumer's age is its longest-idle entry: its lowest id was just re-read, the others idle 15 min."""
    ids = held_for(writer, "lab:aged", [2_000, 900_000, 600_000])
    with bl.connect("sandbox") as lab:
        consumer = row(lab.streams.consumers("lab:aged"), consumer="c")
        summary = row(lab.streams.summary("lab:aged"), group="g")
    assert consumer["oldest_pending_id"] == ids[0]  # the lowest id, idle 2 s
    assert consumer["longest_idle_id"] == ids[1] and 900_000 <= consumer["max_pending_idle_ms"] < 960_000
    assert consumer["max_pending_idle_ms"] <= summary["max_pending_idle_ms"] < 960_000  # the group's figure too


def test_the_longest_idle_past_the_first_entries_is_paged_and_bounded(
    sandbox: Sandbox, writer: sync_redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the first IDLE_PEEK entries, XPENDING IDLE pages find the idler ones, at most pending_scan_limit."""
    monkeypatch.setattr(probes, "IDLE_PEEK", 2)
    monkeypatch.setattr(probes, "PENDING_PAGE", 2)
    minutes = [1, 2, 3, 4, 5, 15, 6]  # the idlest entry is the sixth: the first look sees only two
    ids = held_for(writer, "lab:many", [m * 60_000 for m in minutes])
    with bl.connect("sandbox") as lab:
        full = row(lab.streams.consumers("lab:many"), consumer="c")
    with bl.connect("sandbox", thresholds={"streams.pending_scan_limit": 4}) as lab:
        lab.streams.consumers("lab:many")  # connecting costs a handshake of its own: count only the probe's
        before = lab.counters.round_trips
        bounded = row(lab.streams.consumers("lab:many"), consumer="c")
        trips = lab.counters.round_trips - before
    assert full["longest_idle_id"] == ids[5] and full["max_pending_idle_ms"] >= 15 * 60_000
    # Bounded: two entries at first look, then one page of two idler ones (the 3rd and 4th), no further.
    assert bounded["longest_idle_id"] == ids[3] and 4 * 60_000 <= bounded["max_pending_idle_ms"] < 5 * 60_000
    assert trips == 4  # XINFO GROUPS, XINFO CONSUMERS, the first look (with PTTLs), one IDLE page


def test_a_fresh_dead_worker_is_dead_before_dead_consumer_idle_s(sandbox: Sandbox) -> None:
    """Key expired, heartbeat 3 min old by PostgreSQL's clock, entries idle 2.5 min: dead now, named first."""
    facts = sandbox.load("fresh-dead-worker")
    with bl.connect("sandbox") as lab:
        assert facts["idle_ms"] < lab.thresholds.streams.dead_consumer_idle_s * 1000
        consumers = lab.streams.consumers()
        held = lab.streams.held_tasks(consumers)
        findings = lab.streams.check(consumers=consumers, held=held)
    assert set(held["consumer"]) == {facts["dead_consumer"]}
    assert (held["worker_heartbeat_age_s"] >= facts["heartbeat_age_s"]).all()
    assert (held["worker_heartbeat_age_s"] < facts["heartbeat_age_s"] + 120).all()
    top = findings[0]
    assert (top.check, top.severity) == ("streams.dead_consumer", Severity.CRITICAL)
    assert top.evidence["consumer"] == facts["dead_consumer"] and top.evidence["worker_name"] == "worker-fresh"
    assert top.evidence["pending"] == facts["pending"] == 2 and top.evidence["worker_key"] == "expired"
    assert top.title.startswith(f"Dead consumer {facts['dead_consumer']} (worker-fresh) holds 2 pending entries")
    assert "min_idle_ms=90000)" in top.remedy
    assert top.evidence["tasks"].count("(queued)") == 2


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
        with pytest.raises(bl.PermissionDenied, match="not one of the lab's read-only scripts"):
            lab._loop.run(lab._clients.redis().eval("return redis.call('SET', 'x', '1')", 0))
        smuggled = "EVAL return(redis.call('SET','lab:smuggled','1')) 0"  # redis-py splits the first argument
        with pytest.raises(bl.PermissionDenied, match="not one of the lab's read-only scripts"):
            lab._loop.run(lab._clients.redis().execute_command(smuggled, commands.COUNT_SCRIPT))
        assert writer.exists("lab:smuggled") == 0
        with pytest.raises(bl.PermissionDenied, match="reads only, not UPDATE"):
            lab.query("UPDATE tasks SET status = 'done'")
        queued = len(stuck["executing"]) + len(stuck["waiting"]) + stuck["pending"]
        assert lab.query("SELECT count(*) AS n FROM tasks WHERE status = 'queued'")["n"][0] == queued == 6
