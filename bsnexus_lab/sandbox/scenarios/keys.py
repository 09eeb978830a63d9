"""Keyspace and memory scenarios: the healthy world plus a key without TTL, eviction, big keys, growth."""

from __future__ import annotations

import json
import threading
from typing import Any

from bsnexus_lab.sandbox.scenarios import scenario
from bsnexus_lab.sandbox.servers import COMPOSE_REDIS
from bsnexus_lab.sandbox.traffic import Servers, actor
from bsnexus_lab.sandbox.world import World, build_healthy

CACHE_TTL_S = 300
GROWTH_STREAM = "events:board"


@scenario("missing-ttl")
async def missing_ttl(world: World) -> dict[str, Any]:
    """Stale cache: 3 of 43 project-cache keys were written without EX; one worker registry key has no TTL."""
    facts = await build_healthy(world)
    pipe = world.redis.pipeline(transaction=False)
    cached = [f"cache:project:{world.uid()}" for _ in range(43)]
    stale = cached[:3]
    for key in cached:
        pipe.set(key, json.dumps({"name": "project", "tasks": 12}), ex=None if key in stale else CACHE_TTL_S)
    ghost = world.uid()  # a worker whose registry key was written without its 90 s TTL: it never "dies"
    pipe.hset(f"worker:{ghost}", mapping={"id": ghost, "name": "worker-ghost", "status": "idle"})
    await pipe.execute()
    return facts | {
        "prefix": "cache:project:*",
        "keys": len(cached),
        "without_ttl": len(stale),
        "stale_keys": stale,
        "registry_key": f"worker:{ghost}",
    }


@scenario("eviction-risk")
async def eviction_risk(world: World) -> dict[str, Any]:
    """BSNexus's compose settings (the sandbox's own, allkeys-lru) under a 4 MB-headroom maxmemory, pushed into
    eviction by a cache while tasks:queue holds 200 waiting tasks."""
    facts = await build_healthy(world)
    await world.backlog("tasks:queue", 200)
    used = int((await world.redis.info("memory"))["used_memory"])
    maxmemory = used + 4 * 1024 * 1024
    await world.redis.config_set("maxmemory", str(maxmemory))
    blob = "x" * 10_000
    for chunk in range(8):  # ~8 MB of cache into 4 MB of headroom: Redis must evict
        pipe = world.redis.pipeline(transaction=False)
        for n in range(100):
            pipe.set(f"cache:render:{chunk * 100 + n}", blob)
        await pipe.execute()
    evicted = int((await world.redis.info("stats"))["evicted_keys"])
    policy = COMPOSE_REDIS["maxmemory-policy"]
    return facts | {"maxmemory": maxmemory, "policy": policy, "evicted_keys": evicted, "backlog": 200}


@scenario("big-keys")
async def big_keys(world: World) -> dict[str, Any]:
    """A 1.5 MB string, a 6,000-field hash, a 6,000-element set and a 12,000-entry audit stream."""
    facts = await build_healthy(world)
    await world.redis.set("cache:export:latest", "x" * 1_500_000)
    pipe = world.redis.pipeline(transaction=False)
    for n in range(6_000):
        pipe.hset("cache:report:all", f"task-{n}", "done")
        pipe.sadd("index:tags", f"tag-{n}")
    for n in range(12_000):
        pipe.xadd("events:audit", {"event": "viewed", "n": str(n)})
    await pipe.execute()
    return facts | {
        "string": "cache:export:latest",
        "string_bytes": 1_500_000,
        "hash": "cache:report:all",
        "hash_fields": 6_000,
        "set": "index:tags",
        "set_members": 6_000,
        "stream": "events:audit",
        "stream_entries": 12_000,
    }


@scenario("memory-growth")
async def memory_growth(world: World) -> dict[str, Any]:
    """events:board grows by 100 board events a second (about 1.5 KB each) and nothing ever trims it."""
    facts = await build_healthy(world)
    world.traffic["grow_stream"] = {"stream": GROWTH_STREAM, "per_s": 100, "bytes": 1500}
    return facts | {"stream": GROWTH_STREAM, "per_s": 100, "entry_bytes": 1500}


@actor("grow_stream")
def grow_stream(config: dict[str, Any], servers: Servers, stop: threading.Event) -> None:
    """XADD without MAXLEN, as the public backend publishes board events: the stream only grows."""
    client = servers.redis()
    payload = "e" * config["bytes"]
    beat = 0.1
    per_beat = max(1, round(config["per_s"] * beat))
    while not stop.wait(beat):
        pipe = client.pipeline(transaction=False)
        for _ in range(per_beat):
            pipe.xadd(config["stream"], {"event": "task_moved", "data": payload})
        try:
            pipe.execute()
        except Exception:  # Redis restarting or at maxmemory: try again next beat
            continue
