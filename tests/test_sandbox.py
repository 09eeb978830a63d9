"""The sandbox's life cycle, on its own servers (the shared sandbox stays up for the other tests)."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest
import redis as sync_redis

from bsnexus_lab import ConfigError
from bsnexus_lab.config import resolve
from bsnexus_lab.sandbox import Sandbox, ensure, servers
from bsnexus_lab.sandbox.servers import pid_alive

from .conftest import state_directory


def test_up_is_idempotent_status_sees_a_death_and_down_leaves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    root = state_directory("bsnexus-lab-lifecycle-")
    monkeypatch.setenv("BSNEXUS_LAB_STATE_DIR", str(root))
    box = Sandbox(root)
    try:
        first = box.up()
        assert [s.state for s in first] == ["running", "running"]
        assert box.up() == first  # same pids, same ports: nothing restarted
        assert resolve("sandbox").redis.startswith(f"redis://:***@127.0.0.1:{first[0].port}")
        assert box.facts()["scenario"] == "healthy"

        os.kill(first[0].pid, signal.SIGKILL)
        deadline = time.monotonic() + 120  # the kill is asynchronous: wait for it, generously (a busy machine)
        while pid_alive(first[0].pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        [redis, postgres] = box.status()
        assert (redis.state, postgres.state) == ("died", "running")

        again = box.up()  # restarts what died and reloads the world it lost
        assert again[0].state == "running" and again[0].pid != first[0].pid
        assert again[1].pid == first[1].pid

        stopped = box.down()
        assert [s.state for s in stopped] == ["stopped", "stopped"]
        assert not pid_alive(again[0].pid) and not pid_alive(again[1].pid)
        with pytest.raises(ConfigError, match="sandbox is not running"):
            resolve("sandbox")
    finally:
        box.down()
        shutil.rmtree(root, ignore_errors=True)


def test_a_redis_that_died_comes_back_from_the_sandboxs_own_build(restore: Sandbox) -> None:
    """``up`` without a source after a death: the embedded sandbox came back on the system's 7.x (and its
    6.2 tests then ran on 7.x without saying so)."""
    before = restore.status()[0]
    os.kill(before.pid, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while pid_alive(before.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    after = restore.up()[0]
    assert after.pid != before.pid and (after.source, after.version) == (before.source, before.version)


def test_unknown_scenario_lists_the_known_ones(sandbox: Sandbox) -> None:
    with pytest.raises(Exception, match=r"no scenario named 'nope': known: backlog-growing, ") as raised:
        sandbox.load("nope")
    assert all(name in str(raised.value) for name in ("healthy", "stuck-consumer", "misrouted-qa", "trimmed-backlog"))


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user")
def test_binaries_the_postgres_user_cannot_reach_are_copied(monkeypatch: pytest.MonkeyPatch) -> None:
    """As root with the lab's venv under a closed home, the embedded PostgreSQL is copied where it can run."""
    embedded = [b for b in servers.postgres_bindirs() if b.source == "embedded"]
    if not embedded:
        pytest.skip("the embedded extra is not installed")
    install = embedded[0].path.parent
    closed = Path(tempfile.mkdtemp(prefix="bsnexus-lab-closed-"))  # mode 0700: the postgres user is kept out
    site = closed / "site"
    shutil.copytree(install, site / install.parent.name / install.name, symlinks=True)
    for libs in install.parent.parent.glob(f"{install.parent.name}.libs"):
        shutil.copytree(libs, site / libs.name, symlinks=True)
    monkeypatch.setattr(
        servers,
        "postgres_bindirs",
        lambda: [servers.Binary(site / install.parent.name / install.name / "bin", "embedded")],
    )
    root = state_directory("bsnexus-lab-copied-")
    box = Sandbox(root)
    try:
        [_, postgres] = box.up(source="embedded")
        assert postgres.state == "running"
        assert box.facts()["scenario"] == "healthy"
        assert (root / "pginstall").is_dir()
    finally:
        box.down()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(closed, ignore_errors=True)


def test_a_recorded_pid_reused_by_another_process_is_not_ours() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(os.getpid(), "redis-server")


def test_a_world_starts_with_an_empty_slow_log(sandbox: Sandbox, writer: sync_redis.Redis) -> None:
    """Flushing the last world's keys can itself be a slow command: a new world must not inherit it as a finding."""
    default = writer.config_get("slowlog-log-slower-than")["slowlog-log-slower-than"]
    writer.config_set("slowlog-log-slower-than", 0)  # one command logged as slow: the last world's
    writer.eval("return 'left over'", 0)
    writer.config_set("slowlog-log-slower-than", default)
    assert any(b"left over" in entry["command"] for entry in writer.slowlog_get())
    sandbox.load("healthy")
    assert not any(b"left over" in entry["command"] for entry in writer.slowlog_get())


def test_ensure_leaves_every_target_but_the_sandbox_alone(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the notebooks' first cell does: the running sandbox is listed (started when it is not), a deployment
    configured in the environment is not the sandbox's business, and a profile that does not exist is an error."""
    assert [(row.name, row.state) for row in ensure("")] == [("redis", "running"), ("postgresql", "running")]
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # a deployment: nothing is started, nothing contacted
    assert ensure("") == []
    with pytest.raises(ConfigError, match="no profile named 'prod'"):
        ensure("prod")
