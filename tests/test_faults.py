"""Faults survived: a dependency that dies, restarts, hangs or is full, and a profiled process that exits mid-capture.

Each run must end within its own timeouts (the runner's ``timeout_s`` is only a backstop that must not fire),
with an explicit finding naming what was lost, its notebook and report saved, exit 1 (the target is at fault,
not the tool: a scheduler must page about the deployment, not about the lab), and one history row that says
what run.json says. Redis killed during stream sampling and PostgreSQL stopped during it are in
tests/test_contract.py. These are runner mechanics: one server source is enough.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis as sync_redis

from bsnexus_lab import history, runner
from bsnexus_lab.errors import EXIT_FINDINGS, EXIT_OK
from bsnexus_lab.findings import Kind, document, flatten
from bsnexus_lab.sandbox import Sandbox, servers
from tests.running import found, ptrace_held, run_and_kill

pytestmark = pytest.mark.usefixtures("one_source")

BACKSTOP_S = 300.0  # the runner's whole-run timeout: far above every run's own timeouts, never reached here
AUDIT_KEYS = 200_000
AUDIT_PACE = 20_000  # keys per second: the audit takes about 10 s, so a kill 2 s in lands mid-way


def ended_with(result: runner.RunResult, check: str, title: str) -> dict[str, Any]:
    """The run ended on its own with exit 1, its artefacts saved and indexed once; the one ``check`` finding."""
    assert result.error is None, result.error  # not timed out by the backstop, no cell raised
    assert result.exit_code == EXIT_FINDINGS
    assert result.notebook.is_file() and result.report.is_file()
    (finding,) = found(result, check)
    assert title in finding["title"], finding["title"]
    assert finding["title"] in result.report.read_text()
    manifest = json.loads((result.run_dir / "run.json").read_text())
    assert (manifest["status"], manifest["exit_code"]) == ("findings", EXIT_FINDINGS)
    runs = history.History(result.run_dir.parent.parent).runs()
    assert list(runs["id"]) == [result.run_dir.name]
    assert (runs["status"].iloc[0], runs["exit_code"].iloc[0]) == (manifest["status"], manifest["exit_code"])
    return finding


# -- Redis killed during a keyspace audit --------------------------------------------------------------------
@pytest.fixture
def many_keys(healthy: dict[str, Any], restore: Sandbox, writer: sync_redis.Redis) -> Iterator[int]:
    """200,000 keys for the audit to walk; the world is reloaded afterwards if Redis survived the test."""
    pipe = writer.pipeline(transaction=False)
    for n in range(AUDIT_KEYS):
        pipe.set(f"fault:audit:{n}", "x")
        if n % 10_000 == 9_999:
            pipe.execute()
    yield AUDIT_KEYS
    if restore.running():  # a killed Redis comes back empty (restore), a living one is reset here
        restore.load("healthy")


def test_redis_killed_during_a_keyspace_audit(many_keys: int, restore: Sandbox, tmp_path: Path) -> None:
    redis_pid = restore.status()[0].pid
    assert redis_pid
    result = run_and_kill(
        lambda: os.kill(redis_pid, signal.SIGKILL),
        tmp_path,
        {"keys_per_s": AUDIT_PACE, "duration_s": "2", "every_s": "0.5"},
        runbook="redis_health",
        marker="lab.keys.audit(",
        timeout_s=BACKSTOP_S,
    )
    finding = ended_with(result, "deps.lost_during_run", "Redis was lost during the run")
    assert finding["severity"] == "critical" and finding["evidence"]["recovered"] is False
    (coverage,) = found(result, "keys.coverage")  # the audit was cut mid-way, and its report says how far it got
    (status,) = coverage["evidence"]["nodes"].values()
    walked = int(status.removeprefix("failed after ").split()[0])
    assert 0 < walked < many_keys and "cannot reach Redis" in status


# -- PostgreSQL restarted during db_health -------------------------------------------------------------------
def restart_postgres(sandbox: Sandbox) -> None:
    """``pg_ctl restart -m fast``: every session is ended, the server is back on the same port."""
    postgres = sandbox._state()["postgres"]
    data = sandbox.root / "postgres" / "data"
    done = servers.RunAs.for_postgres().run(
        [str(Path(postgres["bindir"]) / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "restart"],
        cwd=sandbox.root / "postgres",
    )
    assert done.returncode == 0, done.stderr


def test_postgresql_restarted_during_db_health(healthy: dict[str, Any], restore: Sandbox, tmp_path: Path) -> None:
    before = restore.status()[1].pid
    result = run_and_kill(
        lambda: restart_postgres(restore),
        tmp_path,
        {"window_s": "15", "every_s": "0.5"},
        runbook="db_health",
        marker="sampler.wait()",
        after_s=1.0,
        timeout_s=BACKSTOP_S,
    )
    assert restore.status()[1].pid != before  # it did restart
    finding = ended_with(result, "deps.lost_during_run", "PostgreSQL was lost during the run")
    evidence = finding["evidence"]
    assert finding["severity"] == "warning" and evidence["recovered"] is True
    assert 1 <= evidence["failed_samples"] < evidence["samples"]


# -- a port that accepts connections and never answers -------------------------------------------------------
@pytest.fixture
def black_hole() -> Iterator[int]:
    """A loopback port that accepts every connection and never reads or writes a byte."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_redis_that_never_answers(
    sandbox: Sandbox, black_hole: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{black_hole}/0")
    result = runner.run("redis_health", params={"duration_s": "2"}, output_root=tmp_path / "runs", timeout_s=BACKSTOP_S)
    finding = ended_with(result, "deps.unreachable", "redis is unreachable")
    assert finding["severity"] == "critical" and "Redis did not answer in time" in finding["evidence"]["error"]


def test_postgresql_that_never_answers(
    sandbox: Sandbox, black_hole: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REDIS_URL", sandbox.urls()["redis_url"])
    monkeypatch.setenv("DATABASE_URL", f"postgresql://bsnexus:unused@127.0.0.1:{black_hole}/bsnexus")
    result = runner.run(
        "db_health", params={"window_s": "3", "every_s": "1"}, output_root=tmp_path / "runs", timeout_s=BACKSTOP_S
    )
    finding = ended_with(result, "deps.unreachable", "postgresql is unreachable")
    assert finding["severity"] == "critical" and "did not answer the connection" in finding["evidence"]["error"]
    (skipped,) = found(result, "db.skipped")  # one connect timeout, not one per probe
    assert skipped["evidence"]["probe"] == "server" and len(skipped["evidence"]["not_run"]) >= 10


# -- max_connections full during db_health -------------------------------------------------------------------
@pytest.fixture
def full(sandbox: Sandbox) -> Iterator[int]:
    """PostgreSQL with every connection slot taken (the reserved ones too: the sandbox's role is a superuser)."""
    postgres = sandbox._state()["postgres"]
    loop = asyncio.new_event_loop()
    held: list[Any] = []

    async def fill() -> None:
        while True:
            try:
                held.append(
                    await asyncpg.connect(
                        host="127.0.0.1",
                        port=postgres["port"],
                        user="bsnexus",
                        password=postgres["password"],
                        database="bsnexus",
                    )
                )
            except asyncpg.TooManyConnectionsError:
                return

    loop.run_until_complete(fill())
    yield len(held)

    async def release() -> None:
        await asyncio.gather(*(conn.close() for conn in held))

    loop.run_until_complete(release())
    loop.close()


def test_postgresql_with_max_connections_full(healthy: dict[str, Any], full: int, tmp_path: Path) -> None:
    assert full > 0
    result = runner.run(
        "db_health",
        target="sandbox",
        params={"window_s": "3", "every_s": "1"},
        output_root=tmp_path / "runs",
        timeout_s=BACKSTOP_S,
    )
    finding = ended_with(result, "deps.unreachable", "postgresql refuses new connections: too many clients")
    assert finding["severity"] == "critical" and "max_connections" in finding["title"]
    (skipped,) = found(result, "db.skipped")  # the probes stop at the first refusal and say what they did not run
    assert "too many clients" in skipped["title"] and len(skipped["evidence"]["not_run"]) >= 10


# -- the profiled process exits mid-capture ------------------------------------------------------------------
@pytest.fixture
def service(healthy: dict[str, Any], sandbox: Sandbox) -> Iterator[Sandbox]:
    """The sandbox's service, running for the test and left as it was found (a killed one is replaced)."""
    running = "service" in sandbox._state()
    sandbox.start_service()
    yield sandbox
    sandbox.stop_service()
    if running:
        sandbox.start_service()


@pytest.mark.parametrize(
    ("runbook", "marker", "capture"),
    [("cpu_profile", "cpu = lab.profile.cpu(", "CPU profile"), ("memory_growth", "lab.profile.memory(", "memory")],
)
def test_profiled_process_exits_mid_capture(
    service: Sandbox, tmp_path: Path, runbook: str, marker: str, capture: str
) -> None:
    pid = service._state()["service"]["pid"]
    result = run_and_kill(
        functools.partial(os.kill, pid, signal.SIGKILL),
        tmp_path,
        {"duration_s": "8"},
        runbook=runbook,
        marker=marker,
        timeout_s=BACKSTOP_S,
        begun=lambda root: any(root.glob("*/*/profile/*")),  # the capture's own folder: it has found the pid
    )
    title = f"The profiled process (pid {pid}) exited during the {capture}"
    finding = ended_with(result, "profile.process_exited", title)
    assert finding["severity"] == "critical" and finding["evidence"]["pid"] == pid
    if runbook == "cpu_profile":
        assert Path(finding["evidence"]["artefact"]).is_file()  # the flame graph of what it did before, kept
        assert found(result, "profile.loop_stall") == []  # no second capture of a process that is gone
    else:  # memray writes an aggregated capture when its window ends: there is none, and leaks are not judged
        assert finding["title"].endswith("memray had written nothing yet")
        (leak,) = found(result, "profile.memory_leak")
        assert (leak["severity"], leak["title"]) == (
            "info",
            f"Memory leaks not judged: pid {pid} exited before memray wrote its capture",
        )


def test_py_spy_refused_is_not_checked_with_how_to_allow_it(service: Sandbox, tmp_path: Path) -> None:
    """ptrace refused (Yama, a container without SYS_PTRACE): the CPU checks could not look, so they say so."""
    pid = service._state()["service"]["pid"]
    with ptrace_held(pid):
        result = runner.run("cpu_profile", target="sandbox", params={"duration_s": "1"}, output_root=tmp_path)
    assert (result.error, result.exit_code) == (None, EXIT_OK)  # not checked fails a run only when asked
    saved = {f.check: f for f in flatten(document.load(result.run_dir / "findings.json"))}
    for check in ("profile.cpu_hotspot", "profile.loop_stall", "profile.process_exited"):
        assert saved[check].kind is Kind.NOT_CHECKED, saved[check]
        assert f"not checked: cannot trace pid {pid}" in saved[check].title
        assert "SYS_PTRACE" in saved[check].remedy
    assert "none found" not in " ".join(f.title for f in saved.values() if f.check.startswith("profile."))
