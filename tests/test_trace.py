"""lab.trace(id): each planted fault traces to the cause the stream and db checks name, a healthy or merely slow
task traces to its stage without alarm, and a trace is bounded, masked, and says "not found" in one line."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import redis as sync_redis

import bsnexus_lab as bl
from bsnexus_lab import runner
from bsnexus_lab.areas.db.trace import id_range
from bsnexus_lab.areas.streams.checks import orchestrator_stopped
from bsnexus_lab.areas.streams.thresholds import StreamThresholds
from bsnexus_lab.cli import main
from bsnexus_lab.errors import EXIT_FINDINGS, EXIT_NO_SUCH_TASK, EXIT_OK, NoSuchTask
from bsnexus_lab.findings import Finding, Severity, flatten, to_text
from bsnexus_lab.sandbox import Sandbox
from tests.running import found


def traced(sandbox: Sandbox, scenario: str, pick: Callable[[dict[str, Any]], str], **thresholds: Any) -> Any:
    facts = sandbox.load(scenario)
    with bl.connect("sandbox", thresholds=thresholds) as lab:
        return facts, lab.trace(pick(facts))


def checks_of(trace: Any) -> dict[str, Finding]:
    return {f.check: f for f in flatten(trace.findings) if f.severity.rank >= Severity.WARNING.rank}


# -- each fault: the same cause, the consumer or reviewer involved, its remedy --------------------------------
def test_a_task_held_by_a_dead_worker(sandbox: Sandbox) -> None:
    facts, trace = traced(sandbox, "stuck-consumer", lambda f: f["task_ids"][1])
    cause = trace.findings[0]
    assert cause.check == "streams.dead_consumer" and cause.severity is Severity.CRITICAL
    assert cause.evidence["consumer"] == facts["dead_consumer"] and cause.evidence["worker_name"] == "worker-gone"
    assert "claim_dead('tasks:queue', 'workers'" in cause.remedy
    assert trace.exit_code == EXIT_FINDINGS and trace.subject.task_id == facts["task_ids"][1]
    assert "Dead consumer" in trace.headline() and trace.facts["status"] == "queued"
    pending = trace.timeline[trace.timeline["event"].str.startswith("tasks:queue ")]
    assert "pending on" in pending["detail"].iloc[0] and "15 min" in pending["detail"].iloc[0]


def test_a_worker_dead_three_minutes_traces_as_dead_now(sandbox: Sandbox) -> None:
    facts, trace = traced(sandbox, "fresh-dead-worker", lambda f: f["task_ids"][0])
    cause = checks_of(trace)["streams.dead_consumer"]
    assert cause.evidence["consumer"] == facts["dead_consumer"] and cause.evidence["worker_heartbeat_age_s"] >= 180


def test_a_misrouted_qa_message_names_holder_and_reviewer(sandbox: Sandbox) -> None:
    facts, trace = traced(sandbox, "misrouted-qa", lambda f: f["task_id"])
    cause = trace.findings[0]
    assert cause.check == "streams.misrouted_qa"
    assert (cause.evidence["holder"], cause.evidence["intended_reviewer"]) == (
        facts["holder"],
        facts["intended_reviewer"],
    )
    assert "streams.poison_message" not in checks_of(trace)  # a misrouted message is not a poison one
    assert trace.facts["status"] == "review"


def test_a_poison_message(sandbox: Sandbox) -> None:
    facts, trace = traced(sandbox, "poison-message", lambda f: f["task_id"])
    cause = checks_of(trace)["streams.poison_message"]
    assert cause.evidence["consumer"] == facts["consumer"] and cause.evidence["deliveries"] == facts["deliveries"]


def test_a_result_stuck_on_pm0_with_its_traceback_from_the_log(sandbox: Sandbox, tmp_path: Path) -> None:
    facts = sandbox.load("stuck-result")
    log = tmp_path / "orchestrator.log"
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S,000")
    log.write_text(
        f"{now} ERROR bsnexus.orchestrator: Failed to process result {facts['entry']} for task {facts['task_id']}\n"
        'Traceback (most recent call last):\n  File "pm.py", line 88, in _process_result\n'
        "ValueError: Invalid transition: done -> review\n"
    )
    with bl.connect("sandbox", log_files=[str(log)], log_timezone="UTC") as lab:
        trace = lab.trace(facts["task_id"][:8])  # a unique prefix is enough
    cause = trace.findings[0]
    assert cause.check == "streams.stuck_on_live_consumer" and cause.evidence["consumer"] == "pm-0"
    assert [e.check for e in cause.explains] == ["logs.result_exception"]
    assert cause.explains[0].evidence["exception"] == "ValueError: Invalid transition: done -> review"
    logged = trace.timeline[trace.timeline["source"] == "logs"]
    assert list(logged["event"]) == ["ERROR bsnexus.orchestrator"]
    assert list(logged["detail"]) == ["orchestrator.log: ValueError: Invalid transition: done -> review"]


def test_a_result_nobody_reads_after_a_restart(sandbox: Sandbox) -> None:
    # The scenario's pm-0 read seconds ago; a zero threshold stands for the minute a real stop takes.
    _, trace = traced(sandbox, "orchestrator-stopped", lambda f: f["task_id"], **{"streams.orchestrator_read_s": 0})
    cause = trace.findings[0]
    assert cause.check == "streams.orchestrator_stopped" and cause.evidence["consumers"] == "pm-0"
    assert "POST /api/v1/pm/{project_id}/start" in cause.remedy
    assert trace.stage["waits_on"] == "orchestrator" and "waiting on tasks:results/pm" in trace.stage["text"]
    assert any(u.check == "trace.profile" for u in trace.findings)  # no process configured: not checked, said


def test_a_lost_publish(sandbox: Sandbox) -> None:
    facts, trace = traced(sandbox, "db-stream-drift", lambda f: f["lost_publish"])
    cause = checks_of(trace)["db.consistency"]
    assert cause.evidence["fault"] == "lost_publish"
    assert [t["task_id"] for t in cause.evidence["tasks"]] == [facts["lost_publish"]]


def test_an_entry_trimmed_while_pending_traces_by_its_id(sandbox: Sandbox) -> None:
    facts = sandbox.load("trimmed-backlog")
    entry = facts["still_pending"][0]
    with bl.connect("sandbox") as lab:
        trace = lab.trace(f"tasks:queue/{entry}")
    bodyless = [f for f in flatten(trace.findings) if f.subject == ("tasks:queue", "workers", "bodyless")]
    assert len(bodyless) == 1 and entry in bodyless[0].evidence["ids"]
    assert "its body is gone (trimmed)" in trace.timeline["detail"].iloc[0]


# -- healthy, busy, slow: where the task is, never an alarm ----------------------------------------------------
def test_a_healthy_in_flight_task_is_executing_on_its_worker(sandbox: Sandbox) -> None:
    facts, trace = traced(sandbox, "healthy", lambda f: f["executing"][0])
    assert trace.facts["status"] == "queued" and trace.facts["worker_id"] is None  # BSNexus's own bookkeeping
    assert trace.stage["text"] == f"executing on worker worker-1 ({facts['live_workers'][0]}) for 4 min"
    assert trace.worst.rank <= Severity.INFO.rank and trace.exit_code == EXIT_OK
    norm = trace.facts["norms"]["queued"]
    assert norm["tasks"] >= 20 and 240 <= norm["median_s"] <= 600  # the sandbox's finished tasks: 4 to 10 min
    assert "usually" in trace.where()


def test_a_task_waiting_for_a_free_worker_on_a_busy_day(sandbox: Sandbox) -> None:
    _, trace = traced(sandbox, "busy", lambda f: f["waiting"][-1])
    assert trace.stage["stage"] == "waiting_for_worker" and "waiting for a free worker" in trace.stage["text"]
    assert trace.worst.rank <= Severity.INFO.rank


def test_a_slow_task_is_said_slow_not_stuck(sandbox: Sandbox) -> None:
    _, trace = traced(sandbox, "slow-task", lambda f: f["task_id"])
    assert trace.stage["slow"] and "for 45 min" in trace.stage["text"] and "worker-2" in trace.stage["text"]
    (slow,) = [f for f in trace.findings if f.check == "trace.slow_stage"]
    assert slow.severity is Severity.INFO and trace.exit_code == EXIT_OK
    assert "slower than usual, but nothing is stuck" in trace.headline()


def test_a_worker_traces_to_what_it_holds(sandbox: Sandbox) -> None:
    facts, trace = traced(sandbox, "stuck-consumer", lambda f: f["dead_consumer"])
    assert trace.subject.worker_id == facts["dead_consumer"]
    assert sorted(trace.facts["tasks"]) == sorted(facts["task_ids"])
    assert trace.findings[0].check == "streams.dead_consumer"


# -- the edges: not found, bounded, masked --------------------------------------------------------------------
@pytest.mark.usefixtures("one_source")
def test_an_unknown_id_says_so_in_one_line(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    sandbox.load("healthy")
    with bl.connect("sandbox") as lab, pytest.raises(NoSuchTask, match="no task, stream entry or worker named"):
        lab.trace("00000000-0000-4000-8000-000000000000")
    assert main(["trace", "deadbeef"]) == EXIT_NO_SUCH_TASK
    out = capsys.readouterr()
    assert out.out == "" and out.err == "bsnexus-lab: no task, stream entry or worker named 'deadbeef' (sandbox)\n"


def test_prefixes() -> None:
    assert id_range("6f1c") == ("6f1c0000-0000-0000-0000-000000000000", "6f1cffff-ffff-ffff-ffff-ffffffffffff")
    assert id_range("6F1C2A4E-9B7D-4E2A-8C1F-0A9B8C7D6E5F") == ("6f1c2a4e-9b7d-4e2a-8c1f-0a9b8c7d6e5f",) * 2
    assert id_range("6f1") is None and id_range("not-hex") is None and id_range("1733212345678-0") is None


@pytest.mark.usefixtures("one_source")
def test_the_cli_prints_one_screen_and_json(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    facts = sandbox.load("stuck-consumer")
    assert main(["trace", facts["task_ids"][0]]) == EXIT_FINDINGS
    screen = capsys.readouterr().out
    assert screen.splitlines()[0].startswith(f"Task {facts['task_ids'][0]} ") and "Timeline (UTC):" in screen
    assert f"bsnexus-lab trace {facts['task_ids'][0]}" not in screen  # no hint to trace what is being traced
    assert main(["trace", facts["task_ids"][0], "--json"]) == EXIT_FINDINGS
    document = json.loads(capsys.readouterr().out)
    assert document["findings"][0]["check"] == "streams.dead_consumer" and document["exit_code"] == EXIT_FINDINGS
    assert {row["source"] for row in document["timeline"]} >= {"postgres", "redis"}


@contextlib.contextmanager
def monitored(sandbox: Sandbox) -> Iterator[list[str]]:
    """Every command the sandbox's Redis executes inside the block (MONITOR, on a connection of its own)."""
    seen: list[str] = []
    client = sync_redis.Redis.from_url(sandbox.urls()["redis_url"], decode_responses=True)
    watching = threading.Event()

    def listen() -> None:
        with client.monitor() as watch:
            watching.set()
            for event in watch.listen():
                if event["command"] == f"ECHO {DONE}":
                    return
                seen.append(event["command"])

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert watching.wait(30)
    try:
        yield seen
    finally:
        client.echo(DONE)
        thread.join(timeout=30)
        client.close()


DONE = "trace-monitor-done"


def test_every_stream_read_of_a_trace_is_bounded(sandbox: Sandbox) -> None:
    facts = sandbox.load("trimmed-backlog")  # 1,000 entries in tasks:queue
    with bl.connect("sandbox") as lab, monitored(sandbox) as commands:
        lab.trace(facts["still_pending"][1])
    reads = [c for c in commands if c.split()[0].upper() in ("XRANGE", "XREVRANGE")]
    assert reads, "the trace read no stream: the proof would prove nothing"
    assert all("COUNT" in c.upper() for c in reads), [c for c in reads if "COUNT" not in c.upper()]
    assert not [c for c in commands if c.split()[0].upper() in ("KEYS", "SCAN", "HGETALL")]


@pytest.mark.usefixtures("one_source")
def test_a_trace_shows_no_secret(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    facts = sandbox.load("stuck-consumer")
    assert main(["trace", facts["task_ids"][0], "--json"]) == EXIT_FINDINGS
    with bl.connect("sandbox") as lab:
        shown = capsys.readouterr().out + lab.trace(facts["task_ids"][0])._repr_html_()
    client = sync_redis.Redis.from_url(sandbox.urls()["redis_url"], decode_responses=True)
    tokens = [key.removeprefix("worker:token:") for key in client.scan_iter("worker:token:*")]
    client.close()
    passwords = [sandbox.urls()[name].split(":")[2].split("@")[0] for name in ("redis_url", "database_url")]
    assert tokens and all(secret not in shown for secret in [*tokens, *passwords, "sk-ant-"])


# -- everywhere a user asks -----------------------------------------------------------------------------------
@pytest.mark.usefixtures("one_source")
def test_the_task_trace_runbook_reports_the_cause(sandbox: Sandbox, tmp_path: Path) -> None:
    facts = sandbox.load("misrouted-qa")
    result = runner.run("task_trace", target="sandbox", params={"task_id": facts["task_id"]}, output_root=tmp_path)
    assert result.exit_code == EXIT_FINDINGS, result.error
    (finding,) = found(result, "streams.misrouted_qa")
    assert finding["evidence"]["holder"] == facts["holder"] and finding["title"] in result.report.read_text()


def test_findings_naming_a_few_tasks_show_the_command_to_trace_them() -> None:
    one = Finding("x.one", Severity.WARNING, "One task", scope=frozenset({"task:abc", "stream:s/g"}))
    many = Finding("x.many", Severity.WARNING, "Many", scope=frozenset(f"task:{n}" for n in range(4)))
    text = to_text([one, many])
    assert "trace: bsnexus-lab trace abc" in text and "bsnexus-lab trace 0" not in text


def test_orchestrator_stopped_needs_waiting_results_and_idle_orchestrators_only() -> None:
    summary = pd.DataFrame(
        [
            {"stream": "tasks:results", "group": "pm", "exists": True, "lag": 2, "oldest_waiting_id": "1-0",
             "oldest_wait_ms": 120_000},
            {"stream": "tasks:queue", "group": "workers", "exists": True, "lag": 2, "oldest_waiting_id": "1-0",
             "oldest_wait_ms": 120_000},
        ]
    )  # fmt: skip
    idle = pd.DataFrame(
        [
            {"stream": "tasks:results", "group": "pm", "consumer": "pm-0", "idle_ms": 90_000},
            {"stream": "tasks:queue", "group": "workers", "consumer": "6f1c2a4e-9b7d-4e2a-8c1f-0a9b8c7d6e5f",
             "idle_ms": 90_000},
        ]
    )  # fmt: skip
    (stopped,) = orchestrator_stopped(summary, idle, StreamThresholds())
    assert stopped.subject == ("tasks:results", "pm") and stopped.evidence["consumer_idle_s"] == 90.0
    reading = idle.assign(idle_ms=[3_000, 90_000])
    assert orchestrator_stopped(summary, reading, StreamThresholds()) == []
    fresh = summary.assign(oldest_wait_ms=[10_000, 10_000])
    assert orchestrator_stopped(fresh, idle, StreamThresholds()) == []
