"""The db_health probe set on a big deployment: time per probe, the total, and statements sent. Prints
figures; asserts nothing. Goal: under 2 s in total, no probe over 500 ms.

A sandbox (its own state directory; system servers first) gets the healthy world, then 100,000 more tasks
(spread over 200 projects and every status) and 50 open sessions of a ``bsnexus-backend`` application (10 of
them idle in transaction). Each probe of ``lab.db.snapshot()`` is then run ``--repeat`` times, then the whole
snapshot; its anchor is the same statements replayed through one plain asyncpg connection (no read-only
session, no guard, no frames), so the ratio is what the lab adds around PostgreSQL's own work.

    .venv/bin/python bench/db.py [--tasks 100000] [--sessions 50] [--repeat 5] [--source system|embedded]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pandas as pd
from table import Row, markdown

import bsnexus_lab as bl
from bsnexus_lab.areas.db import activity, consistency, locks, migrations, statements, tables, tasks
from bsnexus_lab.sandbox import Sandbox
from bsnexus_lab.sandbox.scenarios.db import VERSIONS_DIR

MORE_TASKS_SQL = """
WITH p AS (
    INSERT INTO projects (id, name, status) SELECT gen_random_uuid(), 'bench ' || n, 'active'
    FROM generate_series(1, 200) AS n RETURNING id
), ph AS (
    INSERT INTO phases (id, project_id, name, "order", status) SELECT gen_random_uuid(), id, 'bench', 0, 'active'
    FROM p RETURNING id, project_id
), numbered AS (SELECT id, project_id, row_number() OVER () AS n FROM ph)
INSERT INTO tasks (id, project_id, phase_id, title, status, updated_at)
SELECT gen_random_uuid(), b.project_id, b.id, 'bench task ' || i,
       (ARRAY['waiting', 'ready', 'done', 'done', 'done', 'done', 'redesign']::taskstatus[])[1 + i % 7],
       now() - i * interval '1 second'
FROM generate_series(1, $1) AS i JOIN numbered b ON b.n = 1 + i % 200
"""


class Counting:
    """The probes' context, counting (and keeping) the statements they send."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx
        self.statements = 0
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)

    async def query(self, sql: str, **params: Any) -> pd.DataFrame:
        self.statements += 1
        self.sent.append((sql, params))
        return await self._ctx.query(sql, **params)


async def replay(url: str, sent: list[tuple[str, dict[str, Any]]], repeat: int) -> tuple[list[float], int]:
    """The anchor: the same statements through one plain asyncpg connection (``:name`` binds as ``$n``), no
    read-only session, no guard, no frames. Returns the times (ms) and how many statements could be replayed."""
    db = await asyncpg.connect(url)
    plain = []
    for sql, params in sent:
        names: list[str] = []

        def number(match: re.Match[str], names: list[str] = names) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        plain.append((re.sub(r"(?<![:\w]):([A-Za-z_]\w*)", number, sql), [params[n] for n in names]))
    usable = []
    for sql, values in plain:
        try:
            await db.fetch(sql, *values)
            usable.append((sql, values))
        except (asyncpg.PostgresError, asyncpg.InterfaceError, TypeError):
            continue
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        for sql, values in usable:
            await db.fetch(sql, *values)
        times.append((time.perf_counter() - started) * 1000)
    await db.close()
    return times, len(usable)


def probes(ctx: Any) -> dict[str, Callable[[], Awaitable[Any]]]:
    return {
        "server": lambda: activity.server(ctx),
        "activity": lambda: activity.activity(ctx),
        "locks": lambda: locks.locks(ctx),
        "statements": lambda: statements.statements(ctx),
        "tables": lambda: tables.tables(ctx),
        "indexes": lambda: tables.indexes(ctx),
        "databases": lambda: tables.databases(ctx),
        "migrations": lambda: migrations.migrations(ctx, VERSIONS_DIR),
        "tasks": lambda: tasks.tasks(ctx),
        "active_tasks": lambda: tasks.active_tasks(ctx),
        "workers": lambda: tasks.workers(ctx),
        "consistency": lambda: consistency.consistency(ctx),
    }


async def open_sessions(url: str, count: int, idle_in_transaction: int) -> list[asyncpg.Connection]:
    sessions = []
    for n in range(count):
        session = await asyncpg.connect(url, server_settings={"application_name": "bsnexus-backend"})
        if n < idle_in_transaction:
            await session.execute("BEGIN")
            await session.execute("SELECT count(*) FROM workers")
        sessions.append(session)
    return sessions


def rows(tasks: int = 100_000, sessions: int = 50, repeat: int = 5, source: str | None = None) -> list[Row]:
    root = Path(tempfile.mkdtemp(prefix="bsnexus-lab-bench-db-", dir="/tmp"))
    root.chmod(0o755)
    sandbox = Sandbox(root)
    loop = asyncio.new_event_loop()
    try:
        status = sandbox.up(source)
        url = sandbox.urls()["database_url"].replace("+asyncpg", "")

        async def load() -> None:
            db = await asyncpg.connect(url)
            await db.execute(MORE_TASKS_SQL, tasks)
            await db.execute("ANALYZE")
            await db.close()

        loop.run_until_complete(load())
        opened = loop.run_until_complete(open_sessions(url, sessions, sessions // 5))
        print(f"PostgreSQL: {status[1].version} ({status[1].source}); tasks: {tasks:,} more; sessions: {len(opened)}")
        lab = bl.connect(**sandbox.urls())
        counting = Counting(lab.db._ctx)
        lab.db._run(activity.server(counting))  # connect once, outside the figures
        total_median, slowest = 0.0, 0.0
        print(f"{'probe':12} {'median ms':>10} {'max ms':>8} {'statements':>10} {'rows':>7}")
        for name, probe in probes(counting).items():
            times, before = [], counting.statements
            for _ in range(repeat):
                started = time.perf_counter()
                frame = lab.db._run(probe())
                times.append((time.perf_counter() - started) * 1000)
            sent = (counting.statements - before) // repeat
            total_median += statistics.median(times)
            slowest = max(slowest, statistics.median(times))
            print(f"{name:12} {statistics.median(times):10.1f} {max(times):8.1f} {sent:10d} {len(frame):7d}")
        wholes = []
        for _ in range(repeat):
            started = time.perf_counter()
            before, counting.sent = counting.statements, []
            lab.db._run(_snapshot(counting))
            wholes.append((time.perf_counter() - started) * 1000)
        whole = statistics.median(wholes)
        print(f"{'sum':12} {total_median:10.1f}")
        print(
            f"snapshot(): median {whole:.0f} ms, {counting.statements - before} statements "
            "(goal: < 2000 ms, no probe > 500 ms)"
        )
        raw, usable = loop.run_until_complete(replay(url, counting.sent, repeat))
        print(f"the same {usable} statements through plain asyncpg: median {statistics.median(raw):.0f} ms")
        lab.close()
        for session in opened:
            loop.run_until_complete(session.close())
    finally:
        loop.close()
        sandbox.down()
        shutil.rmtree(root, ignore_errors=True)
    anchor = statistics.median(raw)
    return [
        Row(
            f"db snapshot, {tasks:,} more tasks, {sessions} sessions, {status[1].version}",
            f"the same {usable} statements through plain asyncpg",
            whole / anchor,
            "the lab's time / the anchor's",
            "under 2 s, no probe over 500 ms",
            whole < 2000 and slowest < 500,
            f"{whole:.0f} ms vs {anchor:.0f} ms",
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--source", choices=["system", "embedded"], default=None)
    args = parser.parse_args()
    print()
    print(markdown(rows(args.tasks, args.sessions, args.repeat, args.source)))


async def _snapshot(ctx: Any) -> dict[str, pd.DataFrame]:
    from bsnexus_lab.areas.db.snapshot import snapshot

    return await snapshot(ctx, VERSIONS_DIR)


if __name__ == "__main__":
    main()
