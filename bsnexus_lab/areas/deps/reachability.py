"""Reachability: is each dependency there at all? A dead server becomes a row (and then a finding), not a
traceback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pandas as pd

from bsnexus_lab.context import Context
from bsnexus_lab.errors import LabError

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


async def _redis_version(ctx: Context) -> str:
    with ctx.redis_errors():
        info = await ctx.redis().info("server")
    return str(info.get("redis_version", "?"))


async def _postgres_version(ctx: Context) -> str:
    version = await ctx.query("SHOW server_version")
    return str(version.iloc[0, 0])


async def reachability(ctx: Context) -> pd.DataFrame:
    """One row per dependency: reachable or not, version, latency, the error when it is not."""
    probes = [_timed("redis", ctx.target.redis, lambda: _redis_version(ctx))]
    if ctx.has_database:
        probes.append(_timed("postgresql", ctx.target.database or "", lambda: _postgres_version(ctx)))
    return pd.DataFrame(await asyncio.gather(*probes), columns=HEALTH_COLUMNS)
