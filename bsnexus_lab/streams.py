"""Redis Streams probes: what the streams, groups and consumers look like right now.

Cost is bounded and independent of stream length: a fixed number of pipelined round trips (three for a
summary, four when lag must be counted), each carrying O(streams x groups x consumers) commands.
Never KEYS, never an unbounded XRANGE.

Replies are read raw (RESP2 lists or RESP3 maps, whichever the server speaks) so that Redis 6.2 and 7.x go
through one parser.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd
from redis.exceptions import ResponseError

from bsnexus_lab.errors import NotFound, WrongType

if TYPE_CHECKING:
    from bsnexus_lab.lab import Lab

# Redis 6.2 reports no lag; the lab counts entries after last-delivered with one XRANGE of at most this
# many entries (BSNexus trims task streams to ~1000) and estimates beyond it.
LAG_SCAN_LIMIT = 1000

SUMMARY_COLUMNS = [
    "stream",
    "group",
    "exists",
    "length",
    "first_id",
    "last_id",
    "last_delivered_id",
    "entries_read",
    "lag",
    "lag_exact",
    "pending",
    "consumers",
    "oldest_pending_id",
    "max_pending_idle_ms",
]
CONSUMER_COLUMNS = [
    "stream",
    "group",
    "consumer",
    "pending",
    "idle_ms",
    "inactive_ms",
    "oldest_pending_id",
    "oldest_pending_idle_ms",
    "oldest_pending_deliveries",
    "registered",
    "registry_ttl_s",
]


def text(value: Any) -> Any:
    """Bytes as text; bytes that are not UTF-8 keep their escapes instead of crashing the probe."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    return value


def entry_id(value: Any) -> tuple[int, int]:
    ms, _, seq = text(value).partition("-")
    return int(ms), int(seq or 0)


def as_dict(reply: Any) -> dict[str, Any]:
    """A RESP3 map or a RESP2 flat pair list, as a dict with text keys."""
    if isinstance(reply, dict):
        return {text(k): v for k, v in reply.items()}
    return {text(reply[i]): reply[i + 1] for i in range(0, len(reply), 2)}


@dataclass
class _Stream:
    name: str
    exists: bool = True
    info: dict[str, Any] = field(default_factory=dict)
    groups: list[dict[str, Any]] = field(default_factory=list)


async def _read_streams(lab: Lab, names: Sequence[str], *, explicit: bool, info: bool) -> list[_Stream]:
    """One round trip: XINFO GROUPS (and XINFO STREAM when ``info``) for every stream."""
    redis = lab.redis()
    with lab.redis_errors():
        pipe = redis.pipeline(transaction=False)
        for name in names:
            if info:
                pipe.execute_command("XINFO STREAM", name)
            pipe.execute_command("XINFO GROUPS", name)
        replies = await pipe.execute(raise_on_error=False)
    per_stream = 2 if info else 1
    found = []
    for i, name in enumerate(names):
        chunk = replies[i * per_stream : (i + 1) * per_stream]
        stream = _Stream(name)
        errors = [r for r in chunk if isinstance(r, ResponseError)]
        if errors:
            message = str(errors[0])
            if message.startswith("WRONGTYPE"):
                raise WrongType(
                    f"key {name!r} is not a stream",
                    target=lab.target.redis,
                    hint="check the stream names in the target's profile",
                )
            if "no such key" not in message:
                with lab.redis_errors():
                    raise errors[0]
            if explicit:
                raise NotFound(
                    f"no stream named {name!r}",
                    target=lab.target.redis,
                    hint="check the name (BSNexus creates its streams at startup)",
                )
            stream.exists = False
        else:
            stream.info = as_dict(chunk[0]) if info else {}
            stream.groups = [as_dict(g) for g in chunk[-1]]
        found.append(stream)
    return found


def _lag_by_count(info: dict[str, Any], last_delivered: str, counted: int | None) -> tuple[float, bool]:
    """Lag when Redis does not report it: exact from the bounded count, else interpolated by id time."""
    length = int(info.get("length", 0))
    if length == 0:
        return 0, True
    first, last = info.get("first-entry"), info.get("last-entry")
    delivered = entry_id(last_delivered)
    if first and delivered < entry_id(first[0]):
        return length, True
    if last and delivered >= entry_id(last[0]):
        return 0, True
    if counted is not None and counted <= LAG_SCAN_LIMIT:
        return counted, True
    first_ms, last_ms = entry_id(first[0])[0], entry_id(last[0])[0]
    share = (last_ms - delivered[0]) / (last_ms - first_ms) if last_ms > first_ms else 1.0
    return max(LAG_SCAN_LIMIT + 1, round(length * share)), False


def _names(lab: Lab, streams: str | Iterable[str] | None) -> list[str]:
    if streams is None:
        return list(lab.target.streams)
    return [streams] if isinstance(streams, str) else list(streams)


async def summary(lab: Lab, streams: str | Iterable[str] | None = None) -> pd.DataFrame:
    explicit = streams is not None
    names = _names(lab, streams)
    found = await _read_streams(lab, names, explicit=explicit, info=True)
    counted = await _count_lag(lab, found)
    held = await _consumer_rows(
        lab, [(s.name, text(g["name"])) for s in found for g in s.groups if int(g.get("pending", 0))]
    )
    rows = []
    for stream in found:
        base = _stream_row(stream)
        if not stream.groups:
            rows.append(base)
        for group in stream.groups:
            name, last_delivered = text(group["name"]), text(group["last-delivered-id"])
            lag, exact = (
                (group["lag"], True)
                if group.get("lag") is not None
                else _lag_by_count(stream.info, last_delivered, counted.get((stream.name, name)))
            )
            firsts = [c for c in held if (c["stream"], c["group"]) == (stream.name, name) and c["oldest_pending_id"]]
            rows.append(
                base
                | {
                    "group": name,
                    "last_delivered_id": last_delivered,
                    "entries_read": group.get("entries-read"),
                    "lag": lag,
                    "lag_exact": exact,
                    "pending": int(group.get("pending", 0)),
                    "consumers": int(group.get("consumers", 0)),
                    "oldest_pending_id": min((c["oldest_pending_id"] for c in firsts), key=entry_id, default=None),
                    "max_pending_idle_ms": max((c["oldest_pending_idle_ms"] for c in firsts), default=None),
                }
            )
    return _frame(rows, SUMMARY_COLUMNS)


async def _count_lag(lab: Lab, found: list[_Stream]) -> dict[tuple[str, str], int]:
    """One bounded XRANGE per group whose lag Redis does not report (6.2; 7.x after deletions); often none."""
    asks = [
        (stream.name, text(group["name"]), text(group["last-delivered-id"]))
        for stream in found
        for group in stream.groups
        if group.get("lag") is None and _needs_count(stream.info, text(group["last-delivered-id"]))
    ]
    if not asks:
        return {}
    pipe = lab.redis().pipeline(transaction=False)
    for stream_name, _, last_delivered in asks:
        pipe.execute_command("XRANGE", stream_name, "(" + last_delivered, "+", "COUNT", LAG_SCAN_LIMIT + 1)
    with lab.redis_errors():
        replies = await pipe.execute()
    return {(s, g): len(reply) for (s, g, _), reply in zip(asks, replies, strict=True)}


def _needs_count(info: dict[str, Any], last_delivered: str) -> bool:
    first, last = info.get("first-entry"), info.get("last-entry")
    if not first or not last:
        return False
    return entry_id(first[0]) <= entry_id(last_delivered) < entry_id(last[0])


def _stream_row(stream: _Stream) -> dict[str, Any]:
    info = stream.info
    first, last = info.get("first-entry"), info.get("last-entry")
    return {
        "stream": stream.name,
        "exists": stream.exists,
        "length": int(info["length"]) if "length" in info else None,
        "first_id": text(first[0]) if first else None,
        "last_id": text(last[0]) if last else None,
    }


async def consumers(lab: Lab, streams: str | Iterable[str] | None = None, group: str | None = None) -> pd.DataFrame:
    explicit = streams is not None
    names = _names(lab, streams)
    found = await _read_streams(lab, names, explicit=explicit, info=False)
    groups = [(s.name, text(g["name"])) for s in found for g in s.groups if group in (None, text(g["name"]))]
    if group is not None and not groups:
        raise NotFound(f"no consumer group named {group!r} on {', '.join(names)}", target=lab.target.redis)
    return _frame(await _consumer_rows(lab, groups), CONSUMER_COLUMNS)


async def _consumer_rows(lab: Lab, groups: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Two round trips: XINFO CONSUMERS per group; then each consumer's oldest pending entry and registry key.

    A consumer's oldest pending entry is the one it has held longest (entries are delivered in id order and a
    redelivery moves nothing ahead of it), so its idle time says how long that consumer has been stuck.
    """
    if not groups:
        return []
    redis = lab.redis()
    with lab.redis_errors():
        pipe = redis.pipeline(transaction=False)
        for stream_name, group_name in groups:
            pipe.execute_command("XINFO CONSUMERS", stream_name, group_name)
        per_group = await pipe.execute()
    members = [
        (stream_name, group_name, as_dict(c))
        for (stream_name, group_name), reply in zip(groups, per_group, strict=True)
        for c in reply
    ]
    workers = sorted({text(c["name"]) for _, _, c in members if _is_worker_id(text(c["name"]))})
    holding = [(s, g, c) for s, g, c in members if int(c.get("pending", 0))]
    if not members:
        return []
    with lab.redis_errors():
        pipe = redis.pipeline(transaction=False)
        for stream_name, group_name, c in holding:
            pipe.execute_command("XPENDING", stream_name, group_name, "-", "+", 1, c["name"])
        for name in workers:
            pipe.pttl(lab.target.worker_key.format(consumer=name))
        replies = await pipe.execute() if holding or workers else []
    firsts = {(s, g, text(c["name"])): reply for (s, g, c), reply in zip(holding, replies, strict=False)}
    ttls = dict(zip(workers, replies[len(holding) :], strict=True))
    rows = []
    for stream_name, group_name, c in members:
        name = text(c["name"])
        first = (firsts.get((stream_name, group_name, name)) or [None])[0]
        ttl_ms = ttls.get(name)
        rows.append(
            {
                "stream": stream_name,
                "group": group_name,
                "consumer": name,
                "pending": int(c.get("pending", 0)),
                "idle_ms": int(c.get("idle", 0)),
                "inactive_ms": c.get("inactive"),
                "oldest_pending_id": text(first[0]) if first else None,
                "oldest_pending_idle_ms": int(first[2]) if first else None,
                "oldest_pending_deliveries": int(first[3]) if first else None,
                "registered": None if ttl_ms is None else ttl_ms != -2,
                "registry_ttl_s": ttl_ms / 1000 if ttl_ms is not None and ttl_ms >= 0 else None,
            }
        )
    return rows


def _is_worker_id(name: str) -> bool:
    """BSNexus names consumers by worker id (a UUID); other consumers have no registry key to look for."""
    try:
        uuid.UUID(name)
    except ValueError:
        return False
    return True


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns)
    if "registered" in frame:
        frame["registered"] = frame["registered"].astype("boolean")
    for column in (
        "lag",
        "pending",
        "consumers",
        "length",
        "entries_read",
        "oldest_pending_idle_ms",
        "oldest_pending_deliveries",
        "inactive_ms",
    ):
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    return frame


class Streams:
    """``lab.streams``: the stream probes as plain calls that return DataFrames."""

    def __init__(self, lab: Lab) -> None:
        self._lab = lab

    def summary(self, streams: str | Iterable[str] | None = None) -> pd.DataFrame:
        """One row per (stream, group): length, ids, lag (exact or estimated), pending, longest pending idle."""
        return self._lab.run(summary(self._lab, streams))

    def consumers(self, streams: str | Iterable[str] | None = None, group: str | None = None) -> pd.DataFrame:
        """One row per consumer: pending, idle, oldest pending entry, and whether its worker key still exists."""
        return self._lab.run(consumers(self._lab, streams, group))
