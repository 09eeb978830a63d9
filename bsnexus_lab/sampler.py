"""A background sampler: one tick every ``every`` seconds on the Lab's loop, a time-indexed frame at any moment.

It keeps running while the engineer works in other cells, survives a server restart or timeout (the failed
tick becomes a gap row carrying ``error``, and the next tick reconnects), skips ticks it missed rather than
bunching them, and stops with the Lab. Areas supply the tick: streams sample backlog, memory samples RSS.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from bsnexus_lab.errors import LabError
from bsnexus_lab.loop import Loop

Tick = Callable[[], Awaitable[list[dict[str, Any]]]]
# A tick costs the target a round trip (streams) to a few queries (db): ten a second is the most a diagnosis
# needs, and the fastest any sampler will go however it is asked.
MIN_EVERY_S = 0.1


class Sampler:
    """Calls ``tick`` every ``every`` seconds for ``duration`` seconds (None: until stopped)."""

    def __init__(
        self,
        loop: Loop,
        tick: Tick,
        *,
        every: float,
        duration: float | None,
        columns: Sequence[str],
        counts: Sequence[str] = (),
        scrub: Callable[[str], str] = str,
        label: str = "",
    ) -> None:
        if not (isinstance(every, int | float) and math.isfinite(every) and every >= MIN_EVERY_S):
            raise ValueError(f"every must be at least {MIN_EVERY_S} s (the target's load is bounded)")
        if duration is not None and not (math.isfinite(duration) and duration >= 0):
            raise ValueError("duration must be a finite number of seconds, or None")
        self._loop = loop
        self._tick = tick
        self.every = every
        self.duration = duration
        self._columns = ["time", *columns]
        self._counts = list(counts)  # integer columns that may be missing: nullable Int64
        self._scrub = scrub
        self._label = label
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stopping = asyncio.Event()  # set from any thread, through the Lab's loop
        self._future: Any = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        over = f" over {self._label}" if self._label else ""
        return f"<Sampler {state}, {len(self._rows)} rows, every {self.every}s{over}>"

    def start(self) -> Sampler:
        if self._future is None:
            self._future = self._loop.submit(self._run())
            self._loop.on_close(self.stop)
        return self

    @property
    def running(self) -> bool:
        return self._future is not None and not self._future.done()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        next_tick = started
        while not self._stopping.is_set():
            await self._sample()
            next_tick += self.every
            while next_tick < loop.time():  # a slow tick skips the ticks it missed rather than bunching them
                next_tick += self.every
            if self.duration is not None and next_tick - started > self.duration + 1e-9:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=max(0.0, next_tick - loop.time()))

    async def _sample(self) -> None:
        now = pd.Timestamp(datetime.now(UTC))
        try:
            rows = await self._tick()
        except LabError as exc:
            rows = [{"error": str(exc)}]
        except Exception as exc:  # keep sampling: a gap with the reason beats a sampler that died silently
            rows = [{"error": self._scrub(f"{type(exc).__name__}: {exc}")}]
        with self._lock:
            self._rows.extend({"time": now, **row} for row in rows)

    def frame(self) -> pd.DataFrame:
        """Everything sampled so far, indexed by sample time (gap rows carry ``error``)."""
        with self._lock:
            rows = list(self._rows)
        frame = pd.DataFrame(rows, columns=self._columns)
        for column in self._counts:
            frame[column] = frame[column].astype("Int64")
        return frame.set_index("time")

    def wait(self, timeout: float | None = None) -> pd.DataFrame:
        """Block until the sampling duration is over; then the frame."""
        if self._future is not None:
            self._future.result(timeout)
        return self.frame()

    def stop(self) -> pd.DataFrame:
        """Stop sampling (idempotent); the frame so far."""
        if self._future is not None and self._loop.started:
            self._loop.call_soon(self._stopping.set)
            self._future.result(timeout=30)
        return self.frame()
