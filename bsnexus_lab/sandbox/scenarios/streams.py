"""Stream scenarios: the healthy world plus one planted stream fault each."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bsnexus_lab.resp import entry_id
from bsnexus_lab.sandbox.scenarios import scenario
from bsnexus_lab.sandbox.world import World, build_healthy


@scenario("healthy")
async def healthy(world: World) -> dict[str, Any]:
    """Work flows: live workers hold fresh entries, nothing is stuck."""
    return await build_healthy(world)


@scenario("stuck-consumer")
async def stuck_consumer(world: World) -> dict[str, Any]:
    """A worker (three executor slots) read one task of each of three projects and died 15 minutes ago.

    Its entries stay pending and keep ageing (only the same consumer name would re-read them), its
    ``worker:{id}`` key has expired, its row still says busy, and its tasks stay ``queued``, which stalls
    their projects because queueing waits for them.
    """
    facts = await build_healthy(world)
    dead = await world.add_worker("worker-gone", alive=False, heartbeat_age=timedelta(minutes=15))
    stalled = world.projects[1:4]
    for project in stalled:
        await world.queue(world.ready_tasks(project)[0])
    idle_ms = 15 * 60 * 1000
    held = await world.deliver("tasks:queue", "workers", dead, 3, idle_ms=idle_ms, deliveries=1)
    return facts | {
        "stream": "tasks:queue",
        "group": "workers",
        "dead_consumer": dead,
        "pending": len(held),
        "idle_ms": idle_ms,
        "task_ids": [t.id for t in held],
        "stalled_projects": stalled,
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
    """Every worker stopped (their registry keys expired) while tasks keep arriving on tasks:queue."""
    facts = await build_healthy(world)
    for worker in facts["live_workers"]:
        await world.redis.delete(f"worker:{worker}", f"worker:db_heartbeat:{worker}")
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
    task = world.ready_tasks(world.projects[1])[0]
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
