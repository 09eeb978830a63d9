"""A background sampler of stream backlog: one pipelined round trip per tick, on the Lab's own loop.

It keeps running while the engineer works in other cells, survives a Redis restart or timeout (the failed
tick is recorded as a gap row with an ``error``, and the next tick reconnects), and hands back a time-indexed
DataFrame at any moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from bsnexus_lab import streams
from bsnexus_lab.errors import LabError

if TYPE_CHECKING:
    from bsnexus_lab.lab import Lab


class Sampler:
    """Samples ``streams`` every ``every`` seconds for ``duration`` seconds (None: until stopped)."""

    def __init__(self, lab: Lab, names: Sequence[str], *, every: float, duration: float | None) -> None:
        if not (math.isfinite(every) and every > 0) or (duration is not None and not math.isfinite(duration)):
            raise ValueError("every must be a positive number of seconds and duration a finite one (or None)")
        self._lab = lab
        self._names = list(names)
        self.every = every
        self.duration = duration
        self._rows: list[dict[str, Any]] = []
        self._count: set[str] = set(self._names)  # first tick: count wherever needed; then only where needed
        self._lock = threading.Lock()
        self._stopping = asyncio.Event()  # set from any thread, through the Lab's loop
        self._future: Any = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Sampler {state}, {len(self._rows)} rows, every {self.every}s over {', '.join(self._names)}>"

    def start(self) -> Sampler:
        if self._future is None:
            self._future = asyncio.run_coroutine_threadsafe(self._run(), self._lab._ensure_loop())
            self._lab.samplers.append(self)
        return self

    @property
    def running(self) -> bool:
        return self._future is not None and not self._future.done()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        next_tick = started
        while not self._stopping.is_set():
            await self._tick()
            next_tick += self.every
            while next_tick < loop.time():  # a slow tick skips the ticks it missed rather than bunching them
                next_tick += self.every
            if self.duration is not None and next_tick - started > self.duration + 1e-9:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=max(0.0, next_tick - loop.time()))

    async def _tick(self) -> None:
        now = pd.Timestamp(datetime.now(UTC))
        try:
            rows = await streams.tick(self._lab, self._names, self._count)
        except LabError as exc:
            rows = [{"error": str(exc)}]
        except Exception as exc:  # keep sampling: a gap with the reason beats a sampler that died silently
            rows = [{"error": self._lab.target.scrub(f"{type(exc).__name__}: {exc}")}]
        else:
            # Count lag (inside Redis) next tick where this one found Redis not reporting it.
            self._count = {row["stream"] for row in rows if row.get("needs_count")}
        with self._lock:
            self._rows.extend({"time": now, **{k: v for k, v in row.items() if k != "needs_count"}} for row in rows)

    def frame(self) -> pd.DataFrame:
        """Everything sampled so far, indexed by sample time (gap rows carry ``error``)."""
        with self._lock:
            rows = list(self._rows)
        frame = pd.DataFrame(rows, columns=["time", *streams.TICK_COLUMNS])
        for column in ("length", "lag", "pending", "consumers", "entries_read"):
            frame[column] = frame[column].astype("Int64")
        return frame.set_index("time")

    def wait(self, timeout: float | None = None) -> pd.DataFrame:
        """Block until the sampling duration is over; then the frame."""
        if self._future is not None:
            self._future.result(timeout)
        return self.frame()

    def stop(self) -> pd.DataFrame:
        """Stop sampling (idempotent); the frame so far."""
        if self._future is not None:
            self._lab._ensure_loop().call_soon_threadsafe(self._stopping.set)
            self._future.result(timeout=30)
        return self.frame()
