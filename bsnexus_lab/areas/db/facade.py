"""``lab.db``: PostgreSQL diagnostics as plain calls that return DataFrames (each probe runs on the Lab's loop)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from bsnexus_lab.areas.db import activity, consistency, locks, migrations, snapshot, statements, tables, tasks
from bsnexus_lab.context import Facade
from bsnexus_lab.findings import Unavailable
from bsnexus_lab.sampler import Sampler

CONNECTION_COLUMNS = ["application", "state", "sessions", "error"]


class Db(Facade):
    """PostgreSQL as BSNexus uses it: sessions, locks, statements, tables, migrations, tasks vs streams."""

    def server(self) -> pd.DataFrame:
        """Version, usable connections, the lab's privileges, and whether this looks like BSNexus's schema."""
        return self._run(activity.server(self._ctx))

    def activity(self) -> pd.DataFrame:
        """One row per session (the lab's own left out) with its state, wait event, ages and blockers."""
        return self._run(activity.activity(self._ctx))

    def activity_summary(self, frame: pd.DataFrame | None = None) -> pd.DataFrame:
        """Sessions grouped by application, state, client and wait event, oldest ages first."""
        return activity.summary(self.activity() if frame is None else frame)

    def sample_connections(self, every: float = 1.0, duration: float | None = 30.0) -> Sampler:
        """Start sampling sessions per application and state in the background (``.frame()`` any time)."""
        sampler = Sampler(
            self._loop,
            lambda: activity.connections_tick(self._ctx),
            every=every,
            duration=duration,
            columns=CONNECTION_COLUMNS,
            counts=["sessions"],
            scrub=self._ctx.target.scrub,
            label="PostgreSQL sessions",
        )
        return sampler.start()

    def locks(self) -> pd.DataFrame:
        """The blocking tree: root blockers first, each followed by the sessions waiting behind it."""
        return self._run(locks.locks(self._ctx))

    def statements(self, top: int = 20) -> pd.DataFrame:
        """Top statements by total time from pg_stat_statements (NotFound when it is not installed)."""
        return self._run(statements.statements(self._ctx, top))

    def sampled_statements(self, window_s: float = 5.0, every_s: float = 0.25) -> pd.DataFrame:
        """Statements seen running in pg_stat_activity over a window: the fallback without pg_stat_statements."""
        return self._run(statements.sampled_statements(self._ctx, window_s, every_s))

    def explain(self, sql: str, *, analyze: bool = False, **params: Any) -> dict[str, Any]:
        """The plan of a statement, in a transaction that is rolled back (ANALYZE only with allow_writes)."""
        return self._run(statements.explain(self._ctx, sql, analyze=analyze, **params))

    def tables(self, limit: int = 200) -> pd.DataFrame:
        """Largest tables: sizes, sequential vs index scans, dead rows, (auto)vacuum/analyze times, cache hits."""
        return self._run(tables.tables(self._ctx, limit))

    def indexes(self, limit: int = 500) -> pd.DataFrame:
        """Largest indexes: scans, unique/primary/valid, and the index each duplicates."""
        return self._run(tables.indexes(self._ctx, limit))

    def databases(self) -> pd.DataFrame:
        """Transaction-ID age (wraparound) and cache hit ratio per database."""
        return self._run(tables.databases(self._ctx))

    def migrations(
        self, versions_dir: str | Path | None = None, expected_head: str | None = None
    ) -> pd.DataFrame | Unavailable:
        """The revision in alembic_version against the head of a versions directory (the target's by default) or
        ``expected_head``; :class:`Unavailable` when there is neither to compare with."""
        return self._run(migrations.migrations(self._ctx, versions_dir, expected_head))

    def revision(self) -> list[str] | None:
        """The revision(s) in alembic_version (empty: never stamped; None: no such table)."""
        return self._run(migrations.current(self._ctx))

    def revisions(self, versions_dir: str | Path) -> pd.DataFrame:
        """An Alembic versions directory read without importing it: revisions oldest first, merges and heads."""
        return migrations.revisions(versions_dir)

    def tasks(self) -> pd.DataFrame:
        """BSNexus tasks by status, with the age of the oldest and newest change."""
        return self._run(tasks.tasks(self._ctx))

    def active_tasks(self, limit: int = 1000) -> pd.DataFrame:
        """Tasks queued / in_progress / review: each holds its project's queue (one task per project)."""
        return self._run(tasks.active_tasks(self._ctx, limit))

    def workers(self, limit: int = 1000) -> pd.DataFrame:
        """The workers table, stalest heartbeat first."""
        return self._run(tasks.workers(self._ctx, limit))

    def consistency(self, limit: int | None = None) -> pd.DataFrame:
        """Tasks whose PostgreSQL status and Redis stream entry disagree (lost publish, missed ack, ...)."""
        return self._run(consistency.consistency(self._ctx, limit))

    def snapshot(
        self, versions_dir: str | Path | None = None, expected_head: str | None = None
    ) -> dict[str, pd.DataFrame]:
        """Every probe once, keyed ``db.<probe>``; what could not run is in ``db.skipped``."""
        return self._run(snapshot.snapshot(self._ctx, versions_dir, expected_head))


def collect(facade: Db) -> dict[str, Any]:
    """Triage's quick picture of the database (a few seconds; bounded on a big deployment)."""
    return facade.snapshot()
