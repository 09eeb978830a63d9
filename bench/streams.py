"""Stream probe costs on big streams: wall time and Redis round trips. Prints figures; asserts nothing.

1. ``streams.summary()`` on a 1,000,000-entry stream with 100,000 pending entries across 50 consumers
   (goal: independent of stream length, well under 50 ms);
2. ``streams.pending()`` scanning those 100,000 pending entries (goal: under 2 s);
3. one sampler tick over 5 streams x 4 groups (goal: one round trip).

Each against its anchor in the same run: plain redis-py sending the commands that carry the same information
(raw ``XPENDING`` pages for 2.), no frames built; the table's ratio is the lab's time over the anchor's.

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
from table import Row, markdown

import bsnexus_lab as bl
from bsnexus_lab.areas.streams import probes
from bsnexus_lab.sandbox import servers
from bsnexus_lab.text import plural

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


P95_MIN_RUNS = 20  # below this, the "p95" is one of the few largest timings: print the median only


def figures(timings: list[float], trips: int) -> str:
    shown = f"median {statistics.median(timings):.1f} ms"
    if len(timings) >= P95_MIN_RUNS:
        shown += f", p95 {statistics.quantiles(timings, n=20)[-1]:.1f} ms"
    return f"{shown} of {plural(len(timings), 'run')}, {plural(trips, 'round trip')}"


def raw(client: redis.Redis, repeat: int, call: Callable[[redis.Redis], Any]) -> list[float]:
    """The anchor: plain redis-py sending the commands that carry the same information, no frames built."""
    call(client)
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        call(client)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def raw_summary(client: redis.Redis) -> None:
    """What the summary knows, asked for by hand: the stream, its groups and consumers, and every consumer's
    pending entries (a consumer's age is its longest-idle entry, which only the whole list tells)."""
    pipe = client.pipeline(transaction=False)
    pipe.xinfo_stream(STREAM)
    pipe.xinfo_groups(STREAM)
    pipe.xinfo_consumers(STREAM, GROUP)
    pipe.xpending(STREAM, GROUP)
    consumers = pipe.execute()[2]
    pipe = client.pipeline(transaction=False)
    for consumer in consumers:
        pipe.execute_command("XPENDING", STREAM, GROUP, "-", "+", consumer["pending"] or 1, consumer["name"])
    pipe.execute()


def raw_pending(client: redis.Redis) -> None:
    start = "-"
    while True:
        page = client.execute_command("XPENDING", STREAM, GROUP, start, "+", probes.PENDING_PAGE)
        if len(page) < probes.PENDING_PAGE:
            return
        start = "(" + page[-1][0].decode()


def raw_tick(client: redis.Redis) -> None:
    pipe = client.pipeline(transaction=False)
    for name in TICK_STREAMS:
        pipe.xinfo_stream(name)
        pipe.xinfo_groups(name)
    pipe.execute()


def measure(binary: servers.Binary, args: argparse.Namespace) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bsnexus-lab-bench-") as directory:
        port, password = servers.free_port(), secrets.token_urlsafe(8)
        pid = servers.start_redis(binary, Path(directory), port, password)
        try:
            client = redis.Redis(port=port, password=password)
            client.set_response_callback("XPENDING", lambda response, **options: response)  # raw replies
            started = time.perf_counter()
            load_big(client, args.entries, args.pending, args.consumers)
            load_tick_world(client)
            loaded = time.perf_counter() - started
            version = binary.version().split()[2].removeprefix("v=")
            print(f"{binary.source} redis-server {version} (loading took {loaded:.0f} s)")
            with bl.connect(redis_url=f"redis://:{password}@127.0.0.1:{port}/0") as lab:
                timings, trips, summary = timed(lab, args.repeat, lambda: lab.streams.summary([STREAM]))
                anchor = raw(client, args.repeat, raw_summary)
                row = summary.iloc[0]
                print(
                    f"  summary()  {row['length']:,} entries, {row['pending']:,} pending, lag {row['lag']:,} "
                    f"({'exact' if row['lag_exact'] else 'estimate'}): {figures(timings, trips)}; "
                    f"redis-py raw: median {statistics.median(anchor):.1f} ms"
                )
                rows.append(
                    versus(
                        f"streams.summary(), {args.entries:,} entries, {args.pending:,} pending, Redis {version}",
                        "redis-py: XINFO STREAM/GROUPS/CONSUMERS, then each consumer's XPENDING",
                        timings,
                        anchor,
                        "under 50 ms",
                        statistics.median(timings) < 50,
                    )
                )
                timings, trips, pending = timed(lab, 3, lambda: lab.streams.pending(STREAM, GROUP))
                anchor = raw(client, 3, raw_pending)
                page = f"{probes.PENDING_PAGE:,}"
                print(
                    f"  pending()  {len(pending):,} entries in pages of {page}: {figures(timings, trips)}; "
                    f"raw XPENDING: median {statistics.median(anchor):.1f} ms"
                )
                rows.append(
                    versus(
                        f"streams.pending(), {len(pending):,} entries, Redis {version}",
                        f"raw XPENDING in pages of {page} (redis-py)",
                        timings,
                        anchor,
                        "under 2 s",
                        statistics.median(timings) < 2000,
                    )
                )
                for label, count in (("lag as reported", ()), ("lag counted by script", TICK_STREAMS)):
                    tick = lambda count=count: lab._loop.run(probes.tick(lab.streams._ctx, TICK_STREAMS, count))  # noqa: E731
                    timings, trips, found = timed(lab, args.repeat, tick)
                    exact = sum(1 for r in found if r.get("lag_exact"))
                    print(f"  tick       5 streams x 4 groups, {label} ({exact} exact): {figures(timings, trips)}")
                    if not count:
                        anchor = raw(client, args.repeat, raw_tick)
                        rows.append(
                            versus(
                                f"sampler tick, 5 streams x 4 groups, Redis {version}",
                                "redis-py: XINFO STREAM + GROUPS of each, one pipeline",
                                timings,
                                anchor,
                                "one round trip",
                                trips == 1,
                            )
                        )
        finally:
            servers.terminate(pid, servers.REDIS)
    return rows


def versus(what: str, anchor: str, lab: list[float], raw: list[float], goal: str, met: bool) -> Row:
    """The lab's median time over the anchor's (ms lists)."""
    mine, theirs = statistics.median(lab), statistics.median(raw)
    context = f"{mine:.1f} ms vs {theirs:.1f} ms"
    return Row(what, anchor, mine / theirs, "the lab's time / the anchor's", goal, met, context)


def rows(entries: int = 1_000_000, pending: int = 100_000, consumers: int = 50, repeat: int = 20) -> list[Row]:
    args = argparse.Namespace(entries=entries, pending=pending, consumers=consumers, repeat=repeat)
    return [row for binary in servers.redis_binaries() for row in measure(binary, args)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--consumers", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    found = rows(args.entries, args.pending, args.consumers, args.repeat)
    print()
    print(markdown(found))


if __name__ == "__main__":
    main()
