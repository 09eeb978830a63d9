"""Profiling scenarios: the healthy world plus one fault planted in the sandbox service, under steady load.

Each fault is a row of the ``settings`` table (``sandbox.fault``) that the service re-reads every second,
so it lives exactly as long as the world that planted it; the ``service_load`` actor keeps requests coming.
The service must run (``sandbox up --service``); the load waits for it.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from bsnexus_lab.sandbox.scenarios import scenario
from bsnexus_lab.sandbox.service import app, load
from bsnexus_lab.sandbox.traffic import Servers, actor
from bsnexus_lab.sandbox.world import World, build_healthy

LOAD_PER_S = 20.0
LOAD_MAX_S = 1800.0  # a forgotten scenario stops loading the machine after half an hour
ROUND_S = 30.0

# fault -> (the function the profile must name, the path whose requests run it)
FAULTS = {
    "cpu-hotspot": ("rank_by_similarity", "/api/v1/tasks?limit=20"),
    "memory-leak": ("remember_task_view", "/api/v1/tasks/{task_id}"),
    "blocking-call": ("load_prompt_template", "/api/v1/tasks/{task_id}"),
    "slow-dependency": ("fetch_task_statistics", "/api/v1/tasks?limit=20"),
}


@actor("service_load")
def service_load(config: dict[str, Any], servers: Servers, stop: threading.Event) -> None:
    """Steady loopback requests to the sandbox service, in bounded rounds, for at most LOAD_MAX_S."""
    deadline = time.monotonic() + min(float(config.get("max_s", LOAD_MAX_S)), LOAD_MAX_S)
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            url = json.loads((servers.state_dir / "sandbox.json").read_text())["service"]["url"]
            load.drive(url, config["paths"], per_s=config["per_s"], duration=ROUND_S, stop=stop)
        except Exception:  # the service not started yet, or restarting: try again shortly
            stop.wait(1.0)


async def _plant(world: World, fault: str) -> dict[str, Any]:
    facts = await build_healthy(world)
    await world.db.execute("INSERT INTO settings (key, value) VALUES ($1, $2)", app.FAULT_SETTING, json.dumps(fault))
    function, path = FAULTS[fault]
    paths = ["/health", path]
    world.traffic["service_load"] = {"paths": paths, "per_s": LOAD_PER_S}
    return facts | {"fault": fault, "function": function, "path": path, "file": app.__file__, "load_per_s": LOAD_PER_S}


@scenario("cpu-hotspot")
async def cpu_hotspot(world: World) -> dict[str, Any]:
    """The task list spends most of its time in one function (rank_by_similarity) on the event loop."""
    return await _plant(world, "cpu-hotspot")


@scenario("memory-leak")
async def memory_leak(world: World) -> dict[str, Any]:
    """Every task view is cached under a fresh key (remember_task_view): an unbounded in-process cache."""
    return await _plant(world, "memory-leak")


@scenario("blocking-call")
async def blocking_call(world: World) -> dict[str, Any]:
    """A synchronous sleep inside the async task view (load_prompt_template) stalls the event loop."""
    return await _plant(world, "blocking-call")


@scenario("slow-dependency")
async def slow_dependency(world: World) -> dict[str, Any]:
    """Each task list waits 0.3 s on a slow SQL statement (fetch_task_statistics), off-CPU in the thread pool."""
    return await _plant(world, "slow-dependency")
