"""The load driver: steady HTTP requests to the sandbox service while a scenario runs.

Bounded in time and in count, and loopback only, so it can never be pointed at someone else's deployment.
``per_s`` gives an open-loop steady rate; ``per_s=None`` keeps ``concurrency`` requests in flight (a closed
loop, what the benchmark uses to measure requests per second).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from bsnexus_lab.errors import SandboxError

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
DEFAULT_PATHS = ("/health", "/api/v1/tasks?limit=20", "/api/v1/tasks/{task_id}")
MAX_DURATION_S = 600.0
MAX_REQUESTS = 100_000


@dataclass
class LoadResult:
    sent: int = 0
    elapsed_s: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0

    @property
    def per_s(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s else 0.0


def _loopback(url: str) -> str:
    host = urlsplit(url).hostname or ""
    if host not in LOOPBACK:
        raise SandboxError(f"the load driver only sends to loopback, not {host!r}", hint="use the sandbox's service")
    return url.rstrip("/")


async def _drive(
    url: str,
    paths: Sequence[str],
    per_s: float | None,
    duration: float,
    max_requests: int,
    concurrency: int,
    stop: threading.Event,
) -> LoadResult:
    result = LoadResult()
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        tasks = (await client.get("/api/v1/tasks", params={"limit": 50})).json()
        ids = itertools.cycle([t["id"] for t in tasks] or ["00000000-0000-4000-8000-000000000000"])
        cycle = itertools.cycle(paths)
        started = time.monotonic()
        deadline = started + min(duration, MAX_DURATION_S)
        gate = asyncio.Semaphore(concurrency)

        async def one(path: str) -> None:
            try:
                response = await client.get(path)
                result.statuses[response.status_code] += 1
            except httpx.HTTPError:
                result.errors += 1
            finally:
                gate.release()

        pending: set[asyncio.Task[None]] = set()
        for n in range(min(max_requests, MAX_REQUESTS)):
            if stop.is_set() or time.monotonic() >= deadline:
                break
            if per_s:
                await asyncio.sleep(max(0.0, started + n / per_s - time.monotonic()))
            await gate.acquire()
            task = asyncio.create_task(one(next(cycle).replace("{task_id}", next(ids))))
            pending.add(task)
            task.add_done_callback(pending.discard)
            result.sent += 1
        if pending:
            await asyncio.wait(pending)
        result.elapsed_s = time.monotonic() - started
    return result


def drive(
    url: str,
    paths: Sequence[str] = DEFAULT_PATHS,
    *,
    per_s: float | None = 20.0,
    duration: float = 10.0,
    max_requests: int = 10_000,
    concurrency: int = 8,
    stop: threading.Event | None = None,
) -> LoadResult:
    """Send requests for ``duration`` seconds (at most ``max_requests``); what was sent and answered."""
    return asyncio.run(
        _drive(_loopback(url), paths, per_s, duration, max_requests, concurrency, stop or threading.Event())
    )


class Background:
    """The driver on a thread: ``with Background(url, ...) as load: ...``; ``load.result`` once stopped."""

    def __init__(self, url: str, **options: Any) -> None:
        _loopback(url)
        self._stop = threading.Event()
        self.result: LoadResult | None = None
        self._thread = threading.Thread(target=self._run, args=(url, options), name="sandbox-load", daemon=True)

    def _run(self, url: str, options: dict[str, Any]) -> None:
        self.result = drive(url, stop=self._stop, **options)

    def __enter__(self) -> Background:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
