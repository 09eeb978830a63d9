"""The sandbox's live traffic: ``python -m bsnexus_lab.sandbox.traffic STATE_DIR``.

A scenario describes what keeps happening after it is planted (``World.traffic``: actor name -> config):
live workers renewing their registry keys as BSNexus workers do with their heartbeats, a producer adding
tasks, a worker consuming them, or whatever an area's scenario registers with :func:`actor`. The sandbox
runs them in a process of its own (one thread per actor) and stops it with the servers. Actors outlive a
server restart: a failed step is retried on the next beat.

The actors run in a child forked from the traffic process, which only imports once and waits for signals:
SIGUSR1 ends the actors (the sandbox plants the next scenario meanwhile), SIGUSR2 starts them again from
``traffic.json``, SIGTERM ends both. A new scenario's traffic so starts in milliseconds instead of a
second or more of imports, and ending the actors is still ending a process: nothing they held (sessions,
locks, connections) outlives them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import redis

from bsnexus_lab.sandbox.world import DB_HEARTBEAT_TTL_S, WORKER_KEY_TTL_S, synthetic_message

MARKER = "bsnexus_lab.sandbox.traffic"  # what the process's command line names (see lifecycle.TRAFFIC)
READY = "traffic.ready"  # touched once the actors run
PAUSED = "traffic.paused"  # touched once the actors have ended on SIGUSR1
PAUSE, RESUME, END = signal.SIGUSR1, signal.SIGUSR2, (signal.SIGTERM, signal.SIGINT)
PR_SET_PDEATHSIG = 1
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


class Database:
    """One asyncpg connection driven from an actor's thread (each actor has its own), reconnecting after a
    restart."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._loop = asyncio.new_event_loop()
        self._conn: Any = None

    def execute(self, sql: str, *args: Any) -> Any:
        if self._conn is None or self._conn.is_closed():
            self._conn = self._loop.run_until_complete(asyncpg.connect(self._url))
        try:
            return self._loop.run_until_complete(self._conn.execute(sql, *args))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            self._conn = None
            raise

    def fetchrow(self, sql: str, *args: Any) -> Any:
        self.execute("SELECT 1")  # connects, or reconnects
        return self._loop.run_until_complete(self._conn.fetchrow(sql, *args))


def every(stop: threading.Event, seconds: float, step: Callable[[], None]) -> None:
    """Run ``step`` every ``seconds`` until ``stop``; a server error (a restart) skips one beat instead of ending
    the actor."""
    while not stop.is_set():
        with contextlib.suppress(redis.RedisError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            step()
        stop.wait(seconds)


@actor("heartbeat")
def heartbeat(workers: list[str], servers: Servers, stop: threading.Event) -> None:
    """Live workers heartbeat as BSNexus's do: the registry key renewed (a key that was evicted stays gone), and
    the workers row's last_heartbeat written at most once a minute (``worker:db_heartbeat`` throttles it)."""
    client = servers.redis()
    db = Database(servers.database_url)

    def beat() -> None:
        for worker in workers:
            client.expire(f"worker:{worker}", WORKER_KEY_TTL_S)
            if client.set(f"worker:db_heartbeat:{worker}", "1", ex=DB_HEARTBEAT_TTL_S, nx=True):
                db.execute("UPDATE workers SET last_heartbeat = now() WHERE id = $1", uuid.UUID(worker))

    every(stop, HEARTBEAT_EVERY_S, beat)


@actor("work")
def work(config: dict[str, Any], servers: Servers, stop: threading.Event) -> None:
    """Work makes progress, so a healthy world stays healthy however long it runs (see World.keep_working)."""
    client = servers.redis()
    db = Database(servers.database_url)
    if not stop.wait(config["every_s"]):  # the planted world first stays as planted for a while
        every(stop, config["every_s"], lambda: finish_longest_held(client, db, config["workers"]))


def finish_longest_held(client: redis.Redis, db: Database, workers: list[str]) -> None:
    held = [
        (int(p["time_since_delivered"]), stream, group, worker, p["message_id"].decode())
        for stream, group in (("tasks:queue", "workers"), ("tasks:qa", "reviewers"))
        for worker in workers
        for p in client.xpending_range(stream, group, "-", "+", 10, consumername=worker)
    ]
    if not held:
        return
    _, stream, group, worker, entry = max(held)
    body = {k.decode(): v.decode() for _, fields in client.xrange(stream, entry, entry) for k, v in fields.items()}
    task = body.get("task_id", "")
    client.xack(stream, group, entry)
    if stream == "tasks:queue":  # executed: the orchestrator takes the result, the task goes to review
        client.xadd("tasks:results", {"task_id": task, "project_id": body.get("project_id", ""), "status": "success"})
        for _, entries in client.xreadgroup("pm", "pm-0", {"tasks:results": ">"}, count=1):
            client.xack("tasks:results", "pm", *[e for e, _ in entries])
        db.execute(
            "UPDATE tasks SET status = 'review', worker_id = $2, reviewer_id = $2, started_at = now(),"
            " updated_at = now() WHERE id::text = $1",
            task,
            uuid.UUID(worker),
        )
        client.xadd("tasks:qa", body | {"reviewer_id": worker, "qa_prompt": "Review the diff"})
        client.xreadgroup("reviewers", worker, {"tasks:qa": ">"}, count=1)
        return
    # reviewed: done; its project queues its next task, and the worker takes the oldest one waiting
    db.execute("UPDATE tasks SET status = 'done', completed_at = now(), updated_at = now() WHERE id::text = $1", task)
    queued = db.fetchrow(
        "UPDATE tasks SET status = 'queued', updated_at = now() WHERE id = (SELECT id FROM tasks"
        " WHERE project_id::text = $1 AND status IN ('ready', 'waiting') ORDER BY title LIMIT 1)"
        " RETURNING id::text AS id, project_id::text AS project_id, title, priority::text AS priority",
        body.get("project_id", ""),
    )
    if queued is not None:
        client.xadd(
            "tasks:queue",
            {
                **dict(queued),
                "worker_prompt": json.dumps({"prompt": f"Implement {queued['title']}"}),
                "retry_count": "0",
            },
        )
    client.xreadgroup("workers", worker, {"tasks:queue": ">"}, count=1)


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


def serve(state_dir: Path) -> None:
    """The traffic process: fork the actors, then end or restart them as the sandbox signals (see the module's
    docstring)."""
    from bsnexus_lab.sandbox.scenarios import discover

    control = {PAUSE, RESUME, *END}
    signal.pthread_sigmask(signal.SIG_BLOCK, control)  # taken by sigwait below, never by a handler
    discover()  # every actor registered (and imported) once, before any fork
    actors: int | None = _fork_actors(state_dir)
    while True:
        signum = signal.sigwait(control)
        if actors is not None:
            os.kill(actors, signal.SIGTERM)
            os.waitpid(actors, 0)
            actors = None
        if signum == PAUSE:
            (state_dir / PAUSED).touch()
        elif signum == RESUME:
            actors = _fork_actors(state_dir)
        else:
            return


def _fork_actors(state_dir: Path) -> int:
    """A child running the actors of ``traffic.json`` until SIGTERM (or the traffic process's death)."""
    config = json.loads((state_dir / "traffic.json").read_text())
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # never outlive the traffic process
        if os.getppid() != parent:  # it died before that was set
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {PAUSE, RESUME, *END})
        run(config, stop)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # a forked child: none of the parent's exit handlers


def main() -> None:
    # Run as ``-m``, this file is ``__main__``; scenario modules register their actors in the importable
    # module, so take the registry from there.
    from bsnexus_lab.sandbox import traffic

    traffic.serve(Path(sys.argv[1]))


if __name__ == "__main__":
    main()
