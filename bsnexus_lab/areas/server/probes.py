"""Redis server probes: INFO as typed columns, the settings that matter, SLOWLOG, LATENCY, CLIENT LIST.

Each is one or two round trips whatever the deployment's size. Where a managed Redis refuses CONFIG GET
(ACL, ElastiCache), the memory settings come from INFO instead and the frame says so.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import pandas as pd

from bsnexus_lab.clients import APPLICATION_NAME
from bsnexus_lab.errors import LabError
from bsnexus_lab.masking import mask_key

if TYPE_CHECKING:
    from bsnexus_lab.context import Context

COMMANDS = frozenset(
    {"INFO", "CONFIG.GET", "SLOWLOG.GET", "SLOWLOG.LEN", "LATENCY.LATEST", "LATENCY.HISTORY", "CLIENT.LIST"}
)
INFO_COLUMNS = {
    # column: (INFO field, type)
    "version": ("redis_version", str),
    "role": ("role", str),
    "uptime_s": ("uptime_in_seconds", int),
    "cluster_enabled": ("cluster_enabled", bool),
    "used_memory": ("used_memory", int),
    "used_memory_rss": ("used_memory_rss", int),
    "used_memory_peak": ("used_memory_peak", int),
    "used_memory_dataset": ("used_memory_dataset", int),
    "maxmemory": ("maxmemory", int),
    "maxmemory_policy": ("maxmemory_policy", str),
    "fragmentation_ratio": ("mem_fragmentation_ratio", float),
    "evicted_keys": ("evicted_keys", int),
    "expired_keys": ("expired_keys", int),
    "keyspace_hits": ("keyspace_hits", int),
    "keyspace_misses": ("keyspace_misses", int),
    "connected_clients": ("connected_clients", int),
    "blocked_clients": ("blocked_clients", int),
    "rejected_connections": ("rejected_connections", int),
    "maxclients": ("maxclients", int),
    "rdb_last_bgsave_status": ("rdb_last_bgsave_status", str),
    "rdb_changes_since_last_save": ("rdb_changes_since_last_save", int),
    "aof_enabled": ("aof_enabled", bool),
    "aof_last_write_status": ("aof_last_write_status", str),
    "aof_last_bgrewrite_status": ("aof_last_bgrewrite_status", str),
    "connected_replicas": ("connected_slaves", int),
    "master_link_status": ("master_link_status", str),
}
DERIVED = ["memory_ratio", "hit_ratio", "keys", "expires"]
# Setting -> (what we recommend for BSNexus, why).
SETTINGS = {
    "maxmemory": ("set, with headroom over the streams' peak", "0 lets Redis grow until the host's OOM killer acts"),
    "maxmemory-policy": (
        "noeviction, or volatile-* (only keys with a TTL are candidates)",
        "allkeys-* may evict a stream (every queued task) or a live worker's registry key",
    ),
    "appendonly": ("yes (BSNexus's compose file)", "without AOF or RDB a restart loses every queued task"),
    "save": ("a schedule, or AOF on", "RDB snapshots are the other way to survive a restart"),
    "maxclients": ("above workers x pool size + backend pool", "refused connections are lost requests"),
    "slowlog-log-slower-than": ("10000 (10 ms) or lower", "slow commands are only visible when logged"),
    "latency-monitor-threshold": ("100 (ms) or lower, not 0", "0 disables LATENCY LATEST/HISTORY"),
}
CONFIG_COLUMNS = ["setting", "value", "source", "recommended", "why"]
SLOWLOG_COLUMNS = ["id", "time", "duration_ms", "command", "key", "arguments", "client", "client_name", "lab"]
LATENCY_COLUMNS = ["event", "time", "latest_ms", "max_ms", "enabled"]
CLIENT_COLUMNS = [
    "name",
    "host",
    "connections",
    "blocked",
    "idle_max_s",
    "age_max_s",
    "output_bytes",
    "commands",
    "lab",
]


def _typed(value: Any, kind: type) -> Any:
    if value is None or value == "":
        return None
    if kind is bool:
        return bool(int(value)) if str(value).isdigit() else str(value) in ("yes", "True")
    return kind(value.decode() if isinstance(value, bytes) else value)


def info_row(info: dict[str, Any]) -> dict[str, Any]:
    """Typed columns from a parsed INFO reply (redis-py's dict), with the ratios the checks read."""
    row = {column: _typed(info.get(field), kind) for column, (field, kind) in INFO_COLUMNS.items()}
    maxmemory, used = row["maxmemory"] or 0, row["used_memory"] or 0
    row["memory_ratio"] = used / maxmemory if maxmemory else None
    lookups = (row["keyspace_hits"] or 0) + (row["keyspace_misses"] or 0)
    row["hit_ratio"] = (row["keyspace_hits"] or 0) / lookups if lookups else None
    databases = [v for k, v in info.items() if k.startswith("db") and isinstance(v, dict)]
    row["keys"] = sum(int(db.get("keys", 0)) for db in databases)
    row["expires"] = sum(int(db.get("expires", 0)) for db in databases)
    return row


async def info(ctx: Context) -> pd.DataFrame:
    """One typed row: memory vs maxmemory, fragmentation, evictions, hits, clients, persistence, replication."""
    client = ctx.redis()
    with ctx.redis_errors():
        parsed = await client.info("everything")
    row = info_row(parsed)
    if row["maxclients"] is None:  # Redis 6.2 reports it only through CONFIG
        row["maxclients"] = _typed((await _config(ctx, "maxclients")).get("maxclients"), int)
    return pd.DataFrame([row], columns=[*INFO_COLUMNS, *DERIVED])


async def _config(ctx: Context, *names: str) -> dict[str, str]:
    """CONFIG GET of ``names``; {} where the server refuses CONFIG (managed Redis, ACL)."""
    client = ctx.redis()
    values: dict[str, str] = {}
    try:
        with ctx.redis_errors():
            for name in names:
                reply = await client.execute_command("CONFIG", "GET", name)
                pairs = reply.items() if isinstance(reply, dict) else zip(reply[::2], reply[1::2], strict=True)
                values |= {_text(k): _text(v) for k, v in pairs}
    except LabError:
        return {}
    return values


async def config_audit(ctx: Context) -> pd.DataFrame:
    """The settings that decide BSNexus's fate under memory pressure, with what we recommend and why."""
    values = await _config(ctx, *SETTINGS)
    source = "config"
    if not values:  # CONFIG refused: INFO still has the memory settings
        client = ctx.redis()
        with ctx.redis_errors():
            memory = await client.info("memory")
        values = {"maxmemory": str(memory.get("maxmemory", "")), "maxmemory-policy": memory.get("maxmemory_policy")}
        source = "info (CONFIG GET refused)"
    rows = [
        {
            "setting": name,
            "value": values.get(name),
            "source": source if name in values else "unavailable",
            "recommended": recommended,
            "why": why,
        }
        for name, (recommended, why) in SETTINGS.items()
    ]
    return pd.DataFrame(rows, columns=CONFIG_COLUMNS)


async def slowlog(ctx: Context, count: int = 128) -> pd.DataFrame:
    """The last ``count`` SLOWLOG entries; key names masked, other arguments only counted."""
    client = ctx.redis()
    with ctx.redis_errors():
        entries = await client.execute_command("SLOWLOG", "GET", count)
    rows = []
    for entry in entries:
        words = [_text(a) for a in entry[3]]
        rows.append(
            {
                "id": int(entry[0]),
                "time": pd.Timestamp(int(entry[1]), unit="s", tz="UTC"),
                "duration_ms": int(entry[2]) / 1000,
                "command": " ".join(words[:1]).upper(),
                "key": mask_key(words[1]) if len(words) > 1 and words[0].upper() not in ("EVAL", "EVAL_RO") else "",
                "arguments": max(len(words) - 2, 0),
                "client": _text(entry[4]) if len(entry) > 4 else "",
                "client_name": _text(entry[5]) if len(entry) > 5 else "",
                "lab": len(entry) > 5 and _text(entry[5]) == APPLICATION_NAME,
            }
        )
    return pd.DataFrame(rows, columns=SLOWLOG_COLUMNS)


async def latency(ctx: Context) -> pd.DataFrame:
    """LATENCY LATEST: the worst recent spike per event; ``enabled`` False when the monitor is off."""
    threshold = (await _config(ctx, "latency-monitor-threshold")).get("latency-monitor-threshold")
    client = ctx.redis()
    with ctx.redis_errors():
        events = await client.execute_command("LATENCY", "LATEST")
    rows = [
        {
            "event": _text(e[0]),
            "time": pd.Timestamp(int(e[1]), unit="s", tz="UTC"),
            "latest_ms": int(e[2]),
            "max_ms": int(e[3]),
            "enabled": threshold not in ("0", None),
        }
        for e in events
    ]
    return pd.DataFrame(rows, columns=LATENCY_COLUMNS)


def parse_client_list(reply: bytes | str) -> list[dict[str, str]]:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    return [dict(field.split("=", 1) for field in line.split() if "=" in field) for line in text.splitlines()]


async def clients(ctx: Context) -> pd.DataFrame:
    """CLIENT LIST grouped by client name and host: BSNexus's connections apart from the lab's own."""
    client = ctx.redis()
    with ctx.redis_errors():
        listing = parse_client_list(await client.execute_command("CLIENT", "LIST"))
    groups: dict[tuple[str, str], list[dict[str, str]]] = {}
    for entry in listing:
        host = entry.get("addr", "").rpartition(":")[0]
        groups.setdefault((entry.get("name", ""), host), []).append(entry)
    rows = []
    for (name, host), entries in groups.items():
        commands = Counter(e.get("cmd", "") for e in entries)
        rows.append(
            {
                "name": name or "(unnamed)",
                "host": host,
                "connections": len(entries),
                "blocked": sum("b" in e.get("flags", "") for e in entries),
                "idle_max_s": max(int(e.get("idle", 0)) for e in entries),
                "age_max_s": max(int(e.get("age", 0)) for e in entries),
                "output_bytes": sum(int(e.get("omem", 0)) for e in entries),
                "commands": ", ".join(f"{c} x{n}" for c, n in commands.most_common(3)),
                "lab": name == APPLICATION_NAME,
            }
        )
    frame = pd.DataFrame(rows, columns=CLIENT_COLUMNS)
    return frame.sort_values(["lab", "connections"], ascending=[True, False], ignore_index=True)


def _text(value: Any) -> str:
    return value.decode(errors="backslashreplace") if isinstance(value, bytes) else str(value)
