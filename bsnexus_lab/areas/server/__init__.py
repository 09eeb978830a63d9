"""The server area: Redis INFO, configuration, SLOWLOG, LATENCY and clients (``lab.server``)."""

from __future__ import annotations

from typing import Any

from bsnexus_lab.areas import Area, register
from bsnexus_lab.areas.server import checks as checks  # importing registers the checks
from bsnexus_lab.areas.server.facade import Server
from bsnexus_lab.areas.server.probes import COMMANDS
from bsnexus_lab.areas.server.thresholds import ServerThresholds


def collect(server: Server) -> dict[str, Any]:
    """INFO, the configuration audit, SLOWLOG, LATENCY and clients: a handful of round trips."""
    return {
        "server.info": server.info(),
        "server.config": server.config_audit(),
        "server.slowlog": server.slowlog(),
        "server.latency": server.latency(),
        "server.clients": server.clients(),
    }


def environment(server: Server) -> dict[str, Any]:
    """The eviction policy, which decides whether Redis may drop the task queues."""
    return {"maxmemory_policy": server.info()["maxmemory_policy"].iloc[0]}


AREA = register(
    Area(
        name="server",
        facade=Server,
        thresholds=ServerThresholds(),
        commands=COMMANDS,
        collect=collect,
        environment=environment,
    )
)
