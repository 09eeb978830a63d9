"""The Lab: one target's clients, opened lazily, driven from plain (non-async) calls.

The drivers are async (like BSNexus itself), while a notebook cell wants ``lab.streams.summary()`` to just
return a DataFrame. So the Lab owns an event loop on a daemon thread and runs every probe there; the same
loop can later host background work such as a sampler while the engineer keeps working in other cells.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd

from bsnexus_lab import bsnexus, checks, deps, streams
from bsnexus_lab.clients import Counters, check_sql, postgres_engine, redis_client
from bsnexus_lab.config import Target, resolve
from bsnexus_lab.errors import ConfigError, postgres_error, redis_errors_translated
from bsnexus_lab.findings import Finding
from bsnexus_lab.masking import mask_frame
from bsnexus_lab.thresholds import DEFAULTS, Thresholds

if TYPE_CHECKING:
    from bsnexus_lab.sampler import Sampler

T = TypeVar("T")


class Lab:
    """Read-only access to one BSNexus deployment. Use :func:`connect` to make one."""

    def __init__(self, target: Target, *, allow_writes: bool = False, thresholds: Thresholds = DEFAULTS) -> None:
        self.target = target
        self.allow_writes = allow_writes
        self.thresholds = thresholds
        self.counters = Counters()
        self.journal: list[dict[str, Any]] = []  # every write this Lab made (see remediation)
        self.samplers: list[Sampler] = []  # stopped on close
        self.streams = streams.Streams(self)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._redis: Any = None
        self._engine: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        mode = "read-write" if self.allow_writes else "read-only"
        return f"<Lab {self.target.name} redis={self.target.redis} database={self.target.database} {mode}>"

    # -- running coroutines from synchronous code ------------------------------------------------------
    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the Lab's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._ensure_loop()).result()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="bsnexus-lab-loop", daemon=True)
                self._thread.start()
            return self._loop

    # -- clients (created on the loop's thread, on first use) -------------------------------------------
    def redis(self) -> Any:
        """The guarded async Redis client; call from coroutines running on the Lab's loop."""
        if self._redis is None:
            self._redis = redis_client(
                self.target, self.counters, allow_writes=self.allow_writes, scripts=streams.SCRIPTS
            )
        return self._redis

    def _postgres(self) -> Any:
        """The read-only async SQLAlchemy engine, for the lab's probes (kept private: users go through query());
        :class:`ConfigError` when the target has no database."""
        if self.target.database_url is None:
            raise ConfigError("this target has no database_url", target=self.target.name)
        if self._engine is None:
            self._engine = postgres_engine(self.target, allow_writes=self.allow_writes)
        return self._engine

    def redis_errors(self) -> Any:
        return redis_errors_translated(self.target.redis)

    # -- notebook-facing calls -------------------------------------------------------------------------
    def health(self) -> pd.DataFrame:
        """One row per dependency: reachable or not, version, latency. Never raises for a dead server."""
        return self.run(deps.health(self))

    def held_tasks(self, consumers: pd.DataFrame) -> pd.DataFrame:
        """Entries held by consumers whose worker key is gone, traced to their tasks, projects and worker rows."""
        return self.run(bsnexus.held_tasks(self, consumers))

    def query(self, sql: str, **params: Any) -> pd.DataFrame:
        """Run one read-only SQL statement against the target's database; credential columns come back masked.

        Refused before it is sent: anything but one read, and functions that act although the session is
        read-only (ending sessions, advisory locks, set_config...; see clients.check_sql).
        """
        check_sql(sql)
        return mask_frame(self.run(self._query(sql, params)))

    async def _query(self, sql: str, params: dict[str, Any]) -> pd.DataFrame:
        from sqlalchemy import text

        try:
            async with self._postgres().connect() as conn:
                result = await conn.execute(text(sql), params)
                return pd.DataFrame(result.fetchall(), columns=list(result.keys()))
        except ConfigError:
            raise
        except Exception as exc:
            raise postgres_error(exc, self.target.database or "") from exc

    def check(self, area: str | None = None, **frames: Any) -> list[Finding]:
        """Run the registered checks of ``area`` (all when None) that the given frames allow."""
        return checks.run(area, thresholds=self.thresholds, target=self.target.name, **frames)

    def close(self) -> None:
        if self._loop is None:
            return
        for sampler in self.samplers:
            sampler.stop()
        self.run(self._aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._loop.close()
        self._loop = self._thread = None

    async def _aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(
    target: str | Target | None = None,
    *,
    allow_writes: bool = False,
    thresholds: Thresholds = DEFAULTS,
    **settings: Any,
) -> Lab:
    """Open a Lab on a profile name, a :class:`Target`, or whatever the environment resolves to.

    Nothing is contacted until the first probe runs.
    """
    resolved = target if isinstance(target, Target) else resolve(target, **settings)
    return Lab(resolved, allow_writes=allow_writes, thresholds=thresholds)
