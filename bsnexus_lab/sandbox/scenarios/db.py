"""Database scenarios: a leaking pool, a lock chain, a scan-heavy query, a stalled migration chain, and rows
that disagree with the streams. The sessions that must stay open are traffic actors (see the bottom)."""

from __future__ import annotations

import ast
import asyncio
import threading
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg

from bsnexus_lab.sandbox.scenarios import scenario
from bsnexus_lab.sandbox.servers import MAX_CONNECTIONS
from bsnexus_lab.sandbox.traffic import Servers, actor
from bsnexus_lab.sandbox.world import ALEMBIC_REVISION, World, build_healthy

VERSIONS_DIR = Path(__file__).resolve().parent.parent / "migrations" / "versions"
RESERVED = 3  # PostgreSQL's superuser_reserved_connections default
BACKEND = "bsnexus-backend"


@scenario("pool-exhaustion")
async def pool_exhaustion(world: World) -> dict[str, Any]:
    """The backend leaks sessions idle in transaction until PostgreSQL (64 connections) is 95 % full.

    58 sessions named ``bsnexus-backend`` each ran a SELECT in a transaction that nobody ends: every
    process's SQLAlchemy pool (5 + 10) is exhausted, and the server has 3 usable connections left.
    """
    facts = await build_healthy(world)
    held = MAX_CONNECTIONS - RESERVED - 3
    project = world.projects[0]
    world.traffic["hold_sessions"] = {
        "application": BACKEND,
        "sessions": held,
        "query": f"SELECT id, status FROM tasks WHERE project_id = '{project}' ORDER BY updated_at",
    }
    return facts | {"application": BACKEND, "held_sessions": held, "usable_connections": MAX_CONNECTIONS - RESERVED}


@scenario("lock-contention")
async def lock_contention(world: World) -> dict[str, Any]:
    """The orchestrator holds a row lock on a task in a transaction it never ends; two sessions queue behind it.

    ``bsnexus-orchestrator`` updated task A and went idle in transaction; ``bsnexus-api`` locked task B and
    waits for A; ``bsnexus-worker-poll`` waits for B: a chain of three, rooted at the orchestrator.
    """
    facts = await build_healthy(world)
    first, second = [await world.fresh_task(name) for name in ("Audit Trail", "Usage Reports")]
    chain = [
        {"application": "bsnexus-orchestrator", "locks": [first.id]},
        {"application": "bsnexus-api", "locks": [second.id, first.id]},
        {"application": "bsnexus-worker-poll", "locks": [second.id]},
    ]
    world.traffic["lock_chain"] = {"chain": chain}
    return facts | {
        "root_application": "bsnexus-orchestrator",
        "waiter_applications": ["bsnexus-api", "bsnexus-worker-poll"],
        "locked_task": first.id,
        "second_task": second.id,
        "chain_length": 3,
    }


@scenario("slow-query")
async def slow_query(world: World) -> dict[str, Any]:
    """task_history holds 50,000 rows and no index on task_id; a task's history was read 120 times.

    Each read is a sequential scan of the whole table (seen in pg_stat_statements and pg_stat_user_tables).
    """
    facts = await build_healthy(world)
    rows, calls = 50_000, 120
    ids = [uuid.UUID(t.id) for t in world.tasks]
    await world.db.execute(
        'INSERT INTO task_history (id, task_id, from_status, to_status, actor, "timestamp")'
        " SELECT gen_random_uuid(), ($1::uuid[])[1 + i % cardinality($1::uuid[])], 'ready', 'queued',"
        " 'orchestrator', now() - i * interval '1 second' FROM generate_series(1, $2) AS i",
        ids,
        rows,
    )
    query = (
        'SELECT from_status, to_status, actor, "timestamp" FROM task_history WHERE task_id = $1 ORDER BY "timestamp"'
    )
    for n in range(calls):
        await world.db.fetch(query, ids[n % len(ids)])
    return facts | {"table": "task_history", "rows": rows, "calls": calls, "query": query}


@scenario("migration-drift")
async def migration_drift(world: World) -> dict[str, Any]:
    """`alembic upgrade head` stopped at the merge revision: the next migration adds an enum value and uses it
    in the same transaction, which PostgreSQL refuses. Reproduced here by running that migration's statements.
    """
    facts = await build_healthy(world)
    stopped_at, failing = "c5e7a9b1d3f6", "d2f4b6c8e0a1"
    await world.db.execute("UPDATE alembic_version SET version_num = $1", stopped_at)
    try:
        async with world.db.transaction():  # a savepoint: the failed migration leaves nothing behind
            for statement in upgrade_statements(next(VERSIONS_DIR.glob(f"{failing}_*.py"))):
                await world.db.execute(statement)
    except asyncpg.PostgresError as exc:
        error = str(exc)
    else:
        error = ""
    return facts | {
        "versions_dir": str(VERSIONS_DIR),
        "current": stopped_at,
        "head": ALEMBIC_REVISION,
        "behind": 2,
        "not_applied": [failing, ALEMBIC_REVISION],
        "error": error,
    }


def upgrade_statements(path: Path) -> list[str]:
    """The SQL a migration's ``upgrade()`` passes to ``op.execute``, in order."""
    tree = ast.parse(path.read_text())
    upgrade = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade")
    return [
        node.args[0].value
        for node in ast.walk(upgrade)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "execute"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ]


@scenario("db-stream-drift")
async def db_stream_drift(world: World) -> dict[str, Any]:
    """Rows and streams disagree, once each: a task queued but never published (10 minutes ago), a task
    in_progress for a worker whose registry key expired, an entry still pending for a task already done, and a
    task in review whose QA entry is held (delivered 4 times) by another worker than its reviewer."""
    facts = await build_healthy(world)
    live = facts["live_workers"]
    lost, running, acked, review = [
        await world.fresh_task(name) for name in ("Notifications", "Exports", "Webhooks", "Onboarding")
    ]
    await world.set_status(lost, "queued")
    await world.db.execute(
        "UPDATE tasks SET updated_at = now() - interval '10 minutes' WHERE id = $1", uuid.UUID(lost.id)
    )
    gone = await world.add_worker("worker-expired", alive=False, heartbeat_age=timedelta(minutes=10))
    await world.set_status(running, "in_progress", worker_id=uuid.UUID(gone))
    entry = await world.queue(acked)
    await world.deliver("tasks:queue", "workers", live[1], 1, idle_ms=30_000)
    await world.set_status(acked, "done", worker_id=uuid.UUID(live[1]))
    qa_entry = await world.review(review, live[2], holder=live[1], idle_ms=45_000, deliveries=4)
    return facts | {
        "lost_publish": lost.id,
        "expired_worker": {"task_id": running.id, "worker_id": gone},
        "missed_ack": {"task_id": acked.id, "entry": entry, "consumer": live[1]},
        "misrouted_qa": {"task_id": review.id, "entry": qa_entry, "holder": live[1], "reviewer": live[2]},
    }


# -- traffic actors ---------------------------------------------------------------------------------------
Opener = Callable[[str, list[asyncpg.Connection]], Awaitable[None]]


def _hold(servers: Servers, stop: threading.Event, open_sessions: Opener) -> None:
    """Keep the sessions ``open_sessions`` opens until stopped; open them again after a restart or a refusal."""

    async def keep() -> None:
        while not stop.is_set():
            sessions: list[asyncpg.Connection] = []
            try:
                await open_sessions(servers.database_url, sessions)
                while not stop.is_set() and not any(s.is_closed() for s in sessions):
                    await asyncio.sleep(0.2)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await asyncio.sleep(0.5)  # PostgreSQL restarting or full
            finally:
                for session in sessions:
                    session.terminate()

    asyncio.run(keep())


@actor("hold_sessions")
def hold_sessions(config: dict[str, Any], servers: Servers, stop: threading.Event) -> None:
    """Open ``sessions`` connections named ``application``; each runs ``query`` in a transaction never ended."""

    async def open_sessions(url: str, sessions: list[asyncpg.Connection]) -> None:
        for _ in range(config["sessions"]):
            session = await asyncpg.connect(url, server_settings={"application_name": config["application"]})
            sessions.append(session)
            await session.execute("BEGIN")
            await session.execute(config["query"])

    _hold(servers, stop, open_sessions)


@actor("lock_chain")
def lock_chain(config: dict[str, Any], servers: Servers, stop: threading.Event) -> None:
    """Each session of ``chain`` locks its tasks' rows in order (UPDATE in an open transaction): the first
    holds its lock and goes idle, each later one ends up waiting behind the one before."""

    async def open_sessions(url: str, sessions: list[asyncpg.Connection]) -> None:
        for link in config["chain"]:
            session = await asyncpg.connect(url, server_settings={"application_name": link["application"]})
            sessions.append(session)
            await session.execute("BEGIN")
            for task in link["locks"]:
                update = asyncio.ensure_future(
                    session.execute(f"UPDATE tasks SET updated_at = now() WHERE id = '{task}'")
                )
                done, _ = await asyncio.wait([update], timeout=0.5)
                if not done:  # waiting for a lock an earlier session holds: leave it waiting
                    update.add_done_callback(lambda f: f.cancelled() or f.exception())
                    break
                update.result()

    _hold(servers, stop, open_sessions)
