"""Is each dependency there at all? A dead server becomes a row (and then a finding), not a traceback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from bsnexus_lab.errors import LabError, postgres_error

if TYPE_CHECKING:
    from bsnexus_lab.lab import Lab

HEALTH_COLUMNS = ["dependency", "url", "reachable", "version", "latency_ms", "error"]


async def _timed(dependency: str, url: str, probe: Callable[[], Awaitable[str]]) -> dict[str, Any]:
    started = time.perf_counter()
    row: dict[str, Any] = {"dependency": dependency, "url": url}
    try:
        row |= {"reachable": True, "version": await probe(), "error": None}
    except LabError as exc:
        row |= {"reachable": False, "version": None, "error": str(exc)}
    row["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return row


async def _redis_version(lab: Lab) -> str:
    with lab.redis_errors():
        info = await lab.redis().info("server")
    return str(info.get("redis_version", "?"))


async def _postgres_version(lab: Lab) -> str:
    from sqlalchemy import text

    try:
        async with lab._postgres().connect() as conn:
            version = (await conn.execute(text("SHOW server_version"))).scalar_one()
    except LabError:
        raise
    except Exception as exc:
        raise postgres_error(exc, lab.target.database or "") from exc
    return str(version)


async def health(lab: Lab) -> pd.DataFrame:
    probes = [_timed("redis", lab.target.redis, lambda: _redis_version(lab))]
    if lab.target.database_url is not None:
        probes.append(_timed("postgresql", lab.target.database or "", lambda: _postgres_version(lab)))
    return pd.DataFrame(await asyncio.gather(*probes), columns=HEALTH_COLUMNS)
