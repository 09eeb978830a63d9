"""Server checks: eviction risk (a standing configuration risk, graded by its exposure), memory pressure,
evictions, clients, slow commands, latency spikes and failed persistence."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from bsnexus_lab.areas.server.thresholds import ServerThresholds
from bsnexus_lab.checks import check
from bsnexus_lab.findings import Finding, Kind, Severity

MIB = 1024 * 1024


def _queues_live_here(
    by_type: pd.DataFrame | None, by_prefix: pd.DataFrame | None, summary: pd.DataFrame | None
) -> bool | None:
    """Whether streams or worker registry keys were seen (None: no keyspace evidence was given)."""
    if by_type is None and by_prefix is None and summary is None:
        return None
    streams = by_type is not None and bool((by_type["type"] == "stream").any())
    registry = by_prefix is not None and bool(by_prefix["prefix"].isin(["worker:{id}", "worker:token:{token}"]).any())
    listed = summary is not None and bool(summary["exists"].astype(bool).any())
    return streams or registry or listed


def _hours(projection: pd.DataFrame | None) -> float | None:
    if projection is None or projection.empty or "hours_to_limit" not in projection:
        return None
    value = projection["hours_to_limit"].iloc[0]
    return None if pd.isna(value) else float(value)


def _evicted_in_window(projection: pd.DataFrame | None) -> int:
    if projection is None or "evicted_in_window" not in projection:
        return 0
    server = projection[projection["series"] == "redis used_memory"]
    value = server["evicted_in_window"].iloc[0] if len(server) else None
    return 0 if value is None or pd.isna(value) else int(value)


def _missing_streams(summary: pd.DataFrame | None) -> list[str]:
    """Group streams absent while others exist: BSNexus creates them all at startup (MKSTREAM), so one gone
    beside its siblings was deleted or evicted. Direct streams (events:board) appear with their first event."""
    if summary is None or summary.empty:
        return []
    grouped = summary[~summary["direct"].astype(bool)].drop_duplicates("stream")
    present = grouped["exists"].astype(bool)
    return sorted(grouped.loc[~present, "stream"]) if present.any() else []


def _evicted_registry_keys(workers: pd.DataFrame | None, thresholds: ServerThresholds) -> list[str]:
    """Workers whose registry key is gone although their PostgreSQL heartbeat is younger than the key's TTL:
    the key did not expire. A worker the backend itself set offline is left out (its key was removed on purpose)."""
    if workers is None or workers.empty:
        return []
    age = pd.to_numeric(workers["heartbeat_age_s"], errors="coerce")
    gone = workers["registered"].eq(False) & (age < thresholds.registry_key_ttl_s) & (workers["status"] != "offline")
    return sorted(workers.loc[gone, "worker_id"])


@check(
    "server.eviction_risk",
    "Redis may evict BSNexus's queues or registry",
    kind=Kind.CONFIG,
    inputs={
        "by_type": "keys.by_type",
        "by_prefix": "keys.by_prefix",
        "projection": "memory.projection",
        "summary": "streams.summary",
        "workers": "db.workers",
    },
)
def eviction_risk(
    info: pd.DataFrame,
    thresholds: ServerThresholds,
    by_type: pd.DataFrame | None = None,
    by_prefix: pd.DataFrame | None = None,
    projection: pd.DataFrame | None = None,
    summary: pd.DataFrame | None = None,
    workers: pd.DataFrame | None = None,
) -> list[Finding]:
    """An allkeys-* policy with a maxmemory, graded by exposure (BSNexus's compose file runs allkeys-lru).

    A standing risk is a warning while most of maxmemory is free; it is critical only when eviction is near or
    has happened: used memory at ``eviction_critical_ratio`` of maxmemory, keys evicted (since start or in the
    sampled window), a task stream missing beside its siblings, or a registry key gone while its worker's
    heartbeat is younger than the key's TTL. With no streams or registry keys in this Redis it is info.
    """
    row = info.iloc[0]
    policy, maxmemory, used = str(row["maxmemory_policy"] or ""), int(row["maxmemory"] or 0), int(row["used_memory"])
    if not policy.startswith("allkeys-") or not maxmemory:
        return []
    queues = _queues_live_here(by_type, by_prefix, summary)
    hours = _hours(projection)
    headroom, ratio = max(maxmemory - used, 0), used / maxmemory
    evicted, in_window = int(row["evicted_keys"] or 0), _evicted_in_window(projection)
    missing, keys_gone = _missing_streams(summary), _evicted_registry_keys(workers, thresholds)
    exposure = [
        *([f"{ratio:.0%} of maxmemory used"] if ratio >= thresholds.eviction_critical_ratio else []),
        *([f"{max(evicted, in_window)} keys evicted"] if evicted or in_window else []),
        *([f"stream {', '.join(missing)} missing beside its siblings"] if missing else []),
        *([f"{len(keys_gone)} worker registry key(s) gone while the worker heartbeats"] if keys_gone else []),
    ]
    severity = Severity.INFO if queues is False else Severity.CRITICAL if exposure else Severity.WARNING
    when = f"; at the current growth the limit is reached in about {hours:.1f} h" if hours is not None else ""
    setting = f"maxmemory-policy {policy} with maxmemory {maxmemory / MIB:.0f} MiB"
    used_now = f"{ratio:.1%} used, {headroom / MIB:.1f} MiB headroom{when}"
    if exposure:
        title = f"{setting} is evicting or about to: {'; '.join(exposure)} ({used_now})"
    elif queues is False:
        title = f"{setting}, {used_now}: no stream or worker registry key here for it to evict"
    else:
        title = f"{setting}, {used_now}: at the limit Redis may evict a task stream or a live worker's key"
    return [
        Finding(
            check="server.eviction_risk",
            severity=severity,
            title=title,
            evidence={
                "maxmemory_policy": policy,
                "maxmemory_bytes": maxmemory,
                "used_memory_bytes": used,
                "used_ratio": round(ratio, 4),
                "headroom_bytes": headroom,
                "hours_to_limit": hours,
                "evicted_keys": evicted,
                "evicted_in_window": in_window,
                "missing_streams": missing,
                "evicted_registry_keys": keys_gone,
                "streams_or_registry_seen": queues,
                "exposure": exposure,
            },
            remedy=(
                "Run BSNexus's Redis with --maxmemory-policy noeviction (writes fail loudly instead of tasks "
                "vanishing) or volatile-lru (only keys with a TTL are evicted), and trim the streams; or give "
                "caches their own Redis. This is BSNexus's compose default: change it in docker-compose.yml."
            ),
            subject=("maxmemory-policy",),
            scope=frozenset({"redis:memory"}),
        )
    ]


@check("server.memory_pressure", "Used memory near maxmemory")
def memory_pressure(info: pd.DataFrame, thresholds: ServerThresholds) -> list[Finding]:
    row = info.iloc[0]
    ratio = row["memory_ratio"]
    if ratio is None or pd.isna(ratio) or ratio < thresholds.memory_warning_ratio:
        return []
    return [
        Finding(
            check="server.memory_pressure",
            severity=Severity.WARNING,
            title=f"Redis uses {ratio:.0%} of maxmemory ({int(row['used_memory']) / MIB:.1f} MiB of "
            f"{int(row['maxmemory']) / MIB:.0f} MiB)",
            evidence={"used_memory": int(row["used_memory"]), "maxmemory": int(row["maxmemory"]), "ratio": ratio},
            remedy="Find what grows (lab.keys.audit() by prefix, lab.memory.sample()) before the limit bites.",
            subject=("memory",),
            scope=frozenset({"redis:memory"}),
        )
    ]


@check("server.evictions", "Keys evicted under memory pressure", inputs={"by_type": "keys.by_type"})
def evictions(info: pd.DataFrame, thresholds: ServerThresholds, by_type: pd.DataFrame | None = None) -> list[Finding]:
    row = info.iloc[0]
    evicted = int(row["evicted_keys"] or 0)
    if not evicted:
        return []
    policy = str(row["maxmemory_policy"] or "")
    streams_at_risk = policy.startswith("allkeys-") and _queues_live_here(by_type, None, None) is not False
    return [
        Finding(
            check="server.evictions",
            severity=Severity.CRITICAL if streams_at_risk else Severity.WARNING,
            title=f"Redis has evicted {evicted} keys since it started (policy {policy})"
            + (": streams are among the candidates" if streams_at_risk else ""),
            evidence={"evicted_keys": evicted, "maxmemory_policy": policy, "uptime_s": row["uptime_s"]},
            remedy="Check the task streams still exist (lab.streams.summary()); stop the growth or raise maxmemory.",
            subject=("evictions",),
            scope=frozenset({"redis:memory"}),
        )
    ]


@check("server.clients", "Too many, refused or blocked clients")
def clients(info: pd.DataFrame, thresholds: ServerThresholds) -> list[Finding]:
    row = info.iloc[0]
    findings = []
    rejected, connected = int(row["rejected_connections"] or 0), int(row["connected_clients"] or 0)
    maxclients = int(row["maxclients"] or 0)
    if rejected:
        findings.append(
            Finding(
                "server.clients",
                Severity.WARNING,
                f"Redis refused {rejected} connections (maxclients {maxclients})",
                {"rejected_connections": rejected, "maxclients": maxclients, "connected_clients": connected},
                "Raise maxclients or find the client leaking connections (lab.server.clients()).",
                subject=("rejected",),
            )
        )
    if maxclients and connected / maxclients >= thresholds.clients_warning_ratio:
        findings.append(
            Finding(
                "server.clients",
                Severity.WARNING,
                f"{connected} clients connected, {connected / maxclients:.0%} of maxclients {maxclients}",
                {"connected_clients": connected, "maxclients": maxclients},
                "lab.server.clients() groups them by name and host: find the pool that grows.",
                subject=("connected",),
            )
        )
    blocked = int(row["blocked_clients"] or 0)
    if blocked >= thresholds.blocked_clients_info:
        findings.append(
            Finding(
                "server.clients",
                Severity.INFO,
                f"{blocked} clients blocked (BSNexus's worker polls block up to 5 s each)",
                {"blocked_clients": blocked},
                subject=("blocked",),
            )
        )
    return findings


@check("server.slow_commands", "Slow commands in SLOWLOG")
def slow_commands(slowlog: pd.DataFrame, thresholds: ServerThresholds) -> list[Finding]:
    since = pd.Timestamp(datetime.now(UTC)) - pd.Timedelta(seconds=thresholds.slow_window_s)
    recent = slowlog[(slowlog["time"] >= since) & ~slowlog["lab"].astype(bool)]
    slow = recent[recent["duration_ms"] >= thresholds.slow_command_ms]
    if slow.empty:
        return []
    worst = slow.sort_values("duration_ms", ascending=False).iloc[0]
    by_command = slow.groupby("command")["duration_ms"].agg(["count", "max"]).round(1)
    return [
        Finding(
            check="server.slow_commands",
            severity=Severity.WARNING,
            title=f"{len(slow)} command(s) over {thresholds.slow_command_ms:.0f} ms in the last hour; worst "
            f"{worst['command']} {worst['key']} {worst['duration_ms']:.0f} ms",
            evidence={"by_command": by_command.to_dict("index"), "worst_key": worst["key"]},
            remedy="Replace O(N) commands on big keys (KEYS, HGETALL, SMEMBERS, DEL) by SCAN variants and UNLINK.",
            subject=("slowlog",),
        )
    ]


@check("server.latency_spikes", "Latency spikes reported by LATENCY LATEST")
def latency_spikes(latency: pd.DataFrame, thresholds: ServerThresholds) -> list[Finding]:
    spikes = latency[latency["latest_ms"] >= thresholds.latency_spike_ms]
    return [
        Finding(
            check="server.latency_spikes",
            severity=Severity.WARNING,
            title=f"Latency spike: {row.event} took {row.latest_ms} ms (max {row.max_ms} ms)",
            evidence={"event": row.event, "latest_ms": row.latest_ms, "max_ms": row.max_ms, "time": str(row.time)},
            remedy="LATENCY DOCTOR explains the event (fork for RDB/AOF rewrite, fsync, expire cycles).",
            subject=(row.event,),
        )
        for row in spikes.itertuples()
    ]


@check("server.persistence", "Failed persistence", kind=Kind.CAUSE)
def persistence(info: pd.DataFrame, thresholds: ServerThresholds) -> list[Finding]:
    row = info.iloc[0]
    failed = {
        name: row[name]
        for name in ("rdb_last_bgsave_status", "aof_last_write_status", "aof_last_bgrewrite_status")
        if row[name] not in (None, "ok")
    }
    if not failed:
        return []
    aof_write = "aof_last_write_status" in failed and bool(row["aof_enabled"])
    return [
        Finding(
            check="server.persistence",
            severity=Severity.CRITICAL if aof_write else Severity.WARNING,
            title="Redis persistence failing: " + ", ".join(f"{k}={v}" for k, v in failed.items()),
            evidence={**failed, "rdb_changes_since_last_save": row["rdb_changes_since_last_save"]},
            remedy="Read the Redis log (disk full, permissions, fork failing for memory); a failing AOF write makes "
            "Redis refuse writes.",
            subject=("persistence",),
            scope=frozenset({"dep:redis"}),
        )
    ]
