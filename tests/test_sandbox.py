"""The sandbox's life cycle, on its own servers (the shared sandbox stays up for the other tests)."""

from __future__ import annotations

import os
import shutil
import signal

import pytest

from bsnexus_lab import ConfigError
from bsnexus_lab.config import resolve
from bsnexus_lab.sandbox import Sandbox
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


def test_unknown_scenario_lists_the_known_ones(sandbox: Sandbox) -> None:
    with pytest.raises(Exception, match=r"no scenario named 'nope'.*healthy, stuck-consumer"):
        sandbox.load("nope")
