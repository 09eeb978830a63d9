"""PostgreSQL diagnostics (``lab.db``): connections and pools, blocking chains, slow statements, table and
index health, migration drift, BSNexus tasks, and PostgreSQL-vs-Redis consistency."""

from bsnexus_lab.areas import Area, register
from bsnexus_lab.areas.db import checks  # noqa: F401  (importing registers the checks)
from bsnexus_lab.areas.db.facade import Db, collect
from bsnexus_lab.areas.db.thresholds import DbThresholds

AREA = register(
    Area(
        name="db",
        facade=Db,
        thresholds=DbThresholds(),
        commands=frozenset({"EXISTS", "XPENDING", "XINFO.GROUPS", "TYPE", "XRANGE"}),  # registry keys, consistency
        scripts=(),
        collect=collect,
    )
)
