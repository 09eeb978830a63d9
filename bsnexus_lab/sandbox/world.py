"""A BSNexus-shaped world: the schema, a healthy workload, and the verbs scenarios use to plant faults.

Everything here follows ``shared/BSNEXUS.md``: table and enum names, stream/group names, key patterns and
TTLs, and the task life cycle (a task stays ``queued`` while a worker holds its message).
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from bsnexus_lab.sandbox.servers import COMPOSE_REDIS

STREAM_GROUPS = {
    "tasks:queue": "workers",
    "tasks:qa": "reviewers",
    "tasks:results": "pm",
    "tasks:escalation": "architect",
}
BOARD_STREAM = "events:board"
ALEMBIC_REVISION = "e8a0c2e4f6b9"  # head of sandbox/migrations/versions
WORKER_KEY_TTL_S = 90
TOKEN_TTL_S = 24 * 3600
DB_HEARTBEAT_TTL_S = 60
ORCHESTRATOR = "orchestrator"  # the actor named in task_history
PM_CONSUMER, ARCHITECT_CONSUMER = "pm-0", "architect-0"  # how the orchestrator reads results and escalations

SCHEMA = """
CREATE TYPE projectstatus AS ENUM ('design', 'active', 'paused', 'completed');
CREATE TYPE phasestatus AS ENUM ('pending', 'active', 'completed');
CREATE TYPE taskstatus AS ENUM ('waiting', 'ready', 'queued', 'in_progress', 'review', 'done', 'redesign');
CREATE TYPE taskpriority AS ENUM ('low', 'medium', 'high', 'critical');
CREATE TYPE workerstatus AS ENUM ('idle', 'busy', 'offline');
CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);
CREATE TABLE projects (
    id uuid PRIMARY KEY, name varchar(255) NOT NULL, description text, repo_path varchar(1024),
    status projectstatus NOT NULL DEFAULT 'design', llm_config json,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE phases (
    id uuid PRIMARY KEY, project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name varchar(255) NOT NULL, branch_name varchar(255), "order" integer NOT NULL,
    status phasestatus NOT NULL DEFAULT 'pending', created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE workers (
    id uuid PRIMARY KEY, name varchar(255) NOT NULL, platform varchar(64), capabilities json,
    status workerstatus NOT NULL DEFAULT 'idle', current_task_id uuid, executor_type varchar(64),
    project_id uuid REFERENCES projects(id), registered_at timestamptz NOT NULL DEFAULT now(),
    last_heartbeat timestamptz);
CREATE TABLE tasks (
    id uuid PRIMARY KEY, project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    phase_id uuid REFERENCES phases(id) ON DELETE CASCADE, title varchar(500) NOT NULL, description text,
    status taskstatus NOT NULL DEFAULT 'waiting', priority taskpriority NOT NULL DEFAULT 'medium',
    worker_prompt json, qa_prompt json, branch_name varchar(255), commit_hash varchar(64),
    worker_id uuid, reviewer_id uuid, qa_result json, error_message text,
    retry_count integer NOT NULL DEFAULT 0, max_retries integer NOT NULL DEFAULT 3, qa_feedback_history json,
    version integer NOT NULL DEFAULT 1, created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(), started_at timestamptz, completed_at timestamptz);
CREATE INDEX ix_tasks_project_status ON tasks (project_id, status);
CREATE INDEX ix_tasks_phase_status ON tasks (phase_id, status);
CREATE INDEX ix_tasks_worker ON tasks (worker_id);
CREATE TABLE task_history (
    id uuid PRIMARY KEY, task_id uuid NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    from_status varchar(32), to_status varchar(32) NOT NULL, actor varchar(255), reason text,
    metadata json, "timestamp" timestamptz NOT NULL DEFAULT now());
CREATE TABLE task_dependencies (
    task_id uuid REFERENCES tasks(id) ON DELETE CASCADE, dependency_id uuid REFERENCES tasks(id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, dependency_id));
CREATE TABLE design_sessions (id uuid PRIMARY KEY, project_id uuid REFERENCES projects(id), status varchar(32),
    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE design_messages (id uuid PRIMARY KEY, session_id uuid REFERENCES design_sessions(id),
    role varchar(32), content text, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE settings (key varchar(255) PRIMARY KEY, value json);
CREATE TABLE registration_tokens (id uuid PRIMARY KEY, token varchar(255) UNIQUE, name varchar(255),
    created_at timestamptz NOT NULL DEFAULT now(), expires_at timestamptz);
CREATE TABLE audit_logs (id uuid PRIMARY KEY, actor varchar(255), action varchar(255), details json,
    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE api_keys (id uuid PRIMARY KEY, name varchar(255), key_hash varchar(255),
    created_at timestamptz NOT NULL DEFAULT now());
"""
TABLES = [
    "api_keys",
    "audit_logs",
    "registration_tokens",
    "settings",
    "design_messages",
    "design_sessions",
    "task_dependencies",
    "task_history",
    "tasks",
    "workers",
    "phases",
    "projects",
    "alembic_version",
]


@dataclass
class Task:
    id: str
    project_id: str
    phase_id: str
    title: str
    status: str
    priority: str


@dataclass
class World:
    """Writes the world through real connections; scenarios call its verbs, then describe what they planted."""

    redis: aioredis.Redis
    db: asyncpg.Connection
    rng: random.Random = field(default_factory=lambda: random.Random(20261128))
    # Credentials come from a generator of their own: planting them leaves every other id of the world as it was.
    credential_rng: random.Random = field(default_factory=lambda: random.Random(20261129))
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    projects: list[str] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    live_workers: list[str] = field(default_factory=list)
    entries: dict[str, Task] = field(default_factory=dict)
    traffic: dict[str, Any] = field(default_factory=dict)  # what the sandbox's traffic process keeps doing
    waiting: list[Task] = field(default_factory=list)  # queued by settle(), after the scenario's own deliveries

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def credential(self, prefix: str) -> str:
        """A recognisable secret (``prefix`` + 32 hex digits): tests look for it in everything the lab writes."""
        return f"{prefix}{self.credential_rng.getrandbits(128):032x}"

    # -- schema ------------------------------------------------------------------------------------------
    async def reset(self) -> None:
        """Empty Redis and every table, and make sure the schema and consumer groups exist."""
        await self.redis.flushdb()
        for name, value in COMPOSE_REDIS.items():  # a scenario may have changed them (eviction-risk)
            await self.redis.config_set(name, value)
        await self.redis.config_resetstat()  # evicted_keys and friends count from this world on
        await self.redis.slowlog_reset()  # nor the slow log: flushing a big keyspace is itself a slow command
        exists = await self.db.fetchval("SELECT to_regclass('public.tasks') IS NOT NULL")
        if exists:
            await self.db.execute(f"TRUNCATE {', '.join(TABLES)} CASCADE")
        else:
            await self.db.execute(SCHEMA)
        # Statement and table statistics start afresh with each world: no scenario inherits another's figures.
        await self.db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await self.db.execute("SELECT pg_stat_statements_reset(), pg_stat_reset()")
        await self.db.execute("INSERT INTO alembic_version VALUES ($1)", ALEMBIC_REVISION)
        for stream, group in STREAM_GROUPS.items():
            await self.redis.xgroup_create(stream, group, id="0", mkstream=True)

    # -- rows ----------------------------------------------------------------------------------------------
    async def add_project(self, name: str, status: str, phases: int = 2, tasks_per_phase: int = 6) -> str:
        project = self.uid()
        created = self.now - timedelta(days=self.rng.randint(3, 30))
        await self.db.execute(
            "INSERT INTO projects (id, name, description, repo_path, status, llm_config, created_at, updated_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            uuid.UUID(project),
            name,
            f"{name}: sandbox project",
            f"/srv/repos/{name.lower().replace(' ', '-')}",
            status,
            json.dumps({"model": "architect-large", "provider": "anthropic", "api_key": self.credential("sk-ant-")}),
            created,
        )
        for order in range(phases):
            phase = self.uid()
            phase_status = "completed" if status == "completed" or order < phases - 1 else "active"
            await self.db.execute(
                'INSERT INTO phases (id, project_id, name, branch_name, "order", status) VALUES ($1,$2,$3,$4,$5,$6)',
                uuid.UUID(phase),
                uuid.UUID(project),
                f"Phase {order + 1}",
                f"phase-{order + 1}",
                order,
                phase_status,
            )
            for n in range(tasks_per_phase):
                done = phase_status == "completed"
                task = Task(
                    self.uid(),
                    project,
                    phase,
                    f"{name} {order + 1}.{n + 1}",
                    "done" if done else ("ready" if n == 0 else "waiting"),
                    self.rng.choice(["low", "medium", "high", "critical"]),
                )
                await self._insert_task(task)
                if done:
                    await self._complete(task)
        self.projects.append(project)
        return project

    async def _insert_task(self, task: Task) -> None:
        await self.db.execute(
            "INSERT INTO tasks (id, project_id, phase_id, title, status, priority, worker_prompt, branch_name)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
            uuid.UUID(task.id),
            uuid.UUID(task.project_id),
            uuid.UUID(task.phase_id),
            task.title,
            task.status,
            task.priority,
            json.dumps({"prompt": f"Implement {task.title}"}),
            f"task/{task.id[:8]}",
        )
        self.tasks.append(task)

    async def set_status(self, task: Task, status: str, actor: str = ORCHESTRATOR, **columns: Any) -> None:
        sets = ", ".join(f"{k} = ${i + 2}" for i, k in enumerate(["status", *columns]))
        await self.db.execute(
            f"UPDATE tasks SET {sets}, updated_at = now() WHERE id = $1",
            uuid.UUID(task.id),
            status,
            *columns.values(),
        )
        await self.db.execute(
            "INSERT INTO task_history (id, task_id, from_status, to_status, actor) VALUES ($1,$2,$3,$4,$5)",
            uuid.UUID(self.uid()),
            uuid.UUID(task.id),
            task.status,
            status,
            actor,
        )
        await self.redis.xadd(
            BOARD_STREAM,
            {"event": "task_status", "data": json.dumps({"task_id": task.id, "from": task.status, "to": status})},
        )
        task.status = status

    async def _complete(self, task: Task) -> None:
        """A finished task leaves acknowledged traffic behind on the queue, qa and results streams."""
        worker, reviewer = self.rng.sample(self.live_workers, 2)
        for stream, group, consumer in (
            ("tasks:queue", "workers", worker),
            ("tasks:qa", "reviewers", reviewer),
            ("tasks:results", "pm", PM_CONSUMER),
        ):
            entry = await self.redis.xadd(stream, self.message(task, stream, reviewer=reviewer))
            await self.redis.xreadgroup(group, consumer, {stream: ">"}, count=1)
            await self.redis.xack(stream, group, entry)
        await self._past_life(task)
        task.status = "done"

    async def _past_life(self, task: Task) -> None:
        """A finished task's transitions, a day or more ago: executed in 4 to 10 minutes, reviewed in 1 to 4, so
        a trace can tell how long each stage usually takes. Spans come from the task's id, not the world's
        random generator, so every other id of the world stays as it was."""
        seed = int(task.id.replace("-", "")[:8], 16)
        executing, reviewing = 240 + seed % 360, 60 + (seed >> 12) % 180
        start = self.now - timedelta(days=1, seconds=seed % 86_400)
        steps = [("ready", "queued", 0), ("queued", "in_progress", executing), ("in_progress", "review", executing + 5)]
        steps.append(("review", "done", executing + 5 + reviewing))
        await self.db.executemany(
            'INSERT INTO task_history (id, task_id, from_status, to_status, actor, "timestamp")'
            " VALUES ($1, $2, $3, $4, $5, $6)",
            [
                (uuid.UUID(int=seed * 8 + n), uuid.UUID(task.id), old, new, ORCHESTRATOR, start + timedelta(seconds=at))
                for n, (old, new, at) in enumerate(steps)
            ],
        )

    def message(self, task: Task, stream: str, reviewer: str = "") -> dict[str, str]:
        """A stream entry shaped as BSNexus writes it: flat strings, nested values JSON-encoded."""
        base = {"task_id": task.id, "project_id": task.project_id, "title": task.title}
        if stream == "tasks:queue":
            return base | {
                "priority": task.priority,
                "branch_name": f"task/{task.id[:8]}",
                "worker_prompt": json.dumps({"prompt": f"Implement {task.title}"}),
                "retry_count": "0",
            }
        if stream == "tasks:qa":
            return base | {
                "reviewer_id": reviewer,
                "branch_name": f"task/{task.id[:8]}",
                "qa_prompt": "Review the diff",
            }
        if stream == "tasks:escalation":
            return base | {"retry_count": "3", "qa_feedback_history": "[]", "error_message": "tests failed"}
        return base | {"status": "success", "commit_hash": task.id[:12]}

    async def add_credentials(self, names: list[str]) -> None:
        """A registration token (workers register with it) and an API key (stored hashed) per name."""
        for name in names:
            ids = [uuid.UUID(int=self.credential_rng.getrandbits(128), version=4) for _ in range(2)]
            await self.db.execute(
                "INSERT INTO registration_tokens (id, token, name, expires_at) VALUES ($1, $2, $3, $4)",
                ids[0],
                self.credential("bsnx_reg_"),
                name,
                self.now + timedelta(days=30),
            )
            key_hash = hashlib.sha256(self.credential("bsnx_key_").encode()).hexdigest()
            await self.db.execute(
                "INSERT INTO api_keys (id, name, key_hash) VALUES ($1, $2, $3)", ids[1], name, f"sha256:{key_hash}"
            )

    # -- workers -------------------------------------------------------------------------------------------
    async def add_worker(self, name: str, *, alive: bool, heartbeat_age: timedelta = timedelta(seconds=5)) -> str:
        """A registered worker: Postgres row and token always; registry keys only while it is alive."""
        worker = self.uid()
        token = self.uid().replace("-", "")
        await self.db.execute(
            "INSERT INTO workers (id, name, platform, capabilities, status, executor_type, registered_at,"
            " last_heartbeat) VALUES ($1,$2,'linux',$3,'idle','claude-code',$4,$5)",
            uuid.UUID(worker),
            name,
            json.dumps(["python", "git"]),
            self.now - timedelta(hours=2),
            self.now - heartbeat_age,
        )
        await self.redis.set(f"worker:token:{token}", worker, ex=TOKEN_TTL_S)
        if alive:
            await self.redis.hset(
                f"worker:{worker}",
                mapping={
                    "id": worker,
                    "name": name,
                    "platform": "linux",
                    "capabilities": json.dumps(["python", "git"]),
                    "executor_type": "claude-code",
                    "status": "idle",
                    "current_task_id": "",
                    "token": token,
                },
            )
            await self.redis.expire(f"worker:{worker}", WORKER_KEY_TTL_S)
            await self.redis.set(f"worker:db_heartbeat:{worker}", "1", ex=DB_HEARTBEAT_TTL_S)
            self.live_workers.append(worker)
        return worker

    async def queue(self, task: Task, **body: str) -> str:
        """ready -> queued: the message goes to tasks:queue (as BSNexus's "queue next" does)."""
        await self.set_status(task, "queued")
        message = self.message(task, "tasks:queue") | body
        entry = await self.redis.xadd("tasks:queue", message)  # the public backend never trims
        self.entries[entry.decode()] = task
        return entry.decode()

    async def deliver(
        self, stream: str, group: str, worker: str, count: int, *, idle_ms: int = 0, deliveries: int = 1
    ) -> list[Task]:
        """XREADGROUP as ``worker``, then age the entries with XCLAIM IDLE/RETRYCOUNT (no waiting needed)."""
        reply = await self.redis.xreadgroup(group, worker, {stream: ">"}, count=count)
        ids = [entry_id.decode() for _, entries in reply for entry_id, _ in entries]
        if ids and (idle_ms or deliveries != 1):
            await self.redis.xclaim(stream, group, worker, 0, ids, idle=idle_ms, retrycount=deliveries, justid=True)
        held = [self.entries[i] for i in ids]
        if held:
            await self.db.execute(
                "UPDATE workers SET status = 'busy', current_task_id = $2 WHERE id = $1",
                uuid.UUID(worker),
                uuid.UUID(held[-1].id),
            )
        return held

    async def review(
        self, task: Task, reviewer: str, *, holder: str | None = None, idle_ms: int = 0, deliveries: int = 1
    ) -> str:
        """The task's result came back: in_progress, then review; its QA message names ``reviewer`` and is read
        by ``holder`` (the reviewer itself, or another worker: a misrouted QA message)."""
        await self.set_status(task, "in_progress", worker_id=uuid.UUID(reviewer), started_at=self.now)
        await self.set_status(task, "review", reviewer_id=uuid.UUID(reviewer))
        entry = (await self.redis.xadd("tasks:qa", self.message(task, "tasks:qa", reviewer=reviewer))).decode()
        self.entries[entry] = task
        await self.deliver("tasks:qa", "reviewers", holder or reviewer, 1, idle_ms=idle_ms, deliveries=deliveries)
        return entry

    async def result(self, task: Task, *, idle_ms: int) -> str:
        """A worker's result for ``task`` that the orchestrator (pm-0) read and never acknowledged."""
        entry = (await self.redis.xadd("tasks:results", self.message(task, "tasks:results"))).decode()
        self.entries[entry] = task
        await self.redis.xreadgroup("pm", PM_CONSUMER, {"tasks:results": ">"}, count=1)
        await self.redis.xclaim("tasks:results", "pm", PM_CONSUMER, 0, [entry], idle=idle_ms, justid=True)
        return entry

    async def backlog(self, stream: str, count: int) -> list[str]:
        """``count`` task-shaped entries no task row backs: producers that ran ahead of the workers."""
        pipe = self.redis.pipeline(transaction=False)
        for n in range(count):
            pipe.xadd(stream, synthetic_message(self.uid(), self.projects[n % len(self.projects)], n))
        return [entry.decode() for entry in await pipe.execute()]

    async def consume(self, stream: str, group: str, worker: str, count: int, keep_pending: int = 0) -> list[str]:
        """A worker reads ``count`` entries and acknowledges all but the last ``keep_pending``."""
        reply = await self.redis.xreadgroup(group, worker, {stream: ">"}, count=count)
        ids = [entry_id.decode() for _, entries in reply for entry_id, _ in entries]
        done = ids[: len(ids) - keep_pending]
        if done:
            await self.redis.xack(stream, group, *done)
        return ids[len(done) :]

    # -- live traffic (run by the sandbox's traffic process, see traffic.py) -------------------------------
    def keep_alive(self, workers: list[str]) -> None:
        """Workers keep heartbeating: registry keys renewed, their rows' last_heartbeat written once a minute."""
        self.traffic["heartbeat"] = list(workers)

    def keep_working(self, workers: list[str], every_s: float) -> None:
        """Every ``every_s``, the worker that has held its task longest finishes it: executed tasks go to review,
        reviewed ones to done (the project queues its next task), and the worker takes the oldest waiting one."""
        self.traffic["work"] = {"workers": list(workers), "every_s": every_s}

    def produce(self, stream: str, per_s: float) -> None:
        self.traffic["produce"] = {"stream": stream, "per_s": per_s, "projects": list(self.projects)}

    def consume_live(self, stream: str, group: str, worker: str, per_s: float) -> None:
        self.traffic["consume"] = {"stream": stream, "group": group, "consumer": worker, "per_s": per_s}

    async def settle(self) -> None:
        """Queue the tasks that wait for a free worker. Done last, so that the deliveries a scenario plants
        (which read the oldest undelivered entries) take the scenario's own entries, not these."""
        for task in self.waiting:
            await self.queue(task)
        self.waiting.clear()

    async def fresh_task(self, project_name: str) -> Task:
        """The first ready task of a new active project: for faults that need a task of their own."""
        return self.ready_tasks(await self.add_project(project_name, "active"))[0]

    def ready_tasks(self, project: str) -> list[Task]:
        return [t for t in self.tasks if t.project_id == project and t.status == "ready"]


def synthetic_message(task_id: str, project_id: str, n: int) -> dict[str, str]:
    return {
        "task_id": task_id,
        "project_id": project_id,
        "title": f"Generated task {n}",
        "priority": "medium",
        "worker_prompt": json.dumps({"prompt": f"Implement generated task {n}"}),
        "retry_count": "0",
    }


async def build_healthy(world: World) -> dict[str, Any]:
    """A busy, healthy BSNexus: every live worker holds a task for minutes and one task waits for a free worker.

    Two workers execute tasks (for 4 and 7 minutes so far), the third reviews one; the fourth project's task
    waits on tasks:queue. That is saturation, BSNexus's normal state on a busy day, not a stall. Its credentials
    sit where BSNexus keeps them (a token per worker in a key name and its hash, a provider API key in each
    project's ``llm_config``, registration tokens, hashed API keys), so a leak of any of them would show.
    """
    await world.reset()
    workers = [await world.add_worker(f"worker-{n}", alive=True) for n in range(1, 4)]
    for name in ["Payments API", "Search Revamp", "Mobile Sync", "Billing Export"]:
        await world.add_project(name, "active")
    await world.add_project("Legacy Import", "completed", tasks_per_phase=4)
    executing = []
    for project, worker, minutes in zip(world.projects[:2], workers[:2], (4, 7), strict=True):
        task = world.ready_tasks(project)[0]
        await world.queue(task)
        await world.deliver("tasks:queue", "workers", worker, 1, idle_ms=minutes * 60_000)
        executing.append(task.id)
    reviewed = world.ready_tasks(world.projects[2])[0]
    await world.queue(reviewed)
    await world.consume("tasks:queue", "workers", workers[2], 1)  # executed and acknowledged earlier
    await world.review(reviewed, workers[2], idle_ms=2 * 60_000)
    waiting = world.ready_tasks(world.projects[3])[0]
    world.waiting.append(waiting)  # queued by settle(), after what the scenario plants
    await world.add_credentials(["worker-fleet", "ci"])
    world.keep_alive(workers)
    return {
        "projects": len(world.projects),
        "live_workers": workers,
        "executing": executing,
        "reviewing": reviewed.id,
        "waiting": [waiting.id],
    }
