"""Allocations of a live process from outside, through memray's injector (see ``inject``), by three routes,
best first:

1. memray importable in the target's own environment: memray's attach payload, read back with ``FileReader``;
2. the lab's memray lent to a target without one (``memray_lent``), when a dry run in a child of the target's
   interpreter proves it loads (same CPython minor version and platform, a new enough glibc) and the target's
   own packages do not clash;
3. the standard library's tracemalloc started in the target for the window (``tracemalloc_window``): two
   snapshots diffed there, named by their files and lines.

Where nothing can be injected (no debugger, ptrace refused) the capture's ``leaks`` is an ``Unavailable``:
the memory checks then say "not checked" and RSS over time stays. After the window the target keeps running.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import dataclasses
import functools
import html
import json
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import psutil

from bsnexus_lab.areas.profile import access, inject, memray_lent, processes, tracemalloc_window
from bsnexus_lab.areas.profile.pyspy import artefact_dir
from bsnexus_lab.areas.profile.stacks import Frame, is_runtime
from bsnexus_lab.errors import LabError
from bsnexus_lab.findings import Unavailable

STACK_COLUMNS = ["function", "file", "line", "bytes", "allocations", "stack"]
STACK_DEPTH = 8
TRACEMALLOC_FRAMES = 16  # deep enough to reach the application's frame under the framework's
TRACEMALLOC_TOP = 5000  # grown tracebacks written back by the target, largest first
OWN_MEMRAY, LENT_MEMRAY, TRACEMALLOC = "memray", "lent memray", "tracemalloc"
ROUTES = (OWN_MEMRAY, LENT_MEMRAY, TRACEMALLOC)
RESTART_TRACED = "at its next restart, start the service with `python -X tracemalloc=16` or under `memray run`"


@dataclass(frozen=True)
class MemoryCapture:
    """One memory capture: who held memory at the peak, what was still alive at the end, memory over time.

    ``leaks`` is an ``Unavailable`` (the checks say "not checked") when no route could capture; ``route``
    says which one did."""

    pid: int
    seconds: float
    peak: pd.DataFrame  # allocating stacks at the high-water mark, largest first (memray routes only)
    leaks: pd.DataFrame | Unavailable  # allocated during the capture and still alive at its end, largest first
    timeline: pd.DataFrame  # rss_mb (and heap_mb) over time
    artefacts: dict[str, str] = field(default_factory=dict)
    route: str = ""

    def _repr_html_(self) -> str:
        if isinstance(self.leaks, Unavailable):
            fix = f"; {self.leaks.remedy}" if self.leaks.remedy else ""
            why = html.escape(self.leaks.reason + fix)
            return f"<p><b>Allocations not checked</b>: {why}. RSS over time only.</p>"
        growth = self.leaks.attrs.get("rss_growth_mb", 0.0)
        head = f"<p>{self.route} capture of pid {self.pid}, {self.seconds:g} s; RSS grew {growth:+.1f} MiB</p>"
        return head + "<h4>Still alive at the end</h4>" + self.leaks.head(10).to_html()


def _interpreter(pid: int) -> tuple[str, dict[str, str], str] | None:
    """The target's interpreter as its command line names it (a venv's ``python`` stays the venv's), the
    environment variables that choose its packages, and its working directory; None when that cannot be told."""
    try:
        proc = psutil.Process(pid)
        argv0 = proc.cmdline()[0]
        environ = proc.environ()
        cwd = proc.cwd()
    except (psutil.Error, IndexError):
        return None
    python = (
        argv0 if os.path.isabs(argv0) else shutil.which(argv0, path=environ.get("PATH")) or os.path.join(cwd, argv0)
    )
    if not os.access(python, os.X_OK):
        return None
    env = {k: v for k, v in environ.items() if k in ("PATH", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return python, env, cwd


def _in_child(pid: int, code: str) -> subprocess.CompletedProcess[str] | None:
    """``code`` run by a child of the target's interpreter in its environment (None when it cannot be run)."""
    found = _interpreter(pid)
    if found is None:
        return None
    python, env, cwd = found
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        return subprocess.run([python, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=30)
    return None


def memray_importable(pid: int) -> bool | None:
    """Can the target's interpreter import memray? None when that cannot be told (then memray is tried)."""
    done = _in_child(pid, "import memray")
    return None if done is None else done.returncode == 0


def _lab_site() -> str:
    import memray

    return str(Path(memray.__file__).parent.parent)


def _lent(source: str) -> str:
    """``source`` run with the lab's memray lent (``memray_lent``) while it runs."""
    block = f"\nwith lent({_lab_site()!r}):\n    exec({source!r}, globals())\n"
    return Path(memray_lent.__file__).read_text() + block


def lent_refusal(pid: int) -> str | None:
    """Why the lab's memray cannot be lent to ``pid`` (None when it can): another CPython minor version, or a
    dry run (the lending, then a tiny tracked block) failing in a child of the target's own interpreter."""
    try:
        version = processes.python_version(psutil.Process(pid))
    except psutil.Error:
        version = None
    lab = f"{sys.version_info.major}.{sys.version_info.minor}"
    if version is not None and version != lab:
        return f"pid {pid} runs Python {version} and the lab's memray is built for {lab}"
    start = (
        "import memray, os, tempfile\n"
        "folder = tempfile.TemporaryDirectory()\n"
        "tracker = memray.Tracker(os.path.join(folder.name, 'dry.bin'), "
        "file_format=memray.FileFormat.AGGREGATED_ALLOCATIONS)\n"
        "tracker.__enter__()\n"
    )
    stop = "kept = [bytes(64) for _ in range(64)]\ntracker.__exit__(None, None, None)\nfolder.cleanup()\n"
    done = _in_child(pid, _lent(start) + stop)  # stopped after the finder is gone, as in the target
    if done is None:
        return f"the interpreter of pid {pid} could not be run for a dry run"
    if done.returncode != 0:
        last = next((line for line in reversed(done.stderr.splitlines()) if line.strip()), "no output")
        return f"a dry run of the lent memray in pid {pid}'s interpreter failed ({last.strip()[:200]})"
    return None


async def capture(pid: int, seconds: float, *, native: bool = False, route: str | None = None) -> MemoryCapture:
    """Allocations of ``pid`` over ``seconds``, by the first route that applies: its own memray, the lab's memray
    lent for the import, or tracemalloc (``route`` names one of them to use it alone); where none can look,
    ``leaks`` is an :class:`Unavailable`."""
    if seconds <= 0:
        raise ValueError("seconds must be positive")
    if route not in (None, *ROUTES):
        raise ValueError(f"route must be one of {', '.join(ROUTES)}")
    access.require_process(pid)
    out = artefact_dir("memory")
    skipped: list[str] = []
    for name in [route] if route else _routes(pid, skipped):
        try:
            if name == TRACEMALLOC:
                return await _tracemalloc(pid, seconds, out)
            return await _memray(pid, seconds, out, native=native, lend=name == LENT_MEMRAY)
        except inject.RemoteError as exc:  # the target refused the route's code: nothing was injected
            skipped.append(f"{name}: {exc}")
        except LabError as exc:  # nothing could be injected: every route goes through the same injector
            if not access.alive(pid):
                return exited(pid, seconds)
            return unavailable(pid, seconds, Unavailable.from_error(exc))
    why = f"no capture could run in pid {pid} ({'; '.join(skipped)})"
    return unavailable(pid, seconds, Unavailable(why, remedy=RESTART_TRACED))


def _routes(pid: int, skipped: list[str]) -> Iterator[str]:
    """The routes that apply to ``pid``, best first; why one does not apply is added to ``skipped``."""
    if memray_importable(pid) is not False:
        yield OWN_MEMRAY
    else:
        skipped.append(f"{OWN_MEMRAY}: memray is not installed in the environment of pid {pid}")
    if (refusal := lent_refusal(pid)) is None:
        yield LENT_MEMRAY
    else:
        skipped.append(f"{LENT_MEMRAY}: {refusal}")
    yield TRACEMALLOC


async def _memray(pid: int, seconds: float, out: Path, *, native: bool, lend: bool) -> MemoryCapture:
    """memray's own attach payload (tracking for the window, then it deactivates itself), after lending it."""
    from memray import FileDestination
    from memray.commands.attach import PAYLOAD

    capture_file = out / "capture.bin"
    destination = FileDestination(path=str(capture_file), overwrite=True, compress_on_exit=True)
    tracker = (
        f"memray.Tracker(destination=memray.{destination!r}, native_traces={native}, follow_fork=False, "
        "trace_python_allocators=False, file_format=memray.FileFormat.AGGREGATED_ALLOCATIONS)"
    )
    payload = PAYLOAD.format(tracker_call=tracker, mode="FOR_DURATION", duration=max(1, round(seconds)))
    await inject.run(pid, _lent(payload) if lend else payload, out, 0)
    if not await _finished(capture_file, seconds + access.GRACE_S, pid):
        return exited(pid, seconds)
    memray = access.tool("memray", "memray (pip install memray)")
    found = read(capture_file, pid, seconds, await _flamegraph(memray, capture_file, out))
    route = LENT_MEMRAY if lend else OWN_MEMRAY
    found.leaks.attrs["route"] = route
    return dataclasses.replace(found, route=route)


async def _tracemalloc(pid: int, seconds: float, out: Path) -> MemoryCapture:
    """tracemalloc started in the target for the window (the injection returns when the window is over)."""
    result = out / "tracemalloc.json"
    out.chmod(0o1733)  # the target, maybe another user, creates its result here (sticky: nobody replaces it)
    call = f"\nwindow({str(result)!r}, {float(seconds)!r}, {TRACEMALLOC_FRAMES}, {TRACEMALLOC_TOP})\n"
    await inject.run(pid, Path(tracemalloc_window.__file__).read_text() + call, out, seconds)
    if not result.exists():  # the injected window ended without writing: the target ended during it
        if not access.alive(pid):
            return exited(pid, seconds)
        raise LabError(f"the tracemalloc window in pid {pid} wrote nothing", hint=f"expected {result}")
    data = json.loads(result.read_text())
    leaks = by_stack((_named(row["stack"]), row["bytes"], row["allocations"]) for row in data["rows"])
    leaks.attrs.update(pid=pid, seconds=seconds, rss_growth_mb=0.0, peak_bytes=data["peak"], route=TRACEMALLOC)
    return MemoryCapture(
        pid,
        seconds,
        pd.DataFrame(columns=STACK_COLUMNS),
        leaks,
        _no_timeline(),
        {"tracemalloc": str(result)},
        route=TRACEMALLOC,
    )


def _named(stack: list[list[Any]]) -> list[Frame]:
    """tracemalloc's (file, line) frames, outermost first, as (function, file, line) innermost first."""
    return [(function_at(file, int(line)), file, int(line)) for file, line in reversed(stack)]


@functools.lru_cache(maxsize=256)
def _functions(file: str) -> tuple[tuple[int, int, str], ...]:
    """(first line, last line, name) of every function defined in ``file``; nothing when it cannot be read."""
    try:
        tree = ast.parse(Path(file).read_text())
    except (OSError, SyntaxError, ValueError):
        return ()
    defs = (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))
    return tuple((n.lineno, n.end_lineno or n.lineno, n.name) for n in defs)


def function_at(file: str, line: int) -> str:
    """The innermost function of ``file`` that holds ``line`` (tracemalloc records only files and lines)."""
    holding = [(first, name) for first, last, name in _functions(file) if first <= line <= last]
    return max(holding)[1] if holding else "<module>"


async def _finished(path: Path, timeout: float, pid: int) -> bool:
    """Wait until the target's tracker has written and closed the capture (it does so when the window ends);
    False when the target exited first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size and _complete(path):
            return True
        if not access.alive(pid):
            return False
        await asyncio.sleep(0.25)
    raise LabError(f"the memray capture of pid {pid} did not complete in time", hint=f"partial file: {path}")


def _complete(path: Path) -> bool:
    from memray import FileReader

    try:
        with contextlib.closing(FileReader(path)) as reader:
            return reader.metadata.end_time is not None and reader.metadata.end_time > reader.metadata.start_time
    except OSError:
        return False


async def _flamegraph(memray: str, capture_file: Path, out: Path) -> dict[str, str]:
    page = out / "leaks-flamegraph.html"
    result = await access.run([memray, "flamegraph", "--leaks", "--force", "-o", str(page), str(capture_file)], 60)
    found = {"capture": str(capture_file)}
    return found | ({"flamegraph": str(page)} if result.returncode == 0 and page.exists() else {})


def _culprit(stack: list[Frame]) -> Frame:
    """The innermost frame of the application (not of asyncio or the interpreter's machinery)."""
    return next((f for f in stack if not is_runtime(f)), stack[0] if stack else ("<unknown>", "", 0))


def by_stack(allocations: Iterable[tuple[list[Frame], int, int]]) -> pd.DataFrame:
    """(stack innermost first, bytes, allocations) grouped by their culprit frame, largest first."""
    groups: dict[Frame, dict[str, Any]] = defaultdict(lambda: {"bytes": 0, "allocations": 0})
    for stack, size, count in allocations:
        group = groups[_culprit(stack)]
        group["bytes"] += size
        group["allocations"] += count
        group.setdefault(
            "stack", " <- ".join(f"{f} ({file.rsplit('/', 1)[-1]}:{n})" for f, file, n in stack[:STACK_DEPTH])
        )
    rows = [{"function": f, "file": file, "line": line, **values} for (f, file, line), values in groups.items()]
    frame = pd.DataFrame(rows, columns=STACK_COLUMNS)
    return frame.sort_values("bytes", ascending=False, ignore_index=True)


def _records(records: Iterable[Any]) -> Iterator[tuple[list[Frame], int, int]]:
    return ((r.stack_trace(max_stacks=STACK_DEPTH * 4), r.size, r.n_allocations) for r in records)


def read(path: Path, pid: int, seconds: float, artefacts: dict[str, str]) -> MemoryCapture:
    """A capture file into frames (memray's reader; no reporter)."""
    from memray import FileReader

    with contextlib.closing(FileReader(path)) as reader:
        peak = by_stack(_records(reader.get_high_watermark_allocation_records(merge_threads=True)))
        leaks = by_stack(_records(reader.get_leaked_allocation_records(merge_threads=True)))
        snapshots = list(reader.get_memory_snapshots())
        peak_bytes = reader.metadata.peak_memory
    timeline = pd.DataFrame(
        {
            "time": pd.to_datetime([s.time for s in snapshots], unit="ms", utc=True),
            "rss_mb": [s.rss / 2**20 for s in snapshots],
            "heap_mb": [s.heap / 2**20 for s in snapshots],
        }
    ).set_index("time")
    leaks.attrs.update(pid=pid, seconds=seconds, rss_growth_mb=growth(timeline), peak_bytes=peak_bytes)
    return MemoryCapture(pid, seconds, peak, leaks, timeline, artefacts)


def growth(timeline: pd.DataFrame) -> float:
    rss = timeline["rss_mb"].dropna()
    return round(float(rss.iloc[-1] - rss.iloc[0]), 2) if len(rss) > 1 else 0.0


def exited(pid: int, seconds: float) -> MemoryCapture:
    """The target ended mid-capture: an aggregated capture is written when the window ends, so there is none;
    ``exited`` in the frame's attrs makes it the ``profile.process_exited`` finding."""
    leaks = pd.DataFrame(columns=STACK_COLUMNS)
    leaks.attrs.update(pid=pid, seconds=seconds, rss_growth_mb=0.0, exited=True)
    return MemoryCapture(pid, seconds, pd.DataFrame(columns=STACK_COLUMNS), leaks, _no_timeline())


def unavailable(pid: int, seconds: float, why: Unavailable) -> MemoryCapture:
    """No route could capture: the checks that need the allocations say "not checked" with ``why``."""
    return MemoryCapture(pid, seconds, pd.DataFrame(columns=STACK_COLUMNS), why, _no_timeline())


def _no_timeline() -> pd.DataFrame:
    return pd.DataFrame(columns=["rss_mb"], index=pd.DatetimeIndex([], tz="UTC", name="time"))
