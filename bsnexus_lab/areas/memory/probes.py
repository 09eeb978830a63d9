"""Redis memory over time: used memory, maxmemory, evictions and each stream's length and memory, plus the
service process's RSS and CPU when a pid is given; and the projection to maxmemory.

A tick is one pipelined round trip (INFO memory, INFO stats, then XLEN and MEMORY USAGE ... SAMPLES per
stream), so sampling every second costs the target next to nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bsnexus_lab.errors import LabError

if TYPE_CHECKING:
    from bsnexus_lab.context import Context

COMMANDS = frozenset({"INFO", "XLEN", "MEMORY.USAGE"})
TICK_COLUMNS = [
    "stream",
    "used_memory",
    "maxmemory",
    "evicted_keys",
    "length",
    "memory_bytes",
    "process_rss_bytes",
    "process_cpu_percent",
    "error",
]
COUNTS = ("used_memory", "maxmemory", "evicted_keys", "length", "memory_bytes", "process_rss_bytes")
REDIS = ""  # the stream column of the server-wide row
PROJECTION_COLUMNS = [
    "series",
    "window_s",
    "first",
    "last",
    "growth_per_h",
    "limit",
    "hours_to_limit",
    "shrank",
    "evicted_in_window",
    "memory_share",
]


class MemoryTick:
    """One sample: the server row and one row per stream (a missing stream has length 0)."""

    def __init__(self, ctx: Context, streams: list[str], pid: int | None, samples: int) -> None:
        self._ctx = ctx
        self._streams = streams
        self._samples = samples
        self._process = _process(pid)

    async def __call__(self) -> list[dict[str, Any]]:
        client = self._ctx.redis()
        with self._ctx.redis_errors():
            pipe = client.pipeline(transaction=False)
            pipe.info("memory")
            pipe.info("stats")
            for stream in self._streams:
                pipe.xlen(stream)
                pipe.execute_command("MEMORY USAGE", stream, "SAMPLES", self._samples)
            memory, stats, *per_stream = await pipe.execute()
        server = {
            "stream": REDIS,
            "used_memory": int(memory["used_memory"]),
            "maxmemory": int(memory.get("maxmemory", 0)),
            "evicted_keys": int(stats.get("evicted_keys", 0)),
        }
        if self._process is not None:
            server |= _process_row(self._process)
        rows = [server]
        for n, stream in enumerate(self._streams):
            length, used = per_stream[2 * n : 2 * n + 2]
            rows.append({"stream": stream, "length": int(length), "memory_bytes": int(used or 0)})
        return rows


def _process(pid: int | None) -> Any:
    if pid is None:
        return None
    import psutil

    try:
        process = psutil.Process(pid)
        process.cpu_percent(None)  # primes the CPU counter: the first tick then reports a real percentage
    except psutil.Error as exc:
        raise LabError(f"no process {pid} to sample", hint=str(exc)) from exc
    return process


def _process_row(process: Any) -> dict[str, Any]:
    import psutil

    try:
        with process.oneshot():
            return {"process_rss_bytes": process.memory_info().rss, "process_cpu_percent": process.cpu_percent(None)}
    except psutil.Error as exc:
        return {"error": f"process {process.pid}: {type(exc).__name__}"}


def _slope_per_h(times: pd.Series, values: pd.Series) -> float:
    """Least-squares growth per hour (0 for fewer than two points)."""
    if len(values) < 2:
        return 0.0
    seconds = (times - times.iloc[0]).dt.total_seconds().to_numpy()
    if seconds[-1] <= 0:
        return 0.0
    return float(np.polyfit(seconds, values.to_numpy(dtype=float), 1)[0] * 3600)


def projection(samples: pd.DataFrame) -> pd.DataFrame:
    """Per series (Redis, then each stream): growth per hour over the window; for Redis, hours to maxmemory.

    "At the growth of the last window, maxmemory is reached in about N hours": a linear fit of used_memory.
    """
    rows = []
    frame = samples[samples["error"].isna()] if "error" in samples else samples
    frame = frame.reset_index()
    server = frame[frame["stream"] == REDIS]
    if len(server):
        used = server["used_memory"].astype(float)
        growth = _slope_per_h(server["time"], used)
        limit = int(server["maxmemory"].iloc[-1])
        headroom = limit - used.iloc[-1]
        rows.append(
            {
                "series": "redis used_memory",
                "window_s": (server["time"].iloc[-1] - server["time"].iloc[0]).total_seconds(),
                "first": used.iloc[0],
                "last": used.iloc[-1],
                "growth_per_h": growth,
                "limit": limit or None,
                "hours_to_limit": headroom / growth if limit and growth > 0 else None,
                "shrank": bool((used.diff() < 0).any()),
                "evicted_in_window": int(server["evicted_keys"].iloc[-1] - server["evicted_keys"].iloc[0]),
                "memory_share": 1.0,
            }
        )
    last_used = float(server["used_memory"].iloc[-1]) if len(server) else 0.0
    for stream, rows_of in frame[frame["stream"] != REDIS].groupby("stream", sort=False):
        length = rows_of["length"].astype(float)
        rows.append(
            {
                "series": f"stream {stream}",
                "window_s": (rows_of["time"].iloc[-1] - rows_of["time"].iloc[0]).total_seconds(),
                "first": length.iloc[0],
                "last": length.iloc[-1],
                "growth_per_h": _slope_per_h(rows_of["time"], length),
                "limit": None,
                "hours_to_limit": None,
                "shrank": bool((length.diff() < 0).any()),
                "evicted_in_window": None,
                "memory_share": float(rows_of["memory_bytes"].iloc[-1]) / last_used if last_used else None,
            }
        )
    return pd.DataFrame(rows, columns=PROJECTION_COLUMNS)
