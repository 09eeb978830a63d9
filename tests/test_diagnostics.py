"""Stream diagnostics on every planted scenario, on every Redis this machine has (7.x and 6.2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis

import bsnexus_lab as bl
from bsnexus_lab.areas.streams import probes
from bsnexus_lab.findings import Finding, Severity
from bsnexus_lab.sandbox import Sandbox

from .conftest import redis_major


def diagnose(sample_s: float = 0.0) -> list[Finding]:
    """What the stream_backlog runbook collects, then every check."""
    with bl.connect("sandbox") as lab:
        consumers = lab.streams.consumers()
        pending = lab.streams.pending()
        poison = lab.thresholds.streams.poison_deliveries
        frames: dict[str, Any] = {
            "deps.health": lab.health(),
            "streams.summary": lab.streams.summary(),
            "streams.consumers": consumers,
            "streams.pending": pending,
            "streams.held": lab.streams.held_tasks(consumers),
            "streams.bodies": lab.streams.bodies(pending[pending.deliveries >= poison]),
        }
        if sample_s:
            frames["streams.samples"] = lab.streams.sample(every=sample_s / 5, duration=sample_s).wait()
        return lab.check(frames)


def by_check(findings: list[Finding], check: str) -> list[Finding]:
    return [f for f in findings if f.check == check and f.severity is not Severity.OK]


def test_healthy_raises_nothing_above_info(sandbox: Sandbox) -> None:
    sandbox.load("healthy")
    findings = diagnose(sample_s=1.5)
    assert {f.check for f in findings} >= {"streams.lag_status", "streams.lost_messages", "streams.no_readers"}
    assert [f.title for f in findings if f.severity.rank > Severity.INFO.rank] == []


def test_dead_consumer_carries_postgres_evidence(sandbox: Sandbox) -> None:
    facts = sandbox.load("stuck-consumer")
    [dead] = by_check(diagnose(), "streams.dead_consumer")
    assert dead.evidence["consumer"] == facts["dead_consumer"] and dead.evidence["pending"] == 3
    assert dead.evidence["worker_row"].startswith("busy, last heartbeat") and "(stale)" in dead.evidence["worker_row"]
    assert dead.evidence["tasks"].count("(queued)") == 3
    assert dead.evidence["stalled_projects"].count("tasks waiting") == 3


def test_backlog_growing_is_warn_and_near_the_trim_limit(sandbox: Sandbox) -> None:
    facts = sandbox.load("backlog-growing")
    findings = diagnose(sample_s=2.0)
    [lag] = by_check(findings, "streams.lag_status")
    assert (lag.evidence["stream"], lag.evidence["group"], lag.evidence["status"]) == ("tasks:queue", "workers", "WARN")
    assert lag.evidence["last_lag"] > lag.evidence["first_lag"] >= facts["backlog"]
    [trim] = by_check(findings, "streams.trim_risk")
    assert trim.evidence["lag"] >= facts["backlog"] and trim.evidence["trim_limit"] == 1000


def test_consumers_stopped_is_stall(sandbox: Sandbox) -> None:
    facts = sandbox.load("consumers-stopped")
    [lag] = by_check(diagnose(sample_s=1.5), "streams.lag_status")
    assert (lag.severity, lag.evidence["status"]) == (Severity.CRITICAL, "STALL")
    assert lag.evidence["first_lag"] >= facts["backlog"]


def test_poison_message_shows_its_body(sandbox: Sandbox) -> None:
    facts = sandbox.load("poison-message")
    [poison] = by_check(diagnose(), "streams.poison_message")
    assert poison.evidence["id"] == facts["entry"] and poison.evidence["deliveries"] == 7
    assert poison.evidence["consumer"] == facts["consumer"]
    assert facts["task_id"] in poison.evidence["body"] and '"files": ["src/ind' in poison.evidence["body"]


def test_trimmed_backlog_counts_lost_and_bodyless_entries(sandbox: Sandbox) -> None:
    facts = sandbox.load("trimmed-backlog")
    lost = by_check(diagnose(), "streams.lost_messages")
    trimmed = [f for f in lost if "trimmed before" in f.title]
    bodyless = [f for f in lost if "no body" in f.title]
    assert len(trimmed) == 1 and bodyless[0].evidence["count"] == facts["bodyless"] == 3
    if redis_major(sandbox) >= 7:
        assert trimmed[0].evidence["lost"] == facts["lost"] == 300
    else:
        assert trimmed[0].evidence["lost"].startswith("unknown")


def test_pending_is_read_in_pages(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox.load("trimmed-backlog")
    monkeypatch.setattr(probes, "PENDING_PAGE", 2)
    with bl.connect("sandbox") as lab:
        every = lab.streams.pending("tasks:queue", "workers")
        total = lab.streams.summary("tasks:queue").iloc[0]["pending"]
        capped = lab.streams.pending("tasks:queue", "workers", limit=2)
    assert len(every) == total == 3 and every["id"].is_unique
    assert list(every.columns) == probes.PENDING_COLUMNS and len(capped) == 2


def test_peek_decodes_bodies_safely(sandbox: Sandbox, writer: sync_redis.Redis) -> None:
    writer.delete("lab:peek")
    good = writer.xadd("lab:peek", {"data": json.dumps({"a": [1, 2]}), "name": "plain", "raw": b"\xff\xfeok"})
    writer.set("lab:string", "x")
    with bl.connect("sandbox") as lab:
        [row] = lab.streams.peek("lab:peek").to_dict("records")
        missing = lab.streams.peek("lab:peek", [good.decode(), "1-1"])
        with pytest.raises(bl.NotFound, match="no stream named 'lab:nope'"):
            lab.streams.peek("lab:nope")
        with pytest.raises(bl.WrongType, match="'lab:string' is a string"):
            lab.streams.peek("lab:string")
    assert row["data"] == {"a": [1, 2]} and row["name"] == "plain" and row["raw"] == "\\xff\\xfeok"
    assert list(missing["exists"]) == [True, False]


def test_sampler_records_one_round_trip_per_tick(sandbox: Sandbox) -> None:
    sandbox.load("healthy")
    with bl.connect("sandbox") as lab:
        lab.streams.summary()  # connect first
        before = lab.counters.round_trips
        sampler = lab.streams.sample(every=0.2, duration=0.8)
        samples = sampler.wait()
        assert lab.counters.round_trips - before == 5  # ticks at 0, 0.2, 0.4, 0.6, 0.8 s
        assert sampler.stop() is not None and not sampler.running  # stopping twice is fine
    assert samples.index.is_monotonic_increasing and samples["error"].isna().all()
    assert set(samples["stream"]) == set(bl.Target.model_fields["streams"].default)


def test_remediation_is_a_dry_run_until_writes_are_allowed(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = sandbox.load("stuck-consumer")
    dead, live = facts["dead_consumer"], facts["live_workers"][1]
    with bl.connect("sandbox") as lab:
        plan = lab.streams.claim_dead("tasks:queue", "workers", dead, live)
        assert list(plan["action"]) == ["would claim"] * 3
        with pytest.raises(bl.PermissionDenied, match="XCLAIM writes, and this Lab is read-only"):
            lab.streams.claim_dead("tasks:queue", "workers", dead, live, dry_run=False)
    monkeypatch.setenv("BSNEXUS_LAB_RUN_DIR", str(tmp_path))
    with bl.connect("sandbox", allow_writes=True) as lab:
        done = lab.streams.claim_dead("tasks:queue", "workers", dead, live, dry_run=False)
        consumers = lab.streams.consumers("tasks:queue").set_index("consumer")
        acked = lab.streams.ack("tasks:queue", "workers", [*done["id"][:1], "1-1"], dry_run=False)
        journal = lab.journal
    assert list(done["action"]) == ["claimed"] * 3
    assert consumers.loc[dead, "pending"] == 0 and consumers.loc[live, "pending"] == 3
    assert list(acked["action"]) == ["acked", "skipped: not pending"]
    assert [entry["action"] for entry in journal] == ["claim", "ack"]
    written = [json.loads(line) for line in (tmp_path / "writes.jsonl").read_text().splitlines()]
    assert written[0]["ids"] == sorted(done["id"]) and written[1]["acknowledged"] == 1


def test_loss_stays_visible_after_the_group_reads_past_the_trim_point(
    sandbox: Sandbox, writer: sync_redis.Redis
) -> None:
    facts = sandbox.load("trimmed-backlog")
    if redis_major(sandbox) < 7:
        pytest.skip("Redis 6.2 keeps no counters to count a loss with")
    writer.xreadgroup("workers", facts["live_workers"][0], {"tasks:queue": ">"}, count=10)
    with bl.connect("sandbox") as lab:
        row = lab.streams.summary("tasks:queue").iloc[0]
    assert (row["lag"], bool(row["lag_exact"]), row["lag_reported"]) == (990, True, 1290)
    [lost] = [f for f in by_check(diagnose(), "streams.lost_messages") if "trimmed before" in f.title]
    assert lost.evidence["lost"] == 300


def test_claiming_checks_the_recipient_and_leaves_bodyless_entries(sandbox: Sandbox) -> None:
    facts = sandbox.load("trimmed-backlog")
    holder, other = facts["live_workers"][1], facts["live_workers"][0]
    with bl.connect("sandbox") as lab:
        plan = lab.streams.claim_dead("tasks:queue", "workers", holder, other, min_idle_ms=0)
        with pytest.raises(bl.NotFound, match="no consumer 'nobody' in tasks:queue/workers"):
            lab.streams.claim_dead("tasks:queue", "workers", holder, "nobody")
        with pytest.raises(bl.LabError, match="dead consumer itself"):
            lab.streams.claim_dead("tasks:queue", "workers", holder, holder)
    assert list(plan["action"]) == ["skipped: body gone, re-queue the task and ack"] * 2


def test_a_sampler_stopped_at_once_stops(sandbox: Sandbox) -> None:
    with bl.connect("sandbox") as lab:
        sampler = lab.streams.sample(every=0.1, duration=None)
        sampler.stop()
        assert not sampler.running and len(sampler.stop()) <= len(lab.target.streams) * 4
