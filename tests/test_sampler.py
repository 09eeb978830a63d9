"""The sampler keeps going through a Redis restart, on its own redis-server (each binary this machine has)."""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Callable

import pytest

import bsnexus_lab as bl
from bsnexus_lab.sandbox import servers

from .conftest import state_directory


def wait_until(condition: Callable[[], bool], limit_s: float = 30.0) -> None:
    """Poll a condition (bounded); the test then asserts on values, not on time."""
    deadline = time.monotonic() + limit_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.parametrize("binary", servers.redis_binaries(), ids=lambda b: b.source)
def test_sampler_records_a_gap_and_resumes_after_a_restart(binary: servers.Binary) -> None:
    directory = state_directory("bsnexus-lab-sampler-")
    port, password = servers.free_port(), secrets.token_urlsafe(8)
    pid = servers.start_redis(binary, directory, port, password)
    try:
        with bl.connect(redis_url=f"redis://:{password}@127.0.0.1:{port}/0", streams=["s"]) as lab:
            sampler = lab.streams.sample(every=0.1, duration=None)
            wait_until(lambda: len(sampler.frame()) >= 3)
            servers.terminate(pid, servers.REDIS)
            wait_until(lambda: sampler.frame()["error"].notna().any())
            pid = servers.start_redis(binary, directory, port, password)
            wait_until(lambda: sampler.frame()["error"].last_valid_index() != sampler.frame().index[-1])
            assert sampler.running
            frame = sampler.stop()
            assert sampler.stop().equals(frame)  # idempotent
            assert not sampler.running
    finally:
        servers.terminate(pid, servers.REDIS)
        shutil.rmtree(directory, ignore_errors=True)
    errors = frame["error"].notna().tolist()
    first_gap = errors.index(True)
    assert first_gap >= 3 and not errors[-1]  # sampled, lost Redis, sampled again
    assert "cannot reach Redis" in frame["error"].dropna().iloc[0]
    assert password not in " ".join(frame["error"].dropna())
    assert frame.index.is_monotonic_increasing
