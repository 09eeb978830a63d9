"""Pure readers of sampled stacks (no I/O): py-spy's collapsed output into a frame, functions with self and
total counts, and what the event-loop thread was doing.

A stack is a tuple of ``(function, file, line)`` from the outermost frame to the innermost; py-spy records
with ``--function``, so ``line`` is the function's first line and one function is one row.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

import pandas as pd

Frame = tuple[str, str, int]
STACK_COLUMNS = ["pid", "thread", "stack", "count"]
FUNCTION_COLUMNS = ["function", "file", "line", "self", "total", "self_share", "total_share"]

_PROCESS = re.compile(r'^process (\d+):"(?:[^"\\]|\\.)*";')
_THREAD = re.compile(r"^thread \((\w+)\): ([^;]*);")
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")
# Frames of the interpreter's own machinery: never the answer to "whose code is this".
# Frames of the interpreter's machinery and of the ASGI server and framework BSNexus runs on: a finding names the
# application's own frame, and memory held only by this machinery (connection buffers, the loop's own
# structures, uvicorn's bootstrap) is no application's leak.
RUNTIME_FILES = (
    *("asyncio/", "selectors.py", "threading.py", "concurrent/futures/", "<frozen ", "runpy.py"),
    *("/uvicorn/", "/starlette/", "/fastapi/", "/anyio/", "/h11/", "/httptools/", "/uvloop/"),
)


def parse_collapsed(text: str, default_pid: int) -> pd.DataFrame:
    """py-spy's ``--format raw`` (with ``--threads``): one row per distinct (pid, thread, stack)."""
    counts: Counter[tuple[int, str, tuple[Frame, ...]]] = Counter()
    for line in text.splitlines():
        body, _, count = line.rpartition(" ")
        if not body or not count.isdigit():
            continue
        pid = default_pid
        if match := _PROCESS.match(body):
            pid, body = int(match.group(1)), body[match.end() :]
        thread = ""
        if match := _THREAD.match(body + ";"):
            thread, body = f"{match.group(2)} ({match.group(1)})", body[match.end() :]
        counts[(pid, thread, tuple(_frame(part) for part in body.split(";") if part))] += int(count)
    rows = [{"pid": p, "thread": t, "stack": s, "count": c} for (p, t, s), c in counts.items()]
    return pd.DataFrame(rows, columns=STACK_COLUMNS)


def _frame(text: str) -> Frame:
    match = _FRAME.match(text)
    if match is None:
        return (text, "", 0)
    return (match["function"], match["file"], int(match["line"] or 0))


def functions(stacks: pd.DataFrame) -> pd.DataFrame:
    """Self and total sample counts per function; a recursive function counts once per stack in ``total``."""
    own: Counter[Frame] = Counter()
    total: Counter[Frame] = Counter()
    for stack, count in zip(stacks["stack"], stacks["count"], strict=True):
        if stack:
            own[stack[-1]] += count
        for frame in set(stack):
            total[frame] += count
    samples = int(stacks["count"].sum()) if len(stacks) else 0
    rows = [
        {
            "function": frame[0],
            "file": frame[1],
            "line": frame[2],
            "self": own[frame],
            "total": n,
            "self_share": own[frame] / samples,
            "total_share": n / samples,
        }
        for frame, n in total.items()
    ]
    frame = pd.DataFrame(rows, columns=FUNCTION_COLUMNS)
    return frame.sort_values(["self", "total"], ascending=False, ignore_index=True)


def is_runtime(frame: Frame) -> bool:
    return any(part in frame[1] for part in RUNTIME_FILES)


def _has(stack: Iterable[Frame], function: str, file_part: str) -> bool:
    return any(f[0].endswith(function) and file_part in f[1] for f in stack)


def loop_activity(stacks: pd.DataFrame) -> pd.DataFrame:
    """Per event-loop thread (a thread whose stacks run ``BaseEventLoop._run_once``), what held the loop.

    One row per (pid, thread, culprit): ``culprit`` is the innermost non-runtime frame of a sample in which
    the loop was running a callback or coroutine step (``Handle._run``) rather than waiting in ``select``;
    ``loop_samples`` is every sample of that thread.
    """
    rows = []
    for (pid, thread), group in stacks.groupby(["pid", "thread"], sort=False):
        loop = [(s, c) for s, c in zip(group["stack"], group["count"], strict=True) if _has(s, "_run_once", "asyncio")]
        if not loop:
            continue
        held: Counter[Frame] = Counter()
        for stack, count in loop:
            if _has(stack, "Handle._run", "asyncio"):
                inner = [f for f in stack if not is_runtime(f)]
                if inner:
                    held[inner[-1]] += count
        loop_samples = sum(c for _, c in loop)
        rows += [
            {
                "pid": pid,
                "thread": thread,
                "function": f[0],
                "file": f[1],
                "line": f[2],
                "samples": n,
                "loop_samples": loop_samples,
                "share": n / loop_samples,
            }
            for f, n in held.items()
        ]
    columns = ["pid", "thread", "function", "file", "line", "samples", "loop_samples", "share"]
    return pd.DataFrame(rows, columns=columns).sort_values("samples", ascending=False, ignore_index=True)
