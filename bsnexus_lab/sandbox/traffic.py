"""The sandbox's live traffic: ``python -m bsnexus_lab.sandbox.traffic STATE_DIR``.

A scenario describes what keeps happening after it is planted (``World.traffic``: actor name -> config):
live workers renewing their registry keys as BSNexus workers do with their heartbeats, a producer adding
tasks, a worker consuming them, or whatever an area's scenario registers with :func:`actor`. The sandbox
runs them in a process of its own (one thread per actor) and stops it with the servers or the next
scenario. Actors outlive a server restart: a failed step is retried on the next beat.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from bsnexus_lab.sandbox.world import DB_HEARTBEAT_TTL_S, WORKER_KEY_TTL_S, synthetic_message

MARKER = "bsnexus_lab.sandbox.traffic"  # what the process's command line names (see lifecycle.TRAFFIC)
READY = "traffic.ready"
BEAT_S = 0.05
HEARTBEAT_EVERY_S = 10.0


@dataclass(frozen=True)
class Servers:
    """Where the sandbox's servers are, credentials included (the traffic process writes)."""

    redis_url: str
    database_url: str  # plain postgresql://, for asyncpg/psycopg
    state_dir: Path

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, socket_timeout=2)


Actor = Callable[[Any, Servers, threading.Event], None]
ACTORS: dict[str, Actor] = {}


def actor(name: str) -> Callable[[Actor], Actor]:
    """Register something that keeps happening while a scenario is loaded; it loops until ``stop`` is set."""

    def decorate(function: Actor) -> Actor:
        if name in ACTORS:
            raise ValueError(f"traffic actor {name!r} defined twice")
        ACTORS[name] = function
        return function

    return decorate


def every(stop: threading.Event, seconds: float, step: Callable[[], None]) -> None:
    """Run ``step`` every ``seconds`` until ``stop``; a Redis error skips one beat instead of ending the actor."""
    while not stop.is_set():
        with contextlib.suppress(redis.RedisError):
            step()
        stop.wait(seconds)


@actor("heartbeat")
def heartbeat(workers: list[str], servers: Servers, stop: threading.Event) -> None:
    """Live workers renew their 90 s registry keys (BSNexus workers heartbeat every 30 s)."""
    client = servers.redis()

    def beat() -> None:
        for worker in workers:
            client.expire(f"worker:{worker}", WORKER_KEY_TTL_S)
            client.set(f"worker:db_heartbeat:{worker}", "1", ex=DB_HEARTBEAT_TTL_S)

    every(stop, HEARTBEAT_EVERY_S, beat)


def paced(stop: threading.Event, per_s: float, step: Callable[[int], None]) -> None:
    """Call ``step(n)`` with the ``n`` items owed at ``per_s`` a second, every beat; no burst after an outage."""
    last = time.monotonic()
    owed = 0.0

    def beat() -> None:
        nonlocal last, owed
        now = time.monotonic()
        owed += per_s * (now - last)
        last = now
        if int(owed):
            try:
                step(int(owed))
            finally:
                owed -= int(owed)

    every(stop, BEAT_S, beat)


@actor("produce")
def produce(config: dict[str, Any], servers: Servers, stop: threading.Event) -> None:
    """A producer adding ``per_s`` task-shaped entries a second to ``stream`` (never trimming it)."""
    client = servers.redis()
    projects = config["projects"]

    def add(n: int) -> None:
        for i in range(n):
            client.xadd(config["stream"], synthetic_message(str(uuid.uuid4()), projects[i % len(projects)], i))

    paced(stop, config["per_s"], add)


@actor("consume")
def consume(config: dict[str, Any], servers: Servers, stop: threading.Event) -> None:
    """A worker reading and acknowledging ``per_s`` entries a second from ``stream``/``group``."""
    client = servers.redis()
    stream, group = config["stream"], config["group"]

    def take(n: int) -> None:
        reply = client.xreadgroup(group, config["consumer"], {stream: ">"}, count=n)
        ids = [entry for _, entries in reply for entry, _ in entries]
        if ids:
            client.xack(stream, group, *ids)

    paced(stop, config["per_s"], take)


def run(config: dict[str, Any], stop: threading.Event) -> None:
    from bsnexus_lab.sandbox.scenarios import discover

    discover()  # scenario modules register their actors
    servers = Servers(config["redis_url"], config["database_url"], Path(config["state_dir"]))
    threads = [
        threading.Thread(target=ACTORS[name], args=(settings, servers, stop), name=name, daemon=True)
        for name, settings in config["actors"].items()
    ]
    for thread in threads:
        thread.start()
    (servers.state_dir / READY).touch()  # the sandbox waits for this before handing the world over
    stop.wait()
    for thread in threads:
        thread.join(timeout=5)


def main() -> None:
    # Run as ``-m``, this file is ``__main__``; scenario modules register their actors in the importable
    # module, so take the registry from there.
    from bsnexus_lab.sandbox import traffic

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    traffic.run(json.loads((Path(sys.argv[1]) / "traffic.json").read_text()), stop)


if __name__ == "__main__":
    main()
