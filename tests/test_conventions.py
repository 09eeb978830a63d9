"""A deployment that renamed what BSNexus names: streams, groups, the reviewer field, the orchestrator's
consumer, worker ids that are no UUIDs, a stream trimmed to its own length. The stream checks must follow the
target's conventions, on a real Redis, and call nobody the orchestrator that the target does not name so."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis as sync_redis

import bsnexus_lab as bl
from bsnexus_lab.areas import areas
from bsnexus_lab.config import Conventions, resolve
from bsnexus_lab.findings import Finding, Severity, flatten
from bsnexus_lab.sandbox import Sandbox

RUN, REVIEW, DONE, FEED = "jobs:run", "jobs:review", "jobs:done", "jobs:feed"
CONVENTIONS = Conventions(
    queue_stream=RUN,
    worker_group="runners",
    qa_stream=REVIEW,
    reviewer_group="checkers",
    reviewer_field="assignee",
    worker_consumers=r"runner-\d+",
    orchestrator_consumers=("boss-1",),
    trim_limits={FEED: 10},
)
IDLE_MS = 15 * 60_000


def deliver(writer: sync_redis.Redis, stream: str, group: str, consumer: str, *, deliveries: int = 1) -> list[str]:
    """Everything new on ``stream`` read by ``consumer``, then aged (XCLAIM IDLE/RETRYCOUNT, no waiting)."""
    reply = writer.xreadgroup(group, consumer, {stream: ">"})
    ids = [entry.decode() for _, entries in reply for entry, _ in entries]
    writer.xclaim(stream, group, consumer, 0, ids, idle=IDLE_MS, retrycount=deliveries, justid=True)
    return ids


@pytest.fixture
def renamed(sandbox: Sandbox, writer: sync_redis.Redis) -> Iterator[dict[str, Any]]:
    """The renamed world: a dead runner holding two jobs, a review held by the wrong checker, a result stuck on
    the orchestrator's ``boss-1`` and another on an unknown consumer, a feed backlog near its own trim limit."""
    keys = [RUN, REVIEW, DONE, FEED, "node:runner-1", "node:runner-2"]
    writer.delete(*keys)
    for stream, group in ((RUN, "runners"), (REVIEW, "checkers"), (DONE, "boss"), (FEED, "feeders")):
        writer.xgroup_create(stream, group, id="0", mkstream=True)
    for live in ("runner-1", "runner-2"):
        writer.set(f"node:{live}", "{}", ex=90)  # registry keys of the live runners; runner-7's has expired
    for n in range(2):
        writer.xadd(RUN, {"task_id": f"job-{n}"})
    held = deliver(writer, RUN, "runners", "runner-7")
    writer.xadd(REVIEW, {"task_id": "job-9", "assignee": "runner-1"})
    [misrouted] = deliver(writer, REVIEW, "checkers", "runner-2", deliveries=6)
    writer.xadd(DONE, {"task_id": "job-5"})
    [stuck] = deliver(writer, DONE, "boss", "boss-1")
    writer.xadd(DONE, {"task_id": "job-6"})
    [stranger] = deliver(writer, DONE, "boss", "auditor")
    for n in range(9):
        writer.xadd(FEED, {"n": str(n)})
    yield {"held": held, "misrouted": misrouted, "stuck": stuck, "stranger": stranger}
    writer.delete(*keys)


def by_check(findings: list[Finding]) -> dict[str, list[Finding]]:
    """Findings above OK by check, explained ones included."""
    found: dict[str, list[Finding]] = {}
    for finding in flatten(findings):
        if finding.severity.rank > Severity.OK.rank:
            found.setdefault(finding.check, []).append(finding)
    return found


def test_stream_checks_follow_a_renamed_deployment(renamed: dict[str, Any]) -> None:
    target = resolve(
        "sandbox", streams=(RUN, REVIEW, DONE, FEED), worker_key="node:{consumer}", conventions=CONVENTIONS
    )
    with bl.connect(target, thresholds={"streams.assume_trimming": True}) as lab:
        frames = areas()["streams"].collect(lab.streams)
        found = by_check(lab.check(frames, area="streams"))

    [dead] = found["streams.dead_consumer"]
    assert (dead.evidence["consumer"], dead.evidence["pending"]) == ("runner-7", 2)
    assert (dead.evidence["stream"], dead.evidence["group"]) == (RUN, "runners")
    assert dead.evidence["oldest_pending_id"] == renamed["held"][0] and dead.severity == Severity.CRITICAL

    [misrouted] = found["streams.misrouted_qa"]
    assert misrouted.evidence["id"] == renamed["misrouted"] and misrouted.evidence["deliveries"] == 6
    assert (misrouted.evidence["holder"], misrouted.evidence["intended_reviewer"]) == ("runner-2", "runner-1")
    assert "streams.poison_message" not in found  # its six deliveries are the misrouting, not a poison message

    [stuck] = found["streams.stuck_on_live_consumer"]  # the unknown "auditor" is not called the orchestrator
    assert (stuck.evidence["consumer"], stuck.evidence["id"]) == ("boss-1", renamed["stuck"])
    assert stuck.evidence["task_id"] == "job-5" and stuck.evidence["deliveries"] == 1

    [trim] = found["streams.trim_risk"]
    assert (trim.evidence["stream"], trim.evidence["lag"], trim.evidence["trim_limit"]) == (FEED, 9, 10)


def test_a_worker_group_without_consumers_is_the_workers_not_the_orchestrators(renamed: dict[str, Any]) -> None:
    """no_readers tells the configured worker groups from the orchestrator's in its remedy."""
    target = resolve(
        "sandbox", streams=(RUN, FEED), conventions=CONVENTIONS.model_copy(update={"worker_group": "feeders"})
    )
    with bl.connect(target) as lab:
        [idle] = by_check(lab.streams.check(summary=lab.streams.summary()))["streams.no_readers"]
    assert (idle.evidence["group"], idle.evidence["lag"]) == ("feeders", 9)
    assert "No worker has ever read this group" in idle.remedy


@pytest.fixture
def drift_renamed(sandbox: Sandbox, writer: sync_redis.Redis) -> Iterator[dict[str, Any]]:
    """The db-stream-drift world with its queue and QA streams renamed (groups and pending entries move along)."""
    facts = sandbox.load("db-stream-drift")
    writer.rename("tasks:queue", RUN)
    writer.rename("tasks:qa", REVIEW)
    yield facts
    writer.delete(RUN, REVIEW)


def test_db_consistency_reads_the_renamed_streams(drift_renamed: dict[str, Any]) -> None:
    target = resolve("sandbox", conventions={"queue_stream": RUN, "qa_stream": REVIEW})
    with bl.connect(target) as lab:
        frame = lab.db.consistency()
    faults = {row.fault: row for row in frame.itertuples()}
    assert set(faults) == {"lost_publish", "expired_worker", "missed_ack", "misrouted_qa"}
    assert faults["lost_publish"].task_id == drift_renamed["lost_publish"] and faults["lost_publish"].stream == RUN
    assert faults["missed_ack"].entry_id == drift_renamed["missed_ack"]["entry"] and faults["missed_ack"].stream == RUN
    misrouted = faults["misrouted_qa"]
    assert (misrouted.stream, misrouted.consumer) == (REVIEW, drift_renamed["misrouted_qa"]["holder"])
    assert misrouted.expected_consumer == drift_renamed["misrouted_qa"]["reviewer"]
    with bl.connect("sandbox") as lab:  # BSNexus's names find nothing pending: every queued task looks unpublished
        blind = lab.db.consistency()
    assert set(blind["fault"]) == {"lost_publish", "expired_worker"} and (blind["stream"] == "tasks:queue").any()
