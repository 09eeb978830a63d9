"""Zero configuration in BSNexus's checkout: a folder shaped like it (its ``.env``, ``backend/alembic.ini``, logs)
with a real uvicorn running the backend from ``backend/`` under ``--reload``, as the devcontainer does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from bsnexus_lab import ConfigError
from bsnexus_lab.areas.profile import main_pid
from bsnexus_lab.checkout import DISCOVERED, listeners
from bsnexus_lab.cli import main
from bsnexus_lab.config import ProcessMatch, resolve
from bsnexus_lab.sandbox.servers import free_port

SECRET = "s3cr3t-pw"
START_TIMEOUT_S = 60  # uvicorn's first start on a shared, busy machine
APP = "async def app(scope, receive, send):\n    pass\n"
ALEMBIC_INI = "[alembic]\nscript_location = %(here)s/alembic\nsqlalchemy.url =\n"
REVISION = '"""initial schema"""\nrevision = "3c1a9f0b2d10"\ndown_revision = None\n'


def write_checkout(root: Path, server_port: int, host: str = "0.0.0.0") -> Path:
    """BSNexus's checkout: the .env at its root (as copied from .env.example), the backend below it."""
    (root / ".env").write_text(
        f"REDIS_URL=redis://:{SECRET}@localhost:6379\n"
        f"DATABASE_URL=postgresql+asyncpg://bsnexus:{SECRET}@localhost:5432/bsnexus\n"
        f"SERVER_HOST={host}\nSERVER_PORT={server_port}\nLOG_DIR=logs\nLOG_LEVEL=INFO\n"
        f"PROMPT_SIGNING_KEY={SECRET}\n"
    )
    backend = root / "backend"
    (backend / "alembic" / "versions").mkdir(parents=True)
    (backend / "alembic.ini").write_text(ALEMBIC_INI)
    (backend / "alembic" / "versions" / "3c1a9f0b2d10_initial_schema.py").write_text(REVISION)
    (backend / "app.py").write_text(APP)
    (backend / "logs").mkdir()
    (backend / "logs" / "bsnexus.log").write_text("")
    (backend / "logs" / "orchestrator.log.1").write_text("")  # only a rotation so far: still BSNexus's file
    (root / "logs").mkdir()  # where LOG_DIR would point from the .env's folder: not where the backend runs
    (root / "logs" / "bsnexus.log").write_text("")
    return backend


@dataclass
class Backend:
    root: Path
    port: int
    parent: int  # the --reload parent
    worker: int  # its worker child, which serves the app


def start_uvicorn(backend: Path, port: int, *, reload: bool) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "uvicorn", "app:app", "--host", "0.0.0.0", "--port", str(port)]
    process = subprocess.Popen(
        command + (["--reload"] if reload else []),
        cwd=backend,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not listeners(port):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            pytest.fail(f"uvicorn did not start on port {port}")
        time.sleep(0.1)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    """The process group this test started (uvicorn, its reloader's worker and resource tracker)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """BSNexus's backend as the devcontainer runs it: `uvicorn ... --port N --reload` from backend/."""
    pytest.importorskip("uvicorn")
    root = tmp_path_factory.mktemp("workspace")
    port = free_port()
    process = start_uvicorn(write_checkout(root, port), port, reload=True)
    [worker] = listeners(port)
    yield Backend(root, port, process.pid, worker)
    stop(process)


@pytest.fixture
def inside(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Backend:
    """The engineer's terminal, at the checkout's root."""
    monkeypatch.chdir(backend.root)
    monkeypatch.setenv("PWD", str(backend.root))
    return backend


def test_the_checkout_gives_all_six_evidence_sources(inside: Backend) -> None:
    target = resolve()
    env = inside.root / ".env"
    backend = inside.root / "backend"
    assert target.redis == "redis://:***@localhost:6379"
    assert target.database == "postgresql://bsnexus:***@localhost:5432/bsnexus"
    assert target.service_url == f"http://127.0.0.1:{inside.port}"  # the wildcard bind reached on loopback
    assert target.process == ProcessMatch(port=inside.port)
    assert inside.worker != inside.parent and psutil.Process(inside.worker).ppid() == inside.parent
    assert main_pid(target.process) == inside.worker  # the --reload parent only watches files
    assert main_pid(inside.parent) == inside.worker == main_pid(f"--port {inside.port}")  # named by pid or cmdline
    assert target.log_files == (backend / "logs" / "bsnexus.log", backend / "logs" / "orchestrator.log")
    assert target.versions_dir == backend / "alembic" / "versions"
    confirmed = (
        f"{DISCOVERED}uvicorn --port {inside.port} (pid {inside.parent}, started in the checkout), confirmed "
        f"listening pid {inside.worker} (worker of --reload parent {inside.parent})"
    )
    assert target.sources == {
        "redis_url": f"{env} (REDIS_URL)",
        "database_url": f"{env} (DATABASE_URL)",
        "service_url": confirmed,
        "process": confirmed,
        "log_files": f"{DISCOVERED}{env} LOG_DIR=logs under pid {inside.worker}'s working directory",
        "versions_dir": f"{DISCOVERED}{backend / 'alembic.ini'} script_location",
    }


def test_target_show_lists_each_source(inside: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["target", "show"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()}
    assert f"http://127.0.0.1:{inside.port}" in rows["service_url"]
    assert f"port={inside.port}" in rows["process"] and f"confirmed listening pid {inside.worker}" in rows["process"]
    assert "bsnexus.log" in rows["log_files"] and "LOG_DIR=logs under pid" in rows["log_files"]
    assert str(inside.root / "backend" / "alembic" / "versions") in rows["versions_dir"]
    assert "alembic.ini script_location]" in rows["versions_dir"]
    assert SECRET not in out


def test_uvicorn_s_port_decides_not_the_env(inside: Backend) -> None:
    stale = free_port()
    (inside.root / ".env").write_text(
        (inside.root / ".env").read_text().replace(f"SERVER_PORT={inside.port}", f"SERVER_PORT={stale}")
    )
    try:
        target = resolve()
    finally:
        (inside.root / ".env").write_text(
            (inside.root / ".env").read_text().replace(f"SERVER_PORT={stale}", f"SERVER_PORT={inside.port}")
        )
    assert target.process == ProcessMatch(port=inside.port)
    assert target.service_url == f"http://127.0.0.1:{inside.port}"
    assert f"not {inside.root / '.env'} SERVER_PORT={stale}" in target.sources["process"]


def test_explicit_settings_win(inside: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    versions = tmp_path / "deployed" / "versions"
    versions.mkdir(parents=True)
    monkeypatch.setenv("BSNEXUS_LAB_VERSIONS_DIR", str(versions))
    monkeypatch.setenv("BSNEXUS_LAB_SERVICE_URL", "http://backend.internal:9000")
    target = resolve(log_files=[tmp_path / "app.log"])
    assert target.versions_dir == versions
    assert target.sources["versions_dir"] == "environment (BSNEXUS_LAB_VERSIONS_DIR)"
    assert target.service_url == "http://backend.internal:9000"
    assert target.log_files == (tmp_path / "app.log",) and target.sources["log_files"] == "argument"
    assert target.process == ProcessMatch(port=inside.port)  # what nothing explicit set still comes from the checkout
    assert target.sources["process"].startswith(DISCOVERED)


def test_an_explicit_process_anchors_log_dir(inside: Backend) -> None:
    target = resolve(process={"pid": inside.worker})
    assert target.log_files[0] == inside.root / "backend" / "logs" / "bsnexus.log"
    assert target.sources["log_files"].endswith(f"under pid {inside.worker}'s working directory")
    with pytest.raises(ConfigError, match="invalid target setting process"):
        resolve(process=inside.worker)  # a bare pid is no process setting: refused as before, not by the checkout


def test_two_backends_in_the_checkout_are_listed_not_guessed(inside: Backend) -> None:
    other = free_port()
    process = start_uvicorn(inside.root / "backend", other, reload=False)
    try:
        target = resolve()
    finally:
        stop(process)
    assert target.service_url is None and target.process is None
    source = target.sources["process"]
    assert source.startswith(f"{DISCOVERED}several uvicorn processes in {inside.root}")
    assert f"pid {inside.parent} port {inside.port}" in source and f"pid {process.pid} port {other}" in source
    assert "set process" in source


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_nothing_listening_still_suggests_the_env_s_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    """The backend is down: the lab still looks where it should be, so the service area says it is down."""
    port = free_port()
    write_checkout(tmp_path, port, host)
    monkeypatch.chdir(tmp_path)
    target = resolve()
    assert target.service_url == f"http://127.0.0.1:{port}" and target.process == ProcessMatch(port=port)
    assert (
        target.sources["process"]
        == f"{DISCOVERED}{tmp_path / '.env'} SERVER_PORT, nothing listening on port {port} now"
    )
    assert target.log_files == (tmp_path / "logs" / "bsnexus.log",)  # no process: relative to the .env's folder
    assert target.sources["log_files"] == f"{DISCOVERED}{tmp_path / '.env'} LOG_DIR=logs under the .env's folder"


def test_two_alembic_ini_are_listed_not_guessed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_checkout(tmp_path, free_port())
    (tmp_path / "tools" / "migrations" / "versions").mkdir(parents=True)
    (tmp_path / "tools" / "alembic.ini").write_text("[alembic]\nscript_location = migrations\n")
    monkeypatch.chdir(tmp_path)
    target = resolve()
    assert target.versions_dir is None
    both = f"{tmp_path / 'backend' / 'alembic.ini'}, {tmp_path / 'tools' / 'alembic.ini'}"
    assert target.sources["versions_dir"] == f"{DISCOVERED}several alembic.ini: {both}: set versions_dir"
    shown = {key: (value, source) for key, value, source in target.describe()}
    assert shown["versions_dir"][0] == "-" and "several alembic.ini" in shown["versions_dir"][1]


def test_a_profile_named_explicitly_takes_nothing_from_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_checkout(tmp_path, free_port())
    (tmp_path / "bsnexus-lab.toml").write_text('[profiles.prod]\nredis_url = "redis://prod:6379"\n')
    monkeypatch.chdir(tmp_path)
    target = resolve("prod")
    assert (target.service_url, target.process, target.log_files, target.versions_dir) == (None, None, (), None)


def test_no_env_file_no_discovery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_checkout(tmp_path, free_port())
    (tmp_path / ".env").unlink()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REDIS_URL", "redis://localhost:6379")
    target = resolve()
    assert (target.service_url, target.versions_dir) == (None, None)
    assert set(target.sources) == {"redis_url"}
