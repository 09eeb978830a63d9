"""Stream consumer groups that stopped making progress, lose messages, or keep failing one message."""

from __future__ import annotations

from typing import Any

import pandas as pd

from bsnexus_lab.areas.streams.thresholds import StreamThresholds
from bsnexus_lab.checks import check
from bsnexus_lab.findings import Finding, Kind, Severity
from bsnexus_lab.resp import entry_id

POISON_SHOWN = 10  # findings for at most this many poison entries; the rest are counted in the last one


@check("streams.dead_consumer", "Dead consumers holding pending entries", kind=Kind.CAUSE)
def dead_consumer(
    consumers: pd.DataFrame, thresholds: StreamThresholds, held: pd.DataFrame | None = None
) -> list[Finding]:
    """A consumer whose pending entries idle past the threshold and whose worker registry key is gone.

    BSNexus re-reads a consumer's pending entries only when that same worker polls again, and nothing claims
    them otherwise, so these entries (and their tasks, stuck in ``queued``) wait forever. ``held`` (from
    ``lab.held_tasks``) adds the PostgreSQL side: the worker row's heartbeat, the tasks and stalled projects.
    """
    idle_ms = thresholds.dead_consumer_idle_s * 1000
    dead = consumers[
        (consumers["pending"] > 0)
        & (consumers["oldest_pending_idle_ms"] >= idle_ms)
        & consumers["registered"].eq(False).fillna(False)
    ]
    findings = []
    for row in dead.sort_values(["pending", "oldest_pending_idle_ms"], ascending=False).itertuples():
        evidence: dict[str, Any] = {
            "stream": row.stream,
            "group": row.group,
            "consumer": row.consumer,
            "pending": int(row.pending),
            "oldest_pending_id": row.oldest_pending_id,
            "oldest_pending_idle_s": round(row.oldest_pending_idle_ms / 1000, 1),
            "worker_key": "expired",
        }
        if held is not None:
            evidence |= _postgres_evidence(held[held["consumer"] == row.consumer], thresholds)
        findings.append(
            Finding(
                check="streams.dead_consumer",
                severity=Severity.CRITICAL,
                title=f"Dead consumer {row.consumer} holds {row.pending} pending entries on {row.stream}/{row.group}",
                evidence=evidence,
                remedy=(
                    f"Move its entries to a live worker: lab.streams.claim_dead({row.stream!r}, {row.group!r}, "
                    f"{row.consumer!r}, <live-worker-id>) shows the plan, then run it with dry_run=False on a Lab "
                    "opened with allow_writes=True (XCLAIM of exactly this consumer's ids). BSNexus workers only "
                    "re-read their own pending entries, so they stay stuck until claimed or until this worker "
                    "re-registers with the same id."
                ),
            )
        )
    return findings


def _postgres_evidence(held: pd.DataFrame, thresholds: StreamThresholds) -> dict[str, Any]:
    if held.empty or held["task_status"].isna().all():
        return {}
    evidence: dict[str, Any] = {}
    heartbeat = held["worker_last_heartbeat"].dropna()
    if not heartbeat.empty:
        age = (pd.Timestamp.now(tz="UTC") - pd.Timestamp(heartbeat.iloc[0])).total_seconds()
        stale = "stale" if age > thresholds.stale_heartbeat_s else "recent"
        evidence["worker_row"] = f"{held['worker_status'].iloc[0]}, last heartbeat {age:.0f} s ago ({stale})"
    evidence["tasks"] = ", ".join(
        f"{t.task_title} ({t.task_status})" for t in held.dropna(subset=["task_status"]).itertuples()
    )
    stuck = held[held["task_status"].isin(["queued", "in_progress"])]
    if not stuck.empty:
        projects = stuck.drop_duplicates("project_id")
        evidence["stalled_projects"] = ", ".join(
            f"{p.project_name} ({int(p.project_waiting_tasks)} tasks waiting)" for p in projects.itertuples()
        )
    return evidence


@check("streams.poison_message", "Entries redelivered too often", kind=Kind.CAUSE)
def poison_message(
    pending: pd.DataFrame, thresholds: StreamThresholds, bodies: pd.DataFrame | None = None
) -> list[Finding]:
    """An entry delivered ``poison_deliveries`` times or more: whoever reads it fails, and it comes back."""
    poison = pending[pending["deliveries"] >= thresholds.poison_deliveries].sort_values("deliveries", ascending=False)
    findings = []
    for row in poison.head(POISON_SHOWN).itertuples():
        evidence: dict[str, Any] = {
            "stream": row.stream,
            "group": row.group,
            "id": row.id,
            "consumer": row.consumer,
            "deliveries": int(row.deliveries),
            "idle_s": round(row.idle_ms / 1000, 1),
        }
        if bodies is not None and not (body := bodies[bodies["id"] == row.id]).empty:
            fields = {k: v for k, v in body.iloc[0].items() if k not in {"stream", "id", "exists"} and _present(v)}
            evidence["body"] = _shorten(fields) if body.iloc[0]["exists"] else "gone (trimmed or deleted)"
        findings.append(
            Finding(
                check="streams.poison_message",
                severity=Severity.WARNING,
                title=f"Entry {row.id} on {row.stream}/{row.group} was delivered {row.deliveries} times",
                evidence=evidence,
                remedy=(
                    "Read the body for what breaks its reader; fix or re-queue the task, then acknowledge the "
                    f"entry: lab.streams.ack({row.stream!r}, {row.group!r}, [{row.id!r}]) shows the plan."
                ),
            )
        )
    if len(poison) > POISON_SHOWN:
        findings.append(
            Finding(
                check="streams.poison_message",
                severity=Severity.WARNING,
                title=f"{len(poison) - POISON_SHOWN} more entries were delivered {thresholds.poison_deliveries}+ times",
                evidence={"total": len(poison)},
                remedy="See lab.streams.pending() sorted by deliveries.",
            )
        )
    return findings


def _present(value: Any) -> bool:
    return not (isinstance(value, float) and pd.isna(value))


def _shorten(value: Any, limit: int = 400) -> str:
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


@check("streams.lost_messages", "Messages trimmed before delivery, and pending entries without a body")
def lost_messages(
    summary: pd.DataFrame, thresholds: StreamThresholds, pending: pd.DataFrame | None = None
) -> list[Finding]:
    """Entries a group never read that are no longer in the stream, and pending ids whose bodies are gone.

    Redis 7 reports lag as entries-added - entries-read, so entries trimmed before the group read them stay in
    its figure (``lag_reported``) while the backlog still in the stream (``lag``) no longer has them: the
    difference is what was lost. Redis 6.2 keeps no such counters: a group whose last-delivered id is older than
    the stream's first entry (and that has delivered something) may have missed what was trimmed in between,
    which is a warning, not a count.
    """
    findings = []
    for row in summary.dropna(subset=["group"]).itertuples():
        lost, how = _lost(row)
        if lost:
            findings.append(
                Finding(
                    check="streams.lost_messages",
                    severity=Severity.WARNING if how == "suspected" else Severity.CRITICAL,
                    title=(
                        f"Entries of {row.stream} may have been trimmed before {row.group} read them"
                        if how == "suspected"
                        else f"{'At least ' if how == 'at least' else ''}{lost} entries of {row.stream} were "
                        f"trimmed before {row.group} read them"
                    ),
                    evidence={
                        "stream": row.stream,
                        "group": row.group,
                        "lost": "unknown (Redis 6.2 keeps no counters)" if how == "suspected" else lost,
                        "last_delivered_id": row.last_delivered_id,
                        "first_id": row.first_id,
                        "length": int(row.length),
                    },
                    remedy=(
                        "Those tasks never reached a worker: find rows still 'queued' with no stream entry and "
                        "re-queue them. Keep the backlog under the trim limit (more workers, or a larger MAXLEN)."
                    ),
                )
            )
        if pending is not None and isinstance(row.first_id, str):
            first = entry_id(row.first_id)
            held = pending[(pending["stream"] == row.stream) & (pending["group"] == row.group)]
            gone = held[[entry_id(i) < first for i in held["id"]]]
            if not gone.empty:
                findings.append(
                    Finding(
                        check="streams.lost_messages",
                        severity=Severity.CRITICAL,
                        title=f"{len(gone)} pending entries of {row.stream}/{row.group} have no body any more",
                        evidence={
                            "stream": row.stream,
                            "group": row.group,
                            "count": len(gone),
                            "ids": ", ".join(gone["id"].head(10)),
                            "consumers": ", ".join(sorted(set(gone["consumer"]))),
                        },
                        remedy=(
                            "Their bodies were trimmed while the entries were pending: the tasks cannot be "
                            "re-read. Re-queue the tasks from PostgreSQL, then acknowledge these ids."
                        ),
                    )
                )
    return findings


def _lost(row: Any) -> tuple[int, str]:
    """(entries lost, how the count is known: exact, at least, suspected)."""
    if pd.notna(row.lag_reported) and pd.notna(row.lag):
        if row.lag_exact and row.lag_reported > row.lag:
            return int(row.lag_reported - row.lag), "exact"
        if row.lag_reported > row.length:
            return int(row.lag_reported - row.length), "at least"
        return 0, "exact"
    delivered = row.last_delivered_id
    if isinstance(row.first_id, str) and delivered != "0-0" and entry_id(delivered) < entry_id(row.first_id):
        return 1, "suspected"
    return 0, "exact"


@check("streams.trim_risk", "Backlogs about to be trimmed")
def trim_risk(summary: pd.DataFrame, thresholds: StreamThresholds) -> list[Finding]:
    """BSNexus trims with MAXLEN ~ limit: an undelivered backlog near the limit loses tasks when it passes it."""
    findings = []
    for row in summary.dropna(subset=["group"]).itertuples():
        limit = thresholds.trim_limit_for(row.stream)
        if pd.notna(row.lag) and row.lag >= thresholds.trim_warning_ratio * limit:
            findings.append(
                Finding(
                    check="streams.trim_risk",
                    severity=Severity.WARNING,
                    title=f"{row.stream}/{row.group} has {int(row.lag)} undelivered entries; trimming at ~{limit}",
                    evidence={
                        "stream": row.stream,
                        "group": row.group,
                        "lag": int(row.lag),
                        "trim_limit": limit,
                        "length": int(row.length),
                    },
                    remedy="Add workers or pause producers before the backlog passes the trim limit and drops tasks.",
                )
            )
    return findings


@check("streams.no_readers", "Streams and groups nobody reads")
def no_readers(summary: pd.DataFrame, thresholds: StreamThresholds) -> list[Finding]:
    """A stream with entries and no consumer group (unless it is read directly), or a group with no consumers
    while entries wait for it."""
    findings = []
    for stream, rows in summary[summary["exists"]].groupby("stream", sort=False):
        first = rows.iloc[0]
        if rows["group"].isna().all():
            if not first["direct"] and first["length"] > 0:
                findings.append(
                    Finding(
                        check="streams.no_readers",
                        severity=Severity.WARNING,
                        title=f"{stream} has {int(first['length'])} entries and no consumer group",
                        evidence={"stream": stream, "length": int(first["length"])},
                        remedy="BSNexus creates its groups at startup: restart the backend, or create the group "
                        "from id 0 with XGROUP CREATE (add the stream to direct_streams if it is read without one).",
                    )
                )
            continue
        for row in rows.itertuples():
            if row.consumers == 0 and pd.notna(row.lag) and row.lag > 0:
                findings.append(
                    Finding(
                        check="streams.no_readers",
                        severity=Severity.WARNING,
                        title=f"{int(row.lag)} entries wait on {stream}/{row.group}, which has no consumers",
                        evidence={"stream": stream, "group": row.group, "lag": int(row.lag)},
                        remedy="No worker has ever read this group: check that workers are registered and polling.",
                    )
                )
    return findings
