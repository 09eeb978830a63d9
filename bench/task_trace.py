"""One trace on a 1,000,000-entry stream: wall time and the commands it sent. Prints figures; asserts nothing.

A sandbox (its busy, healthy world) gets 1,000,000 more entries on tasks:queue, nobody reading them, after the
world's own tasks. Then two tasks are traced: one executing on a worker (its entry pending, before the million)
and one waiting for a free worker. For each: the wall time (goal: under 3 s), the commands Redis counted
(``INFO commandstats`` before and after) and, from MONITOR, whether every XRANGE/XREVRANGE carried a COUNT
(never an unbounded read) and how many entries the trace could have read at most. The anchor, in the same run:
redis-py reading every stream whole for the task's id, which is what finding its entries takes without the lab.

    .venv/bin/python bench/task_trace.py [--entries 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis
from table import Row, markdown

import bsnexus_lab as bl
from bsnexus_lab.config import DEFAULT_STREAMS
from bsnexus_lab.sandbox import Sandbox
from bsnexus_lab.sandbox.world import synthetic_message

STREAM = "tasks:queue"


def load(client: redis.Redis, entries: int) -> None:
    body = synthetic_message("00000000-0000-4000-8000-000000000000", "00000000-0000-4000-8000-000000000001", 0)
    for start in range(0, entries, 10_000):
        pipe = client.pipeline(transaction=False)
        for _ in range(min(10_000, entries - start)):
            pipe.xadd(STREAM, body)
        pipe.execute()


def commandstats(client: redis.Redis) -> dict[str, tuple[int, int]]:
    return {k.removeprefix("cmdstat_"): (v["calls"], v["usec"]) for k, v in client.info("commandstats").items()}


def monitored(url: str, call: Any) -> list[str]:
    """The commands Redis executed during ``call()`` (MONITOR on a connection of its own)."""
    seen: list[str] = []
    client = redis.Redis.from_url(url, decode_responses=True)
    ready = threading.Event()

    def listen() -> None:
        with client.monitor() as watch:
            ready.set()
            for event in watch.listen():
                if event["command"] == "ECHO bench-trace-done":
                    return
                seen.append(event["command"])

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    ready.wait(30)
    call()
    client.echo("bench-trace-done")
    thread.join(timeout=60)
    client.close()
    return seen


def naive(client: redis.Redis, task: str) -> int:
    """The anchor: what finding a task's entries takes without the lab: every stream read whole with
    ``XRANGE ... COUNT 10000`` pages, each entry's values searched for the id. Returns the entries found."""
    found, needle = 0, task.encode()
    for stream in DEFAULT_STREAMS:
        start = "-"
        while True:
            page = client.xrange(stream, start, "+", count=10_000)
            found += sum(1 for _, body in page if any(needle in value for value in body.values()))
            if len(page) < 10_000:
                break
            start = "(" + page[-1][0].decode()
    return found


def rows(entries: int = 1_000_000, repeat: int = 3) -> list[Row]:
    found_rows = []
    with tempfile.TemporaryDirectory(prefix="bsnexus-lab-bench-trace-", dir="/tmp") as directory:
        root = Path(directory)
        root.chmod(0o755)
        box = Sandbox(root)
        box.up()
        try:
            facts = box.load("healthy")
            box.stop_traffic()
            url = box.urls()["redis_url"]
            client = redis.Redis.from_url(url)
            started = time.perf_counter()
            load(client, entries)
            print(f"{STREAM}: {client.xlen(STREAM):,} entries (loading took {time.perf_counter() - started:.0f} s)")
            target = bl.Target(name="bench", **box.urls())
            for label, task in (("executing", facts["executing"][0]), ("waiting", facts["waiting"][0])):
                with bl.connect(target) as lab:
                    lab.trace(task)  # connect and warm up
                    times = []
                    for _ in range(repeat):
                        begun = time.perf_counter()
                        found = lab.trace(task)
                        times.append(time.perf_counter() - begun)
                    before = commandstats(client)
                    sent = monitored(url, lambda lab=lab, task=task: lab.trace(task))
                    after = commandstats(client)
                delta = {k: (c - before.get(k, (0, 0))[0], u - before.get(k, (0, 0))[1]) for k, (c, u) in after.items()}
                delta = {k: v for k, v in delta.items() if v[0] and k not in ("info", "echo", "monitor")}
                reads = [c for c in sent if c.split()[0].upper() in ("XRANGE", "XREVRANGE")]
                bounded = all("COUNT" in c.upper() for c in reads)
                most = sum(int(c.split()[-1].strip('"')) for c in reads if bounded)
                each = ", ".join(f"{t:.2f}" for t in times)
                print(f"  trace of the {label} task: median {statistics.median(times):.2f} s ({each}); {found.where()}")
                shown = ", ".join(f"{k} {c} ({u / 1000:.1f} ms)" for k, (c, u) in sorted(delta.items()))
                print(f"    commandstats delta: {shown}")
                print(
                    f"    {len(reads)} XRANGE/XREVRANGE, every one with COUNT: {'yes' if bounded else 'NO'}; "
                    f"at most {most:,} entries read of {client.xlen(STREAM):,}"
                )
                scans = []
                for _ in range(repeat):
                    begun = time.perf_counter()
                    naive(client, task)
                    scans.append(time.perf_counter() - begun)
                mine, theirs = statistics.median(times), statistics.median(scans)
                print(f"    every stream read whole for the id (redis-py): median {theirs:.2f} s")
                found_rows.append(
                    Row(
                        f"trace of the {label} task, {entries:,} more entries on {STREAM}",
                        "redis-py reading every stream whole for the task's id",
                        mine / theirs,
                        "the lab's time / the anchor's",
                        "under 3 s, every XRANGE with COUNT",
                        mine < 3 and bounded,
                        f"{mine:.2f} s vs {theirs:.2f} s; {most:,} entries read at most",
                    )
                )
            client.close()
        finally:
            box.down()
    return found_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print()
    print(markdown(rows(args.entries, args.repeat)))


if __name__ == "__main__":
    main()
