"""Findings that earn their severity: BSNexus's real failure shapes, causes ranked above the symptoms they
explain, evidence that could not be gathered said out loud, and a busy healthy world that stays quiet."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

import bsnexus_lab as bl
from bsnexus_lab import runner
from bsnexus_lab.errors import EXIT_FINDINGS
from bsnexus_lab.findings import Kind, Severity, document, flatten
from bsnexus_lab.sandbox import Sandbox, servers

from .conftest import redis_major
from .test_diagnostics import by_check, diagnose


def test_misrouted_qa_message_is_its_own_critical_finding_not_poison(sandbox: Sandbox) -> None:
    facts = sandbox.load("misrouted-qa")
    findings = diagnose()
    [misrouted] = by_check(findings, "streams.misrouted_qa")
    assert misrouted.severity is Severity.CRITICAL and misrouted.kind is Kind.CAUSE
    assert misrouted.evidence["id"] == facts["entry"] and misrouted.evidence["task_id"] == facts["task_id"]
    assert misrouted.evidence["intended_reviewer"] == facts["intended_reviewer"]
    assert misrouted.evidence["holder"] == facts["holder"] and misrouted.evidence["deliveries"] == 6
    assert by_check(findings, "streams.poison_message") == []  # six deliveries, but not a poison message
    assert findings[0] == misrouted


def test_a_misrouted_qa_message_can_be_given_to_its_reviewer(sandbox: Sandbox) -> None:
    facts = sandbox.load("misrouted-qa")
    args = ("tasks:qa", "reviewers", facts["holder"], facts["intended_reviewer"])
    with bl.connect("sandbox") as lab:
        plan = lab.streams.claim_dead(*args, ids=[facts["entry"]], min_idle_ms=0)
        assert list(zip(plan["id"], plan["action"], strict=True)) == [(facts["entry"], "would claim")]
    with bl.connect("sandbox", allow_writes=True) as lab:
        done = lab.streams.claim_dead(*args, ids=[facts["entry"]], min_idle_ms=0, dry_run=False)
        moved = lab.streams.pending("tasks:qa", "reviewers", consumer=facts["intended_reviewer"])
    assert list(done["action"]) == ["claimed"] and facts["entry"] in set(moved["id"])


def test_a_result_stuck_on_the_orchestrator_names_its_task(sandbox: Sandbox) -> None:
    facts = sandbox.load("stuck-result")
    findings = diagnose()
    [stuck] = by_check(findings, "streams.stuck_on_live_consumer")
    assert (stuck.severity, stuck.kind) == (Severity.CRITICAL, Kind.CAUSE)
    assert stuck.evidence["consumer"] == facts["consumer"] == "pm-0"
    assert stuck.evidence["id"] == facts["entry"] and stuck.evidence["task_id"] == facts["task_id"]
    assert stuck.evidence["deliveries"] == 1 and stuck.evidence["idle_s"] >= facts["idle_ms"] / 1000
    assert "orchestrator.log" in stuck.remedy
    assert by_check(findings, "streams.dead_consumer") == []  # pm-0 has no registry key by design
    assert findings[0] == stuck


def test_an_evicted_registry_key_of_a_heartbeating_worker_is_a_warning(sandbox: Sandbox) -> None:
    facts = sandbox.load("evicted-registry-key")
    [finding] = by_check(diagnose(), "streams.dead_consumer")
    assert finding.severity is Severity.WARNING
    assert finding.evidence["consumer"] == facts["consumer"] and finding.evidence["worker_name"] == "worker-2"
    assert finding.evidence["worker_key"] == "missing (evicted?)"
    assert "registry key is missing (evicted?)" in finding.title and "maxmemory-policy" in finding.remedy


def test_every_scenario_ranks_its_planted_cause_first(sandbox: Sandbox) -> None:
    expected = {
        "stuck-consumer": "streams.dead_consumer",
        "poison-message": "streams.poison_message",
        "misrouted-qa": "streams.misrouted_qa",
        "stuck-result": "streams.stuck_on_live_consumer",
        "consumers-stopped": "streams.dead_consumer",  # its stopped workers; the STALL is a cause beside it
        "backlog-growing": "streams.lag_status",
        "trimmed-backlog": "streams.lag_status",
    }
    for scenario, check in expected.items():
        sandbox.load(scenario)
        top = diagnose(sample_s=2.0)[0]
        assert (scenario, top.check, top.kind) == (scenario, check, Kind.CAUSE), top.title


def test_messages_lost_to_trimming_sit_under_the_cause_that_let_the_backlog_grow(sandbox: Sandbox) -> None:
    facts = sandbox.load("trimmed-backlog")
    findings = diagnose(sample_s=2.0)
    cause = findings[0]
    assert (cause.check, cause.evidence["group"], cause.evidence["status"]) == (
        "streams.lag_status",
        "workers",
        "SATURATED",
    )
    explained = {f.title for f in cause.explains}
    assert any("no body" in t for t in explained) and cause.effective is Severity.CRITICAL
    top_level = [f for f in findings if f.check == "streams.lost_messages" and f.severity is not Severity.OK]
    assert top_level == []  # not a separate, unrelated critical
    [lost] = [f for f in cause.explains if "trimmed before" in f.title]
    if redis_major(sandbox) >= 7:  # 6.2 can only suspect the loss (a warning)
        assert lost.severity is Severity.CRITICAL and lost.evidence["lost"] == facts["lost"]


def test_postgres_evidence_that_cannot_be_gathered_is_said(sandbox: Sandbox) -> None:
    sandbox.load("stuck-consumer")
    redis_url = sandbox.urls()["redis_url"]
    closed = f"postgresql://bsnexus:x@127.0.0.1:{servers.free_port()}/bsnexus"
    for database_url, severity, words in (
        (closed, Severity.WARNING, "cannot reach PostgreSQL"),
        (None, Severity.INFO, "no database configured"),
    ):
        settings: dict[str, Any] = {"redis_url": redis_url} | ({"database_url": database_url} if database_url else {})
        with bl.connect(**settings) as lab:
            consumers = lab.streams.consumers()
            held = lab.streams.held_tasks(consumers)
            found = lab.streams.check(consumers=consumers, held=held)
        [evidence] = by_check(found, "streams.held_evidence")
        assert evidence.severity is severity and words in evidence.title and "3 held entries" in evidence.title
        [dead] = by_check(found, "streams.dead_consumer")
        assert dead.severity is Severity.CRITICAL  # key gone and no heartbeat to say otherwise


def test_the_report_shows_symptoms_under_their_cause(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.load("trimmed-backlog")
    result = runner.run(
        "stream_backlog", target="sandbox", params={"duration_s": "10", "every_s": "1"}, output_root=tmp_path
    )
    assert result.exit_code == EXIT_FINDINGS, result.error
    [top, *_] = document.records(result.run_dir / "findings.json")
    assert (top["check"], top["kind"], top["evidence"]["status"]) == ("streams.lag_status", "cause", "SATURATED")
    assert {e["check"] for e in top["explains"]} >= {"streams.lost_messages"}
    assert 'class="sev-critical explained"' in result.report.read_text()


@pytest.mark.long
def test_the_healthy_world_stays_healthy_after_minutes_of_traffic(sandbox_root: tuple[Sandbox, str]) -> None:
    """Past the registry keys' 90 s TTL and the once-a-minute PostgreSQL heartbeat, with work moving on."""
    sandbox, source = sandbox_root
    if source != next(s for s in servers.SOURCES if s in _available()):
        pytest.skip("traffic, not the server version, is under test: one source is enough")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BSNEXUS_LAB_STATE_DIR", str(sandbox.root))
        facts = sandbox.load("healthy")
        time.sleep(100)
        findings = diagnose(sample_s=2.0)
        with bl.connect("sandbox") as lab:
            consumers = lab.streams.consumers()
            beats = lab.query("SELECT max(now() - last_heartbeat) AS oldest FROM workers WHERE name LIKE 'worker-%'")
    assert [f.title for f in flatten(findings) if f.severity.rank > Severity.INFO.rank] == []
    live = consumers[consumers["consumer"].isin(facts["live_workers"])]
    assert live["registered"].all()
    assert beats["oldest"][0].total_seconds() < 90  # rewritten once a minute by the heartbeat
    assert set(consumers.loc[consumers["pending"] > 0, "consumer"]) <= set(facts["live_workers"]) | {"pm-0"}


def _available() -> set[str]:
    redis = {b.source for b in servers.redis_binaries()}
    return {b.source for b in servers.postgres_bindirs()} & redis


def test_an_account_that_may_not_run_scripts_gets_estimates_with_a_note(sandbox: Sandbox, writer: Any) -> None:
    sandbox.load("stuck-consumer")
    writer.acl_setuser(
        "labread",
        enabled=True,
        passwords=["+labread-pw"],
        keys=["*"],
        commands=["+@read", "+@connection", "+info", "+client|setname", "-@scripting"],
    )
    try:
        port = sandbox.urls()["redis_url"].rsplit(":", 1)[1].split("/")[0]
        with bl.connect(redis_url=f"redis://labread:labread-pw@127.0.0.1:{port}/0") as lab:
            summary = lab.streams.summary()
    finally:
        writer.acl_deluser("labread")
    queue = summary[(summary["stream"] == "tasks:queue") & (summary["group"] == "workers")].iloc[0]
    assert queue["pending"] == 5 and queue["lag"] >= 1
    # 7.x falls back on the lag it reports; 6.2 reports none, so there the lag is an estimate.
    assert bool(queue["lag_exact"]) is (redis_major(sandbox) >= 7)
    [note] = [n for n in summary.attrs["notes"] if n.startswith("lag on tasks:queue is estimated")]
    assert "refused the lab's read-only counting script" in note and "no permissions" in note
