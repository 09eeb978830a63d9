"""Triage: the planted cause ranks first, healthy raises nothing above info, a dead dependency shortens the run."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import bsnexus_lab as bl
from bsnexus_lab import runner, triage
from bsnexus_lab.areas import areas
from bsnexus_lab.errors import EXIT_FINDINGS, EXIT_OK
from bsnexus_lab.findings import Severity, document, flatten
from bsnexus_lab.history import History
from bsnexus_lab.sandbox import Sandbox

QUICK = {"window_s": "1", "every_s": "0.25"}
SAMPLES = areas()["streams"].samples  # the lag samples triage takes and keeps


def profile(directory: Path, name: str, **settings: str) -> None:
    lines = [f"[profiles.{name}]", *(f'{k} = "{v}"' for k, v in settings.items())]
    (directory / "bsnexus-lab.toml").write_text("\n".join(lines) + "\n")


def test_stuck_consumer_ranks_its_planted_cause_first(stuck: dict[str, Any], tmp_path: Path) -> None:
    result = runner.run("triage", target="sandbox", params=QUICK, output_root=tmp_path)
    assert result.exit_code == EXIT_FINDINGS, result.error
    top = document.records(result.run_dir / "findings.json")[0]
    assert top["check"] == "streams.dead_consumer" and top["severity"] == "critical"
    assert top["evidence"]["consumer"] == stuck["dead_consumer"] and top["evidence"]["pending"] == stuck["pending"]
    summary = next(  # the notebook opens with the one-screen summary, naming the cause and what to do
        o["data"]["text/plain"]
        for c in json.loads(result.notebook.read_text())["cells"]
        for o in c.get("outputs", [])
        if "text/html" in o.get("data", {}) and "bsnexus-lab-triage" in "".join(o["data"]["text/html"])
    )
    text = "".join(summary)
    assert text.startswith("Triage of sandbox") and stuck["dead_consumer"] in text and "what to do:" in text
    kept = History(tmp_path).samples(SAMPLES, target="sandbox", since=_epoch())
    assert len(kept) > 0  # the samples joined the history for the next triage


def _epoch() -> datetime:
    return datetime(2000, 1, 1, tzinfo=UTC)


def test_healthy_raises_nothing_above_info_but_the_standing_eviction_risk(
    healthy: dict[str, Any], tmp_path: Path
) -> None:
    result = runner.run("triage", target="sandbox", params=QUICK, output_root=tmp_path)
    assert result.exit_code == EXIT_OK, result.error
    above = [(f.check, f.severity) for f in flatten(result.findings) if f.severity.rank > Severity.INFO.rank]
    assert above == [("server.eviction_risk", Severity.WARNING)]  # BSNexus's compose allkeys-lru, memory free
    assert any(f.check == "streams.dead_consumer" and f.severity is Severity.OK for f in result.findings)


def test_lag_is_judged_over_recent_runs_samples_too(stuck: dict[str, Any], tmp_path: Path) -> None:
    runner.run("triage", target="sandbox", params=QUICK, output_root=tmp_path)
    with bl.connect("sandbox") as lab:
        result = triage.run(lab, window_s=0.5, every_s=0.25, runs_dir=tmp_path)
    assert list(result.own_samples) == [SAMPLES]
    assert len(result.frames[SAMPLES]) > len(result.own_samples[SAMPLES])
    assert result.frames[SAMPLES].index.is_monotonic_increasing


def test_dead_postgresql_shortens_the_run_never_crashes_it(
    sandbox: Sandbox, stuck: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    profile(Path.cwd(), "half", redis_url=sandbox.urls()["redis_url"], database_url="postgresql://lab:pw@127.0.0.1:9/x")
    with bl.connect("half") as lab:
        result = triage.run(lab, window_s=0.5, every_s=0.25, runs_dir=tmp_path)
    [dead] = [f for f in result.findings if f.check == "deps.unreachable"]  # a cause at the top level
    assert dead.severity is Severity.CRITICAL and dead.evidence["url"].endswith("127.0.0.1:9/x")
    assert dead.explains and all("dep:postgresql" in f.scope for f in dead.explains)  # what it kept from checking
    assert "pw" not in repr(result)  # the summary shows the URL redacted
    stream_checks = {f.check for f in flatten(result.findings) if f.check.startswith("streams.")}
    assert "streams.dead_consumer" in stream_checks  # Redis still triaged


def test_dead_redis_skips_what_needs_it(sandbox: Sandbox, tmp_path: Path) -> None:
    profile(Path.cwd(), "noredis", redis_url="redis://127.0.0.1:9/0", database_url=sandbox.urls()["database_url"])
    with bl.connect("noredis") as lab:
        result = triage.run(lab, window_s=0.5, every_s=0.25, runs_dir=tmp_path)
    top = result.findings[0]
    assert top.check == "deps.unreachable" and top.evidence["url"] == "redis://127.0.0.1:9/0"
    [skipped] = [f for f in top.explains if f.check == "streams.skipped"]  # explained by the dead dependency
    assert {"streams.dead_consumer", "streams.lag_status"} <= set(skipped.evidence["checks"])  # what it stands for
    assert all(c.startswith("streams.") for c in skipped.evidence["checks"])
    assert result.own_samples == {}  # no lag samples without Redis


class _Service(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = {
            "/health": {"status": "healthy", "version": "0.1.0"},
            "/health/deps": {"redis": "disconnected", "postgresql": "connected"},
        }
        payload = json.dumps(body.get(self.path, {})).encode()
        self.send_response(200 if self.path in body else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def service() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Service)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_service_reporting_a_dependency_the_lab_reaches_as_disconnected(
    sandbox: Sandbox, healthy: dict[str, Any], service: str, tmp_path: Path
) -> None:
    urls = sandbox.urls()
    profile(Path.cwd(), "svc", redis_url=urls["redis_url"], database_url=urls["database_url"], service_url=service)
    with bl.connect("svc") as lab:
        result = triage.run(lab, window_s=0.5, every_s=0.25, runs_dir=tmp_path)
    top = result.findings[0]  # the service area, collected right after Redis and PostgreSQL
    assert top.check == "service.dependency_down" and top.evidence == {"dependency": "redis"}
    assert list(result.timings)[:2] == ["deps", "service"]


@pytest.mark.parametrize(
    ("scenario", "first", "detail"),
    [
        ("consumers-stopped", "streams.dead_consumer", {"stream": "tasks:queue", "group": "workers"}),
        ("poison-message", "streams.poison_message", {"deliveries": 7}),
        ("trimmed-backlog", "streams.lost_messages", {"stream": "tasks:queue"}),
    ],
)
def test_each_scenario_ranks_its_planted_fault_first(
    sandbox: Sandbox, tmp_path: Path, scenario: str, first: str, detail: dict[str, Any]
) -> None:
    facts = sandbox.load(scenario)
    with bl.connect("sandbox") as lab:
        result = triage.run(lab, window_s=1.5, every_s=0.25, runs_dir=tmp_path)
    top = result.problems()[0]
    assert top.check == first and {k: top.evidence[k] for k in detail} == detail
    if scenario == "poison-message":
        assert top.evidence["id"] == facts["entry"]


def test_a_fresh_dead_worker_is_named_first_on_bsnexus_compose_redis(sandbox: Sandbox, tmp_path: Path) -> None:
    """Key expired, heartbeat 3 min old, entries idle 2.5 min (under dead_consumer_idle_s): the signals agree,
    so triage names the dead worker first, above the compose file's allkeys-lru standing risk."""
    facts = sandbox.load("fresh-dead-worker")
    with bl.connect("sandbox") as lab:
        result = triage.run(lab, window_s=1.0, every_s=0.25, runs_dir=tmp_path)
    top = result.problems()[0]
    assert (top.check, top.severity) == ("streams.dead_consumer", Severity.CRITICAL), top.title
    assert top.evidence["consumer"] == facts["dead_consumer"] and facts["dead_consumer"] in top.title
    assert top.evidence["longest_idle_s"] < 300 <= lab.thresholds.streams.dead_consumer_idle_s
    assert top.evidence["worker_heartbeat_age_s"] > 150
    assert any(f.check == "server.eviction_risk" for f in result.problems())  # there, but ranked below


def test_an_orchestrator_traceback_is_evidence_on_the_result_stuck_on_pm0(
    sandbox: Sandbox, healthy: dict[str, Any], writer: Any, tmp_path: Path
) -> None:
    """A result the orchestrator failed to process stays pending on pm-0; its traceback is in orchestrator.log."""
    entry = writer.xadd("tasks:results", {"task_id": "6f1c2a4e-9b7d-4e2a-8c1f-0a9b8c7d6e5f", "status": "done"}).decode()
    writer.xreadgroup("pm", "pm-0", {"tasks:results": ">"}, count=1)
    writer.xclaim("tasks:results", "pm", "pm-0", 0, [entry], idle=600_000, justid=True)  # idle 10 min, 1 delivery
    logged = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S,000")
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "orchestrator.log").write_text(
        f"{logged} ERROR bsnexus.orchestrator: Failed to process result {entry}\n"
        "Traceback (most recent call last):\n"
        '  File "/app/backend/src/orchestrator/pm.py", line 88, in _process_result\n'
        "ValueError: Invalid transition: done -> review\n"
    )
    urls = sandbox.urls()
    settings = {"redis_url": urls["redis_url"], "database_url": urls["database_url"], "log_timezone": "UTC"}
    profile(Path.cwd(), "withlogs", **settings)
    with (Path.cwd() / "bsnexus-lab.toml").open("a") as handle:
        handle.write(f'log_files = ["{logs}/*.log"]\n')
    with bl.connect("withlogs") as lab:
        result = triage.run(lab, window_s=0.5, every_s=0.25, runs_dir=tmp_path)
    top = result.findings[0]
    assert top.check == "streams.stuck_on_live_consumer" and top.evidence["id"] == entry
    [evidence] = [f for f in top.explains if f.check == "logs.result_exception"]
    assert evidence.evidence["exception"] == "ValueError: Invalid transition: done -> review"
    assert len(result.frames["logs.records"]) == 1
