"""Safe to point at production: every runbook is read-only (proven on the servers' own counters), and
runbooks share a target without stepping on each other.

The proof runs on a sandbox where nothing else writes (`sandbox traffic stop`): Redis's ``INFO commandstats``
must show no command the server itself classes as a write (``COMMAND INFO``: the ``write`` flag or the
``@write`` category) and, on 7.x, scripts only through ``EVAL_RO``/``EVALSHA_RO``; PostgreSQL's log
(``log_statement = 'mod'``) must show no modifying statement and ``pg_stat_user_tables`` no inserted, updated or
deleted row. A positive control shows both detectors do see a write. So that a run that never reached
PostgreSQL proves nothing by accident, ``pg_stat_statements`` must show the statements of the runbooks that read it.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis as sync_redis

from bsnexus_lab import clients, runbooks, runner, sampler
from bsnexus_lab.areas.db.thresholds import DbThresholds
from bsnexus_lab.areas.keys.thresholds import KeysThresholds
from bsnexus_lab.areas.profile import access, pyspy
from bsnexus_lab.areas.service import probes as service
from bsnexus_lab.areas.streams import probes as streams
from bsnexus_lab.areas.streams.remediation import CLAIM_BATCH
from bsnexus_lab.areas.streams.thresholds import StreamThresholds
from bsnexus_lab.cli import main
from bsnexus_lab.clients import APPLICATION_NAME
from bsnexus_lab.errors import EXIT_BUSY, EXIT_FINDINGS, EXIT_OK
from bsnexus_lab.sandbox import Sandbox
from bsnexus_lab.sandbox.servers import LOG_APP_PREFIX
from tests.conftest import _sources, redis_major
from tests.running import wait_for

# Every runbook, with parameters that keep it short; a new runbook must be added here (and so proven).
QUICK: dict[str, dict[str, str]] = {
    "stream_backlog": {"duration_s": "2", "every_s": "0.5"},
    "redis_health": {"duration_s": "2", "every_s": "0.5"},
    "db_health": {"window_s": "2", "every_s": "0.5"},
    "triage": {"window_s": "2"},
    "cpu_profile": {"duration_s": "2"},
    "memory_growth": {"duration_s": "3"},
    "task_trace": {},  # no task_id: a task a dead worker holds, else the oldest active task
}
ON_THE_SERVICE = {"cpu_profile", "memory_growth"}  # profiling does not depend on the server build
# What a runbook itself reads from PostgreSQL (beyond the reachability ping and the runner's environment facts,
# which every run sends): a relation its statements name and nothing else in the quiet sandbox reads.
READS_POSTGRES = {"db_health": "pg_stat_activity", "triage": "pg_stat_activity"}


def test_every_runbook_is_proven() -> None:
    assert set(QUICK) == set(runbooks.available())


@pytest.fixture(scope="module")
def quiet(sandbox_root: tuple[Sandbox, str]) -> Iterator[Sandbox]:
    """A busy healthy world (with the service, so profiling runbooks have a process), then every writer stopped."""
    box, _ = sandbox_root
    box.load("healthy")
    box.start_service()
    box.stop_traffic()
    assert not box.traffic_running()
    yield box
    box.stop_service()
    box.load("healthy")  # its traffic starts again with the world


def delivered(writer: sync_redis.Redis, entry: bytes) -> bool:
    """Has the orchestrator's group (``pm`` on tasks:results) read ``entry``?"""
    group = next(g for g in writer.xinfo_groups("tasks:results") if g["name"] == b"pm")
    last = group["last-delivered-id"]
    return tuple(map(int, last.split(b"-"))) >= tuple(map(int, entry.split(b"-")))


@pytest.mark.usefixtures("one_source")
def test_traffic_stop_stops_every_writer_and_start_resumes_them(
    healthy: dict[str, Any], sandbox: Sandbox, writer: sync_redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    url = sandbox.start_service()
    try:
        httpx.post(f"{url}/api/v1/pm/{uuid.uuid4()}/start", timeout=10).raise_for_status()
        first = writer.xadd("tasks:results", {"task_id": "before"})
        wait_for(lambda: delivered(writer, first), "the orchestrator reads a result", timeout=30)
        assert main(["sandbox", "traffic", "stop"]) == 0
        assert capsys.readouterr().out == "traffic    stopped\n" and not sandbox.traffic_running()
        paused = writer.xadd("tasks:results", {"task_id": "while stopped"})
        time.sleep(3)  # three of the orchestrator's 1 s blocking reads: nobody takes it
        assert not delivered(writer, paused)
        assert main(["sandbox", "traffic", "start"]) == 0
        assert capsys.readouterr().out == "traffic    running\n" and sandbox.traffic_running()
        wait_for(lambda: delivered(writer, paused), "the orchestrator reads again", timeout=30)
    finally:
        sandbox.stop_service()


class Writes:
    """What the servers saw written since ``start()``: by their own classification, not by the lab's."""

    def __init__(self, box: Sandbox) -> None:
        self.box = box
        self.redis = sync_redis.Redis.from_url(box.urls()["redis_url"], decode_responses=True)
        self.log = box.root / "postgres" / "postgres.log"

    def start(self) -> None:
        self.redis.config_resetstat()
        self.log_offset = self.log.stat().st_size
        self.rows = self._rows_changed()
        self.calls = self._statement_calls()

    def redis_commands(self) -> dict[str, int]:
        """Commands run since start (subcommands as ``xinfo|stream`` on 7.x), with their call counts."""
        stats = self.redis.info("commandstats")
        return {name.removeprefix("cmdstat_"): value["calls"] for name, value in stats.items()}

    def redis_writes(self) -> set[str]:
        names = [name for name in self.redis_commands() if name != "config|resetstat"]
        info = self.redis.execute_command("COMMAND", "INFO", *names)
        return {
            name
            for name, spec in info.items()
            if spec and ("write" in spec["flags"] or "@write" in spec.get("acl_categories", []))
        }

    def postgres_statements(self) -> list[str]:
        """Modifying statements PostgreSQL logged since start, from any session (nothing else runs)."""
        with self.log.open("rb") as log:
            log.seek(self.log_offset)
            lines = log.read().decode(errors="replace").splitlines()
        return [line for line in lines if " LOG:  statement: " in line or " LOG:  execute " in line]

    def postgres_reads(self) -> set[str]:
        """Statements (as pg_stat_statements normalises them) run since start, from any session."""
        return {query for query, calls in self._statement_calls().items() if calls > self.calls.get(query, 0)}

    def postgres_rows(self) -> int:
        return self._rows_changed() - self.rows

    def _rows_changed(self) -> int:
        sql = "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables"
        return int(self._fetch(sql)[0][0])

    def _statement_calls(self) -> dict[str, int]:
        return dict(self._fetch("SELECT query, sum(calls)::bigint FROM pg_stat_statements GROUP BY query"))

    def _fetch(self, sql: str) -> list[Any]:
        async def fetch() -> list[Any]:
            conn = await asyncpg.connect(self.box.urls()["database_url"].replace("+asyncpg", ""))
            try:
                return [tuple(row) for row in await conn.fetch(sql)]
            finally:
                await conn.close()

        return asyncio.run(fetch())


@pytest.fixture
def writes(quiet: Sandbox, sandbox: Sandbox) -> Iterator[Writes]:
    seen = Writes(quiet)
    yield seen
    seen.redis.close()


def settled(writes: Writes) -> int:
    """Rows changed, once PostgreSQL's statistics have caught up with sessions that just ended (bounded)."""
    for _ in range(20):
        if changed := writes.postgres_rows():
            return changed
        time.sleep(0.25)
    return 0


def test_the_detectors_see_a_write(writes: Writes) -> None:
    """The control: a write from a session named like the lab's is seen by all three counters."""
    writes.start()
    writes.redis.set("lab:control", "1", ex=60)

    async def write() -> None:
        url = writes.box.urls()["database_url"].replace("+asyncpg", "")
        conn = await asyncpg.connect(url, server_settings={"application_name": APPLICATION_NAME})
        try:
            await conn.execute("UPDATE settings SET value = value WHERE key = 'sandbox.fault'")
            await conn.execute("INSERT INTO settings (key, value) VALUES ('lab.control', '1') ON CONFLICT DO NOTHING")
            await conn.execute("DELETE FROM settings WHERE key = 'lab.control'")
            await conn.fetchval("SELECT count(*) FROM pg_stat_activity")
        finally:
            await conn.close()

    asyncio.run(write())
    assert writes.redis_writes() == {"set"}
    assert any("pg_stat_activity" in query for query in writes.postgres_reads())
    logged = writes.postgres_statements()
    assert len(logged) == 3 and all(f"{LOG_APP_PREFIX}{APPLICATION_NAME} " in line for line in logged)
    assert settled(writes) == 2  # the insert and the delete (the settings table holds no sandbox.fault here)


@pytest.mark.parametrize("runbook", sorted(QUICK))
def test_runbook_is_read_only(runbook: str, writes: Writes, sandbox_root: tuple[Sandbox, str], tmp_path: Path) -> None:
    if runbook in ON_THE_SERVICE and sandbox_root[1] != _sources()[0]:
        pytest.skip("profiling does not depend on the server build: first source only")
    writes.start()
    result = runner.run(runbook, target="sandbox", params=QUICK[runbook], output_root=tmp_path)
    assert result.exit_code in (EXIT_OK, EXIT_FINDINGS), result.error
    commands = writes.redis_commands()
    assert sum(commands.values()) > 1, "the runbook sent nothing to Redis: the proof would prove nothing"
    assert writes.redis_writes() == set()
    if redis_major(writes.box) >= 7:
        assert not {"eval", "evalsha"} & set(commands), "scripts go out as EVAL_RO on 7.x"
    if relation := READS_POSTGRES.get(runbook):
        read = writes.postgres_reads()
        assert any(relation in query for query in read), f"no statement read {relation}: PostgreSQL never queried"
    assert writes.postgres_statements() == []
    assert settled(writes) == 0


# -- the bounds table ---------------------------------------------------------------------------------------
def test_the_readme_states_the_bounds_the_code_uses() -> None:
    keys, db, stream = KeysThresholds(), DbThresholds(), StreamThresholds()
    expected = {
        "Redis connect / command timeout": f"{clients.CONNECT_TIMEOUT_S:g} s / {clients.COMMAND_TIMEOUT_S:g} s",
        "PostgreSQL statement_timeout / lock_timeout": (
            f"{clients.COMMAND_TIMEOUT_S:g} s / {clients.LOCK_TIMEOUT_S:g} s"
        ),
        "PostgreSQL idle-in-transaction timeout": f"{clients.IDLE_IN_TRANSACTION_S:g} s",
        "PostgreSQL sessions per Lab": f"{clients.POOL_SIZE}",
        "Keys audit: time one read-only script holds Redis": (
            f"{keys.batch_hold_ms:g} ms, first SCAN COUNT {keys.scan_batch}"
        ),
        "Keys audit pace (`keys_per_s`)": "no cap",
        "Keys looked at by triage": f"{keys.triage_sample:,}",
        "Pending entries scanned per group": f"{stream.pending_scan_limit:,} in pages of {streams.PENDING_PAGE:,}",
        "Message bodies read": f"{stream.bodies_limit}",
        "Entries counted for lag on 6.2": f"{streams.LAG_SCAN_LIMIT + 1:,}",
        "Stream entries matched against PostgreSQL": f"{db.consistency_scan_limit:,} per group",
        "Stream entries read by one trace": f"{stream.trace_scan_limit:,} per stream in pages of {stream.trace_page}",
        "Entries claimed per call (remediation only)": f"{CLAIM_BATCH}",
        "Sampler interval": f"1 s, never under {sampler.MIN_EVERY_S:g} s",
        "py-spy rate": f"{pyspy.RATE_HZ} Hz, non-blocking",
        "Capture overrun": f"{access.GRACE_S:g} s",
        "Service probe": f"{service.TIMEOUT_S:g} s per request, at most {service.MAX_REQUESTS:,} requests",
    }
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme.split("<!-- bounds: checked by tests/test_safety.py -->", 1)[1].split("<!-- /bounds -->", 1)[0]
    rows = [line.strip("|").split(" | ") for line in table.strip().splitlines()[2:]]
    assert {row[0].strip(): row[1].strip() for row in rows} == expected


# -- concurrency ---------------------------------------------------------------------------------------------
def cli_run(runbook: str, root: Path, **params: str) -> subprocess.Popen[str]:
    words = [word for name, value in params.items() for word in ("-p", f"{name}={value}")]
    return subprocess.Popen(
        [sys.executable, "-m", "bsnexus_lab", "run", runbook, "--target", "sandbox", "--output-dir", str(root), *words],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.usefixtures("one_source")
def test_four_runbooks_at_once_complete_and_the_same_one_twice_is_refused(
    healthy: dict[str, Any], tmp_path: Path
) -> None:
    root = tmp_path / "runs"
    names = ["stream_backlog", "redis_health", "db_health", "triage"]
    runs = {name: cli_run(name, root, **QUICK[name]) for name in names}
    runs["again"] = cli_run("stream_backlog", root, **QUICK["stream_backlog"])
    ended = {name: (run.wait(timeout=300), *run.communicate()) for name, run in runs.items()}
    statuses = sorted(ended[name][0] for name in ("stream_backlog", "again"))
    assert statuses[1] == EXIT_BUSY, ended  # one of the two stream_backlog runs was refused ...
    refused = next(name for name in ("stream_backlog", "again") if ended[name][0] == EXIT_BUSY)
    message = ended[refused][2].strip()
    assert message.startswith("bsnexus-lab: runbook stream_backlog is already running on target sandbox (pid "), message
    assert "Traceback" not in message and len(message.splitlines()) == 1
    completed = [name for name in runs if name != refused]
    for name in completed:  # ... and every other run completed with its evidence
        code, out, err = ended[name]
        assert code in (EXIT_OK, EXIT_FINDINGS), (name, err)
        assert f"runs/{name if name != 'again' else 'stream_backlog'}/" in out and "Traceback" not in err
    manifests = [json.loads(path.read_text()) for path in root.glob("*/*/run.json")]
    assert sorted(m["runbook"] for m in manifests) == sorted(names)
    with sqlite3.connect(root / "history.sqlite") as db:
        rows = db.execute("SELECT runbook, status FROM runs").fetchall()
    assert sorted(rows) == sorted((m["runbook"], m["status"]) for m in manifests)
