"""The Lab's event loop, on a daemon thread.

The drivers are async (like BSNexus itself), while a notebook cell wants ``lab.streams.summary()`` to just
return a DataFrame. Every probe runs on this loop; background work (samplers) keeps running on it while the
engineer works in other cells.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class Loop:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closers: list[Callable[[], None]] = []

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="bsnexus-lab-loop", daemon=True)
                self._thread.start()
            return self._loop

    @property
    def started(self) -> bool:
        return self._loop is not None

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Schedule a coroutine on the loop; the future resolves when it is done."""
        return asyncio.run_coroutine_threadsafe(coro, self._ensure())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the loop and wait for its result."""
        return self.submit(coro).result()

    def call_soon(self, callback: Callable[[], Any]) -> None:
        self._ensure().call_soon_threadsafe(callback)

    def on_close(self, closer: Callable[[], None]) -> None:
        """Run ``closer`` (e.g. a sampler's stop) before the loop stops."""
        self._closers.append(closer)

    def close(self, final: Coroutine[Any, Any, Any] | None = None) -> None:
        """Run the closers, then ``final`` (closing the clients) on the loop, then stop the loop."""
        if self._loop is None:
            if final is not None:
                final.close()
            return
        for closer in self._closers:
            closer()
        self._closers.clear()
        if final is not None:
            self.run(final)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._loop.close()
        self._loop = self._thread = None
