"""RSS and CPU of the service's processes over time (psutil), the tick of a background sampler: "graph memory"
without any tracer, and the fallback where memray cannot attach."""

from __future__ import annotations

import contextlib
from typing import Any

import psutil

COLUMNS = ["pid", "rss_mb", "cpu_percent", "threads", "error"]


class RssTick:
    """One read per process per tick: the process and its children (uvicorn/gunicorn workers)."""

    def __init__(self, pid: int) -> None:
        self._root = psutil.Process(pid)
        self._seen: dict[int, psutil.Process] = {}

    def _processes(self) -> list[psutil.Process]:
        procs = [self._root]
        with contextlib.suppress(psutil.Error):
            procs += self._root.children(recursive=True)
        for proc in procs:
            if proc.pid not in self._seen:
                self._seen[proc.pid] = proc
                with contextlib.suppress(psutil.Error):
                    proc.cpu_percent(None)  # the first call only primes the counter
        return [self._seen[p.pid] for p in procs]

    async def __call__(self) -> list[dict[str, Any]]:
        rows = []
        for proc in self._processes():
            try:
                with proc.oneshot():
                    rows.append(
                        {
                            "pid": proc.pid,
                            "rss_mb": proc.memory_info().rss / 2**20,
                            "cpu_percent": proc.cpu_percent(None),
                            "threads": proc.num_threads(),
                        }
                    )
            except psutil.NoSuchProcess:
                rows.append({"pid": proc.pid, "error": f"pid {proc.pid} exited"})
        return rows
