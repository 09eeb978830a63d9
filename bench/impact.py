"""What the lab costs the target: PING and ``SELECT 1`` latency seen by another client while the lab works.

A probe process (its own interpreter, so the lab's work cannot hold its GIL) sends PING to Redis and
``SELECT 1`` to PostgreSQL every 5 ms and records each round trip. It runs first with the lab idle (the
baseline), then during each of: a keyspace audit of 200,000 keys, a ``db_health`` run and a ``cpu_profile`` run
on the sandbox's service. Prints p50/p99/max per phase; ``tests/test_impact.py`` bounds the p99s.

    .venv/bin/python bench/impact.py [--keys 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from table import Row, markdown

import bsnexus_lab as bl
from bsnexus_lab import runner
from bsnexus_lab.config import STATE_DIR_ENV
from bsnexus_lab.errors import EXIT_FINDINGS, EXIT_OK
from bsnexus_lab.sandbox import Sandbox
from bsnexus_lab.text import plural

AUDIT_KEYS = 200_000
# The bound tests/test_impact.py holds every phase to: a p99 under ten times the idle one, or under the floor where
# that is larger (an idle loopback p99 is a fraction of a millisecond, below what a shared machine guarantees).
BOUND_RATIO = 10.0
BOUND_FLOOR_MS = 50.0
AUDIT_DB = 7  # a database of its own on the sandbox's Redis: the world's keys stay as they are
PROBE_EVERY_S = 0.005
PROBE = """
import json, sys, time
import psycopg, redis
ping = redis.Redis.from_url(sys.argv[1], socket_timeout=30)
db = psycopg.connect(sys.argv[2], autocommit=True, application_name="impact-probe")
pings, selects = [], []
def probe():
    t = time.perf_counter(); ping.ping(); pings.append(time.perf_counter() - t)
    t = time.perf_counter(); db.execute("SELECT 1"); selects.append(time.perf_counter() - t)
probe()
print("ready", flush=True)
import selectors
watch = selectors.DefaultSelector()
watch.register(sys.stdin, selectors.EVENT_READ)
while not watch.select(timeout=float(sys.argv[3])):  # until the bench closes our stdin
    probe()
print(json.dumps({"ping": pings[1:], "select": selects[1:]}))
"""


def stats(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    if not ordered:
        return {"n": 0, "p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}
    return {
        "n": len(ordered),
        "p50_ms": ordered[len(ordered) // 2] * 1e3,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3,
        "max_ms": ordered[-1] * 1e3,
    }


@contextmanager
def probing(urls: dict[str, str]) -> Iterator[dict[str, dict[str, float]]]:
    """PING and SELECT 1 from another process while the block runs; the dict fills in at its end."""
    database = urls["database_url"].replace("postgresql+asyncpg://", "postgresql://", 1)
    process = subprocess.Popen(
        [sys.executable, "-c", PROBE, urls["redis_url"], database, str(PROBE_EVERY_S)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdin is not None
    if process.stdout.readline().strip() != "ready":
        process.kill()
        raise RuntimeError("the probe process did not start")
    result: dict[str, dict[str, float]] = {}
    try:
        yield result
    finally:
        out, _ = process.communicate(timeout=60)
        seen = json.loads(out)
        result["ping"], result["select"] = stats(seen["ping"]), stats(seen["select"])


def audit_url(urls: dict[str, str]) -> str:
    """The sandbox's Redis URL on database AUDIT_DB."""
    return urls["redis_url"].rsplit("/", 1)[0] + f"/{AUDIT_DB}"


def load_keys(url: str, count: int) -> None:
    """``count`` keys at ``url``: counters, hashes and sets, as BSNexus's keyspace mixes them."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        if i % 5 == 0:
            pipe.hset(f"project:{i}", mapping={"name": f"project {i}", "status": "active"})
        elif i % 5 == 1:
            pipe.sadd(f"tags:{i}", "python", "git", f"team{i % 7}")
        else:
            pipe.set(f"task:{i}:recovery_count", i % 3, ex=86_400 if i % 3 == 0 else None)
        if len(pipe) >= 10_000:
            pipe.execute()
    pipe.execute()
    client.close()


def drop_keys(url: str) -> None:
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


def phases(box: Sandbox, output_root: Path, keys: int = AUDIT_KEYS) -> dict[str, Callable[[], Any]]:
    """The lab's heaviest work, each a callable: what the probe measures during."""
    urls = box.urls()

    def audit() -> Any:
        with bl.connect(redis_url=audit_url(urls), database_url=urls["database_url"]) as lab:
            report = lab.keys.audit(progress=False)
        assert int(report.totals["keys"].iloc[0]) == keys, report.totals
        return report

    def run(name: str, **params: str) -> Callable[[], Any]:
        def go() -> Any:
            result = runner.run(name, target="sandbox", params=params, output_root=output_root)
            assert result.exit_code in (EXIT_OK, EXIT_FINDINGS), result.error
            return result

        return go

    return {
        f"keys audit ({keys:,} keys)": audit,
        "db_health run": run("db_health", window_s="3", every_s="0.5"),
        "cpu_profile run": run("cpu_profile", duration_s="3"),
    }


def scripts(urls: dict[str, str]) -> tuple[int, int]:
    """Read-only script calls so far and the microseconds Redis spent in them (INFO commandstats)."""
    client = redis.Redis.from_url(urls["redis_url"])
    stats = client.info("commandstats")
    client.close()
    seen = [stats.get(f"cmdstat_{name}", {}) for name in ("eval_ro", "evalsha_ro", "eval", "evalsha")]
    return sum(s.get("calls", 0) for s in seen), sum(s.get("usec", 0) for s in seen)


def measure(box: Sandbox, output_root: Path, keys: int = AUDIT_KEYS) -> dict[str, dict[str, dict[str, float]]]:
    """Probe figures for the idle baseline and for each phase (the sandbox's service must run)."""
    urls = box.urls()
    load_keys(audit_url(urls), keys)
    try:
        figures = {}
        with probing(urls) as figures["idle"]:
            time.sleep(3)
        for name, work in phases(box, output_root, keys).items():
            before = scripts(urls)
            with probing(urls) as figures[name]:
                work()
            calls, usec = (after - was for after, was in zip(scripts(urls), before, strict=True))
            figures[name]["scripts"] = {"n": calls, "avg_ms": usec / calls / 1e3 if calls else 0.0}
        return figures
    finally:
        drop_keys(audit_url(urls))


def rows(keys: int = AUDIT_KEYS) -> list[Row]:
    root = Path(tempfile.mkdtemp(prefix="bsnexus-impact-", dir="/tmp"))
    root.chmod(0o755)
    os.environ[STATE_DIR_ENV] = str(root)  # the runbooks' `sandbox` target is this one
    box = Sandbox(root)
    try:
        box.up()
        box.start_service()
        versions = ", ".join(row.version for row in box.status())
        figures = measure(box, root / "runs", keys)
    finally:
        box.down()
        shutil.rmtree(root, ignore_errors=True)
    print(f"probe every {PROBE_EVERY_S * 1e3:.0f} ms from its own process; {versions}")
    print(f"{'while':28} {'PING p50/p99/max ms':>26} {'SELECT 1 p50/p99/max ms':>26}  scripts in Redis")
    for phase, seen in figures.items():
        cells = [
            f"{s['p50_ms']:.2f}/{s['p99_ms']:.2f}/{s['max_ms']:.1f} (n={s['n']})"
            for s in (seen["ping"], seen["select"])
        ]
        script = seen.get("scripts", {"n": 0})
        ran = f"{plural(script['n'], 'call')}, {script['avg_ms']:.2f} ms each" if script["n"] else "-"
        print(f"{phase:28} {cells[0]:>26} {cells[1]:>26}  {ran}")
    idle = figures.pop("idle")
    names = {"ping": "PING", "select": "SELECT 1"}
    return [
        Row(
            f"{names[probe]} p99 of another client during the {phase}",
            f"{names[probe]} p99 with the lab idle",
            seen[probe]["p99_ms"] / idle[probe]["p99_ms"],
            "p99 during / idle",
            f"under {BOUND_RATIO:g}x idle, or {BOUND_FLOOR_MS:g} ms",
            seen[probe]["p99_ms"] < max(BOUND_RATIO * idle[probe]["p99_ms"], BOUND_FLOOR_MS),
            f"{seen[probe]['p99_ms']:.2f} ms vs {idle[probe]['p99_ms']:.2f} ms ({versions})",
        )
        for phase, seen in figures.items()
        for probe in names
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=AUDIT_KEYS)
    args = parser.parse_args()
    print()
    print(markdown(rows(args.keys)))


if __name__ == "__main__":
    main()
