"""Scenarios: the healthy world plus one planted fault each.

Adding one is a single decorated function: build on :func:`build_healthy`, plant the fault with the
:class:`World` verbs, and return the planted facts (the values a test or demo expects the checks to find).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from bsnexus_lab.errors import SandboxError
from bsnexus_lab.sandbox.world import World, build_healthy

Scenario = Callable[[World], Awaitable[dict[str, Any]]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str) -> Callable[[Scenario], Scenario]:
    def decorate(function: Scenario) -> Scenario:
        SCENARIOS[name] = function
        return function

    return decorate


def get(name: str) -> Scenario:
    if name not in SCENARIOS:
        raise SandboxError(f"no scenario named {name!r}", hint=f"known: {', '.join(sorted(SCENARIOS))}")
    return SCENARIOS[name]


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
