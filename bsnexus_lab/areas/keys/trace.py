"""The keyspace's part in tracing one task: the task's own keys (``task:{id}:needs_intervention``,
``task:{id}:recovery_count``, as the target's conventions name them), their values and TTLs (FIND)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bsnexus_lab.errors import LabError
from bsnexus_lab.findings import Unavailable
from bsnexus_lab.resp import text
from bsnexus_lab.text import duration
from bsnexus_lab.timeline import Part, Subject, events

if TYPE_CHECKING:
    from bsnexus_lab.context import Context

COMMANDS = frozenset({"GET"})  # a task key's value: a flag or a counter


async def find(ctx: Context, subject: Subject) -> Part:
    if not subject.task_id:
        return Part()
    names = [pattern.format(task_id=subject.task_id) for pattern in ctx.target.conventions.task_keys]
    try:
        with ctx.redis_errors():
            pipe = ctx.redis().pipeline(transaction=False)
            for name in names:
                pipe.get(name)
                pipe.pttl(name)
            replies = await pipe.execute(raise_on_error=False)
    except LabError as exc:
        return Part(unavailable=(("task keys", Unavailable.from_error(exc)),))
    now = datetime.now(UTC)
    rows = [
        {
            "time": now,
            "event": f"key {name}",
            "detail": f"= {text(value)!s:.40}, {_ttl(ttl)}",
        }
        for name, value, ttl in zip(names, replies[::2], replies[1::2], strict=True)
        if isinstance(ttl, int) and ttl != -2 and not isinstance(value, Exception)
    ]
    flags = {row["event"].removeprefix("key "): row["detail"] for row in rows}
    return Part(events=events(rows, "redis"), facts={"task_keys": flags} if flags else {})


def _ttl(ttl_ms: int) -> str:
    return f"TTL {duration(ttl_ms / 1000)}" if ttl_ms >= 0 else "no TTL"
