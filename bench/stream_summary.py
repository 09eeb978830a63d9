"""How long `streams.summary()` takes on a big stream, and how many round trips it costs.

World: one 1,000,000-entry stream, one group, 100,000 pending entries across 50 consumers, a 900,000-entry
lag. Each Redis this machine has (system 7.x, embedded 6.2) gets its own server on a free loopback port.

    .venv/bin/python bench/stream_summary.py [--entries 1000000] [--pending 100000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import redis

import bsnexus_lab as bl
from bsnexus_lab.sandbox import servers

STREAM, GROUP = "tasks:queue", "workers"


def load(client: redis.Redis, entries: int, pending: int, consumers: int) -> None:
    body = {"task_id": str(uuid.uuid4()), "project_id": str(uuid.uuid4()), "title": "bench task", "priority": "high"}
    batch = 10_000
    for start in range(0, entries, batch):
        pipe = client.pipeline(transaction=False)
        for _ in range(min(batch, entries - start)):
            pipe.xadd(STREAM, body)
        pipe.execute()
    client.xgroup_create(STREAM, GROUP, id="0")
    names = [str(uuid.UUID(int=n + 1)) for n in range(consumers)]
    for name in names:
        client.xreadgroup(GROUP, name, {STREAM: ">"}, count=pending // consumers)


def measure(binary: servers.Binary, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bsnexus-lab-bench-") as directory:
        port, password = servers.free_port(), secrets.token_urlsafe(8)
        pid = servers.start_redis(binary, Path(directory), port, password)
        try:
            client = redis.Redis(port=port, password=password)
            started = time.perf_counter()
            load(client, args.entries, args.pending, args.consumers)
            loaded = time.perf_counter() - started
            url = f"redis://:{password}@127.0.0.1:{port}/0"
            with bl.connect(redis_url=url) as lab:
                lab.streams.summary([STREAM])  # connect and warm up
                timings, trips = [], []
                for _ in range(args.repeat):
                    before = lab.counters.round_trips
                    t0 = time.perf_counter()
                    summary = lab.streams.summary([STREAM])
                    timings.append((time.perf_counter() - t0) * 1000)
                    trips.append(lab.counters.round_trips - before)
            row = summary.iloc[0]
            print(
                f"{binary.source:8} {servers.Binary(binary.path, binary.source).version().split()[2]:10} "
                f"length={row['length']:,} pending={row['pending']:,} lag={row['lag']:,} "
                f"exact={bool(row['lag_exact'])}  summary: median {statistics.median(timings):.1f} ms, "
                f"p95 {sorted(timings)[int(0.95 * (len(timings) - 1))]:.1f} ms, "
                f"{statistics.mode(trips)} round trips  (load took {loaded:.0f} s)"
            )
        finally:
            servers.terminate(pid, servers.REDIS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--consumers", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    for binary in servers.redis_binaries():
        measure(binary, args)


if __name__ == "__main__":
    main()
