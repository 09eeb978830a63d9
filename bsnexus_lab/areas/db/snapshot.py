"""The area's standard picture: every probe once, each failure kept as a ``db.skipped`` row, never a traceback.

A probe that times out, lacks a privilege or finds its dependency down becomes a row saying so, and the
others still run. A database without BSNexus's tables is said once (``db.schema``), not once per probe.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from bsnexus_lab.areas.db import activity, consistency, locks, migrations, statements, tables, tasks
from bsnexus_lab.errors import LabError, NotFound, PermissionDenied, QueryTimedOut, TargetUnreachable

if TYPE_CHECKING:
    from bsnexus_lab.context import Context

SKIPPED_COLUMNS = ["probe", "reason", "severity", "dependency", "error", "remedy", "not_run"]
FALLBACK_WINDOW_S = 2.0  # sampling pg_stat_activity when pg_stat_statements is absent: quick, for triage


BSNEXUS_PROBES = ("migrations", "tasks", "workers", "consistency")  # read BSNexus's own tables


def skipped_row(probe: str, exc: LabError) -> dict[str, Any]:
    """Why a probe could not run, in words a report can show."""
    text = str(exc)
    if isinstance(exc, TargetUnreachable):
        dependency = "redis" if "Redis" in text else "postgresql"
        reason = text.split(" (")[0]  # the message without the (redacted) target and the hint
        remedy = "Restore it and run again; the probes that did not need it still ran."
    elif isinstance(exc, QueryTimedOut):
        dependency, reason = None, "timed out"
        remedy = "The server is busy, or the catalog is locked (a migration?): run it again later."
    elif isinstance(exc, PermissionDenied) or any(w in text for w in ("permission denied", "must be superuser")):
        dependency = None
        if probe in BSNEXUS_PROBES:
            reason, remedy = (
                "permission denied on BSNexus's tables",
                "GRANT SELECT ON ALL TABLES IN SCHEMA public TO the lab's role.",
            )
        else:
            reason, remedy = "needs pg_monitor or pg_read_all_stats", "GRANT pg_monitor TO the lab's role."
    elif isinstance(exc, NotFound):
        dependency, reason, remedy = None, "not found", exc.hint or ""
    else:
        dependency, reason, remedy = None, "failed", ""
    return {
        "probe": probe,
        "reason": reason,
        "severity": "warning",
        "dependency": dependency,
        "error": text,
        "remedy": remedy,
    }


async def snapshot(
    ctx: Context, versions_dir: str | Path | None = None, expected_head: str | None = None
) -> dict[str, pd.DataFrame]:
    """Frames keyed ``db.<probe>``, plus ``db.skipped`` (possibly empty) for what could not be gathered.

    Once PostgreSQL stops answering (down, restarting), the remaining probes are not tried: the row that met
    the outage lists them in ``not_run``.
    """
    frames: dict[str, pd.DataFrame] = {}
    skipped: list[dict[str, Any]] = []
    outage: dict[str, Any] = {}

    async def take(name: str, probe: Callable[[], Awaitable[pd.DataFrame]]) -> None:
        if outage:
            outage["not_run"].append(name)
            return
        try:
            frames[f"db.{name}"] = await probe()
        except LabError as exc:
            skipped.append(skipped_row(name, exc))
            if skipped[-1]["dependency"] == "postgresql":
                outage.update(skipped[-1], not_run=[])
                skipped[-1] = outage

    if not ctx.has_database:
        skipped.append({"probe": "every database", "reason": "this target has no database_url", "severity": "info"})
        frames["db.skipped"] = pd.DataFrame(skipped, columns=SKIPPED_COLUMNS)
        return frames
    await take("server", lambda: activity.server(ctx))
    bsnexus = "db.server" in frames and bool(frames["db.server"]["bsnexus"].iloc[0])
    await take("activity", lambda: activity.activity(ctx))
    await take("locks", lambda: locks.locks(ctx))
    await take("statements", lambda: statements.statements(ctx))
    if skipped and skipped[-1]["probe"] == "statements" and skipped[-1]["reason"] == "not found":
        skipped[-1] |= {
            "reason": "pg_stat_statements is not installed; pg_stat_activity was sampled instead",
            "severity": "info",
        }
        await take("sampled_statements", lambda: statements.sampled_statements(ctx, FALLBACK_WINDOW_S))
    await take("tables", lambda: tables.tables(ctx))
    await take("indexes", lambda: tables.indexes(ctx))
    await take("databases", lambda: tables.databases(ctx))
    if bsnexus or "db.server" not in frames:
        await take("migrations", lambda: migrations.migrations(ctx, versions_dir, expected_head))
        await take("tasks", lambda: tasks.tasks(ctx))
        await take("active_tasks", lambda: tasks.active_tasks(ctx))
        await take("workers", lambda: tasks.workers(ctx))
        await take("consistency", lambda: consistency.consistency(ctx, active=frames.get("db.active_tasks")))
    frames["db.skipped"] = pd.DataFrame(skipped, columns=SKIPPED_COLUMNS)
    return frames
