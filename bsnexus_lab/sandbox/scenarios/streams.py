"""Stream scenarios: the busy, healthy world plus one planted stream fault each."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from bsnexus_lab.resp import entry_id
from bsnexus_lab.sandbox.scenarios import scenario
from bsnexus_lab.sandbox.world import PM_CONSUMER, World, build_healthy

WORK_EVERY_S = 45.0  # a task finishes somewhere every 45 s: minutes per task with three workers


@scenario("healthy")
async def healthy(world: World) -> dict[str, Any]:
    """A busy day: every worker holds a task for minutes, one task waits for a free worker, work moves on."""
    facts = await build_healthy(world)
    world.keep_working(facts["live_workers"], every_s=WORK_EVERY_S)
    return facts


@scenario("busy")
async def busy(world: World) -> dict[str, Any]:
    """Saturated but healthy: five more projects' tasks wait while all three workers run long tasks."""
    facts = await build_healthy(world)
    extra = [await world.fresh_task(name) for name in ("Data Pipeline", "Auth Service", "Docs Portal", "CLI", "SDK")]
    world.waiting.extend(extra)
    world.keep_working(facts["live_workers"], every_s=WORK_EVERY_S)
    return facts | {"waiting": [*facts["waiting"], *(t.id for t in extra)]}


@scenario("stuck-consumer")
async def stuck_consumer(world: World) -> dict[str, Any]:
    """A worker (three executor slots) read one task of each of three projects and died 15 minutes ago.

    Its entries stay pending and keep ageing (only the same consumer name would re-read them), its
    ``worker:{id}`` key has expired, its row still says busy and its heartbeat stopped 15 minutes ago, and its
    tasks stay ``queued``, which stalls their projects because queueing waits for them.
    """
    facts = await build_healthy(world)
    dead = await world.add_worker("worker-gone", alive=False, heartbeat_age=timedelta(minutes=15))
    tasks = [await world.fresh_task(name) for name in ("Data Pipeline", "Auth Service", "Docs Portal")]
    for task in tasks:
        await world.queue(task)
    idle_ms = 15 * 60 * 1000
    held = await world.deliver("tasks:queue", "workers", dead, 3, idle_ms=idle_ms, deliveries=1)
    return facts | {
        "stream": "tasks:queue",
        "group": "workers",
        "dead_consumer": dead,
        "dead_name": "worker-gone",
        "pending": len(held),
        "idle_ms": idle_ms,
        "task_ids": [t.id for t in held],
        "stalled_projects": [t.project_id for t in tasks],
    }


@scenario("fresh-dead-worker")
async def fresh_dead_worker(world: World) -> dict[str, Any]:
    """A worker died three minutes ago, on Redis run with BSNexus's compose settings (allkeys-lru, 512 MB).

    Its ``worker:{id}`` key has expired (BSNexus lists it offline) and its row's heartbeat is 3 minutes old by
    PostgreSQL's clock; the two tasks it read idle 2.5 minutes, under ``dead_consumer_idle_s``. The signals
    agree, so it is dead now: the idle time need not be waited out.
    """
    facts = await build_healthy(world)  # the sandbox Redis runs with COMPOSE_REDIS, restored by World.reset
    dead = await world.add_worker("worker-fresh", alive=False)
    tasks = [await world.fresh_task(name) for name in ("Data Pipeline", "Auth Service")]
    for task in tasks:
        await world.queue(task)
    idle_ms = 150_000
    held = await world.deliver("tasks:queue", "workers", dead, len(tasks), idle_ms=idle_ms)
    await world.db.execute(
        "UPDATE workers SET last_heartbeat = now() - interval '3 minutes' WHERE id = $1", uuid.UUID(dead)
    )
    return facts | {
        "stream": "tasks:queue",
        "group": "workers",
        "dead_consumer": dead,
        "dead_name": "worker-fresh",
        "pending": len(held),
        "idle_ms": idle_ms,
        "heartbeat_age_s": 180,
        "task_ids": [t.id for t in held],
    }


@scenario("evicted-registry-key")
async def evicted_registry_key(world: World) -> dict[str, Any]:
    """allkeys-lru evicted a busy worker's registry key: it holds a task for 10 minutes and keeps heartbeating
    (its row's last_heartbeat stays fresh), but the backend no longer lists it. Not dead: a warning."""
    facts = await build_healthy(world)
    worker = facts["live_workers"][1]
    await world.redis.delete(f"worker:{worker}")
    held = await world.redis.xpending_range("tasks:queue", "workers", "-", "+", 10, consumername=worker)
    ids = [p["message_id"] for p in held]
    await world.redis.xclaim("tasks:queue", "workers", worker, 0, ids, idle=10 * 60_000, justid=True)
    return facts | {"stream": "tasks:queue", "group": "workers", "consumer": worker, "worker_name": "worker-2"}


@scenario("slow-task")
async def slow_task(world: World) -> dict[str, Any]:
    """A task that is simply slow: worker-2 has executed it for 45 minutes (finished tasks took 4 to 10) and keeps
    heartbeating. Nothing is stuck, so a trace must say "slower than usual", not alarm."""
    facts = await build_healthy(world)
    worker = facts["live_workers"][1]
    held = await world.redis.xpending_range("tasks:queue", "workers", "-", "+", 10, consumername=worker)
    executing_ms = 45 * 60_000
    ids = [p["message_id"] for p in held]
    await world.redis.xclaim("tasks:queue", "workers", worker, 0, ids, idle=executing_ms, justid=True)
    return facts | {
        "task_id": facts["executing"][1],
        "consumer": worker,
        "worker_name": "worker-2",
        "executing_ms": executing_ms,
    }


@scenario("orchestrator-stopped")
async def orchestrator_stopped(world: World) -> dict[str, Any]:
    """The backend restarted and nobody started a project since: its orchestrator loop (pm-0) is not running.

    A worker finished a task and submitted its result: the queue entry is acknowledged, the result waits on
    tasks:results/pm, never delivered, and the row stays ``queued`` (only the orchestrator moves it on). pm-0 is
    still a consumer of the group (consumers outlive their reader) but no longer asks for entries.
    """
    facts = await build_healthy(world)
    task = await world.fresh_task("Data Pipeline")
    await world.queue(task)
    await world.consume("tasks:queue", "workers", facts["live_workers"][0], 1)
    entry = (await world.redis.xadd("tasks:results", world.message(task, "tasks:results"))).decode()
    return facts | {
        "stream": "tasks:results",
        "group": "pm",
        "consumer": PM_CONSUMER,
        "entry": entry,
        "task_id": task.id,
    }


@scenario("backlog-growing")
async def backlog_growing(world: World) -> dict[str, Any]:
    """Producers outpace the workers: 800 tasks wait on tasks:queue, 20 more a second, 5 a second consumed."""
    facts = await build_healthy(world)
    planted = 800
    await world.backlog("tasks:queue", planted)
    world.produce("tasks:queue", per_s=20)
    world.consume_live("tasks:queue", "workers", facts["live_workers"][1], per_s=5)
    return facts | {
        "stream": "tasks:queue",
        "group": "workers",
        "backlog": planted,
        "produce_per_s": 20,
        "consume_per_s": 5,
    }


@scenario("consumers-stopped")
async def consumers_stopped(world: World) -> dict[str, Any]:
    """Every worker stopped 10 minutes ago (registry keys expired, heartbeats stale) while tasks keep arriving."""
    facts = await build_healthy(world)
    for worker in facts["live_workers"]:
        await world.redis.delete(f"worker:{worker}", f"worker:db_heartbeat:{worker}")
    await world.db.execute("UPDATE workers SET last_heartbeat = now() - interval '10 minutes'")
    planted = 30
    await world.backlog("tasks:queue", planted)
    world.keep_alive([])
    world.produce("tasks:queue", per_s=2)
    return facts | {"stream": "tasks:queue", "group": "workers", "backlog": planted, "live_workers": []}


@scenario("poison-message")
async def poison_message(world: World) -> dict[str, Any]:
    """A task whose prompt is truncated JSON keeps crashing the worker that reads it: delivered 7 times."""
    facts = await build_healthy(world)
    worker = facts["live_workers"][1]
    task = await world.fresh_task("Data Pipeline")
    entry = await world.queue(task, worker_prompt='{"prompt": "Implement ' + task.title + '", "files": ["src/ind')
    await world.deliver("tasks:queue", "workers", worker, 1, idle_ms=20_000, deliveries=7)
    return facts | {
        "stream": "tasks:queue",
        "group": "workers",
        "entry": entry,
        "deliveries": 7,
        "consumer": worker,
        "task_id": task.id,
    }


@scenario("misrouted-qa")
async def misrouted_qa(world: World) -> dict[str, Any]:
    """A QA message meant for worker-1 was read by worker-3, which skips it on every poll (delivered 6 times):
    the task stays in review. It looks like a poison message but is not."""
    facts = await build_healthy(world)
    reviewer, holder = facts["live_workers"][0], facts["live_workers"][2]
    task = await world.fresh_task("Data Pipeline")
    await world.queue(task)
    await world.consume("tasks:queue", "workers", facts["live_workers"][1], 1)
    entry = await world.review(task, reviewer, holder=holder, idle_ms=4 * 60_000, deliveries=6)
    return facts | {
        "stream": "tasks:qa",
        "group": "reviewers",
        "entry": entry,
        "task_id": task.id,
        "intended_reviewer": reviewer,
        "holder": holder,
        "deliveries": 6,
    }


@scenario("stuck-result")
async def stuck_result(world: World) -> dict[str, Any]:
    """A duplicate result for a task already done raised in the orchestrator ("Invalid transition: done ->
    review"): it has stayed pending on pm-0 for 12 minutes with delivery count 1, and always will."""
    facts = await build_healthy(world)
    task = await world.fresh_task("Data Pipeline")
    await world.set_status(task, "done")
    idle_ms = 12 * 60_000
    entry = await world.result(task, idle_ms=idle_ms)
    return facts | {
        "stream": "tasks:results",
        "group": "pm",
        "consumer": PM_CONSUMER,
        "entry": entry,
        "task_id": task.id,
        "idle_ms": idle_ms,
    }


@scenario("trimmed-backlog")
async def trimmed_backlog(world: World) -> dict[str, Any]:
    """The backlog passed the trim limit: XTRIM dropped 300 entries no worker had read, and the bodies of
    entries still pending (the live workers' in-flight tasks)."""
    facts = await build_healthy(world)
    await world.backlog("tasks:queue", 1500)
    still_pending = await world.consume("tasks:queue", "workers", facts["live_workers"][1], 200, keep_pending=2)
    await world.redis.xtrim("tasks:queue", maxlen=1000, approximate=False)
    first = (await world.redis.xrange("tasks:queue", count=1))[0][0].decode()
    pending = await world.redis.xpending_range("tasks:queue", "workers", "-", "+", 10_000)
    bodyless = [p["message_id"].decode() for p in pending if entry_id(p["message_id"]) < entry_id(first)]
    return facts | {
        "stream": "tasks:queue",
        "group": "workers",
        "lost": 300,
        "bodyless": len(bodyless),
        "still_pending": still_pending,
    }
