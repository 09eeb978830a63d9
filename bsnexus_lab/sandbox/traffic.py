"""The sandbox's live traffic: ``python -m bsnexus_lab.sandbox.traffic STATE_DIR``.

A scenario describes what keeps happening after it is planted (``World.traffic``): live workers renewing
their registry keys every 10 s as BSNexus workers do with their heartbeats, a producer adding tasks to a
stream, a worker consuming them. The sandbox runs this as its own process and stops it with the servers.
It outlives a Redis restart: a failed step is retried on the next beat.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import redis

from bsnexus_lab.sandbox.world import DB_HEARTBEAT_TTL_S, WORKER_KEY_TTL_S, synthetic_message

MARKER = "bsnexus_lab.sandbox.traffic"
BEAT_S = 0.05
HEARTBEAT_EVERY_S = 10.0


def run(config: dict[str, Any]) -> None:
    client = redis.Redis(port=config["port"], password=config["password"], socket_timeout=2)
    produce, consume = config.get("produce"), config.get("consume")
    produced = consumed = 0.0
    last_heartbeat = 0.0
    started = last = time.monotonic()
    while True:
        time.sleep(BEAT_S)
        now = time.monotonic()
        try:
            if now - last_heartbeat >= HEARTBEAT_EVERY_S:
                for worker in config.get("heartbeat", []):
                    client.expire(f"worker:{worker}", WORKER_KEY_TTL_S)
                    client.set(f"worker:db_heartbeat:{worker}", "1", ex=DB_HEARTBEAT_TTL_S)
                last_heartbeat = now
            if produce:
                produced += produce["per_s"] * (now - last)
                for n in range(int(produced)):
                    project = produce["projects"][n % len(produce["projects"])]
                    message = synthetic_message(str(uuid.uuid4()), project, int(now - started))
                    client.xadd(produce["stream"], message, maxlen=1000, approximate=True)
                produced -= int(produced)
            if consume:
                consumed += consume["per_s"] * (now - last)
                if int(consumed):
                    stream, group = consume["stream"], consume["group"]
                    reply = client.xreadgroup(group, consume["consumer"], {stream: ">"}, count=int(consumed))
                    ids = [entry for _, entries in reply for entry, _ in entries]
                    if ids:
                        client.xack(stream, group, *ids)
                    consumed -= int(consumed)
        except redis.RedisError:
            produced = consumed = 0.0  # Redis restarting or gone: start afresh, no burst when it is back
        last = now


def main() -> None:
    run(json.loads((Path(sys.argv[1]) / "traffic.json").read_text()))


if __name__ == "__main__":
    main()
