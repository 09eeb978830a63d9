"""The CLI end to end: the demo a newcomer runs first, and `target show`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bsnexus_lab.cli import main
from bsnexus_lab.sandbox import Sandbox


def test_demo_names_the_dead_consumer(sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    facts = sandbox.facts()
    assert f"CRITICAL Dead consumer {facts['dead_consumer']} (worker-gone) holds 3 pending entries" in out
    report = next(tmp_path.rglob("report.html"))
    assert f"run directory: {report.parent} (findings)" in out and f"report:        {report}" in out
    assert facts["dead_consumer"] in report.read_text()


def test_target_show_masks_and_explains(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["target", "show"]) == 0
    out = capsys.readouterr().out
    assert "redis://:***@127.0.0.1:" in out and "[profile sandbox (" in out
    assert all(p not in out for p in (u.split(":")[2].split("@")[0] for u in sandbox.urls().values()))


def test_scenario_command_prints_planted_facts(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "scenario", "stuck-consumer"]) == 0
    out = capsys.readouterr().out
    assert "pending: 3" in out and sandbox.facts()["dead_consumer"] in out


def test_run_list_shows_parameters(capsys: pytest.CaptureFixture[str], stuck: dict[str, Any]) -> None:
    assert main(["run", "--list"]) == 0
    assert "-p idle_threshold_s: float = 300.0" in capsys.readouterr().out


def test_help_states_the_exit_statuses_and_the_default_fail_on(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    assert "(default: warning)" in text and "exit statuses:" in text
    for status in (
        "0    done",
        "1    run: a finding",
        "2    the command could not",
        "3    run: the same",
        "130  run: interrupted",
    ):
        assert status in text
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("bsnexus-lab ")


def test_role_sql_grants_reads_and_no_write(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["target", "role-sql"]) == 0
    out = capsys.readouterr().out
    assert "GRANT pg_monitor TO bsnexus_lab;" in out and "GRANT SELECT ON projects, phases, tasks," in out
    assert "registration_tokens" not in out.split("-- no grant")[0] and "api_keys" not in out.split("-- no grant")[0]
    acl = [line for line in out.splitlines() if line.startswith("ACL SETUSER")]
    assert len(acl) == 2 and "+eval_ro" in acl[0] and "+eval " in acl[1] and "+info" in acl[0]
    for write in ("+set ", "+del ", "+xack", "+xclaim", "+xautoclaim", "+eval ", "+config|set"):
        assert write not in acl[0] + " ", write
