"""Stream consumer groups that stopped making progress, lose messages, or hold messages nobody will process.

Causes (a consumer that died, a message that kills its reader, a QA message held by the wrong reviewer, a
result the orchestrator failed to process, a group nobody reads) carry scope tokens
(``stream:S/G``, ``consumer:S/G/C``, ``entry:S/G/ID``, ``task:ID``) that the symptoms they explain share
(messages lost to trimming, a backlog near the trim limit), so a report shows each story once, cause first.

BSNexus's names (the QA stream, the reviewer field, which consumers are workers or the orchestrator, the worker
groups, per-stream trim limits) come from the target's :class:`~bsnexus_lab.config.Conventions`, which the
probes stamp on the frames they return.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bsnexus_lab.areas.streams.thresholds import StreamThresholds
from bsnexus_lab.checks import check
from bsnexus_lab.config import Conventions
from bsnexus_lab.findings import Finding, Kind, Severity
from bsnexus_lab.resp import entry_id
from bsnexus_lab.text import duration, plural

POISON_SHOWN = 10  # findings for at most this many poison entries; the rest are counted in the last one
BLOCKING = ("queued", "in_progress", "review")  # a task in these states blocks its project's queueing


def group_scope(stream: str, group: str) -> str:
    return f"stream:{stream}/{group}"


def _task_scope(task_ids: Any) -> set[str]:
    return {f"task:{t}" for t in task_ids if isinstance(t, str) and t}


@check("streams.dead_consumer", "Dead consumers holding pending entries", kind=Kind.CAUSE)
def dead_consumer(
    consumers: pd.DataFrame, thresholds: StreamThresholds, held: pd.DataFrame | None = None
) -> list[Finding]:
    """A worker holding pending entries whose registry key is gone, judged as BSNexus judges liveness.

    BSNexus re-reads a consumer's pending entries only when that same worker polls again, and nothing claims
    them otherwise, so these entries (and their tasks, stuck in ``queued``) wait forever. When PostgreSQL gives
    the worker row's heartbeat (``worker_heartbeat_age_s`` of the held frame, PostgreSQL's clock):

    - older than ``registry_ttl_s`` + ``heartbeat_write_interval_s`` (150 s): dead now, critical, however
      briefly its entries have idled (the signals agree: the key expired and the row stopped being written);
    - younger than ``registry_ttl_s``: the key was evicted or deleted, not expired (under ``allkeys-lru`` a
      live worker's can be): a warning that the key is missing;
    - in between: nothing yet, since a live worker's row can be that old; within a minute it is decided.

    Without a heartbeat (no database, PostgreSQL not answering, no worker row) the consumer is dead once its
    longest-idle entry passed ``dead_consumer_idle_s``. Consumers without a registry key by design (the
    orchestrator's, ``pm-0`` and ``architect-0`` by default) are judged by :func:`stuck_on_live_consumer`.
    """
    gone = consumers[(consumers["pending"] > 0) & consumers["registered"].eq(False).fillna(False)]
    findings = []
    for row in gone.sort_values(["pending", "max_pending_idle_ms"], ascending=False).itertuples():
        idle_s = row.max_pending_idle_ms / 1000 if pd.notna(row.max_pending_idle_ms) else 0.0
        age = _heartbeat_age(held, row.consumer)
        verdict = _verdict(age, idle_s, thresholds)
        if verdict is None:
            continue
        mine = _held_by(held, row)
        evicted = verdict == "evicted"
        name = _worker_name(mine)
        who = f"{row.consumer} ({name})" if name else row.consumer
        held_entries = plural(int(row.pending), "pending entry", "pending entries")
        evidence: dict[str, Any] = {
            "stream": row.stream,
            "group": row.group,
            "consumer": row.consumer,
            **({"worker_name": name} if name else {}),
            "pending": int(row.pending),
            "oldest_pending_id": row.oldest_pending_id,
            "longest_idle_id": row.longest_idle_id,
            "longest_idle_s": round(idle_s, 1),
            "worker_key": "missing (evicted?)" if evicted else "expired" if age is not None else "gone",
            **({} if age is None else {"worker_heartbeat_age_s": round(age, 1)}),
            "why": _why(verdict, age, idle_s, thresholds, held),
        }
        if mine is not None:
            evidence |= _postgres_evidence(mine, age)
        # Never more than the longest idle: a plan that skips every entry would be a remedy that cannot work.
        basis_s = thresholds.dead_consumer_idle_s if age is None else thresholds.registry_ttl_s
        min_idle_ms = int(min(basis_s, idle_s) * 1000)
        claim = (
            f"lab.streams.claim_dead({row.stream!r}, {row.group!r}, {row.consumer!r}, <live-worker-id>, "
            f"min_idle_ms={min_idle_ms})"
        )
        if evicted:
            title = (
                f"Worker {who} holds {held_entries} on {row.stream}/{row.group} and its registry key is missing "
                f"(evicted?), but it heartbeated {duration(age)} ago"
            )
            remedy = (
                "The worker looks alive: a missing key under allkeys-lru is an eviction, and the backend will "
                "list it as offline. Check Redis's maxmemory-policy (noeviction, or volatile-* with the queues "
                f"safe); claim its entries only if it stops heartbeating ({claim} shows the plan)."
            )
        else:
            signals = (
                f"its key expired and its last heartbeat is {duration(age)} old"
                if age is not None
                else f"its key is gone and its entries have idled {duration(idle_s)}"
            )
            title = f"Dead consumer {who} holds {held_entries} on {row.stream}/{row.group}: {signals}"
            since = (
                "the registry TTL, after which BSNexus itself lists the worker offline"
                if age is not None
                else "dead_consumer_idle_s"
            )
            remedy = (
                "BSNexus claims nothing itself (no XAUTOCLAIM or XCLAIM anywhere) and only this consumer name "
                "re-reads these entries, so they wait until claimed or until this worker re-registers with the "
                f"same id. Move them to a live worker: {claim} shows the plan, an XCLAIM of exactly this "
                f"consumer's ids idle at least min_idle_ms ({since}); run it with dry_run=False on a Lab opened "
                "with allow_writes=True. The live worker re-reads them at its next poll."
            )
        findings.append(
            Finding(
                check="streams.dead_consumer",
                severity=Severity.WARNING if evicted else Severity.CRITICAL,
                title=title,
                evidence=evidence,
                remedy=remedy,
                subject=(row.stream, row.group, row.consumer),
                scope=frozenset(
                    {f"consumer:{row.stream}/{row.group}/{row.consumer}"}
                    | (_task_scope(mine["task_id"]) if mine is not None else set())
                ),
            )
        )
    return findings


def _verdict(age: float | None, idle_s: float, thresholds: StreamThresholds) -> str | None:
    """For a consumer without a key: dead, "evicted" (its heartbeat is recent) or None (not decided yet)."""
    if age is None:
        return "dead" if idle_s >= thresholds.dead_consumer_idle_s else None
    if age > thresholds.registry_ttl_s + thresholds.heartbeat_write_interval_s:
        return "dead"
    return "evicted" if age < thresholds.registry_ttl_s else None


def _why(verdict: str, age: float | None, idle_s: float, thresholds: StreamThresholds, held: Any) -> str:
    ttl = duration(thresholds.registry_ttl_s, precise=True)
    interval = duration(thresholds.heartbeat_write_interval_s, precise=True)
    last = f"last heartbeat {duration(age)} ago"
    if verdict == "evicted":
        return f"{last}, within the registry TTL ({ttl}): the key did not expire"
    if age is not None:
        return f"key expired and {last}, over the registry TTL ({ttl}) plus the heartbeat write interval ({interval})"
    unknown = "no PostgreSQL evidence collected" if held is None else held.attrs.get("unavailable")
    return (
        f"key gone and entries idle {duration(idle_s)}, over dead_consumer_idle_s "
        f"({duration(thresholds.dead_consumer_idle_s)}); no heartbeat to go by: "
        f"{unknown or 'no workers row with a last_heartbeat for this consumer'}"
    )


def _held_by(held: pd.DataFrame | None, row: Any) -> pd.DataFrame | None:
    if held is None:
        return None
    return held[(held["stream"] == row.stream) & (held["group"] == row.group) & (held["consumer"] == row.consumer)]


def _heartbeat_age(held: pd.DataFrame | None, consumer: str) -> float | None:
    """The worker row's heartbeat age in seconds, as PostgreSQL measured it; None when it could not say."""
    if held is None or "worker_heartbeat_age_s" not in held:
        return None
    ages = held.loc[held["consumer"] == consumer, "worker_heartbeat_age_s"].dropna()
    return float(ages.iloc[0]) if not ages.empty else None


def _worker_name(held: pd.DataFrame | None) -> str | None:
    if held is None or "worker_name" not in held:
        return None
    names = held["worker_name"].dropna()
    return str(names.iloc[0]) if not names.empty else None


def _postgres_evidence(held: pd.DataFrame, age: float | None) -> dict[str, Any]:
    if held.empty or held["task_status"].isna().all():
        return {}
    evidence: dict[str, Any] = {}
    if age is not None:
        evidence["worker_row"] = f"{held['worker_status'].iloc[0]}, last heartbeat {duration(age)} ago"
    evidence["tasks"] = ", ".join(
        f"{t.task_title} ({t.task_status})" for t in held.dropna(subset=["task_status"]).itertuples()
    )
    stuck = held[held["task_status"].isin(BLOCKING)]
    if not stuck.empty:
        projects = stuck.drop_duplicates("project_id")
        evidence["stalled_projects"] = ", ".join(
            f"{p.project_name} ({plural(int(p.project_waiting_tasks), 'task')} waiting)" for p in projects.itertuples()
        )
    return evidence


@check("streams.held_evidence", "PostgreSQL evidence for held entries")
def held_evidence(held: pd.DataFrame, thresholds: StreamThresholds) -> list[Finding]:
    """Evidence that could not be gathered is said, never dropped: why the held entries have no task rows."""
    why = held.attrs.get("unavailable")
    if not why or held.empty:
        return []
    configured = "no database configured" not in why
    return [
        Finding(
            check="streams.held_evidence",
            severity=Severity.WARNING if configured else Severity.INFO,
            title=f"Evidence unavailable for {plural(len(held), 'held entry', 'held entries')}: {why}",
            evidence={"entries": len(held), "consumers": ", ".join(sorted(set(held["consumer"])))},
            remedy=(
                "The stream findings stand on Redis alone; restore PostgreSQL access to see the tasks and projects "
                "they block."
                if configured
                else "Set the target's database_url to trace held entries to tasks, projects and worker rows."
            ),
            scope=frozenset({"dep:postgresql"}),
        )
    ]


def _misrouted(pending: pd.DataFrame, bodies: pd.DataFrame | None) -> pd.DataFrame:
    """Pending QA entries held by a consumer other than the reviewer their body names."""
    names = Conventions.of(pending, bodies)
    field = names.reviewer_field
    if bodies is None or field not in bodies or pending.empty:
        return pending.iloc[0:0].assign(reviewer=None, task_id=None)
    body = bodies[bodies["stream"] == names.qa_stream][["id", field, *(["task_id"] if "task_id" in bodies else [])]]
    qa = pending[pending["stream"] == names.qa_stream].merge(body, on="id", how="inner")
    qa = qa.rename(columns={field: "reviewer"})
    if "task_id" not in qa:
        qa["task_id"] = None
    named = qa["reviewer"].map(lambda r: isinstance(r, str) and bool(r))
    return qa[named & (qa["reviewer"] != qa["consumer"])]


@check("streams.misrouted_qa", "QA messages held by the wrong reviewer", kind=Kind.CAUSE)
def misrouted_qa(
    pending: pd.DataFrame, thresholds: StreamThresholds, bodies: pd.DataFrame | None = None
) -> list[Finding]:
    """A QA entry (``tasks:qa``) pending on a consumer other than the reviewer its body names (``reviewer_id``).

    All reviewers share one group; a worker that reads a QA message meant for another keeps it pending and
    skips it on every poll (its delivery count climbs), so the intended reviewer never gets it and the task
    stays in ``review``. It looks like a poison message but is not: claiming it to the right reviewer fixes it.
    """
    findings = []
    for row in _misrouted(pending, bodies).itertuples():
        task = f" (task {row.task_id}, in review)" if row.task_id else ""
        findings.append(
            Finding(
                check="streams.misrouted_qa",
                severity=Severity.CRITICAL,
                title=f"QA message {row.id}{task} is held by {row.consumer}, not its reviewer {row.reviewer}",
                evidence={
                    "stream": row.stream,
                    "group": row.group,
                    "id": row.id,
                    "task_id": row.task_id,
                    "intended_reviewer": row.reviewer,
                    "holder": row.consumer,
                    "deliveries": int(row.deliveries),
                    "idle_s": round(row.idle_ms / 1000, 1),
                },
                remedy=(
                    "Give it to the reviewer it names: lab.streams.claim_dead("
                    f"{row.stream!r}, {row.group!r}, {row.consumer!r}, {row.reviewer!r}, ids=[{row.id!r}], "
                    "min_idle_ms=0) shows the plan; run it with dry_run=False on a Lab opened with allow_writes=True."
                ),
                subject=(row.stream, row.group, row.id),
                scope=frozenset({f"entry:{row.stream}/{row.group}/{row.id}"} | _task_scope([row.task_id])),
            )
        )
    return findings


@check("streams.poison_message", "Entries redelivered too often", kind=Kind.CAUSE)
def poison_message(
    pending: pd.DataFrame, thresholds: StreamThresholds, bodies: pd.DataFrame | None = None
) -> list[Finding]:
    """An entry delivered ``poison_deliveries`` times or more: whoever reads it fails, and it comes back.

    A misrouted QA message also climbs in deliveries; it has its own finding and is left out here.
    """
    wrong = _misrouted(pending, bodies)
    misrouted = set(zip(wrong["stream"], wrong["id"], strict=True))
    other = pd.Series(
        [(stream, entry) not in misrouted for stream, entry in zip(pending["stream"], pending["id"], strict=True)],
        index=pending.index,
        dtype=bool,
    )
    poison = pending[(pending["deliveries"] >= thresholds.poison_deliveries) & other]
    poison = poison.sort_values("deliveries", ascending=False)
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
        task_id = None
        if bodies is not None and not (body := _body(bodies, row.stream, row.id)).empty:
            fields = {k: v for k, v in body.iloc[0].items() if k not in {"stream", "id", "exists"} and _present(v)}
            evidence["body"] = _shorten(fields) if body.iloc[0]["exists"] else "gone (trimmed or deleted)"
            task_id = fields.get("task_id")
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
                subject=(row.stream, row.group, row.id),
                scope=frozenset({f"entry:{row.stream}/{row.group}/{row.id}"} | _task_scope([task_id])),
            )
        )
    if len(poison) > POISON_SHOWN:
        findings.append(
            Finding(
                check="streams.poison_message",
                severity=Severity.WARNING,
                title=f"{plural(len(poison) - POISON_SHOWN, 'more entry', 'more entries')} delivered "
                f"{thresholds.poison_deliveries}+ times",
                evidence={"total": len(poison)},
                remedy="See lab.streams.pending() sorted by deliveries.",
                subject=("more",),
            )
        )
    return findings


@check("streams.stuck_on_live_consumer", "Results the orchestrator failed to process", kind=Kind.CAUSE)
def stuck_on_live_consumer(
    pending: pd.DataFrame, thresholds: StreamThresholds, bodies: pd.DataFrame | None = None
) -> list[Finding]:
    """An entry pending on a consumer that never re-reads its own pending entries (the orchestrator's, ``pm-0``
    and ``architect-0`` by default), delivered once and idle past the threshold.

    The orchestrator acks a result only after its database commit; when processing raises (a duplicate result:
    ``Invalid transition: done -> review``) the entry stays pending forever and the exception is in
    ``orchestrator.log``. Only the target's orchestrator consumers count: a consumer that is neither one of them
    nor a worker is unknown, and nothing says it never retries.
    """
    idle_ms = thresholds.stuck_result_idle_s * 1000
    orchestrator = pending["consumer"].map(Conventions.of(pending).is_orchestrator).astype(bool)
    stuck = pending[orchestrator & (pending["deliveries"] == 1) & (pending["idle_ms"] >= idle_ms)]
    findings = []
    for row in stuck.sort_values("idle_ms", ascending=False).itertuples():
        task_id = _body_field(bodies, row.stream, row.id, "task_id")
        task = f" for task {task_id}" if task_id else ""
        findings.append(
            Finding(
                check="streams.stuck_on_live_consumer",
                severity=Severity.CRITICAL,
                title=(
                    f"Entry {row.id}{task} has been pending on {row.consumer} ({row.stream}/{row.group}) for "
                    f"{duration(row.idle_ms / 1000)}: the orchestrator failed to process it"
                ),
                evidence={
                    "stream": row.stream,
                    "group": row.group,
                    "id": row.id,
                    "consumer": row.consumer,
                    "task_id": task_id,
                    "deliveries": int(row.deliveries),
                    "idle_s": round(row.idle_ms / 1000, 1),
                },
                remedy=(
                    f"{row.consumer} reads only new entries and never retries this one. Find the exception for this "
                    "message in orchestrator.log, fix the task's state in PostgreSQL, then acknowledge the entry: "
                    f"lab.streams.ack({row.stream!r}, {row.group!r}, [{row.id!r}]) shows the plan."
                ),
                subject=(row.stream, row.group, row.id),
                scope=frozenset({f"entry:{row.stream}/{row.group}/{row.id}"} | _task_scope([task_id])),
            )
        )
    return findings


@check("streams.orchestrator_stopped", "Results waiting for an orchestrator loop that is not running", kind=Kind.CAUSE)
def orchestrator_stopped(summary: pd.DataFrame, consumers: pd.DataFrame, thresholds: StreamThresholds) -> list[Finding]:
    """A group read only by the orchestrator's consumers (``pm-0``, ``architect-0``), with entries waiting for
    it, whose consumers have not asked for entries for ``orchestrator_read_s``: the loop is not running.

    BSNexus starts the loop when a project is started and does not restart it with the backend: results then
    wait, undelivered, while every task they finish stays ``queued``. Consumers persist in Redis after their
    reader is gone, so "no consumers" (:func:`no_readers`) does not see it; their idle time does.
    """
    names = Conventions.of(summary, consumers)
    limit_ms = thresholds.orchestrator_read_s * 1000
    findings = []
    for row in summary[summary["exists"] & summary["group"].notna()].itertuples():
        readers = consumers[(consumers["stream"] == row.stream) & (consumers["group"] == row.group)]
        if readers.empty or not readers["consumer"].map(names.is_orchestrator).all():
            continue
        waiting_ms = row.oldest_wait_ms if pd.notna(row.oldest_wait_ms) else 0
        idle_ms = int(readers["idle_ms"].min())
        if not (pd.notna(row.lag) and row.lag > 0 and waiting_ms >= limit_ms and idle_ms >= limit_ms):
            continue
        who = ", ".join(readers["consumer"])
        findings.append(
            Finding(
                check="streams.orchestrator_stopped",
                severity=Severity.CRITICAL,
                title=(
                    f"{plural(int(row.lag), 'entry waits', 'entries wait')} on {row.stream}/{row.group} and {who} "
                    f"last asked for entries {duration(idle_ms / 1000)} ago: the orchestrator loop is not running"
                ),
                evidence={
                    "stream": row.stream,
                    "group": row.group,
                    "consumers": who,
                    "lag": int(row.lag),
                    "oldest_waiting_id": row.oldest_waiting_id,
                    "oldest_wait_s": round(waiting_ms / 1000, 1),
                    "consumer_idle_s": round(idle_ms / 1000, 1),
                },
                remedy=(
                    "BSNexus starts the orchestrator's loop when a project is started (POST "
                    "/api/v1/pm/{project_id}/start) and does not restart it when the backend restarts: start the "
                    "projects' orchestration again; the waiting entries are then read in order."
                ),
                subject=(row.stream, row.group),
                scope=frozenset({group_scope(row.stream, row.group)}),
            )
        )
    return findings


def _body(bodies: pd.DataFrame, stream: str, entry: str) -> pd.DataFrame:
    """The body of one entry: ids are per stream, and two streams written in the same millisecond share them."""
    return bodies[(bodies["stream"] == stream) & (bodies["id"] == entry)]


def _body_field(bodies: pd.DataFrame | None, stream: str, entry: str, name: str) -> Any:
    if bodies is None or name not in bodies:
        return None
    match = _body(bodies, stream, entry)[name]
    return match.iloc[0] if not match.empty and _present(match.iloc[0]) else None


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
    difference is what was lost. Both come from one consistent script reply, so a worker reading between two
    round trips cannot fake a loss. Redis 6.2 keeps no such counters: a group whose last-delivered id is older
    than the stream's first entry (and that has delivered something) may have missed what was trimmed in
    between, which is a warning, not a count.
    """
    findings = []
    for row in summary.dropna(subset=["group"]).itertuples():
        lost, how = _lost(row)
        scope = frozenset({group_scope(row.stream, row.group)})
        if lost:
            findings.append(
                Finding(
                    check="streams.lost_messages",
                    severity=Severity.WARNING if how == "suspected" else Severity.CRITICAL,
                    title=(
                        f"Entries of {row.stream} may have been trimmed before {row.group} read them"
                        if how == "suspected"
                        else f"{'At least ' if how == 'at least' else ''}{plural(lost, 'entry', 'entries')} of "
                        f"{row.stream} were trimmed before {row.group} read them"
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
                    subject=(row.stream, row.group, "trimmed"),
                    scope=scope,
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
                        title=(
                            f"{plural(len(gone), 'pending entry', 'pending entries')} of {row.stream}/{row.group} "
                            f"{'has' if len(gone) == 1 else 'have'} no body any more"
                        ),
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
                        subject=(row.stream, row.group, "bodyless"),
                        scope=scope,
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


def trimmed(row: Any, thresholds: StreamThresholds) -> bool:
    """Whether the stream shows it is trimmed (Redis 7: fewer entries than were ever added, or a deletion
    recorded), or the deployment is known to trim."""
    if thresholds.assume_trimming:
        return True
    added = row.entries_added
    deleted = row.max_deleted_id
    return bool(
        (pd.notna(added) and pd.notna(row.length) and int(added) > int(row.length))
        or (isinstance(deleted, str) and deleted != "0-0")
    )


@check("streams.trim_risk", "Backlogs about to be trimmed")
def trim_risk(summary: pd.DataFrame, thresholds: StreamThresholds) -> list[Finding]:
    """Where a stream is trimmed (observed, not assumed: the public backend never trims), an undelivered
    backlog near the MAXLEN loses tasks when it passes it."""
    findings = []
    names = Conventions.of(summary)
    for row in summary.dropna(subset=["group"]).itertuples():
        limit = names.trim_limit(row.stream, thresholds.trim_limit)
        if pd.notna(row.lag) and row.lag >= thresholds.trim_warning_ratio * limit and trimmed(row, thresholds):
            findings.append(
                Finding(
                    check="streams.trim_risk",
                    severity=Severity.WARNING,
                    title=f"{row.stream}/{row.group} has "
                    f"{plural(int(row.lag), 'undelivered entry', 'undelivered entries')}; trimming at ~{limit}",
                    evidence={
                        "stream": row.stream,
                        "group": row.group,
                        "lag": int(row.lag),
                        "trim_limit": limit,
                        "length": int(row.length),
                        "trimmed": "assumed" if thresholds.assume_trimming else "observed",
                    },
                    remedy="Add workers or pause producers before the backlog passes the trim limit and drops tasks.",
                    subject=(row.stream, row.group),
                    scope=frozenset({group_scope(row.stream, row.group)}),
                )
            )
    return findings


@check("streams.no_readers", "Streams and groups nobody reads", kind=Kind.CAUSE)
def no_readers(summary: pd.DataFrame, thresholds: StreamThresholds) -> list[Finding]:
    """A stream with entries and no consumer group (unless it is read directly), or a group with no consumers
    while entries wait for it."""
    worker_groups = Conventions.of(summary).worker_groups
    findings = []
    for stream, rows in summary[summary["exists"]].groupby("stream", sort=False):
        first = rows.iloc[0]
        if rows["group"].isna().all():
            if not first["direct"] and first["length"] > 0:
                findings.append(
                    Finding(
                        check="streams.no_readers",
                        severity=Severity.WARNING,
                        title=f"{stream} has {plural(int(first['length']), 'entry', 'entries')} and no consumer group",
                        evidence={"stream": stream, "length": int(first["length"])},
                        remedy="BSNexus creates its groups at startup: restart the backend, or create the group "
                        "from id 0 with XGROUP CREATE (add the stream to direct_streams if it is read without one).",
                        subject=(stream,),
                        scope=frozenset({f"stream:{stream}"}),
                    )
                )
            continue
        for row in rows.itertuples():
            if row.consumers == 0 and pd.notna(row.lag) and row.lag > 0:
                findings.append(
                    Finding(
                        check="streams.no_readers",
                        severity=Severity.WARNING,
                        title=f"{plural(int(row.lag), 'entry waits', 'entries wait')} on {stream}/{row.group}, "
                        "which has no consumers",
                        evidence={"stream": stream, "group": row.group, "lag": int(row.lag)},
                        remedy=(
                            "No worker has ever read this group: check that workers are registered and polling."
                            if row.group in worker_groups
                            else f"The {row.group!r} group is read by the backend's orchestrator loop, which starts "
                            "with a project (POST /api/v1/pm/{project_id}/start) and is not restarted when the "
                            "backend restarts: start the project's orchestration again."
                        ),
                        subject=(stream, row.group),
                        scope=frozenset({group_scope(stream, row.group)}),
                    )
                )
    return findings
