"""Runbooks through papermill: artefacts, exit statuses, parameter checking, secret hygiene."""

from __future__ import annotations

import asyncio
import json
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import nbformat
import pytest

from bsnexus_lab import RunbookError, runbooks, runner
from bsnexus_lab.cli.run import parse_fail_on
from bsnexus_lab.errors import EXIT_FAILED, EXIT_FINDINGS, EXIT_OK
from bsnexus_lab.execute import Outcome
from bsnexus_lab.findings import Finding, Kind, Severity, document, not_checked
from bsnexus_lab.sandbox import Sandbox
from bsnexus_lab.verdict import NO_FINDINGS, Verdict, judge
from tests.running import parameters_cell, write_runbook

QUICK = {"duration_s": "1", "every_s": "0.25"}  # sample briefly: the suite stays fast


def passwords(sandbox: Sandbox) -> list[str]:
    from urllib.parse import urlsplit

    return [urlsplit(url).password or "" for url in sandbox.urls().values()]


def test_stream_backlog_reports_the_dead_consumer(stuck: dict[str, Any], tmp_path: Path, sandbox: Sandbox) -> None:
    result = runner.run(
        "stream_backlog", target="sandbox", params={"idle_threshold_s": "60", **QUICK}, output_root=tmp_path
    )
    assert result.exit_code == EXIT_FINDINGS, result.error
    top = document.records(result.run_dir / "findings.json")[0]
    assert top["check"] == "streams.dead_consumer" and top["severity"] == "critical"
    assert top["evidence"]["consumer"] == stuck["dead_consumer"] and top["evidence"]["pending"] == 3
    report = result.report.read_text()
    summary = report[report.index('id="bsnexus-lab-summary"') : report.index("</header>")]
    assert stuck["dead_consumer"] in summary and "holds 3 pending entries" in summary
    assert "import bsnexus_lab" not in report  # code hidden
    manifest = json.loads((result.run_dir / "run.json").read_text())
    assert manifest["parameters"] == {"idle_threshold_s": 60.0, "duration_s": 1.0, "every_s": 0.25, "target": "sandbox"}
    assert manifest["exit_code"] == 1 and manifest["worst"] == "critical"
    executed = nbformat.read(result.notebook, as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    outputs = [o for c in executed.cells for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the backlog plot rendered
    for artefact in result.run_dir.iterdir():
        assert not any(p in artefact.read_text() for p in passwords(sandbox)), artefact.name


def test_threshold_parameter_changes_the_verdict(stuck: dict[str, Any], sandbox: Sandbox, tmp_path: Path) -> None:
    """idle_threshold_s decides only without a heartbeat in PostgreSQL (with one, the heartbeat says dead at once):
    a worker row that never heartbeated, entries idle 15 min, judged at one hour, is not dead yet."""
    asyncio.run(_never_heartbeated(sandbox, stuck["dead_consumer"]))
    params = {"idle_threshold_s": 3600, "target": "sandbox", **QUICK}  # the target as a parameter works like --target
    result = runner.run("stream_backlog", params=params, output_root=tmp_path)
    assert result.exit_code == EXIT_OK, [f.title for f in result.findings]
    assert all(f.severity.rank <= Severity.INFO.rank for f in result.findings)  # saturation, short window: info


async def _never_heartbeated(sandbox: Sandbox, worker_id: str) -> None:
    dsn = sandbox.urls()["database_url"].replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("UPDATE workers SET last_heartbeat = NULL WHERE id = $1::uuid", worker_id)
    finally:
        await connection.close()


def test_fail_on_critical_only(sandbox: Sandbox, tmp_path: Path) -> None:
    """A world whose worst finding is a warning (an evicted registry key): it fails at warning, not at critical."""
    sandbox.load("evicted-registry-key")
    critical = runner.run(
        "stream_backlog", target="sandbox", params=QUICK, fail_on=Severity.CRITICAL, output_root=tmp_path
    )
    warning = runner.run(
        "stream_backlog", target="sandbox", params=QUICK, fail_on=Severity.WARNING, output_root=tmp_path
    )
    for result in (critical, warning):
        assert json.loads((result.run_dir / "run.json").read_text())["worst"] == "warning", result.error
    assert (critical.exit_code, warning.exit_code) == (EXIT_OK, EXIT_FINDINGS)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"idle": "5"},
            r"unknown parameter 'idle': accepted: target: str = \"\", streams: list\[str\] = \[\], idle_threshold_s",
        ),
        ({"idle_threshold_s": "soon"}, "parameter idle_threshold_s expects float, got 'soon'"),
        ({"target": "redis://:pw@host:6379"}, "carries a password"),
        ({"every_s": "0.01"}, r"parameter every_s='0.01' is out of range: a sampling interval must be at least 0.1 s"),
    ],
)
def test_bad_parameters_are_refused_before_a_kernel_starts(params: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(RunbookError, match=message):
        runner.run("stream_backlog", params=params, output_root=tmp_path)
    assert not any(tmp_path.iterdir())


def test_unknown_runbook_lists_the_known_ones() -> None:
    with pytest.raises(RunbookError, match=r"no runbook named 'nope'.*stream_backlog"):
        runbooks.find("nope")


def test_failing_notebook_exits_2_and_keeps_the_evidence(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    books = tmp_path / "books"
    write_runbook(books, "broken", [parameters_cell(), "print('before')", "1 / 0"])
    monkeypatch.setenv("BSNEXUS_LAB_RUNBOOKS", str(books))
    result = runner.run("broken", target="sandbox", output_root=tmp_path / "runs")
    assert result.exit_code == EXIT_FAILED
    assert "ZeroDivisionError" in (result.error or "")
    executed = nbformat.read(result.notebook, as_version=4)
    assert executed.cells[-1].outputs[0]["ename"] == "ZeroDivisionError"
    assert "The runbook failed" in result.report.read_text()


def test_a_runbook_that_writes_journals_into_its_run_directory(
    stuck: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    books = tmp_path / "books"
    claim = (
        "import bsnexus_lab as bl\n"
        "with bl.connect(target, allow_writes=True) as lab:\n"
        "    lab.streams.claim_dead('tasks:queue', 'workers', dead, to, dry_run=False)\n"
        "    bl.emit(lab.check({'deps.health': lab.health()}))"
    )
    write_runbook(books, "claim", [parameters_cell('target: str = ""\nto: str = ""\ndead: str = ""'), claim])
    monkeypatch.setenv("BSNEXUS_LAB_RUNBOOKS", str(books))
    params_given = {"to": stuck["live_workers"][0], "dead": stuck["dead_consumer"]}
    result = runner.run("claim", target="sandbox", params=params_given, output_root=tmp_path / "runs")
    assert result.exit_code == EXIT_OK, result.error
    [written] = [json.loads(line) for line in (result.run_dir / "writes.jsonl").read_text().splitlines()]
    assert (written["action"], written["from_consumer"], len(written["ids"])) == ("claim", stuck["dead_consumer"], 3)


def test_the_verdict_decides_status_and_exit_code_once() -> None:
    ran = Outcome(started=0.0, ended=1.0)
    backlog = Finding("streams.backlog", Severity.WARNING, "A backlog grows", subject=("tasks:queue",))
    cause = Finding("streams.dead_consumer", Severity.INFO, "-", kind=Kind.CAUSE, explains=(backlog,))
    risk = Finding("server.eviction_policy", Severity.CRITICAL, "-", kind=Kind.CONFIG)
    assert judge([cause], ran) == Verdict("findings", EXIT_FINDINGS)  # an explained finding counts
    assert judge([cause], ran, fail_on=Severity.CRITICAL) == Verdict("ok", EXIT_OK)
    assert judge([risk], ran).exit_code == EXIT_OK and judge([risk], ran, fail_on_config=True).exit_code == 1
    acked = judge([cause], ran, acks={backlog.key: Severity.WARNING})
    assert (acked.exit_code, acked.acknowledged) == (EXIT_OK, (backlog.key,))
    worse = replace(backlog, severity=Severity.CRITICAL)
    assert judge([worse], ran, acks={backlog.key: Severity.WARNING}).exit_code == EXIT_FINDINGS  # worse than acked
    assert judge([cause], ran, previous={backlog.key}).exit_code == EXIT_OK  # --fail-on new: not new
    assert judge([cause], ran, previous={"streams.backlog:tasks:qa"}).exit_code == EXIT_FINDINGS
    assert judge([], ran) == Verdict("failed", EXIT_FAILED, NO_FINDINGS)
    for failure in ("failed", "timed-out", "dead-kernel"):
        assert judge([cause], replace(ran, failure=failure, error="why")) == Verdict(failure, EXIT_FAILED, "why")
    stopped = replace(ran, failure="interrupted", error="interrupted by SIGTERM", signum=signal.SIGTERM)
    assert judge([cause], stopped) == Verdict("interrupted", 143, "interrupted by SIGTERM")


def test_not_checked_fails_a_run_only_when_asked() -> None:
    ran = Outcome(started=0.0, ended=1.0)
    blind = not_checked("db.skipped", "locks skipped", area="db", reason="no pg_monitor", severity=Severity.CRITICAL)
    quiet = Finding("streams.dead_consumer", Severity.OK, "none found")
    assert judge([quiet, blind], ran) == Verdict("ok", EXIT_OK)  # whatever its severity, it is no result
    assert judge([quiet, blind], ran, fail_on_not_checked=True) == Verdict("findings", EXIT_FINDINGS)
    info = replace(blind, severity=Severity.INFO)  # counts at any severity once asked for
    assert judge([info], ran, fail_on=Severity.CRITICAL, fail_on_not_checked=True).exit_code == EXIT_FINDINGS
    assert judge([info], ran, fail_on_not_checked=True, previous={info.key}).exit_code == EXIT_OK  # not new
    assert judge([info], ran, fail_on_not_checked=True, acks={info.key: Severity.INFO}).exit_code == EXIT_OK
    assert parse_fail_on([]) == (Severity.WARNING, False, False)
    assert parse_fail_on(["critical", "not-checked"]) == parse_fail_on(["critical,not-checked"])
    assert parse_fail_on(["critical,not-checked"]) == (Severity.CRITICAL, False, True)
    assert parse_fail_on(["new"]) == (Severity.WARNING, True, False)
    for wrong in (["warning,critical"], ["nope"]):
        with pytest.raises(RunbookError):
            parse_fail_on(wrong)
