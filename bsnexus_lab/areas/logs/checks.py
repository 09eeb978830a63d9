"""Log checks: repeated errors, and the exception behind a result stuck on the orchestrator's consumer.

A result whose processing raises stays pending on the live consumer ``pm-0`` forever with one delivery
(the orchestrator reads only new entries and acks after its commit); the exception is in
``orchestrator.log``. A logged exception that names the pending entry's id or its task id is evidence on the
stream finding (``streams.stuck_on_live_consumer``): it shares that entry's scope, so it nests under it and
says why the entry is stuck.
"""

from __future__ import annotations

import pandas as pd

from bsnexus_lab.areas.logs.errors import error_records, grouped
from bsnexus_lab.areas.logs.thresholds import LogsThresholds
from bsnexus_lab.checks import check
from bsnexus_lab.findings import Finding, Severity


@check("logs.errors", "Repeated errors in the service's logs")
def repeated_errors(records: pd.DataFrame, thresholds: LogsThresholds) -> list[Finding]:
    """One finding per error group: info when seen, warning from ``error_burst`` occurrences in the window."""
    found = []
    for group in grouped(records).itertuples():
        burst = group.count >= thresholds.error_burst
        found.append(
            Finding(
                check="logs.errors",
                severity=Severity.WARNING if burst else Severity.INFO,
                title=f"{group.count} × {group.exception if group.exception != '-' else 'error'} from "
                f"{group.logger}: {group.shape[:120]}",
                evidence={
                    "logger": group.logger,
                    "exception": group.exception,
                    "shape": group.shape,
                    "count": int(group.count),
                    "first": group.first.isoformat(),
                    "last": group.last.isoformat(),
                    "files": group.files,
                },
                remedy="Read the newest example with lab.logs.read(...) and its traceback; fix the raising code path.",
                subject=(group.logger, group.exception, group.shape),
                scope=frozenset({f"logger:{group.logger}"}),
            )
        )
    return found


@check(
    "logs.result_exception",
    "Results pending on the orchestrator with an exception logged for them",
    inputs={"pending": "streams.pending", "bodies": "streams.bodies"},
)
def result_exception(
    records: pd.DataFrame, pending: pd.DataFrame, thresholds: LogsThresholds, bodies: pd.DataFrame | None = None
) -> list[Finding]:
    """A result pending on the orchestrator's consumer whose id or task id appears in a logged exception."""
    stuck = pending[
        (pending["stream"] == thresholds.results_stream) & (pending["consumer"] == thresholds.orchestrator_consumer)
    ]
    if stuck.empty or records.empty:
        return []
    orchestrator = error_records(records)
    orchestrator = orchestrator[
        orchestrator["file"].str.contains(thresholds.orchestrator_file.split(".")[0], regex=False)
    ]
    tasks = _task_ids(bodies)
    found = []
    for entry in stuck.itertuples():
        task = tasks.get(entry.id)
        needles = [entry.id, *([task] if task else [])]
        hits = orchestrator[orchestrator["message"].map(lambda text, n=needles: any(x in text for x in n))]
        if hits.empty:
            continue
        last = hits.iloc[-1]
        error_line = last_line(last["message"])
        found.append(
            Finding(
                check="logs.result_exception",
                severity=Severity.WARNING,
                title=f"orchestrator.log: processing result {entry.id} (pending on {entry.consumer}) raised "
                f"{error_line[:120]}",
                evidence={
                    "stream": entry.stream,
                    "group": entry.group,
                    "consumer": entry.consumer,
                    "id": entry.id,
                    "task_id": task or "",
                    "idle_s": round(entry.idle_ms / 1000),
                    "deliveries": int(entry.deliveries),
                    "logged_at": last["time"].isoformat(),
                    "logged_in": last["file"].rsplit("/", 1)[-1],
                    "exception": error_line,
                    "times_logged": len(hits),
                },
                remedy="The orchestrator never re-reads its pending entries: fix the cause (e.g. a duplicate result "
                "for a task already done), then ack the entry (lab.streams.ack(..., dry_run=True) first).",
                subject=(entry.stream, entry.group, entry.consumer, entry.id),
                scope=frozenset(
                    {f"entry:{entry.stream}/{entry.group}/{entry.id}"} | ({f"task:{task}"} if task else set())
                ),
            )
        )
    return found


def _task_ids(bodies: pd.DataFrame | None) -> dict[str, str]:
    if bodies is None or bodies.empty or "task_id" not in bodies:
        return {}
    return {row.id: str(row.task_id) for row in bodies.itertuples() if isinstance(row.task_id, str)}


def last_line(message: str) -> str:
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[-1] if lines else ""
