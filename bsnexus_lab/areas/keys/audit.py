"""The keyspace audit: every key's type, TTL and memory, aggregated as it goes, one round trip per SCAN batch.

Each batch is one read-only Lua script that runs SCAN and then TYPE, PTTL and MEMORY USAGE for the keys it
returned (``EVAL_RO`` on Redis 7, the allow-listed script through ``EVAL`` on 6.2), so a batch costs one
round trip. The script times itself, and the next batch is sized so that it holds Redis for about
``batch_hold_ms``: larger on a fast, idle server (fewer round trips), smaller where keys cost more. Where
scripting is refused (ACL, a managed Redis), the walk falls back to SCAN plus one pipeline per batch and says
so. Cluster: every primary listed by ``CLUSTER NODES`` is walked concurrently through its own guarded
connection; a node that is down is reported, not fatal.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
from pydantic import SecretStr
from redis.exceptions import ResponseError
from tqdm.auto import tqdm

from bsnexus_lab.areas.keys.names import BSNEXUS_PATTERNS, decode, prefix
from bsnexus_lab.areas.keys.tally import BIGGEST_COLUMNS, Tally
from bsnexus_lab.clients import redis_client
from bsnexus_lab.errors import LabError
from bsnexus_lab.masking import SECRET_SEGMENTS, mask_key

if TYPE_CHECKING:
    from bsnexus_lab.context import Context

SCAN_SCRIPT = """\
-- ARGV: cursor, match, count, measure (1/0), depth, floors "type=bytes,...", secret segments "a,b", then
-- (pattern, prefix) pairs. Returns {cursor, vanished, memory refused (1/0), groups, candidates, keys scanned,
-- microseconds the script held Redis (TIME at its start and end: what sizes the next batch)}:
-- keys are grouped here (the rule of names.prefix) so that only groups and top-N candidates cross the wire.
-- The per-key work is what holds Redis's thread, so names are worked out once per stem (below), not per key.
local measure, depth, floors, secret = ARGV[4] == '1', tonumber(ARGV[5]), {}, {}
for kind, value in string.gmatch(ARGV[6], '([%w%-]+)=(%-?%d+)') do floors[kind] = tonumber(value) end
for word in string.gmatch(ARGV[7], '[^,]+') do secret[word] = true end
local leads = {}  -- first letter of a key -> the (pattern, prefix) pairs that can match it
for i = 8, #ARGV, 2 do
  local lead = ARGV[i]:byte(2)
  local pairs_ = leads[lead] or {}
  pairs_[#pairs_ + 1] = ARGV[i]; pairs_[#pairs_ + 1] = ARGV[i + 1]
  leads[lead] = pairs_
end
local find, sub, byte, call, pcall = string.find, string.sub, string.byte, redis.call, redis.pcall
local function is_id(s)
  return find(s, '^%d+$') or (#s >= 12 and find(s, '^[%x%-]+$'))
    or (#s >= 20 and find(s, '^[%w_%-]+$') and find(s, '%d'))
end
local heads = {}
local function name_of(key)
  local stop = find(key, ':', 1, true)
  if not stop then return is_id(key) and '{id}' or key end
  local head = sub(key, 1, stop - 1)
  local out = heads[head]
  if out == nil then
    out = not secret[head:lower()] and (is_id(head) and '{id}' or head)
    heads[head] = out
  end
  if not out then return head .. ':***' end
  local start = stop + 1
  for n = 2, depth do
    stop = find(key, ':', start, true)
    local seg = sub(key, start, (stop or 0) - 1)
    if stop and secret[seg:lower()] then return out .. ':' .. seg .. ':***' end
    out = out .. ':' .. (is_id(seg) and '{id}' or seg)
    if not stop then return out end
    start = stop + 1
  end
  return out .. ':*'
end
local stems, stem_of = {}, '^' .. string.rep('[^:]*:', depth)
local function group_of(key)  -- a key with more than depth segments is named by its first depth segments alone
  local known = leads[byte(key, 1)]
  if known then
    for i = 1, #known, 2 do if find(key, known[i]) then return known[i + 1] end end
  end
  local _, last = find(key, stem_of)
  if not last then return name_of(key) end
  local stem = sub(key, 1, last)
  local out = stems[stem]
  if out == nil then
    out = name_of(key)
    stems[stem] = out
  end
  return out
end
local began = call('TIME')
local reply = call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', ARGV[3])
local groups, list, candidates, vanished, refused = {}, {}, {}, 0, 0
for _, key in ipairs(reply[2]) do
  local kind = call('TYPE', key).ok
  if kind == 'none' then
    vanished = vanished + 1
  else
    local ttl, size = call('PTTL', key), 0
    if measure then
      local used = pcall('MEMORY', 'USAGE', key)
      if type(used) == 'number' then size = used elseif type(used) == 'table' and used.err then
        measure, refused = false, 1
      end
    end
    local bucket = 5
    if ttl < 0 then bucket = 1 elseif ttl < 3600000 then bucket = 2 elseif ttl < 86400000 then bucket = 3
    elseif ttl < 604800000 then bucket = 4 end
    local name = group_of(key)
    local byname = groups[name]
    if not byname then byname = {}; groups[name] = byname end
    local g = byname[kind]
    if not g then
      g = {name, kind, 0, 0, 0, 0, 0, 0, 0, 0, 0, {}}
      byname[kind] = g
      list[#list + 1] = g
    end
    g[3], g[4], g[4 + bucket] = g[3] + 1, g[4] + size, g[4 + bucket] + 1
    if size > g[10] then g[10] = size end
    if bucket == 1 then
      g[11] = g[11] + size
      if #g[12] < 3 then g[12][#g[12] + 1] = key end
    end
    if size > (floors[kind] or -1) then
      candidates[#candidates + 1] = key
      candidates[#candidates + 1] = kind
      candidates[#candidates + 1] = ttl
      candidates[#candidates + 1] = size
    end
  end
end
local ended = call('TIME')
return {reply[1], vanished, refused, list, candidates, #reply[2], (ended[1] - began[1]) * 1000000 + ended[2] - began[2]}
"""
SCRIPTS = (SCAN_SCRIPT,)
LENGTH_COMMANDS = {
    "string": "STRLEN",
    "hash": "HLEN",
    "list": "LLEN",
    "set": "SCARD",
    "zset": "ZCARD",
    "stream": "XLEN",
}
COMMANDS = frozenset(
    {"SCAN", "TYPE", "PTTL", "MEMORY.USAGE", "DBSIZE", "INFO", "CLUSTER.NODES", *LENGTH_COMMANDS.values()}
)
_KNOWN = [part for pair in BSNEXUS_PATTERNS for part in pair]  # the script's trailing ARGV
_SECRETS = ",".join(SECRET_SEGMENTS)
NODE_COLUMNS = ["node", "status", "mode", "dbsize", "scanned", "keys", "memory_bytes", "without_ttl", "vanished"]
TOTAL_COLUMNS = [
    "keys",
    "memory_bytes",
    "without_ttl",
    "vanished",
    "dbsize",
    "scanned",
    "estimated",
    "scale",
    "memory_measured",
    "modes",
    "nodes",
    "nodes_down",
    "seconds",
    "keys_per_s",
    "notes",
]


@dataclass(frozen=True)
class Audit:
    """What the walk found: ``by_prefix``, ``biggest``, ``by_type``, ``by_node``, ``totals`` and its notes."""

    by_prefix: pd.DataFrame
    biggest: pd.DataFrame
    by_type: pd.DataFrame
    by_node: pd.DataFrame
    totals: pd.DataFrame
    notes: tuple[str, ...] = ()

    def frames(self) -> dict[str, pd.DataFrame]:
        """The frames keyed by qualified name, as checks and triage take them."""
        return {
            f"keys.{name}": getattr(self, name) for name in ("by_prefix", "biggest", "by_type", "by_node", "totals")
        }

    def __repr__(self) -> str:
        row = self.totals.iloc[0]
        label = "estimated " if row["estimated"] else ""
        return (
            f"<Audit {label}{row['keys']} keys, {row['memory_bytes']} bytes, {row['without_ttl']} without TTL, "
            f"{len(self.by_prefix)} prefixes, {row['nodes']} node(s)>"
        )


@dataclass
class _Node:
    """One primary being walked."""

    name: str
    client: Any
    major: int = 7
    dbsize: int = 0
    limit: int | None = None
    mode: str = "script"
    measure: bool = True
    status: str = "ok"
    scanned: int = 0
    finished: bool = False  # the cursor came back to 0
    batch: int = 0  # the SCAN COUNT of its next script batch
    counts: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # keys, memory, without ttl, vanished


class _Pace:
    """The opt-in keys-per-second cap, shared by every node's walk."""

    def __init__(self, keys_per_s: float | None) -> None:
        self.rate = keys_per_s
        self.started = time.monotonic()
        self.done = 0

    async def step(self, keys: int) -> None:
        self.done += keys
        if self.rate:
            ahead = self.done / self.rate - (time.monotonic() - self.started)
            if ahead > 0:
                await asyncio.sleep(ahead)


async def audit(
    ctx: Context,
    match: str | None = None,
    sample: int | None = None,
    *,
    depth: int = 2,
    top: int = 10,
    batch: int | None = None,
    keys_per_s: float | None = None,
    progress: bool = True,
) -> Audit:
    """Walk the keyspace (every primary of a cluster); ``sample`` stops after about that many keys and scales."""
    if sample is not None and sample <= 0:
        raise LabError("sample must be a positive number of keys", hint=f"got {sample}")
    hold_us = 0.0 if batch else ctx.thresholds.batch_hold_ms * 1000  # an explicit batch stays fixed
    batch = batch or ctx.thresholds.scan_batch
    started = time.monotonic()
    notes: list[str] = []
    nodes = await _nodes(ctx, notes)
    try:
        live = [n for n in nodes if n.status == "ok"]
        total = sum(n.dbsize for n in live)
        if sample is not None:
            for node in live:
                node.limit = math.ceil(sample * node.dbsize / total) if total else 0
        tally = Tally(depth=depth, top=top)
        pace = _Pace(keys_per_s)
        goal = sum(min(n.dbsize, n.limit if n.limit is not None else n.dbsize) for n in live)
        with tqdm(total=goal, unit="keys", desc="keys audit", disable=not progress, leave=False) as bar:
            walk = _Walk(ctx, tally, match or "*", batch, hold_us, pace, bar, notes)
            await asyncio.gather(*(walk.node(n) for n in live))
        biggest = await _biggest(ctx, tally, {n.name: n for n in nodes}, depth)
    finally:
        await _close(ctx, nodes)
    complete = all(n.finished for n in live if n.status == "ok") or not tally.scanned
    scale = 1.0 if complete or match else total / tally.scanned
    if scale != 1.0:
        notes.append(f"sampled {tally.scanned} of {total} keys: counts and memory are estimates (x{scale:.2f})")
    if not total:
        notes.append("the database holds no keys")
    measured = all(n.measure for n in live)
    seconds = time.monotonic() - started
    totals = {
        "keys": round(tally.keys * scale),
        "memory_bytes": round(tally.memory * scale),
        "without_ttl": round(tally.without_ttl * scale),
        "vanished": tally.vanished,
        "dbsize": total,
        "scanned": tally.scanned,
        "estimated": scale != 1.0,
        "scale": scale,
        "memory_measured": measured,
        "modes": ",".join(sorted({n.mode for n in live})),
        "nodes": len(nodes),
        "nodes_down": sum(n.status != "ok" for n in nodes),
        "seconds": seconds,
        "keys_per_s": tally.scanned / seconds if seconds else 0.0,
        "notes": "; ".join(notes),
    }
    return Audit(
        by_prefix=tally.by_prefix(scale),
        biggest=biggest,
        by_type=tally.by_type(scale),
        by_node=pd.DataFrame([_node_row(n) for n in nodes], columns=NODE_COLUMNS),
        totals=pd.DataFrame([totals], columns=TOTAL_COLUMNS),
        notes=tuple(notes),
    )


def _node_row(node: _Node) -> dict[str, Any]:
    keys, memory, without_ttl, vanished = node.counts
    return {
        "node": node.name,
        "status": node.status,
        "mode": node.mode if node.status == "ok" else "",
        "dbsize": node.dbsize,
        "scanned": node.scanned,
        "keys": keys,
        "memory_bytes": memory,
        "without_ttl": without_ttl,
        "vanished": vanished,
    }


# -- topology ------------------------------------------------------------------------------------------
async def _nodes(ctx: Context, notes: list[str]) -> list[_Node]:
    """The primaries to walk: the target itself, or every primary of its cluster."""
    client = ctx.redis()
    with ctx.redis_errors():
        info = await client.info()
        if not info.get("cluster_enabled"):
            node = _Node(_address(ctx.target.redis_url.get_secret_value()), client)
            await _describe(node, info)
            return [node]
        listing = await client.execute_command("CLUSTER", "NODES")
    primaries = parse_cluster_nodes(listing)
    nodes = []
    for address, failing in primaries:
        node = _Node(address, None)
        nodes.append(node)
        if failing:
            node.status = f"down: cluster reports it {failing}"
            notes.append(f"cluster node {address} is down ({failing}): its keys are not counted")
            continue
        node.client = _node_client(ctx, address)
        try:
            with ctx.redis_errors():
                await _describe(node, await node.client.info())
        except LabError as exc:
            node.status = f"down: {ctx.target.scrub(str(exc))}"
            notes.append(f"cluster node {address} did not answer: its keys are not counted")
    return nodes


def parse_cluster_nodes(listing: bytes | str) -> list[tuple[str, str]]:
    """(host:port, failure flags or "") of every primary in a CLUSTER NODES reply."""
    text = listing.decode() if isinstance(listing, bytes) else listing
    primaries = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8 or "master" not in fields[2].split(","):
            continue
        address = fields[1].split("@")[0]
        flags = [f for f in fields[2].split(",") if f in ("fail", "fail?", "noaddr")]
        if fields[7] == "disconnected":
            flags.append("disconnected")
        primaries.append((address, ",".join(flags)))
    return sorted(primaries)


def _address(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}" if parts.scheme != "unix" else parts.path


def node_url(url: str, address: str) -> str:
    """The target's URL (credentials, TLS, options) pointed at another node of its cluster."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{address}" if userinfo else address, path=""))


def _node_client(ctx: Context, address: str) -> Any:
    """A guarded client on one cluster node: the target's credentials, the Lab's allow-list and counters."""
    url = SecretStr(node_url(ctx.target.redis_url.get_secret_value(), address))
    clients = ctx.clients
    return redis_client(
        ctx.target.model_copy(update={"redis_url": url}),
        clients.counters,
        allow_writes=clients.allow_writes,
        commands=clients.commands,
        scripts=clients.scripts,
    )


async def _describe(node: _Node, info: dict[str, Any]) -> None:
    node.major = int(str(info.get("redis_version", "7")).split(".")[0])
    node.dbsize = await node.client.dbsize()


async def _close(ctx: Context, nodes: Sequence[_Node]) -> None:
    for node in nodes:
        if node.client is not None and node.client is not ctx.redis():
            await node.client.aclose()


# -- the walk ------------------------------------------------------------------------------------------
def next_batch(current: int, fits: float, first: int) -> int:
    """Halfway from ``current`` to the ``fits`` keys the last batch's time per key allows (one slow batch, a
    preempted server, moves the size by half), within a tenth and ten times the first batch."""
    return max(first // 10 or 1, min(first * 10, round((current + fits) / 2)))


@dataclass
class _Walk:
    """What every node's walk shares: the tally, the SCAN settings, the pace, the progress bar, the notes."""

    ctx: Context
    tally: Tally
    match: str
    batch: int  # the first script batch's SCAN COUNT, every pipeline batch's
    hold_us: float  # what a script batch may hold Redis for (0: every batch is ``batch`` keys)
    pace: _Pace
    bar: Any
    notes: list[str]

    async def node(self, node: _Node) -> None:
        cursor: bytes | int = 0
        try:
            if node.mode == "script" and self.wanted(node):
                cursor = await self.scripted(node)
            while node.mode == "pipeline" and not node.finished and self.wanted(node):
                counts = [0, 0, 0, 0]  # keys, memory, without TTL, vanished
                cursor = await self.pipeline_batch(node, cursor, counts)
                node.counts = [n + c for n, c in zip(node.counts, counts, strict=True)]
                await self.walked(node, cursor, counts[0] + counts[3])
        except LabError as exc:
            node.status = f"failed after {node.scanned} keys: {self.ctx.target.scrub(str(exc))}"
            self.notes.append(f"node {node.name} failed mid-scan after {node.scanned} keys: the totals are incomplete")

    def wanted(self, node: _Node) -> bool:
        return node.limit is None or node.scanned < node.limit

    async def walked(self, node: _Node, cursor: bytes | int, seen: int) -> None:
        """A batch of ``seen`` keys is done: progress, pace; the cursor back at 0 finishes the node."""
        node.scanned += seen
        self.tally.scanned += seen
        self.bar.update(seen)
        await self.pace.step(seen)
        node.finished = int(cursor) == 0

    async def scripted(self, node: _Node) -> bytes | int:
        """Script batches, each sent before the previous reply is tallied: Redis walks the next batch while this
        process groups the last one, so neither waits for the other. Returns the cursor where scripting was
        refused (the walk goes on with pipelines from there)."""
        cursor: bytes | int = 0
        node.batch = self.batch
        reply = await self.script_batch(node, cursor)
        while reply is not None:
            cursor = reply[0]
            await self.walked(node, cursor, reply[5])
            if self.hold_us and reply[5] and reply[6] > 0:
                node.batch = next_batch(node.batch, self.hold_us * reply[5] / reply[6], self.batch)
            following = None
            if not node.finished and self.wanted(node):
                following = asyncio.ensure_future(self.script_batch(node, cursor))
                await asyncio.sleep(0)  # lets it go out before this reply is tallied
            try:
                self.tally_reply(node, reply)
            except BaseException:
                if following is not None:
                    following.cancel()
                raise
            reply = await following if following is not None else None
        return cursor

    async def script_batch(self, node: _Node, cursor: bytes | int) -> list[Any] | None:
        """One SCAN batch walked, looked up and grouped inside Redis: one round trip (None: scripting refused)."""
        tally = self.tally
        floors = ",".join(f"{kind}={tally.floor(kind)}" for kind in tally.heaps)
        command = "EVAL_RO" if node.major >= 7 else "EVAL"
        args = [cursor, self.match, node.batch, int(node.measure), tally.depth, floors, _SECRETS, *_KNOWN]
        try:
            with self.ctx.redis_errors():
                return await node.client.execute_command(command, SCAN_SCRIPT, 0, *args)
        except LabError as exc:
            if not isinstance(exc.__cause__, ResponseError):
                raise
            node.mode = "pipeline"
            self.notes.append(
                f"scripting refused on {node.name} ({exc.hint}): walked with SCAN plus a pipeline per batch"
                " (two round trips per batch)"
            )
            return None

    def tally_reply(self, node: _Node, reply: list[Any]) -> None:
        """A script batch's groups and top-N candidates into the tally and the node's counts."""
        tally = self.tally
        _, vanished, refused, groups, candidates, *_ = reply
        if refused:
            self.memory_refused(node, "NOPERM")
        counts = node.counts
        for group, kind, keys, memory, *rest in groups:
            *buckets, largest, unexpiring, examples = rest
            tally.add_group(decode(group), decode(kind), keys, memory, buckets, largest, unexpiring, examples)
            counts[0] += keys
            counts[1] += memory
            counts[2] += buckets[0]
        counts[3] += vanished
        for n in range(0, len(candidates), 4):
            name, kind, pttl, size = candidates[n : n + 4]
            tally.offer(node.name, name, decode(kind), pttl, size)
        tally.vanished += vanished

    async def pipeline_batch(self, node: _Node, cursor: bytes | int, counts: list[int]) -> bytes | int:
        """One SCAN batch, then TYPE, PTTL and MEMORY USAGE pipelined: two round trips, grouped here."""
        with self.ctx.redis_errors():
            cursor, names = await node.client.scan(cursor, match=self.match, count=self.batch)
            pipe = node.client.pipeline(transaction=False)
            for name in names:
                pipe.type(name)
                pipe.pttl(name)
                if node.measure:
                    pipe.memory_usage(name)
            replies = await pipe.execute(raise_on_error=False)
        width = 3 if node.measure else 2
        for n, name in enumerate(names):
            kind, pttl, *rest = replies[n * width : (n + 1) * width]
            memory = rest[0] if rest else None
            if isinstance(memory, Exception):
                self.memory_refused(node, str(memory))
                memory = None
            failed = next((r for r in (kind, pttl) if isinstance(r, Exception)), None)
            if failed is not None:
                raise LabError("Redis refused a key look-up", target=self.ctx.target.redis, hint=str(failed))
            if decode(kind) == "none":
                self.tally.vanished += 1
                counts[3] += 1
                continue
            self.tally.add_key(node.name, name, decode(kind), int(pttl), memory)
            counts[0] += 1
            counts[1] += memory or 0
            counts[2] += int(pttl) < 0
        return cursor

    def memory_refused(self, node: _Node, reason: str) -> None:
        if node.measure:
            node.measure = False
            self.notes.append(
                f"MEMORY USAGE refused on {node.name} ({reason.split()[0]}): memory columns count 0 there"
            )


# -- the biggest keys, with their element counts --------------------------------------------------------
async def _biggest(ctx: Context, tally: Tally, nodes: dict[str, _Node], depth: int) -> pd.DataFrame:
    """The top N of every type, with element counts read in one pipeline per node at the end."""
    items = tally.biggest_raw()
    lengths: dict[tuple[str, bytes], int | None] = {}
    for name, node in nodes.items():
        mine = [item for item in items if item[2] == name]
        if not mine or node.client is None:
            continue
        pipe = node.client.pipeline(transaction=False)
        for _, key, _, _, kind in mine:
            pipe.execute_command(LENGTH_COMMANDS.get(kind, "STRLEN"), key)
        try:
            with ctx.redis_errors():
                replies = await pipe.execute(raise_on_error=False)
        except LabError:
            continue
        for (_, key, _, _, _), reply in zip(mine, replies, strict=True):
            lengths[(name, key)] = None if isinstance(reply, Exception) else int(reply)
    rows = [
        {
            "key": mask_key(decode(key)),
            "type": kind,
            "memory_bytes": size,
            "elements": lengths.get((node, key)),
            "ttl_s": None if pttl < 0 else pttl / 1000,
            "prefix": prefix(key, depth),
            "node": node,
        }
        for size, key, node, pttl, kind in items
    ]
    frame = pd.DataFrame(rows, columns=BIGGEST_COLUMNS)
    frame["elements"] = frame["elements"].astype("Int64")
    return frame
