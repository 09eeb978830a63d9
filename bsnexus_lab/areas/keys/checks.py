"""Keyspace checks: keys that should expire and don't, keys too big to touch, and what the audit could not see."""

from __future__ import annotations

import pandas as pd

from bsnexus_lab.areas.keys.names import MUST_EXPIRE
from bsnexus_lab.areas.keys.thresholds import KeysThresholds
from bsnexus_lab.checks import check
from bsnexus_lab.findings import Finding, Kind, Severity

# A registry key or an auth token that never expires hides a dead worker / keeps a token valid forever.
_CRITICAL_PATTERNS = {"worker:{id}", "worker:token:{token}"}
_WHY = {
    "worker:{id}": "the worker registry key lives 90 s renewed by heartbeats: without a TTL a dead worker looks alive",
    "worker:token:{token}": "worker auth tokens live 24 h: without a TTL a token stays valid forever",
    "worker:db_heartbeat:{id}": "the 60 s throttle key: without a TTL the worker's heartbeat row is never updated",
    "task:{id}:needs_intervention": "the 24 h redesign flag: without a TTL the task asks for a human forever",
    "task:{id}:recovery_count": "the 24 h recovery counter: without a TTL the task stays given up on for good",
}


def _estimate(row: pd.Series) -> str:
    return "about " if row["estimated"] else ""


@check("keys.missing_ttl", "Keys without a TTL where their siblings expire", kind=Kind.CAUSE)
def missing_ttl(by_prefix: pd.DataFrame, thresholds: KeysThresholds) -> list[Finding]:
    """BSNexus keys that must expire and don't; prefixes where most keys expire but some never will."""
    findings = []
    for _, row in by_prefix.iterrows():
        without, keys = int(row["without_ttl"]), int(row["keys"])
        if without < thresholds.missing_ttl_min_keys:
            continue
        evidence = {
            "prefix": row["prefix"],
            "keys": keys,
            "without_ttl": without,
            "memory_without_ttl_bytes": int(row["memory_without_ttl"]),
            "examples": list(row["examples_without_ttl"]),
            "estimated": bool(row["estimated"]),
        }
        if row["prefix"] in MUST_EXPIRE:
            severity = Severity.CRITICAL if row["prefix"] in _CRITICAL_PATTERNS else Severity.WARNING
            title = f"{_estimate(row)}{without} {row['prefix']} key(s) without a TTL: {_WHY[row['prefix']]}"
            remedy = (
                "Find the code path that writes these keys without EX (BSNexus sets one on every write) and fix "
                "it; meanwhile EXPIRE the listed keys by hand (the lab stays read-only)."
            )
        elif without < keys and (keys - without) / keys >= thresholds.missing_ttl_share:
            severity = Severity.WARNING
            title = (
                f"{_estimate(row)}{without} of {keys} {row['prefix']} keys have no TTL while the others expire: "
                "stale data that never goes away"
            )
            remedy = "The writer of these keys forgets EX on one path (the debug guide's stale-cache bug); fix it."
        else:
            continue
        findings.append(
            Finding(
                check="keys.missing_ttl",
                severity=severity,
                title=title,
                evidence=evidence,
                remedy=remedy,
                subject=(row["prefix"],),
                scope=frozenset({f"keys:prefix:{row['prefix']}"}),
            )
        )
    return findings


def big_reason(row: pd.Series, thresholds: KeysThresholds) -> str:
    """Why a key is big ("" when it is not), in RedisInsight's terms."""
    elements = None if pd.isna(row["elements"]) else int(row["elements"])
    if row["type"] == "string" and row["memory_bytes"] >= thresholds.big_string_bytes:
        return f"string of {row['memory_bytes']} bytes (over {thresholds.big_string_bytes})"
    if row["type"] == "stream" and elements is not None and elements >= thresholds.big_stream_entries:
        return f"stream of {elements} entries (over {thresholds.big_stream_entries}: nothing trims it)"
    if row["type"] in ("hash", "list", "set", "zset") and elements is not None and elements >= thresholds.big_elements:
        return f"{row['type']} of {elements} elements (over {thresholds.big_elements}: O(N) commands block)"
    return ""


@check("keys.big_keys", "Keys too big to read or delete without blocking Redis", kind=Kind.CAUSE)
def big_keys(biggest: pd.DataFrame, thresholds: KeysThresholds) -> list[Finding]:
    findings = []
    for _, row in biggest.drop_duplicates("key").iterrows():
        reason = big_reason(row, thresholds)
        if not reason:
            continue
        scope = {f"keys:key:{row['key']}", f"keys:prefix:{row['prefix']}"}
        if row["type"] == "stream":
            scope.add(f"stream:{row['key']}")
        findings.append(
            Finding(
                check="keys.big_keys",
                severity=Severity.WARNING,
                title=f"Big key {row['key']}: {reason}",
                evidence={
                    "key": row["key"],
                    "type": row["type"],
                    "memory_bytes": int(row["memory_bytes"]),
                    "elements": None if pd.isna(row["elements"]) else int(row["elements"]),
                    "node": row["node"],
                },
                remedy=(
                    "Trim streams (XTRIM MAXLEN ~ / MINID after their consumers are done), split big collections by "
                    "id, read them with *SCAN, delete them with UNLINK."
                ),
                subject=(row["key"],),
                scope=frozenset(scope),
            )
        )
    return findings


@check("keys.coverage", "What the keyspace audit could not see")
def coverage(totals: pd.DataFrame, thresholds: KeysThresholds, by_node: pd.DataFrame | None = None) -> list[Finding]:
    """Nodes down, memory unmeasured, scripting refused, a sample: said, never silently left out."""
    row = totals.iloc[0]
    findings = []
    down = by_node[by_node["status"] != "ok"] if by_node is not None else by_node
    if down is not None and len(down):
        findings.append(
            Finding(
                check="keys.coverage",
                severity=Severity.WARNING,
                title=f"{len(down)} of {int(row['nodes'])} Redis node(s) not (fully) audited: totals are incomplete",
                evidence={"nodes": {r.node: r.status for r in down.itertuples()}},
                remedy="Bring the node back (CLUSTER NODES shows its state) and audit again.",
                subject=("nodes",),
                scope=frozenset({"dep:redis"}),
            )
        )
    if not row["memory_measured"]:
        findings.append(
            Finding(
                check="keys.coverage",
                severity=Severity.WARNING,
                title="MEMORY USAGE refused (ACL): memory by prefix and the biggest keys by memory are unknown",
                evidence={"modes": row["modes"]},
                remedy="Allow the lab's user +memory|usage (read-only), e.g. ACL SETUSER lab +memory|usage.",
                subject=("memory",),
            )
        )
    if "pipeline" in str(row["modes"]).split(","):
        findings.append(
            Finding(
                "keys.coverage",
                Severity.INFO,
                "Scripting refused: the audit walked with SCAN plus a pipeline per batch (two round trips each)",
                {"notes": row["notes"]},
                "Allow the lab's user +eval_ro (Redis 7) or +eval for one round trip per batch.",
                subject=("scripting",),
            )
        )
    if row["estimated"]:
        findings.append(
            Finding(
                "keys.coverage",
                Severity.INFO,
                f"Sampled {int(row['scanned'])} of {int(row['dbsize'])} keys: counts and memory are estimates",
                {"scale": float(row["scale"])},
                "Run lab.keys.audit() without sample= for exact numbers (the redis_health runbook does).",
                subject=("sample",),
            )
        )
    if not row["dbsize"]:
        findings.append(Finding("keys.coverage", Severity.INFO, "The database holds no keys", subject=("empty",)))
    return findings
