"""Stream probe costs on big streams: wall time and Redis round trips. Prints figures; asserts nothing.

1. ``streams.summary()`` on a 1,000,000-entry stream with 100,000 pending entries across 50 consumers
   (goal: independent of stream length, well under 50 ms);
2. ``streams.pending()`` scanning those 100,000 pending entries (goal: under 2 s);
3. one sampler tick over 5 streams x 4 groups (goal: one round trip).

Each Redis this machine has (system 7.x, embedded 6.2) gets its own server on a free loopback port.

    .venv/bin/python bench/streams.py [--entries 1000000] [--pending 100000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

import bsnexus_lab as bl
from bsnexus_lab.areas.streams import probes
from bsnexus_lab.sandbox import servers

STREAM, GROUP = "tasks:queue", "workers"
TICK_STREAMS = [f"bench:{n}" for n in range(5)]


def load_big(client: redis.Redis, entries: int, pending: int, consumers: int) -> None:
    body = {"task_id": str(uuid.uuid4()), "project_id": str(uuid.uuid4()), "title": "bench task", "priority": "high"}
    batch = 10_000
    for start in range(0, entries, batch):
        pipe = client.pipeline(transaction=False)
        for _ in range(min(batch, entries - start)):
            pipe.xadd(STREAM, body)
        pipe.execute()
    client.xgroup_create(STREAM, GROUP, id="0")
    for n in range(consumers):
        client.xreadgroup(GROUP, str(uuid.UUID(int=n + 1)), {STREAM: ">"}, count=pending // consumers)


def load_tick_world(client: redis.Redis) -> None:
    """5 streams of 1,000 entries, 4 groups each, every group 100 entries further along than the last."""
    for name in TICK_STREAMS:
        pipe = client.pipeline(transaction=False)
        for n in range(1000):
            pipe.xadd(name, {"n": str(n)})
        pipe.execute()
        for g in range(4):
            client.xgroup_create(name, f"g{g}", id="0")
            client.xreadgroup(f"g{g}", "c", {name: ">"}, count=100 * (g + 1))


def timed(lab: bl.Lab, repeat: int, call: Callable[[], Any]) -> tuple[list[float], int, Any]:
    call()  # connect and warm up
    timings, trips, result = [], [], None
    for _ in range(repeat):
        before = lab.counters.round_trips
        started = time.perf_counter()
        result = call()
        timings.append((time.perf_counter() - started) * 1000)
        trips.append(lab.counters.round_trips - before)
    return timings, statistics.mode(trips), result


def figures(timings: list[float], trips: int) -> str:
    p95 = sorted(timings)[int(0.95 * (len(timings) - 1))]
    return f"median {statistics.median(timings):.1f} ms, p95 {p95:.1f} ms, {trips} round trips"


def measure(binary: servers.Binary, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bsnexus-lab-bench-") as directory:
        port, password = servers.free_port(), secrets.token_urlsafe(8)
        pid = servers.start_redis(binary, Path(directory), port, password)
        try:
            client = redis.Redis(port=port, password=password)
            started = time.perf_counter()
            load_big(client, args.entries, args.pending, args.consumers)
            load_tick_world(client)
            loaded = time.perf_counter() - started
            version = binary.version().split()[2].removeprefix("v=")
            print(f"{binary.source} redis-server {version} (loading took {loaded:.0f} s)")
            with bl.connect(redis_url=f"redis://:{password}@127.0.0.1:{port}/0") as lab:
                timings, trips, summary = timed(lab, args.repeat, lambda: lab.streams.summary([STREAM]))
                row = summary.iloc[0]
                print(
                    f"  summary()  {row['length']:,} entries, {row['pending']:,} pending, lag {row['lag']:,} "
                    f"({'exact' if row['lag_exact'] else 'estimate'}): {figures(timings, trips)}"
                )
                timings, trips, pending = timed(lab, 3, lambda: lab.streams.pending(STREAM, GROUP))
                page = f"{probes.PENDING_PAGE:,}"
                print(f"  pending()  {len(pending):,} entries in pages of {page}: {figures(timings, trips)}")
                for label, count in (("lag as reported", ()), ("lag counted by script", TICK_STREAMS)):
                    tick = lambda count=count: lab._loop.run(probes.tick(lab.streams._ctx, TICK_STREAMS, count))  # noqa: E731
                    timings, trips, rows = timed(lab, args.repeat, tick)
                    exact = sum(1 for r in rows if r.get("lag_exact"))
                    print(f"  tick       5 streams x 4 groups, {label} ({exact} exact): {figures(timings, trips)}")
        finally:
            servers.terminate(pid, servers.REDIS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--consumers", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    for binary in servers.redis_binaries():
        measure(binary, args)


if __name__ == "__main__":
    main()
