"""Profiling code the engineer imports into the notebook, inside the notebook's own process: cProfile for
one call and tracemalloc for what grew between two snapshots, the same answers BSNexus's debug guide gets
from inside its code."""

from __future__ import annotations

import asyncio
import cProfile
import inspect
import pstats
import threading
import tracemalloc
from collections.abc import Callable
from typing import Any

import pandas as pd

CALL_COLUMNS = ["function", "file", "line", "calls", "primitive_calls", "own_s", "cumulative_s", "per_call_ms"]
DIFF_COLUMNS = ["file", "line", "size_diff_kb", "size_kb", "count_diff", "count", "traceback"]


def _run_profiled(profiler: cProfile.Profile, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if inspect.iscoroutine(target) or inspect.iscoroutinefunction(target):
        coro = target if inspect.iscoroutine(target) else target(*args, **kwargs)
        # A notebook already runs a loop on its main thread: run the coroutine on a fresh loop of its own.
        box: dict[str, Any] = {}

        def run() -> None:
            profiler.enable()
            try:
                box["result"] = asyncio.run(coro)
            except BaseException as exc:
                box["error"] = exc
            finally:
                profiler.disable()

        thread = threading.Thread(target=run, name="bsnexus-lab-profile-call")
        thread.start()
        thread.join()
        if "error" in box:
            raise box["error"]
        return box.get("result")
    profiler.enable()
    try:
        return target(*args, **kwargs)
    finally:
        profiler.disable()


def call(target: Callable[..., Any] | Any, *args: Any, top: int = 30, **kwargs: Any) -> pd.DataFrame:
    """Run a function, coroutine function or coroutine under cProfile; the top ``top`` by cumulative time."""
    profiler = cProfile.Profile()
    _run_profiled(profiler, target, args, kwargs)
    stats = pstats.Stats(profiler)
    rows = [
        {
            "function": name,
            "file": file,
            "line": line,
            "calls": calls,
            "primitive_calls": primitive,
            "own_s": own,
            "cumulative_s": cumulative,
            "per_call_ms": cumulative / calls * 1000 if calls else 0.0,
        }
        for (file, line, name), (primitive, calls, own, cumulative, _) in stats.stats.items()  # type: ignore[attr-defined]
    ]
    frame = pd.DataFrame(rows, columns=CALL_COLUMNS).sort_values("cumulative_s", ascending=False)
    return frame.head(top).reset_index(drop=True)


def snapshot(frames: int = 10) -> tracemalloc.Snapshot:
    """A tracemalloc snapshot (starting tracemalloc, with ``frames`` of traceback, if it is not tracing yet)."""
    if not tracemalloc.is_tracing():
        tracemalloc.start(frames)
    return tracemalloc.take_snapshot()


def tracemalloc_diff(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, top: int = 20) -> pd.DataFrame:
    """The source lines whose allocations grew most between two snapshots."""
    rows = []
    for stat in after.compare_to(before, "lineno")[:top]:
        frame = stat.traceback[0]
        rows.append(
            {
                "file": frame.filename,
                "line": frame.lineno,
                "size_diff_kb": stat.size_diff / 1024,
                "size_kb": stat.size / 1024,
                "count_diff": stat.count_diff,
                "count": stat.count,
                "traceback": " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in stat.traceback),
            }
        )
    return pd.DataFrame(rows, columns=DIFF_COLUMNS)
