"""The sandbox's BSNexus-shaped backend: ``/health``, ``/health/deps``, a few ``/api/v1`` routes, and the
orchestrator's ``tasks:results`` consumer (``pm-0``), configured the way BSNexus is (``REDIS_URL``,
``DATABASE_URL``, ``LOG_DIR``).

The profiling scenarios plant their fault as a row of the ``settings`` table (``sandbox.fault``), which the
service re-reads every second, so a fault lives exactly as long as the world that planted it. Each fault sits
in one named function, which is what the profiles must point at.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import logging.handlers
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import redis.asyncio as aioredis
from fastapi import FastAPI, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

VERSION = "0.1.0"
FAULT_SETTING = "sandbox.fault"
FAULT_POLL_S = 1.0
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # BSNexus's line format

log = logging.getLogger("bsnexus")
orchestrator_log = logging.getLogger("bsnexus.orchestrator")


class State:
    redis: aioredis.Redis
    engine: AsyncEngine
    fault: str = ""
    consumers_paused = False
    task_views: dict[str, bytes] = {}  # noqa: RUF012 - memory-leak: the unbounded per-request cache


state = State()


def _logging(log_dir: Path) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    for name, file in (("bsnexus", "bsnexus.log"), ("bsnexus.orchestrator", "orchestrator.log")):
        handler = logging.handlers.RotatingFileHandler(log_dir / file, maxBytes=10 * 1024 * 1024, backupCount=5)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _async_url(url: str) -> str:
    return "postgresql+asyncpg://" + url.split("://", 1)[1]


def _plain_url(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


@contextlib.asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    _logging(Path(os.environ.get("LOG_DIR", "logs")))
    state.redis = aioredis.Redis.from_url(os.environ.get("REDIS_URL", "redis://localhost:6379"), socket_timeout=5)
    state.engine = create_async_engine(_async_url(os.environ["DATABASE_URL"]), pool_size=5, max_overflow=10)
    poller = asyncio.create_task(_poll_fault())
    log.info("BSNexus backend %s started", VERSION)
    try:
        yield
    finally:
        poller.cancel()
        for task in _orchestrators.values():
            task.cancel()
        await state.redis.aclose()
        await state.engine.dispose()
        log.info("BSNexus backend stopped")


app = FastAPI(title="BSNexus (sandbox)", version=VERSION, lifespan=lifespan)
_orchestrators: dict[str, asyncio.Task[None]] = {}


async def _poll_fault() -> None:
    while True:
        with contextlib.suppress(Exception):
            async with state.engine.connect() as conn:
                value = await conn.scalar(text("SELECT value::text FROM settings WHERE key = :k"), {"k": FAULT_SETTING})
            fault = json.loads(value) if value else ""
            if fault != state.fault:
                log.info("sandbox fault now %r", fault or "none")
                state.fault = fault
                state.task_views.clear()
        await asyncio.sleep(FAULT_POLL_S)


# -- health --------------------------------------------------------------------------------------------
@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "healthy", "version": VERSION}


@app.get("/health/deps")
async def health_deps() -> dict[str, str]:
    report = {}
    try:
        await state.redis.ping()
        report["redis"] = "connected"
    except Exception:
        report["redis"] = "disconnected"
    try:
        async with state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        report["postgresql"] = "connected"
    except Exception:
        report["postgresql"] = "disconnected"
    return report


@app.post("/lab/consumers")
async def pause_consumers(body: dict[str, bool]) -> dict[str, bool]:
    """Sandbox only: `sandbox traffic stop` pauses the orchestrator loops (the service's only stream writers
    besides requests to /poll) and `start` resumes them, so a read-only proof sees no other writer. A loop is
    not cancelled but left to finish its blocking read: Redis would still deliver to a read abandoned mid-wait."""
    state.consumers_paused = not body.get("running", True)
    if state.consumers_paused:
        await asyncio.gather(*_orchestrators.values(), return_exceptions=True)
    else:
        for name, task in _orchestrators.items():
            if task.done():
                _orchestrators[name] = asyncio.create_task(_consume_results())
    return {"running": not state.consumers_paused}


@app.get("/lab/fault")
async def current_fault() -> dict[str, str]:
    """Sandbox only: the fault the service currently runs with (tests wait on it)."""
    return {"fault": state.fault}


# -- tasks ---------------------------------------------------------------------------------------------
@app.get("/api/v1/tasks")
async def list_tasks(
    project_id: uuid.UUID | None = None, status: str | None = None, limit: int = Query(50, ge=1, le=200)
) -> list[dict[str, Any]]:
    rows = await fetch_tasks(project_id, status, limit)
    if state.fault == "cpu-hotspot":
        return rank_by_similarity(rows)
    return rows


async def fetch_tasks(project_id: uuid.UUID | None, status: str | None, limit: int) -> list[dict[str, Any]]:
    where, params = [], {"limit": limit}
    if project_id is not None:
        where.append("project_id = :project_id")
        params["project_id"] = project_id
    if status is not None:
        where.append("status::text = :status")
        params["status"] = status
    sql = "SELECT id, project_id, title, status::text AS status, priority::text AS priority FROM tasks"
    sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY created_at LIMIT :limit"
    if state.fault == "slow-dependency":
        await run_in_threadpool(fetch_task_statistics)
    async with state.engine.connect() as conn:
        result = await conn.execute(text(sql), params)
        return [{k: str(v) for k, v in row._mapping.items()} for row in result]


def fetch_task_statistics() -> None:
    """slow-dependency: a statistics query through a synchronous driver in the thread pool (as a sync FastAPI
    route would run it) that waits 0.3 s on the database per request: time off-CPU, seen with ``idle=True``."""
    with psycopg.connect(_plain_url(os.environ["DATABASE_URL"]), connect_timeout=5) as conn:
        conn.execute("SELECT pg_sleep(0.3)")


# About 50 ms a task list of 20 rows: half a core at the scenario's 10 lists a second, hot but not saturating.
HOTSPOT_ROUNDS = 10_000


def rank_by_similarity(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """cpu-hotspot: ranks tasks by repeatedly hashing their titles, pure-Python work on the event loop."""
    scores = []
    for row in rows:
        digest = row["title"].encode()
        for _ in range(HOTSPOT_ROUNDS):
            digest = hashlib.sha256(digest).digest()
        scores.append(digest)
    return [row for _, row in sorted(zip(scores, rows, strict=True), key=lambda pair: pair[0])]


@app.get("/api/v1/tasks/{task_id}")
async def get_task(task_id: uuid.UUID) -> dict[str, Any]:
    async with state.engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT id, project_id, title, status::text AS status, worker_prompt::text AS prompt FROM tasks"
                " WHERE id = :id"
            ),
            {"id": task_id},
        )
        row = result.first()
    if row is None:
        raise HTTPException(status_code=404, detail="Task not found")
    view = {k: str(v) for k, v in row._mapping.items()}
    if state.fault == "memory-leak":
        remember_task_view(view)
    if state.fault == "blocking-call":
        load_prompt_template()
    return view


def remember_task_view(view: dict[str, Any]) -> None:
    """memory-leak: caches a rendered view per request under a fresh key, so the cache never stops growing."""
    state.task_views[uuid.uuid4().hex] = json.dumps(view).encode() * 200


def load_prompt_template() -> None:
    """blocking-call: a synchronous wait inside an async handler, so the whole event loop stalls with it."""
    time.sleep(0.04)


# -- workers and orchestrator ----------------------------------------------------------------------------
@app.get("/api/v1/workers/{worker_id}/poll")
async def poll(worker_id: uuid.UUID, block_ms: int = Query(0, ge=0, le=5000)) -> dict[str, Any]:
    """A worker's poll: its own pending entries first (id 0, up to 5), then one new entry."""
    consumer = str(worker_id)
    reply = await state.redis.xreadgroup("workers", consumer, {"tasks:queue": "0"}, count=5)
    entries = [e for _, batch in reply for e in batch if e[1]]
    if not entries:
        reply = await state.redis.xreadgroup("workers", consumer, {"tasks:queue": ">"}, count=1, block=block_ms or None)
        entries = [e for _, batch in reply or [] for e in batch]
    if not entries:
        return {"task": None}
    entry_id, fields = entries[0]
    return {"entry": entry_id.decode(), "task": {k.decode(): v.decode() for k, v in fields.items()}}


@app.post("/api/v1/pm/{project_id}/start")
async def start_orchestrator(project_id: uuid.UUID) -> dict[str, str]:
    """Start the orchestrator's results loop (consumer ``pm-0``), as BSNexus does per started project."""
    if "pm-0" not in _orchestrators or _orchestrators["pm-0"].done():
        _orchestrators["pm-0"] = asyncio.create_task(_consume_results())  # returns at once while paused
        orchestrator_log.info("orchestrator started for project %s", project_id)
    return {"status": "started"}


async def _consume_results() -> None:
    while not state.consumers_paused:
        try:
            reply = await state.redis.xreadgroup("pm", "pm-0", {"tasks:results": ">"}, count=10, block=1000)
            for _, batch in reply or []:
                for entry_id, fields in batch:
                    orchestrator_log.info("result for task %s", fields.get(b"task_id", b"?").decode())
                    await state.redis.xack("tasks:results", "pm", entry_id)
        except aioredis.RedisError as exc:
            orchestrator_log.error("results loop: %s", exc)
            await asyncio.sleep(1)
