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

SKIPPED_COLUMNS = ["probe", "reason", "severity", "dependency", "error", "remedy"]
FALLBACK_WINDOW_S = 2.0  # sampling pg_stat_activity when pg_stat_statements is absent: quick, for triage


def skipped_row(probe: str, exc: LabError) -> dict[str, Any]:
    """Why a probe could not run, in words a report can show."""
    text = str(exc)
    redis = "Redis" in text
    if isinstance(exc, TargetUnreachable):
        reason = f"{'Redis' if redis else 'PostgreSQL'} unreachable"
        remedy = "Restore it; the other probes ran without it."
    elif isinstance(exc, QueryTimedOut):
        reason, remedy = "timed out", "The server is busy or the catalog is locked (a migration?); run it again later."
    elif isinstance(exc, PermissionDenied) or "permission denied" in text.lower():
        reason, remedy = "needs pg_monitor or pg_read_all_stats", "GRANT pg_monitor TO the lab's role."
    elif isinstance(exc, NotFound):
        reason, remedy = "not found", exc.hint or ""
    else:
        reason, remedy = "failed", ""
    dependency = ("redis" if redis else "postgresql") if isinstance(exc, TargetUnreachable) else None
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
    """Frames keyed ``db.<probe>``, plus ``db.skipped`` (possibly empty) for what could not be gathered."""
    frames: dict[str, pd.DataFrame] = {}
    skipped: list[dict[str, Any]] = []

    async def take(name: str, probe: Callable[[], Awaitable[pd.DataFrame]]) -> None:
        try:
            frames[f"db.{name}"] = await probe()
        except LabError as exc:
            skipped.append(skipped_row(name, exc))

    if not ctx.has_database:
        skipped.append({"probe": "every database", "reason": "this target has no database_url", "severity": "info"})
    else:
        await take("server", lambda: activity.server(ctx))
    if skipped and skipped[-1]["probe"] == "server":
        skipped[-1]["probe"] = "every database"
    if "db.server" in frames:
        await take("activity", lambda: activity.activity(ctx))
        await take("locks", lambda: locks.locks(ctx))
        await take("statements", lambda: statements.statements(ctx))
        if "db.statements" not in frames and skipped[-1]["reason"] == "not found":
            skipped[-1] |= {
                "reason": "pg_stat_statements is not installed; pg_stat_activity was sampled instead",
                "severity": "info",
            }
            await take("sampled_statements", lambda: statements.sampled_statements(ctx, FALLBACK_WINDOW_S))
        await take("tables", lambda: tables.tables(ctx))
        await take("indexes", lambda: tables.indexes(ctx))
        await take("databases", lambda: tables.databases(ctx))
        if bool(frames["db.server"]["bsnexus"].iloc[0]):
            await take("migrations", lambda: migrations.migrations(ctx, versions_dir, expected_head))
            await take("tasks", lambda: tasks.tasks(ctx))
            await take("workers", lambda: tasks.workers(ctx))
            await take("consistency", lambda: consistency.consistency(ctx))
    frames["db.skipped"] = pd.DataFrame(skipped, columns=SKIPPED_COLUMNS)
    return frames
