"""PostgreSQL diagnostics (``lab.db``): connections and pools, blocking chains, slow statements, table and
index health, migration drift, BSNexus tasks, and PostgreSQL-vs-Redis consistency."""

from collections.abc import Callable, Sequence
from typing import Any

from bsnexus_lab.areas import Area, register
from bsnexus_lab.areas.db import (
    checks,  # noqa: F401  (importing registers the checks)
    trace,
)
from bsnexus_lab.areas.db.facade import Db, collect
from bsnexus_lab.areas.db.thresholds import DbThresholds
from bsnexus_lab.timeline import Stage, TraceStep


def figures() -> Sequence[Callable[..., Any]]:
    """Imported when first drawn, so the CLI never loads matplotlib."""
    from bsnexus_lab.areas.db import plots

    return (
        plots.connections,
        plots.blocking_tree,
        plots.top_statements,
        plots.table_bloat,
    )


def environment(db: Db) -> dict[str, Any]:
    """The Alembic revision the database is at (none when it was never migrated)."""
    current = db.revision()
    return {"alembic_revision": current[0]} if current else {}


AREA = register(
    Area(
        name="db",
        facade=Db,
        thresholds=DbThresholds(),
        commands=frozenset({"EXISTS", "XPENDING", "XINFO.GROUPS", "TYPE", "XRANGE"}),  # registry keys, consistency
        scripts=(),
        collect=collect,
        plots=figures,
        environment=environment,
        trace=(TraceStep(Stage.ROW, trace.resolve), TraceStep(Stage.AROUND, trace.around)),
    )
)
