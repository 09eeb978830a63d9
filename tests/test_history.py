"""The run history: every run indexed, diffs across runs, acks, --fail-on new, locks, timeouts, dead kernels.

Every test runs on both backends: the default ``runs/history.sqlite`` and a shared PostgreSQL history
(``BSNEXUS_LAB_HISTORY_URL``, a database of its own in the tests' PostgreSQL).
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nbformat
import psycopg
import pytest

from bsnexus_lab import execute, runner
from bsnexus_lab.cli import main
from bsnexus_lab.errors import EXIT_FAILED, EXIT_FINDINGS, EXIT_OK, RunbookBusy
from bsnexus_lab.findings import Finding, Severity, document
from bsnexus_lab.history import History, parse_duration, parse_time, redact_parameters
from bsnexus_lab.sandbox import Sandbox
from tests.conftest import HISTORY_PASSWORD, _sources
from tests.running import parameters_cell, write_runbook

QUICK = {"duration_s": "1", "every_s": "0.25", "idle_threshold_s": "60"}


@pytest.fixture(params=["sqlite", "postgresql"], autouse=True)
def backend(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, sandbox_root: tuple[Sandbox, str], _isolated: None
) -> str:
    """The history backend under test: the default SQLite file, or a shared PostgreSQL history (in the first
    server source's PostgreSQL: the history does not depend on the target's server build)."""
    if request.param == "postgresql":
        if sandbox_root[1] != _sources()[0]:
            pytest.skip("the PostgreSQL history: tested with the first server source only")
        monkeypatch.setenv("BSNEXUS_LAB_HISTORY_URL", request.getfixturevalue("history_url"))
    return str(request.param)


def dump(runs: Path) -> str:
    """Every row the history holds, as text, whichever backend holds it."""
    url = os.environ.get("BSNEXUS_LAB_HISTORY_URL")
    if url is None:
        with sqlite3.connect(runs / "history.sqlite") as db:
            return "".join(db.iterdump())
    with psycopg.connect(url) as db:
        tables = ("runs", "findings", "samples", "acks", "key_aliases")
        return "".join(str(row) for table in tables for row in db.execute(f"SELECT t::text FROM bsnexus_lab.{table} t"))


def tiny_runbook(directory: Path, name: str, *cells: str) -> None:
    """A runbook of a parameters cell and ``cells``, found through BSNEXUS_LAB_RUNBOOKS."""
    write_runbook(directory, name, [parameters_cell('target: str = ""\napi_token: str = ""'), *cells])


def test_keys_durations_and_redaction() -> None:
    dead = Finding("streams.dead_consumer", Severity.CRITICAL, "-", {"pending": 3}, subject=("tasks:queue", "w1"))
    assert dead.key == "streams.dead_consumer:tasks:queue/w1"
    assert Finding("db.privileges", Severity.WARNING, "-", {"table": "tasks"}).key == "db.privileges"  # no ':'
    assert parse_duration("30d") == timedelta(days=30) and parse_duration("15m") == timedelta(minutes=15)
    now = datetime(2026, 11, 29, 12, tzinfo=UTC)
    assert parse_time("1h", now) == datetime(2026, 11, 29, 11, tzinfo=UTC)
    assert parse_time("2026-11-29T10:00", now) == datetime(2026, 11, 29, 10, tzinfo=UTC)
    assert redact_parameters({"api_token": "s3cret", "target": "prod", "password": ""}) == {
        "api_token": "***",
        "target": "prod",
        "password": "",
    }


def test_fixed_then_rerun_shows_the_finding_resolved(
    sandbox: Sandbox, stuck: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    first = runner.run("stream_backlog", target="sandbox", params=QUICK, output_root=runs)
    assert first.exit_code == EXIT_FINDINGS
    sandbox.load("healthy")  # the fix
    second = runner.run("stream_backlog", target="sandbox", params=QUICK, output_root=runs)
    assert second.exit_code == EXIT_OK
    index = History(runs)
    listed = index.runs(target="sandbox")
    assert list(listed["id"]) == [second.run_dir.name, first.run_dir.name]
    assert list(listed["status"]) == ["ok", "findings"] and listed.iloc[1]["critical"] >= 1
    assert listed.iloc[0]["revision"]  # the runbook's commit
    environment = index.run(first.run_dir.name)["environment"]
    import redis

    with redis.Redis.from_url(sandbox.urls()["redis_url"], decode_responses=True) as plain:
        policy = plain.config_get("maxmemory-policy")["maxmemory-policy"]
    assert environment["redis_version"].startswith(("6.", "7.")) and environment["maxmemory_policy"] == policy
    assert environment["postgresql_version"] and environment["alembic_revision"]
    key = f"streams.dead_consumer:tasks:queue/workers/{stuck['dead_consumer']}"
    changes = index.diff(first.run_dir.name, second.run_dir.name).set_index("key")
    assert changes.loc[key, "change"] == "resolved" and changes.loc[key, "before"] == "critical"

    assert main(["runs", "diff", first.run_dir.name, second.run_dir.name, "--runs-dir", str(runs)]) == 0
    printed = capsys.readouterr().out
    assert "resolved" in printed and key in printed
    assert main(["runs", "--runs-dir", str(runs), "--runbook", "stream_backlog"]) == 0
    assert first.run_dir.name in capsys.readouterr().out
    assert main(["runs", "show", "nope", "--runs-dir", str(runs)]) == 2

    # no password from the target in any file under runs/, the database included
    from urllib.parse import urlsplit

    secrets = [urlsplit(u).password for u in sandbox.urls().values() if urlsplit(u).password]
    assert secrets
    secrets += [HISTORY_PASSWORD, "h1st%40ry"]  # the shared history's, raw and percent-encoded
    for path in runs.rglob("*"):
        if path.is_file():
            assert not any(s.encode() in path.read_bytes() for s in secrets), path
    assert not any(s in dump(runs) for s in secrets)


def keys_in(findings: list[dict[str, Any]], cause: str | None = None) -> list[tuple[str, str | None]]:
    """(key, key of the cause it is nested under) of every finding in findings.json's dicts, at any depth."""
    pairs = []
    for finding in findings:
        pairs += [(finding["key"], cause), *keys_in(finding["explains"], finding["key"])]
    return pairs


def stored_keys(index: History, run_id: str) -> list[tuple[str, str | None]]:
    """(key, cause) of every finding row of a run in the history."""
    return [(row["key"], row["cause"] or None) for row in index.findings(run_id).fillna("").to_dict("records")]


def test_the_key_in_findings_json_is_the_key_in_the_history(
    sandbox: Sandbox, stuck: dict[str, Any], tmp_path: Path
) -> None:
    # PostgreSQL down: its unreachability explains the held entries' missing evidence (a nested finding)
    dead_database = "postgresql://lab:pw@127.0.0.1:9/x"
    (Path.cwd() / "bsnexus-lab.toml").write_text(
        f'[profiles.half]\nredis_url = "{sandbox.urls()["redis_url"]}"\ndatabase_url = "{dead_database}"\n'
    )
    result = runner.run("stream_backlog", target="half", params=QUICK, output_root=tmp_path / "runs")
    assert result.exit_code == EXIT_FINDINGS, result.error
    written = keys_in(document.records(result.run_dir / "findings.json"))
    assert ("streams.held_evidence", "deps.unreachable:postgresql") in written  # nested ones are compared too
    stored = stored_keys(History(tmp_path / "runs"), result.run_dir.name)
    assert sorted(written, key=str) == sorted(stored, key=str)
    assert (f"streams.dead_consumer:tasks:queue/workers/{stuck['dead_consumer']}", None) in stored


@pytest.mark.usefixtures("one_source")
def test_ack_silences_until_worse_and_fail_on_new(
    sandbox: Sandbox, writer: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    import asyncio

    from tests.test_guard import superuser

    facts = sandbox.load("evicted-registry-key")  # a worker still heartbeating lost its key: a warning
    runs = tmp_path / "runs"
    monkeypatch.setenv("BSNEXUS_LAB_RUNS_DIR", str(runs))
    first = runner.run("stream_backlog", target="sandbox", params=QUICK)
    assert first.exit_code == EXIT_FINDINGS and (runs / "history.sqlite").is_file() == (backend == "sqlite")
    # the same findings again: --fail-on new passes, since the previous run had them all
    again = runner.run("stream_backlog", target="sandbox", params=QUICK, fail_on_new=True)
    assert again.exit_code == EXIT_OK
    keys = set(History(runs).findings(again.run_dir.name).query("severity in ('warning', 'critical')")["key"])
    for key in keys:
        assert (
            main(["ack", key, "--for", "7d", "--why", "known: worker host decommissioned", "--target", "sandbox"]) == 0
        )
    acked = runner.run("stream_backlog", target="sandbox", params=QUICK)
    assert acked.exit_code == EXIT_OK
    assert set(json.loads((acked.run_dir / "run.json").read_text())["acknowledged"]) == keys
    assert main(["ack", "nope:x", "--for", "1d", "--why", "-", "--target", "sandbox"]) == 2
    # worse: the worker stops heartbeating (its row 15 min old, the traffic's once-a-minute write held off), so
    # the same finding turns critical, and its ack, given at warning, no longer silences it
    [dead] = [key for key in keys if key.startswith("streams.dead_consumer")]
    writer.set(f"worker:db_heartbeat:{facts['consumer']}", "1", ex=600)
    stale = f"UPDATE workers SET last_heartbeat = now() - interval '15 minutes' WHERE id = '{facts['consumer']}'"
    asyncio.run(superuser(sandbox, stale, script=True))
    worse = runner.run("stream_backlog", target="sandbox", params=QUICK)
    assert worse.exit_code == EXIT_FINDINGS, worse.error
    assert History(runs).findings(acked.run_dir.name).set_index("key").loc[dead, "severity"] == "warning"
    assert History(runs).findings(worse.run_dir.name).set_index("key").loc[dead, "severity"] == "critical"
    assert set(json.loads((worse.run_dir / "run.json").read_text())["acknowledged"]) == keys - {dead}


@pytest.mark.usefixtures("one_source")
def test_one_run_per_runbook_and_target_and_stale_locks_clear(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tiny_runbook(tmp_path / "books", "quick", "print('hello')")
    monkeypatch.setenv("BSNEXUS_LAB_RUNBOOKS", str(tmp_path / "books"))
    with execute.exclusive("sandbox", "quick") as lock:
        with pytest.raises(RunbookBusy, match=r"runbook quick is already running on target sandbox \(pid \d+"):
            runner.run("quick", target="sandbox", output_root=tmp_path / "runs")
        assert main(["run", "quick", "--target", "sandbox", "--output-dir", str(tmp_path / "runs")]) == 3
    assert not (tmp_path / "runs").exists()  # refused before anything was written
    lock.write_text("pid 999999 since 2026-11-29T00:00:00Z")  # what a killed run leaves behind
    result = runner.run("quick", target="sandbox", output_root=tmp_path / "runs")
    assert result.error == "the runbook emitted no findings (no bl.emit(...) cell ran)"  # it ran: the lock cleared
    assert "cleared a lock left by a run that did not finish (pid 999999" in capsys.readouterr().err


@pytest.mark.long
@pytest.mark.usefixtures("one_source")
def test_whole_run_timeout_and_dead_kernel_are_recorded(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny_runbook(tmp_path / "books", "slow", "print('started')", "import time\ntime.sleep(120)")
    tiny_runbook(
        tmp_path / "books", "crash", "print('started')", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"
    )
    monkeypatch.setenv("BSNEXUS_LAB_RUNBOOKS", str(tmp_path / "books"))
    runs = tmp_path / "runs"
    slow = runner.run("slow", target="sandbox", output_root=runs, timeout_s=20)  # room to start on a loaded machine
    crash = runner.run("crash", target="sandbox", output_root=runs, params={"api_token": "tok-123"})
    index = History(runs)
    assert index.run(slow.run_dir.name)["status"] == "timed-out" and slow.exit_code == EXIT_FAILED
    assert index.run(crash.run_dir.name)["status"] == "dead-kernel" and crash.exit_code == EXIT_FAILED
    partial = nbformat.read(slow.notebook, as_version=4)
    assert partial.cells[-2].outputs[0]["text"] == "started\n"  # the partial notebook is kept
    assert index.run(crash.run_dir.name)["parameters"]["api_token"] == "***"
    assert "tok-123" not in dump(runs) and "crash" in dump(runs)


def test_prune_forgets_old_runs_and_their_directories(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for stamp, name in (("2026-01-01T00:00:00+00:00", "old"), (datetime.now(UTC).isoformat(), "new")):
        run_dir = runs / "stream_backlog" / name
        run_dir.mkdir(parents=True)
        manifest = {"runbook": "stream_backlog", "target": {"name": "prod"}, "started": stamp, "exit_code": 0}
        (run_dir / "run.json").write_text(json.dumps(manifest))
        History(runs).record(run_dir)
    assert main(["runs", "prune", "--keep", "30d", "--runs-dir", str(runs)]) == 0
    assert list(History(runs).runs()["id"]) == ["new"] and not (runs / "stream_backlog" / "old").exists()


@pytest.mark.usefixtures("one_source")
def test_a_run_killed_midway_is_recorded_as_interrupted_with_its_partial_notebook(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import contextlib
    import os
    import signal
    import subprocess
    import sys
    import time

    tiny_runbook(tmp_path / "books", "slow", "print('started')", "import time\ntime.sleep(120)")
    runs = tmp_path / "runs"
    env = {**os.environ, "BSNEXUS_LAB_RUNBOOKS": str(tmp_path / "books")}
    command = [sys.executable, "-m", "bsnexus_lab", "run", "slow", "--target", "sandbox", "--output-dir", str(runs)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until the first cell's output is in the partial notebook
        partial = list(runs.glob("slow/*/.executing.ipynb"))
        with contextlib.suppress(ValueError, FileNotFoundError, IndexError):
            if partial and json.loads(partial[0].read_text())["cells"][-2]["outputs"]:
                break
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    [row] = History(runs).runs().to_dict("records")
    assert row["status"] == "interrupted"
    executed = nbformat.read(Path(row["run_dir"]) / "notebook.ipynb", as_version=4)
    assert executed.cells[-2].outputs[0]["text"] == "started\n"


# -- a history written before findings were keyed by Finding.key -------------------------------------------------
OLD_SCHEMA = """
CREATE TABLE runs (
    id TEXT PRIMARY KEY, runbook TEXT, revision TEXT, target TEXT, target_redis TEXT, target_database TEXT,
    parameters TEXT, started TEXT, ended TEXT, status TEXT, exit_code INTEGER, error TEXT,
    ok INTEGER, info INTEGER, warning INTEGER, critical INTEGER, environment TEXT, run_dir TEXT
);
CREATE TABLE findings (
    run_id TEXT REFERENCES runs(id) ON DELETE CASCADE, key TEXT, check_id TEXT, severity TEXT, title TEXT,
    kind TEXT, cause TEXT, evidence TEXT
);
CREATE TABLE samples (run_id TEXT REFERENCES runs(id) ON DELETE CASCADE, name TEXT, rows TEXT);
CREATE TABLE acks (key TEXT, target TEXT, severity TEXT, until TEXT, why TEXT, created TEXT, PRIMARY KEY (key, target));
"""
OLD_SUBJECT_FIELDS = ("stream", "group", "consumer", "table", "pid", "key", "dependency", "logger", "shape")
LEGACY = """import bsnexus_lab as bl
from bsnexus_lab.findings import Finding, Kind, Severity

backlog = Finding("streams.backlog", Severity.WARNING, "A backlog grows", {"stream": "tasks:queue"}, kind=Kind.SYMPTOM)
bl.emit([
    Finding("streams.stalled", Severity.CRITICAL, "Nobody reads", {"stream": "tasks:queue", "group": "workers"},
            kind=Kind.CAUSE, explains=(backlog,)),
    Finding("db.privileges", Severity.WARNING, "The lab's role may write"),
])"""


def old_key(finding: dict[str, Any]) -> str:
    """The key the history used to store: check, ':', the subject or else the evidence's subject fields."""
    subject = finding["subject"] or [
        str(finding["evidence"][f]) for f in OLD_SUBJECT_FIELDS if f in finding["evidence"]
    ]
    return f"{finding['check']}:{'/'.join(subject)}"


def write_old_history(runs: Path, run_dirs: list[Path], ack: str) -> None:
    """``runs``'s index as the old code wrote it: its runs, their findings one level deep under old keys, an ack."""
    with sqlite3.connect(runs / "history.sqlite") as db:
        db.row_factory = sqlite3.Row
        rows = [dict(r) for r in db.execute("SELECT * FROM runs ORDER BY started")]
    for row in rows:
        del row["host"]  # version 2's column
    (runs / "history.sqlite").unlink()
    with sqlite3.connect(runs / "history.sqlite") as db:
        db.executescript(OLD_SCHEMA)
        for row, run_dir in zip(rows, run_dirs, strict=True):
            db.execute(f"INSERT INTO runs VALUES ({', '.join('?' * len(row))})", list(row.values()))
            for finding in document.records(run_dir / "findings.json"):
                for written, cause in [(finding, None), *((f, old_key(finding)) for f in finding["explains"])]:
                    db.execute(
                        "INSERT INTO findings VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (row["id"], old_key(written), written["check"], written["severity"], written["title"],
                         written["kind"], cause, json.dumps(written["evidence"])),
                    )  # fmt: skip
        until = (datetime.now(UTC) + timedelta(days=7)).isoformat()
        db.execute("INSERT INTO acks VALUES (?, 'sandbox', 'warning', ?, 'known', ?)", (ack, until, until))
    assert sqlite3.connect(runs / "history.sqlite").execute("PRAGMA user_version").fetchone()[0] == 0


@pytest.mark.usefixtures("one_source")
def test_an_old_history_keeps_working_after_the_upgrade(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    if backend == "postgresql":
        pytest.skip("an old history is a SQLite file: a PostgreSQL history starts at the current schema")
    tiny_runbook(tmp_path / "books", "legacy", LEGACY)
    monkeypatch.setenv("BSNEXUS_LAB_RUNBOOKS", str(tmp_path / "books"))
    runs = tmp_path / "runs"
    first = runner.run("legacy", target="sandbox", output_root=runs)
    second = runner.run("legacy", target="sandbox", output_root=runs)
    assert first.exit_code == second.exit_code == EXIT_FINDINGS, first.error
    write_old_history(runs, [first.run_dir, second.run_dir], ack="db.privileges:")
    (second.run_dir / "findings.json").unlink()  # pruned evidence: its keys come from the first run, or lose ':'

    index = History(runs)
    new = [("streams.stalled", None), ("streams.backlog", "streams.stalled"), ("db.privileges", None)]
    for run in (first, second):
        assert stored_keys(index, run.run_dir.name) == new
    assert index.resolve("streams.stalled:tasks:queue/workers") == "streams.stalled"
    assert index.resolve("db.privileges:") == "db.privileges" and index.resolve("db.privileges") == "db.privileges"
    assert set(index.acks("sandbox")) == {"db.privileges"}

    # the first --fail-on new run after the upgrade: nothing is new
    assert runner.run("legacy", target="sandbox", output_root=runs, fail_on_new=True).exit_code == EXIT_OK
    # the ack made on the old key silences the finding; the critical one still counts
    acked = runner.run("legacy", target="sandbox", output_root=runs, fail_on=Severity.WARNING)
    assert acked.exit_code == EXIT_FINDINGS
    assert json.loads((acked.run_dir / "run.json").read_text())["acknowledged"] == ["db.privileges"]
    # a key quoted from an old report, RCA notebook or postmortem still names the finding
    old = "streams.stalled:tasks:queue/workers"
    for key in (old, "streams.backlog:tasks:queue"):
        assert main(["ack", key, "--for", "1d", "--why", "INC-41", "--target", "sandbox", "--runs-dir", str(runs)]) == 0
    assert set(History(runs).acks("sandbox")) == {"db.privileges", "streams.stalled", "streams.backlog"}
    assert runner.run("legacy", target="sandbox", output_root=runs).exit_code == EXIT_OK
    seen = History(runs).timeline(since=datetime(2020, 1, 1, tzinfo=UTC), until=datetime.now(UTC)).set_index("key")
    assert seen.loc["streams.stalled", "runs"] == 5 and old not in seen.index  # one finding across the upgrade
    assert History(runs).latest_severity(old, "sandbox") == "critical"


# -- a check that could not look: "not checked", never resolved, never new when it can look again ----------------
LOOKS = """import bsnexus_lab as bl
from bsnexus_lab.findings import Finding, Severity, not_checked

if severity:
    bl.emit([Finding("demo.stuck", Severity(severity), f"3 entries stuck ({severity})", subject=("w1",))])
else:  # the probe could not look: the checks it feeds stand not checked
    bl.emit([not_checked("demo.skipped", "demo not checked: Redis did not answer", area="demo",
                         reason="Redis did not answer", checks=["demo.stuck"])])"""


@pytest.mark.usefixtures("one_source")
def test_a_finding_that_could_not_be_checked_is_not_checked_never_resolved_nor_new(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(tmp_path / "books", "looks", [parameters_cell('target: str = ""\nseverity: str = ""'), LOOKS])
    monkeypatch.setenv("BSNEXUS_LAB_RUNBOOKS", str(tmp_path / "books"))
    runs = tmp_path / "runs"
    key = "demo.stuck:w1"

    def run(severity: str, *fail_on: str) -> tuple[int, str]:
        args = ["run", "looks", "--target", "sandbox", "--output-dir", str(runs), f"-pseverity={severity}"]
        code = main([*args, *(a for value in fail_on for a in ("--fail-on", value))])
        return code, History(runs).runs().iloc[0]["id"]

    found, first = run("warning")
    assert found == EXIT_FINDINGS
    # could not look: by default that fails no run; --fail-on not-checked (beside a severity) makes it
    assert run("", "critical", "not-checked")[0] == EXIT_FINDINGS
    blind, second = run("")
    assert blind == EXIT_OK
    index = History(runs)
    assert index.unchecked(second) == {"demo.stuck"}
    changes = index.diff(first, second).set_index("key")
    assert (changes.loc[key, "change"], changes.loc[key, "before"]) == ("not checked", "warning")
    assert list(changes.index) == [key]  # the not-checked finding itself is no appeared problem
    # two runs that could not look later, the finding is still not new: its key was carried over them
    assert run("warning", "new")[0] == EXIT_OK
    assert run("critical", "new,not-checked")[0] == EXIT_OK  # same key, still not new
    capsys.readouterr()
    assert main(["runs", "diff", first, second, "--runs-dir", str(runs)]) == 0
    printed = capsys.readouterr().out
    assert f"not checked warning    3 entries stuck (warning)\n            key: {key}" in printed
    assert "resolved" not in printed
    assert main(["runs", "show", second, "--runs-dir", str(runs)]) == 0
    assert "UNCHECKED demo not checked: Redis did not answer\n" in capsys.readouterr().out
    assert main(["run", "looks", "--target", "sandbox", "--fail-on", "warning,critical"]) == 2
    assert "one severity only" in capsys.readouterr().err
