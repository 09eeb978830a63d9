"""Thresholds of the log checks, each with the reason for its default."""

from __future__ import annotations

from dataclasses import dataclass

from bsnexus_lab.thresholds import threshold


@dataclass(frozen=True)
class LogsThresholds:
    error_burst: int = threshold(
        10,
        "One error is worth a line (info); the same error ten times in the window is a pattern someone must look "
        "at (warning). BSNexus retries a task at most 3 times, so ten of one shape means several tasks or loops.",
    )
    orchestrator_file: str = threshold(
        "orchestrator.log", "BSNexus's orchestrator (pm-0, architect-0) logs into orchestrator.log (LOG_DIR)."
    )
    orchestrator_consumer: str = threshold(
        "pm-0", "The orchestrator reads tasks:results as consumer pm-0 and never re-reads its own pending entries."
    )
    results_stream: str = threshold("tasks:results", "Workers' results arrive on tasks:results, group pm.")
    window_s: float = threshold(
        3600.0, "Triage reads the last hour of logs: long enough to hold a stuck result's traceback, bounded in cost."
    )
    trace_log_window_s: float = threshold(
        86_400.0,
        "A trace reads the logs from the task's first known time, but never more than a day back: BSNexus rotates "
        "at 10 MB with 5 backups, and older records of a stuck task are rarely what explains it now.",
    )
    max_records: int = threshold(50_000, "At most this many records (the newest) per read, so memory stays bounded.")
