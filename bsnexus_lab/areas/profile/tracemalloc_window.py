"""Sent into the target: the standard library's tracemalloc over a window, two snapshots diffed there.

Runs in the injector's thread inside the target, so it imports only the standard library. tracemalloc is
stopped afterwards unless the target was already tracing (then it is left as it was). The grown tracebacks
are written as JSON, outermost frame first, for the lab to group by the application's frame.
"""

import json
import time
import tracemalloc

HOOK_FILE = "_memray_attach_hook.py"  # the file name memray's injector compiles sent source under


def window(out: str, seconds: float, frames: int, top: int) -> None:
    """Snapshot, wait ``seconds``, snapshot again; write what grew (bytes, allocations, stack) to ``out``."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start(frames)
    try:
        before = tracemalloc.take_snapshot()
        time.sleep(seconds)
        after = tracemalloc.take_snapshot()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        if not was_tracing:
            tracemalloc.stop()
    mine = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, HOOK_FILE)]
    grown = after.filter_traces(mine).compare_to(before.filter_traces(mine), "traceback")
    rows = [
        {"bytes": s.size_diff, "allocations": s.count_diff, "stack": [[f.filename, f.lineno] for f in s.traceback]}
        for s in grown
        if s.size_diff > 0
    ]
    with open(out, "w") as file:
        json.dump({"rows": rows[:top], "peak": peak, "was_tracing": was_tracing}, file)
