"""Thresholds of the log checks, each with the reason for its default."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def threshold(default: Any, why: str) -> Any:
    return field(default=default, metadata={"why": why})


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
