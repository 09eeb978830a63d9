"""The only writes the lab makes: moving a dead consumer's entries and acknowledging entries.

Both are dry runs unless asked otherwise, showing exactly which entries would change. A real run needs a Lab
opened with ``allow_writes=True``, and every write is journalled: in ``lab.journal`` and, inside a runbook, in
``writes.jsonl`` of the run directory (the runner sets ``BSNEXUS_LAB_RUN_DIR``).

Moving uses XCLAIM by id, not XAUTOCLAIM: XAUTOCLAIM takes every idle entry of the group, including those of
other consumers that are merely slow; claiming the dead consumer's own ids moves exactly its backlog.
"""

from __future__ import annotations

import pandas as pd

from bsnexus_lab.areas.streams import probes
from bsnexus_lab.context import Context
from bsnexus_lab.errors import LabError, NotFound, PermissionDenied
from bsnexus_lab.resp import text

CLAIM_BATCH = 100


def _require_writes(ctx: Context, what: str) -> None:
    if not ctx.allow_writes:
        raise PermissionDenied(
            f"{what} writes, and this Lab is read-only",
            target=ctx.target.redis,
            hint="review the dry run, then open the Lab with connect(..., allow_writes=True)",
        )


async def claim_dead(
    ctx: Context,
    stream: str,
    group: str,
    dead: str,
    to: str,
    min_idle_ms: int | None,
    dry_run: bool,
    ids: list[str] | None = None,
) -> pd.DataFrame:
    """Every entry ``dead`` holds (or only ``ids``), each with what would happen to it and why."""
    min_idle = int(ctx.thresholds.dead_consumer_idle_s * 1000) if min_idle_ms is None else min_idle_ms
    await _check_recipient(ctx, stream, group, dead, to)
    held = await probes.pending(ctx, stream, group, consumer=dead)
    if ids is not None:
        held = held[held["id"].isin([str(i) for i in ids])]
    plan = held.assign(to=to, action="would claim")
    young = plan["idle_ms"] < min_idle
    plan.loc[young, "action"] = [
        f"skipped: idle {idle / 1000:.0f} s < min_idle_ms={min_idle}" for idle in plan.loc[young, "idle_ms"]
    ]
    if plan.empty:
        plan.attrs["note"] = f"{dead} holds no pending entries in {stream}/{group}" + (" with those ids" if ids else "")
    if not plan.empty:
        # XCLAIM of an id whose body was trimmed drops it from the pending list instead of moving it: leave
        # those alone (the lost-messages check reports them; re-queue the task, then ack them).
        bodies = await probes.peek(ctx, stream, list(plan["id"]))
        gone = set(bodies.loc[~bodies["exists"], "id"])
        plan.loc[plan["id"].isin(gone), "action"] = "skipped: body gone, re-queue the task and ack"
    chosen = list(plan.loc[plan["action"] == "would claim", "id"])
    if dry_run or not chosen:
        return plan
    _require_writes(ctx, "XCLAIM")
    claimed: set[str] = set()
    with ctx.redis_errors():
        for start in range(0, len(chosen), CLAIM_BATCH):
            batch = chosen[start : start + CLAIM_BATCH]
            reply = await ctx.redis().xclaim(stream, group, to, min_idle, batch, justid=True)
            moved = sorted(text(i) for i in reply)
            claimed |= set(moved)
            ctx.record("claim", stream=stream, group=group, from_consumer=dead, to=to, ids=moved)
    plan.loc[plan["id"].isin(claimed), "action"] = "claimed"
    plan.loc[plan["action"] == "would claim", "action"] = "skipped: no longer idle"
    return plan


async def _check_recipient(ctx: Context, stream: str, group: str, dead: str, to: str) -> None:
    """XCLAIM creates a missing consumer: refuse a typo, the dead consumer itself, or a worker that is gone.

    A live worker that has not read this group yet is a fine recipient (the intended reviewer of a misrouted
    QA message often is one).
    """
    if to == dead:
        raise LabError("claiming to the dead consumer itself changes nothing", hint="name a live worker's id")
    members = await probes.consumers(ctx, stream, group)
    match = members[members["consumer"] == to]
    if match.empty:
        with ctx.redis_errors():
            registered = await ctx.redis().pttl(ctx.target.worker_key.format(consumer=to)) != -2
        if not registered:
            raise NotFound(
                f"no consumer {to!r} in {stream}/{group}",
                target=ctx.target.redis,
                hint="claim to a live worker that already reads this group, or whose registry key exists",
            )
    if match["registered"].eq(False).any():
        raise NotFound(
            f"consumer {to!r} has no live worker key",
            target=ctx.target.redis,
            hint="claim to a worker whose registry key exists",
        )


async def ack(ctx: Context, stream: str, group: str, ids: list[str], dry_run: bool) -> pd.DataFrame:
    redis = ctx.redis()
    with ctx.redis_errors():
        pipe = redis.pipeline(transaction=False)
        for entry in ids:
            pipe.execute_command("XPENDING", stream, group, entry, entry, 1)
        replies = await pipe.execute()
    plan = pd.DataFrame(
        {
            "id": ids,
            "consumer": [text(r[0][1]) if r else None for r in replies],
            "action": ["would ack" if r else "skipped: not pending" for r in replies],
        }
    )
    pending_ids = [i for i, r in zip(ids, replies, strict=True) if r]
    if dry_run or not pending_ids:
        return plan
    _require_writes(ctx, "XACK")
    with ctx.redis_errors():
        acked = int(await redis.xack(stream, group, *pending_ids))
    ctx.record("ack", stream=stream, group=group, ids=pending_ids, acknowledged=acked)
    done = "acked" if acked == len(pending_ids) else f"acked or acknowledged meanwhile ({acked} of {len(pending_ids)})"
    plan.loc[plan["action"] == "would ack", "action"] = done
    return plan
