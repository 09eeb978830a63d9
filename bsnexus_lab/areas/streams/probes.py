"""Redis Streams probes: what the streams, groups and consumers look like right now.

Cost is bounded and independent of stream length: a fixed number of pipelined round trips (three for a
summary, four when lag must be counted), each carrying O(streams x groups x consumers) commands, plus pages
of ``XPENDING ... IDLE`` only for a consumer holding more than ``IDLE_PEEK`` entries (at most
``pending_scan_limit`` of them). Never KEYS, never an unbounded XRANGE or XPENDING.

Replies are read raw (RESP2 lists or RESP3 maps, whichever the server speaks) so that Redis 6.2 and 7.x go
through one parser.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from redis.exceptions import NoPermissionError, ResponseError

from bsnexus_lab.areas.streams.commands import COUNT_SCRIPT
from bsnexus_lab.config import Conventions
from bsnexus_lab.context import Context
from bsnexus_lab.errors import NotFound, WrongType, first_line
from bsnexus_lab.masking import mask_fields
from bsnexus_lab.resp import as_dict, decode, entry_id, text

# Redis 6.2 reports no lag; the lab counts entries after last-delivered with one XRANGE of at most this
# many entries (BSNexus trims task streams to ~1000) and estimates beyond it.
LAG_SCAN_LIMIT = 1000
# A consumer's first pending entries, read in one go: a BSNexus worker holds a handful (it re-reads up to 5).
IDLE_PEEK = 100

SUMMARY_COLUMNS = [
    "stream",
    "group",
    "exists",
    "direct",
    "length",
    "first_id",
    "last_id",
    "entries_added",
    "max_deleted_id",
    "last_delivered_id",
    "entries_read",
    "lag",
    "lag_exact",
    "lag_reported",
    "pending",
    "consumers",
    "oldest_pending_id",
    "max_pending_idle_ms",
    "oldest_waiting_id",
    "oldest_wait_ms",
]
CONSUMER_COLUMNS = [
    "stream",
    "group",
    "consumer",
    "pending",
    "idle_ms",
    "inactive_ms",
    "oldest_pending_id",
    "max_pending_idle_ms",
    "longest_idle_id",
    "longest_idle_deliveries",
    "registered",
    "registry_ttl_s",
]


@dataclass(frozen=True)
class _Counted:
    """What the counting script saw of one group, in one consistent reply."""

    after: int  # entries after the last-delivered id still in the stream (at most LAG_SCAN_LIMIT + 1)
    reported: int | None  # the lag Redis reports (7.x), None where it reports none
    first_waiting: str | None  # the oldest entry the group has not been given yet


@dataclass
class _Stream:
    name: str
    exists: bool = True
    info: dict[str, Any] = field(default_factory=dict)
    groups: list[dict[str, Any]] = field(default_factory=list)
    counted: dict[str, _Counted] = field(default_factory=dict)  # by group
    script_refused: str | None = None  # why lag could only be estimated

    def needs_count(self, thorough: bool) -> bool:
        """Whether a group's lag must be counted: Redis did not report it, or (``thorough``) reported any.

        Redis 7 reports lag as entries-added - entries-read, which keeps counting entries trimmed before the
        group read them; only a count of what is still in the stream tells the backlog from the loss. A
        summary counts whenever there is a backlog; the sampler only where the report is missing or
        impossible (larger than the stream), to keep its ticks cheap.
        """
        length = int(self.info.get("length", 0))
        for group in self.groups:
            reported = group.get("lag")
            doubtful = reported is None or reported > length or (thorough and reported > 0)
            if doubtful and _needs_count(self.info, text(group["last-delivered-id"])):
                return True
        return False


async def _read_streams(
    ctx: Context, names: Sequence[str], *, explicit: bool, info: bool, count: Collection[str] = ()
) -> list[_Stream]:
    """One round trip: XINFO GROUPS (and XINFO STREAM when ``info``) for every stream, and the counting script
    for the streams in ``count``."""
    redis = ctx.redis()
    evaluate = "EVAL_RO" if await ctx.clients.redis_version() >= (7, 0) else "EVAL"
    with ctx.redis_errors():
        pipe = redis.pipeline(transaction=False)
        for name in names:
            if info:
                pipe.execute_command("XINFO STREAM", name)
            pipe.execute_command("XINFO GROUPS", name)
            if name in count:
                pipe.execute_command(evaluate, COUNT_SCRIPT, 1, name, LAG_SCAN_LIMIT + 1)
        replies = await pipe.execute(raise_on_error=False)
    found = []
    position = 0
    for name in names:
        size = (2 if info else 1) + (name in count)
        chunk = replies[position : position + size]
        position += size
        stream = _Stream(name)
        if name in count and isinstance(chunk[-1], ResponseError) and _refused(chunk[-1]):
            stream.script_refused = first_line(chunk[-1])
            chunk = [*chunk[:-1], []]
        errors = [r for r in chunk if isinstance(r, ResponseError)]
        if errors:
            message = str(errors[0])
            if "WRONGTYPE" in message:
                raise WrongType(
                    f"key {name!r} is not a stream",
                    target=ctx.target.redis,
                    hint="check the stream names in the target's profile",
                )
            if "no such key" not in message:
                with ctx.redis_errors():
                    raise errors[0]
            if explicit:
                raise NotFound(
                    f"no stream named {name!r}",
                    target=ctx.target.redis,
                    hint="check the name (BSNexus creates its streams at startup)",
                )
            stream.exists = False
        else:
            stream.info = as_dict(chunk[0]) if info else {}
            stream.groups = [as_dict(g) for g in chunk[1 if info else 0]]
            if name in count and stream.script_refused is None:
                stream.counted = _counted(chunk[-1])
        found.append(stream)
    return found


def _counted(reply: list[Any]) -> dict[str, _Counted]:
    quads = [reply[i : i + 4] for i in range(0, len(reply), 4)]
    return {
        text(name): _Counted(int(after), None if int(lag) < 0 else int(lag), text(first) or None)
        for name, after, lag, first in quads
    }


def _refused(error: ResponseError) -> bool:
    """A server or ACL that does not let the lab run its script (the summary then estimates lag)."""
    if isinstance(error, NoPermissionError):  # redis-py drops the NOPERM prefix from the message
        return True
    message = str(error).upper()
    return isinstance(error, NoPermissionError) or any(
        words in message for words in ("NO PERMISSIONS", "NOPERM", "UNKNOWN COMMAND", "NOSCRIPT", "SCRIPT")
    )


def _lag_by_count(info: dict[str, Any], last_delivered: str, counted: int | None) -> tuple[float, bool]:
    """Lag when Redis does not report it: exact at the edges or from a bounded count, else interpolated.

    ``counted`` is None when no count was made (the sampler's single round trip); past the scan bound the
    estimate is at least the bound.
    """
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
    estimate = max(1, round(length * share))
    return (estimate if counted is None else max(LAG_SCAN_LIMIT + 1, estimate)), False


def stream_names(ctx: Context, streams: str | Iterable[str] | None) -> list[str]:
    if streams is None:
        return list(ctx.target.streams)
    return [streams] if isinstance(streams, str) else list(streams)


async def summary(ctx: Context, streams: str | Iterable[str] | None = None) -> pd.DataFrame:
    explicit = streams is not None
    names = stream_names(ctx, streams)
    found = await _read_streams(ctx, names, explicit=explicit, info=True)
    counted, refused = await _count_lag(ctx, found)
    now_ms = int(time.time() * 1000)
    held = await _consumer_rows(
        ctx, [(s.name, text(g["name"])) for s in found for g in s.groups if int(g.get("pending", 0))]
    )
    rows = []
    for stream in found:
        base = _stream_row(stream, ctx.target.direct_streams)
        if not stream.groups:
            rows.append(base)
        for group in stream.groups:
            row = base | _group_row(stream, group, counted.get((stream.name, text(group["name"]))))
            firsts = [
                c for c in held if (c["stream"], c["group"]) == (stream.name, row["group"]) and c["oldest_pending_id"]
            ]
            row["oldest_pending_id"] = min((c["oldest_pending_id"] for c in firsts), key=entry_id, default=None)
            row["max_pending_idle_ms"] = max((c["max_pending_idle_ms"] for c in firsts), default=None)
            if row["oldest_waiting_id"]:
                row["oldest_wait_ms"] = max(0, now_ms - entry_id(row["oldest_waiting_id"])[0])
            rows.append(row)
    frame = _frame(ctx, rows, SUMMARY_COLUMNS)
    if refused:
        frame.attrs["notes"] = [
            f"lag on {name} is estimated: the server refused the lab's read-only counting script ({why})"
            for name, why in refused.items()
        ]
    return frame


async def _count_lag(ctx: Context, found: list[_Stream]) -> tuple[dict[tuple[str, str], _Counted], dict[str, str]]:
    """A second round trip, only for streams with a backlog or whose lag Redis did not report (6.2; 7.x after
    deletions); also which streams' scripts were refused, and why."""
    names = [stream.name for stream in found if stream.needs_count(thorough=True)]
    if not names:
        return {}, {}
    counted = await _read_streams(ctx, names, explicit=False, info=False, count=names)
    by_group = {(stream.name, group): n for stream in counted for group, n in stream.counted.items()}
    return by_group, {s.name: s.script_refused for s in counted if s.script_refused}


def _needs_count(info: dict[str, Any], last_delivered: str) -> bool:
    first, last = info.get("first-entry"), info.get("last-entry")
    if not first or not last:
        return False
    return entry_id(first[0]) <= entry_id(last_delivered) < entry_id(last[0])


def _stream_row(stream: _Stream, direct: Iterable[str] = ()) -> dict[str, Any]:
    info = stream.info
    first, last = info.get("first-entry"), info.get("last-entry")
    return {
        "stream": stream.name,
        "exists": stream.exists,
        "direct": stream.name in direct,
        "length": int(info["length"]) if "length" in info else None,
        "first_id": text(first[0]) if first else None,
        "last_id": text(last[0]) if last else None,
        "entries_added": info.get("entries-added"),  # Redis 7+
        "max_deleted_id": text(info["max-deleted-entry-id"]) if "max-deleted-entry-id" in info else None,
    }


def _group_row(stream: _Stream, group: dict[str, Any], counted: _Counted | None) -> dict[str, Any]:
    """The group's row. ``lag`` is the backlog still in the stream; ``lag_reported`` is Redis's own figure
    (7.x), which also counts entries trimmed before the group read them. Where the script counted, both come
    from its one consistent reply."""
    last_delivered = text(group["last-delivered-id"])
    reported = group.get("lag") if counted is None else counted.reported
    length = int(stream.info.get("length", 0))
    lag, exact = _lag_by_count(stream.info, last_delivered, None if counted is None else counted.after)
    if not exact and reported is not None and reported <= length:
        lag, exact = reported, True
    first = stream.info.get("first-entry")
    waiting = counted.first_waiting if counted is not None else None
    if waiting is None and lag and first and entry_id(last_delivered) < entry_id(first[0]):
        waiting = text(first[0])  # the group is behind the whole stream: its oldest waiting entry is the first
    return {
        "group": text(group["name"]),
        "last_delivered_id": last_delivered,
        "entries_read": group.get("entries-read"),
        "lag": lag,
        "lag_exact": exact,
        "lag_reported": reported,
        "pending": int(group.get("pending", 0)),
        "consumers": int(group.get("consumers", 0)),
        "oldest_waiting_id": waiting if lag else None,
    }


async def consumers(ctx: Context, streams: str | Iterable[str] | None = None, group: str | None = None) -> pd.DataFrame:
    explicit = streams is not None
    names = stream_names(ctx, streams)
    found = await _read_streams(ctx, names, explicit=explicit, info=False)
    groups = [(s.name, text(g["name"])) for s in found for g in s.groups if group in (None, text(g["name"]))]
    if group is not None and not groups:
        raise NotFound(f"no consumer group named {group!r} on {', '.join(names)}", target=ctx.target.redis)
    return _frame(ctx, await _consumer_rows(ctx, groups), CONSUMER_COLUMNS)


async def _consumer_rows(ctx: Context, groups: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Two round trips: XINFO CONSUMERS per group; then each consumer's first pending entries and registry key
    (more only for a consumer holding more than :data:`IDLE_PEEK` entries, see :func:`_longest_idle`).

    A consumer's age is its longest-idle pending entry, not its lowest id: a redelivery (a re-read, a claim)
    resets an old id's idle time while entries after it keep ageing.
    """
    if not groups:
        return []
    redis = ctx.redis()
    with ctx.redis_errors():
        pipe = redis.pipeline(transaction=False)
        for stream_name, group_name in groups:
            pipe.execute_command("XINFO CONSUMERS", stream_name, group_name)
        per_group = await pipe.execute()
    members = [
        (stream_name, group_name, as_dict(c))
        for (stream_name, group_name), reply in zip(groups, per_group, strict=True)
        for c in reply
    ]
    is_worker = ctx.target.conventions.is_worker
    workers = sorted({text(c["name"]) for _, _, c in members if is_worker(text(c["name"]))})
    holding = [(s, g, c) for s, g, c in members if int(c.get("pending", 0))]
    if not members:
        return []
    with ctx.redis_errors():
        pipe = redis.pipeline(transaction=False)
        for stream_name, group_name, c in holding:
            pipe.execute_command("XPENDING", stream_name, group_name, "-", "+", IDLE_PEEK, c["name"])
        for name in workers:
            pipe.pttl(ctx.target.worker_key.format(consumer=name))
        replies = await pipe.execute() if holding or workers else []
    firsts = {(s, g, text(c["name"])): reply for (s, g, c), reply in zip(holding, replies, strict=False)}
    longest = await _longest_idle(ctx, holding, firsts)
    ttls = dict(zip(workers, replies[len(holding) :], strict=True))
    rows = []
    for stream_name, group_name, c in members:
        name = text(c["name"])
        first = (firsts.get((stream_name, group_name, name)) or [None])[0]
        idlest = longest.get((stream_name, group_name, name))
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
                "max_pending_idle_ms": int(idlest[2]) if idlest else None,
                "longest_idle_id": text(idlest[0]) if idlest else None,
                "longest_idle_deliveries": int(idlest[3]) if idlest else None,
                "registered": None if ttl_ms is None else ttl_ms != -2,
                "registry_ttl_s": ttl_ms / 1000 if ttl_ms is not None and ttl_ms >= 0 else None,
            }
        )
    return rows


async def _longest_idle(
    ctx: Context, holding: list[tuple[str, str, dict[str, Any]]], firsts: dict[tuple[str, str, str], Any]
) -> dict[tuple[str, str, str], Any]:
    """Each consumer's longest-idle pending entry (an XPENDING row: id, consumer, idle, deliveries).

    Past the first :data:`IDLE_PEEK` entries, ``XPENDING ... IDLE n`` (Redis 6.2+) pages through the rest for
    entries idler than the longest seen so far, all consumers' pages in one pipelined round trip, at most
    ``pending_scan_limit`` entries per consumer.
    """
    longest = {key: max(reply, key=lambda e: int(e[2])) for key, reply in firsts.items() if reply}
    start = {  # where each consumer holding more than it showed goes on from
        (s, g, text(c["name"])): "(" + text(reply[-1][0])
        for s, g, c in holding
        if (reply := firsts.get((s, g, text(c["name"])))) and len(reply) < int(c["pending"])
    }
    scanned = dict.fromkeys(start, IDLE_PEEK)
    limit = ctx.thresholds.pending_scan_limit
    redis = ctx.redis()
    while scanning := [key for key in start if scanned[key] < limit]:
        with ctx.redis_errors():
            pipe = redis.pipeline(transaction=False)
            for key in scanning:
                stream_name, group_name, name = key
                count = min(PENDING_PAGE, limit - scanned[key])
                minimum = int(longest[key][2]) + 1
                pipe.execute_command("XPENDING", stream_name, group_name, "IDLE", minimum, start[key], "+", count, name)
            pages = await pipe.execute()
        for key, page in zip(scanning, pages, strict=True):
            count = min(PENDING_PAGE, limit - scanned[key])
            if page:
                longest[key] = max([longest[key], *page], key=lambda e: int(e[2]))
                start[key] = "(" + text(page[-1][0])
            scanned[key] += len(page)
            if len(page) < count:
                del start[key]
    return longest


PENDING_PAGE = 10_000
PENDING_COLUMNS = ["stream", "group", "id", "consumer", "idle_ms", "deliveries"]


async def pending(
    ctx: Context,
    stream: str | Iterable[str] | None = None,
    group: str | None = None,
    consumer: str | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Pending entries in pages of XPENDING's extended form (never one huge reply).

    Without ``stream``/``group``: every group of the target's streams that has pending entries.
    """
    if isinstance(stream, str) and group is not None:
        groups = [(stream, group)]
    else:
        names = stream_names(ctx, stream)
        found = await _read_streams(ctx, names, explicit=stream is not None, info=False)
        groups = [
            (s.name, text(g["name"]))
            for s in found
            for g in s.groups
            if int(g.get("pending", 0)) and group in (None, text(g["name"]))
        ]
    rows: list[tuple[Any, ...]] = []
    redis = ctx.redis()
    for stream_name, group_name in groups:
        start, taken = "-", 0
        while limit is None or taken < limit:
            count = PENDING_PAGE if limit is None else min(PENDING_PAGE, limit - taken)
            args = [stream_name, group_name, start, "+", count] + ([consumer] if consumer is not None else [])
            with ctx.redis_errors():
                page = await redis.execute_command("XPENDING", *args)
            rows.extend((stream_name, group_name, text(e[0]), text(e[1]), int(e[2]), int(e[3])) for e in page)
            taken += len(page)
            if len(page) < count:
                break
            start = "(" + text(page[-1][0])
    return _frame(ctx, [dict(zip(PENDING_COLUMNS, r, strict=True)) for r in rows], PENDING_COLUMNS)


async def peek(
    ctx: Context,
    stream: str,
    ids: Iterable[str] | None = None,
    start: str = "-",
    end: str = "+",
    count: int = 10,
) -> pd.DataFrame:
    """Message bodies, decoded; with ``ids``, one row per id and ``exists=False`` for a body that is gone."""
    wanted = [str(i) for i in ids] if ids is not None else None
    redis = ctx.redis()
    with ctx.redis_errors():
        pipe = redis.pipeline(transaction=False)
        pipe.type(stream)
        for entry in wanted or []:
            pipe.execute_command("XRANGE", stream, entry, entry, "COUNT", 1)
        if wanted is None:
            pipe.execute_command("XRANGE", stream, start, end, "COUNT", count)
        kind, *replies = await pipe.execute(raise_on_error=False)
    kind = text(kind)
    if kind == "none":
        raise NotFound(f"no stream named {stream!r}", target=ctx.target.redis)
    if kind != "stream":
        raise WrongType(f"key {stream!r} is a {kind}, not a stream", target=ctx.target.redis)
    for reply in replies:
        if isinstance(reply, ResponseError):
            with ctx.redis_errors():
                raise reply
    if wanted is None:
        entries = [(text(e[0]), e[1]) for e in replies[0]]
    else:
        entries = [(entry, reply[0][1] if reply else None) for entry, reply in zip(wanted, replies, strict=True)]
    rows = [body_row(stream, entry, fields) for entry, fields in entries]
    frame = pd.DataFrame(rows, columns=list(dict.fromkeys(["stream", "id", "exists", *(k for r in rows for k in r)])))
    return ctx.target.conventions.stamp(frame)


def body_row(stream: str, entry: str, fields: Any) -> dict[str, Any]:
    """One entry as a row: its fields (a RESP reply, None when the body is gone) decoded and masked.

    A field named like a row column (an event's own ``id``) becomes ``body.id``: it must not replace the entry
    id that bodies are matched on.
    """
    row: dict[str, Any] = {"stream": stream, "id": entry, "exists": fields is not None}
    pairs = as_dict(fields) if fields is not None else {}
    for name, value in mask_fields({name: decode(value) for name, value in pairs.items()}).items():  # tokens
        column = name
        while column in row:
            column = f"body.{column}"
        row[column] = value
    return row


def worth_reading(pending: pd.DataFrame, thresholds: Any) -> pd.DataFrame:
    """The pending entries whose bodies the checks need, most suspicious first, bounded: redelivered ones, QA
    messages (their reviewer), and entries held by the orchestrator (their task)."""
    names = Conventions.of(pending)
    suspicious = (
        (pending["deliveries"] >= thresholds.poison_deliveries)
        | (pending["stream"] == names.qa_stream)
        | pending["consumer"].map(names.is_orchestrator).astype(bool)
    )
    chosen = pending[suspicious].sort_values(["deliveries", "idle_ms"], ascending=False)
    return chosen.head(thresholds.bodies_limit)


async def bodies(ctx: Context, entries: pd.DataFrame) -> pd.DataFrame:
    """The bodies of the entries in a frame with ``stream`` and ``id`` columns (a pending frame, say)."""
    frames = [await peek(ctx, stream, list(group["id"])) for stream, group in entries.groupby("stream", sort=False)]
    found = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["stream", "id", "exists"])
    return ctx.target.conventions.stamp(found)


async def waiting(ctx: Context, stream: str, group: str, limit: int) -> pd.DataFrame:
    """The bodies of the entries not yet delivered to ``group`` (after its last-delivered id), at most ``limit``;
    none when the stream or the group does not exist."""
    [found] = await _read_streams(ctx, [stream], explicit=False, info=False)
    delivered = [text(g["last-delivered-id"]) for g in found.groups if text(g["name"]) == group]
    if not delivered:
        return ctx.target.conventions.stamp(pd.DataFrame(columns=["stream", "id", "exists"]))
    return await peek(ctx, stream, start="(" + delivered[0], count=limit)


TICK_COLUMNS = [
    "stream",
    "group",
    "length",
    "lag",
    "lag_exact",
    "pending",
    "consumers",
    "entries_read",
    "last_delivered_id",
    "error",
]


class BacklogTick:
    """The sampler's tick over ``names``: counts lag inside Redis only where the last tick found it unreported."""

    def __init__(self, ctx: Context, names: Sequence[str]) -> None:
        self._ctx = ctx
        self._names = list(names)
        self._count: set[str] = set(self._names)  # first tick: count wherever needed; then only where needed

    async def __call__(self) -> list[dict[str, Any]]:
        rows = await tick(self._ctx, self._names, self._count)
        self._count = {row["stream"] for row in rows if row.pop("needs_count", False)}
        return rows


async def tick(ctx: Context, names: Sequence[str], count: Collection[str] = ()) -> list[dict[str, Any]]:
    """One sampler tick in ONE pipelined round trip: XINFO STREAM and XINFO GROUPS of every stream, and the
    counting script for the streams in ``count`` (those whose lag Redis does not report)."""
    rows = []
    for stream in await _read_streams(ctx, names, explicit=False, info=True, count=count):
        length = int(stream.info["length"]) if "length" in stream.info else None
        if not stream.groups:
            rows.append({"stream": stream.name, "group": None, "length": length})
        for group in stream.groups:
            row = _group_row(stream, group, stream.counted.get(text(group["name"])))
            rows.append(
                {"stream": stream.name, "length": length, "needs_count": stream.needs_count(thorough=False)} | row
            )
    return rows


# Counts that may be missing: nullable integers, so a missing value is <NA> rather than a float NaN.
_COUNT_COLUMNS = (
    *("lag", "lag_reported", "pending", "consumers", "length", "entries_read", "entries_added", "idle_ms"),
    "deliveries",
    *("max_pending_idle_ms", "longest_idle_deliveries", "inactive_ms", "oldest_wait_ms"),
)


def _frame(ctx: Context, rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    """The rows as a frame with nullable counts, stamped with the conventions the checks read it under."""
    frame = ctx.target.conventions.stamp(pd.DataFrame(rows, columns=columns))
    if "registered" in frame:
        frame["registered"] = frame["registered"].astype("boolean")
    for column in _COUNT_COLUMNS:
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    return frame
