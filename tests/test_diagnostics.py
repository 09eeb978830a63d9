"""Stream diagnostics on every planted scenario, on every Redis this machine has (7.x and 6.2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis

import bsnexus_lab as bl
from bsnexus_lab.areas.streams import collect, probes
from bsnexus_lab.findings import Finding, Severity, flatten
from bsnexus_lab.sandbox import Sandbox

from .conftest import redis_major


def diagnose(sample_s: float = 0.0) -> list[Finding]:
    """What the stream_backlog runbook collects, then every check. A short window is judged as a long one
    would be (the tests do not wait the default 10 s minimum)."""
    with bl.connect("sandbox", thresholds={"streams.min_window_s": sample_s * 0.8}) as lab:
        frames: dict[str, Any] = {"deps.health": lab.health(), **collect(lab.streams)}
        if sample_s:
            frames["streams.samples"] = lab.streams.sample(every=sample_s / 5, duration=sample_s).wait()
        return lab.check(frames)


def by_check(findings: list[Finding], check: str, group: str | None = None) -> list[Finding]:
    """The findings of ``check`` above OK, explained ones included (optionally about one group)."""
    return [
        f
        for f in flatten(findings)
        if f.check == check and f.severity is not Severity.OK and group in (None, f.evidence.get("group"))
    ]


@pytest.mark.parametrize("scenario", ["healthy", "busy"])
def test_a_busy_healthy_world_raises_nothing_above_info(sandbox: Sandbox, scenario: str) -> None:
    facts = sandbox.load(scenario)
    findings = diagnose(sample_s=2.0)
    assert {f.check for f in findings} >= {"streams.lag_status", "streams.lost_messages", "streams.no_readers"}
    assert [f.title for f in flatten(findings) if f.severity.rank > Severity.INFO.rank] == []
    [saturated] = by_check(findings, "streams.lag_status", "workers")
    waiting = len(facts["waiting"])
    assert saturated.title.startswith(f"tasks:queue/workers is SATURATED: {waiting} entr")
    assert saturated.title.endswith("3 live workers, all busy") and saturated.severity is Severity.INFO


def test_dead_consumer_carries_postgres_evidence(sandbox: Sandbox) -> None:
    facts = sandbox.load("stuck-consumer")
    [dead] = by_check(diagnose(), "streams.dead_consumer")
    assert dead.evidence["consumer"] == facts["dead_consumer"] and dead.evidence["pending"] == 3
    assert dead.evidence["worker_name"] == facts["dead_name"] == "worker-gone"
    # Its heartbeat (15 min) decided, not the idle time: the plan claims what BSNexus already lists offline.
    assert f"min_idle_ms={90 * 1000})" in dead.remedy and dead.severity is Severity.CRITICAL
    assert dead.evidence["worker_row"] == "busy, last heartbeat 15 min ago"
    assert dead.evidence["why"].startswith("key expired and last heartbeat 15 min ago, over the registry TTL")
    assert dead.evidence["tasks"].count("(queued)") == 3
    assert dead.evidence["stalled_projects"].count("tasks waiting") == 3


def test_backlog_growing_is_warn_and_untrimmed_streams_get_no_trim_warning(sandbox: Sandbox) -> None:
    facts = sandbox.load("backlog-growing")
    findings = diagnose(sample_s=2.0)
    [lag] = by_check(findings, "streams.lag_status", "workers")
    assert (lag.evidence["stream"], lag.evidence["group"], lag.evidence["status"]) == ("tasks:queue", "workers", "WARN")
    assert lag.evidence["last_lag"] > lag.evidence["first_lag"] >= facts["backlog"]
    assert findings[0] == lag  # the cause comes first
    # The public backend never trims: an 800-entry backlog is a lag finding, not a trim warning.
    assert by_check(findings, "streams.trim_risk") == []


def test_consumers_stopped_is_stall(sandbox: Sandbox) -> None:
    facts = sandbox.load("consumers-stopped")
    [lag] = by_check(diagnose(sample_s=2.0), "streams.lag_status", "workers")
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
    findings = diagnose()
    lost = by_check(findings, "streams.lost_messages")
    trimmed = [f for f in lost if "trimmed before" in f.title]
    bodyless = [f for f in lost if "no body" in f.title]
    # The two live executors' in-flight tasks and the two entries worker-2 kept lost their bodies.
    assert len(trimmed) == 1 and bodyless[0].evidence["count"] == facts["bodyless"] == 4
    trim = by_check(findings, "streams.trim_risk")
    if redis_major(sandbox) >= 7:
        assert trimmed[0].evidence["lost"] == facts["lost"] == 300
        assert trim[0].evidence["trimmed"] == "observed"  # entries-added exceeds the length
    else:
        assert trimmed[0].evidence["lost"].startswith("unknown") and trim == []  # 6.2 cannot show trimming


def test_pending_is_read_in_pages(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox.load("trimmed-backlog")
    monkeypatch.setattr(probes, "PENDING_PAGE", 2)
    with bl.connect("sandbox") as lab:
        every = lab.streams.pending("tasks:queue", "workers")
        total = lab.streams.summary("tasks:queue").iloc[0]["pending"]
        capped = lab.streams.pending("tasks:queue", "workers", limit=2)
    assert len(every) == total == 4 and every["id"].is_unique
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
    assert set(samples["stream"]) == {"tasks:queue", "tasks:qa", "tasks:results", "tasks:escalation", "events:board"}


def test_remediation_is_a_dry_run_until_writes_are_allowed(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = sandbox.load("stuck-consumer")
    dead, live = facts["dead_consumer"], facts["live_workers"][1]
    with bl.connect("sandbox") as lab:
        plan = lab.streams.claim_dead("tasks:queue", "workers", dead, live)
        assert list(plan["action"]) == ["would claim"] * 3
        strict = lab.streams.claim_dead("tasks:queue", "workers", dead, live, min_idle_ms=20 * 60_000)
        assert all(a.startswith("skipped: idle 9") and a.endswith(" s < min_idle_ms=1200000") for a in strict["action"])
        with pytest.raises(bl.PermissionDenied, match="XCLAIM writes, and this Lab is read-only"):
            lab.streams.claim_dead("tasks:queue", "workers", dead, live, dry_run=False)
    monkeypatch.setenv("BSNEXUS_LAB_RUN_DIR", str(tmp_path))
    with bl.connect("sandbox", allow_writes=True) as lab:
        done = lab.streams.claim_dead("tasks:queue", "workers", dead, live, dry_run=False)
        consumers = lab.streams.consumers("tasks:queue").set_index("consumer")
        acked = lab.streams.ack("tasks:queue", "workers", [*done["id"][:1], "1-1"], dry_run=False)
        journal = lab.journal
    assert list(done["action"]) == ["claimed"] * 3
    assert consumers.loc[dead, "pending"] == 0 and consumers.loc[live, "pending"] == 1 + 3
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
    # 1000 left after the trim, 10 read now, plus the healthy world's waiting task; 300 lost.
    assert (row["lag"], bool(row["lag_exact"]), row["lag_reported"]) == (991, True, 1291)
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
    assert list(plan["action"]) == ["skipped: body gone, re-queue the task and ack"] * 3


def test_a_sampler_stopped_at_once_stops(sandbox: Sandbox) -> None:
    with bl.connect("sandbox") as lab:
        sampler = lab.streams.sample(every=0.1, duration=None)
        sampler.stop()
        assert not sampler.running and len(sampler.stop()) <= len(lab.target.streams) * 4
