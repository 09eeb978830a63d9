"""The logs' part in tracing one task: the records and tracebacks that name the task or its entries (AROUND).

Read from just before the task's first known time (``trace_log_window_s`` back at most), newest
``max_records`` at most, as every read of the logs is bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd

from bsnexus_lab.areas.logs.checks import last_line
from bsnexus_lab.areas.logs.read import read
from bsnexus_lab.findings import Unavailable
from bsnexus_lab.timeline import Part, Subject, events

if TYPE_CHECKING:
    from bsnexus_lab.context import Context

NOT_CONFIGURED = Unavailable(
    "this target names no log files", remedy="set log_files (BSNexus's LOG_DIR: bsnexus.log, orchestrator.log)"
)


async def around(ctx: Context, subject: Subject) -> Part:
    needles = [n for n in (subject.task_id, *(entry for _, entry in subject.entries)) if n]
    if not needles:
        return Part()
    if not ctx.target.log_files:
        return Part(unavailable=(("logs", NOT_CONFIGURED),))
    limits = ctx.thresholds
    now = datetime.now(UTC)
    since = max(min(subject.times, default=now), now - timedelta(seconds=limits.trace_log_window_s))
    try:
        records = read(ctx.target.log_files, since - timedelta(minutes=1), None, timezone=ctx.target.log_timezone,
                       limit=limits.max_records)  # fmt: skip
    except OSError as exc:
        return Part(unavailable=(("logs", Unavailable(f"the log files cannot be read: {exc.strerror or exc}")),))
    mine = records[records["message"].map(lambda text: any(n in text for n in needles))].reset_index(drop=True)
    rows = [
        {
            "time": r.time,
            "event": f"{r.level} {r.logger}",
            "detail": f"{r.file.rsplit('/', 1)[-1]}: {last_line(r.message)[:300]}",
        }
        for r in mine.itertuples()
    ]
    frame = mine if not mine.empty else pd.DataFrame(columns=records.columns)
    return Part(events=events(rows, "logs"), frames={"logs.records": frame})
