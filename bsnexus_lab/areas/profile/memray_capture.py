"""memray from outside the process: ``memray attach`` for a bounded window, read back with ``FileReader``.

memray attach injects ``import memray`` into the target through a debugger (gdb, or lldb where gdb cannot
write the registers it must restore: memray issue #723, a gdb/kernel pairing), so memray must be importable
in the service's own environment; that is checked first, and the fix is named when it is not. After the
window the tracker deactivates itself and the target keeps running, detached.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import os
import shutil
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import psutil

from bsnexus_lab.areas.profile import access
from bsnexus_lab.areas.profile.pyspy import artefact_dir
from bsnexus_lab.areas.profile.stacks import is_runtime
from bsnexus_lab.errors import LabError

STACK_COLUMNS = ["function", "file", "line", "bytes", "allocations", "stack"]
ATTACH_TIMEOUT_S = 60.0
STACK_DEPTH = 8
MEMRAY_FIX = (
    "install memray into the service's own environment (`pip install memray` in its venv or image), or start "
    "it under `memray run`; meanwhile lab.profile.rss() samples its RSS over time"
)


class MemrayMissing(LabError):
    """memray cannot be imported inside the target: attach cannot work there."""


@dataclass(frozen=True)
class MemoryCapture:
    """One memray capture: who held memory at the peak, what was still alive at the end, memory over time."""

    pid: int
    seconds: float
    peak: pd.DataFrame  # allocating stacks at the high-water mark, largest first
    leaks: pd.DataFrame  # allocations made during the capture and still alive at its end, largest first
    timeline: pd.DataFrame  # rss_mb (and heap_mb) over time
    artefacts: dict[str, str] = field(default_factory=dict)
    note: str = ""  # why this is only RSS over time (memray could not attach), with the fix

    def _repr_html_(self) -> str:
        growth = self.leaks.attrs.get("rss_growth_mb", 0.0)
        head = f"<p>memray capture of pid {self.pid}, {self.seconds:g} s; RSS grew {growth:+.1f} MiB</p>"
        if self.note:
            head = f"<p><b>No memray capture</b>: {html.escape(self.note)}; RSS over time only.</p>"
        return head + "<h4>Still alive at the end</h4>" + self.leaks.head(10).to_html()


def memray_importable(pid: int) -> bool | None:
    """Can the target's interpreter import memray? None when that cannot be told (then attach is tried)."""
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
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        done = subprocess.run([python, "-c", "import memray"], env=env, cwd=cwd, capture_output=True, timeout=20)
        return done.returncode == 0
    return None


_UNUSABLE: set[str] = set()  # debuggers that could not inject on this machine (tried again next process start)


def debuggers() -> list[str]:
    """The debuggers memray can use here, gdb first, leaving out one already found unable to inject."""
    found = [name for name in ("gdb", "lldb") if shutil.which(name) and name not in _UNUSABLE]
    if not found and _UNUSABLE:
        raise LabError("gdb cannot inject memray on this kernel", hint="install lldb (apt-get install lldb)")
    if not found:
        raise LabError("memray attach needs a debugger and none is installed", hint="install gdb (apt-get install gdb)")
    return found


async def capture(pid: int, seconds: float, *, native: bool = False) -> MemoryCapture:
    """Attach memray to ``pid`` for ``seconds`` and read the capture back into frames."""
    if seconds <= 0:
        raise ValueError("seconds must be positive")
    access.require_process(pid)
    if memray_importable(pid) is False:
        raise MemrayMissing(f"memray is not installed in the environment of pid {pid}", hint=MEMRAY_FIX)
    out = artefact_dir("memory")
    capture_file = out / "capture.bin"
    memray = access.tool("memray", "memray (pip install memray)")
    args = [memray, "attach", str(pid), "--output", str(capture_file), "--force", "--aggregate"]
    args += ["--duration", str(max(1, round(seconds)))] + (["--native"] if native else [])
    failures = []
    for method in debuggers():
        result = await access.run([*args, "--method", method, "--verbose"], ATTACH_TIMEOUT_S)
        if result.returncode == 0:
            break
        failures.append((method, result.stdout + result.stderr))
        if "extended state" in failures[-1][1]:
            _UNUSABLE.add(method)
    else:
        if not access.alive(pid):  # it ended while the debugger was injecting memray
            return exited(pid, seconds)
        raise _attach_error(pid, failures)
    if not await _finished(capture_file, seconds + access.GRACE_S, pid):
        return exited(pid, seconds)
    return read(capture_file, pid, seconds, await _flamegraph(memray, capture_file, out))


def _attach_error(pid: int, failures: list[tuple[str, str]]) -> LabError:
    output = "\n".join(text for _, text in failures)
    if "extended state" in output and len(failures) == 1:
        return LabError(
            f"gdb could not inject memray into pid {pid} (it cannot restore the registers on this kernel)",
            hint="install lldb (apt-get install lldb), which memray uses instead; see memray issue #723",
        )
    if "no module named" in output.lower() and "memray" in output.lower():
        return MemrayMissing(f"memray is not installed in the environment of pid {pid}", hint=MEMRAY_FIX)
    return access.refusal(pid, output, "memray attach")


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


def _culprit(stack: list[tuple[str, str, int]]) -> tuple[str, str, int]:
    """The innermost frame of the application (not of asyncio or the interpreter's machinery)."""
    return next((f for f in stack if not is_runtime(f)), stack[0] if stack else ("<unknown>", "", 0))


def by_stack(records: Iterable[Any]) -> pd.DataFrame:
    """Allocation records grouped by their culprit frame: bytes and allocations, largest first."""
    groups: dict[tuple[str, str, int], dict[str, Any]] = defaultdict(lambda: {"bytes": 0, "allocations": 0})
    for record in records:
        stack = record.stack_trace(max_stacks=STACK_DEPTH * 4)
        group = groups[_culprit(stack)]
        group["bytes"] += record.size
        group["allocations"] += record.n_allocations
        group.setdefault(
            "stack", " <- ".join(f"{f} ({file.rsplit('/', 1)[-1]}:{n})" for f, file, n in stack[:STACK_DEPTH])
        )
    rows = [{"function": f, "file": file, "line": line, **values} for (f, file, line), values in groups.items()]
    frame = pd.DataFrame(rows, columns=STACK_COLUMNS)
    return frame.sort_values("bytes", ascending=False, ignore_index=True)


def read(path: Path, pid: int, seconds: float, artefacts: dict[str, str]) -> MemoryCapture:
    """A capture file into frames (memray's reader; no reporter)."""
    from memray import FileReader

    with contextlib.closing(FileReader(path)) as reader:
        peak = by_stack(reader.get_high_watermark_allocation_records(merge_threads=True))
        leaks = by_stack(reader.get_leaked_allocation_records(merge_threads=True))
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
    timeline = pd.DataFrame(columns=["time", "rss_mb", "heap_mb"])
    capture = empty(pid, seconds, timeline, f"pid {pid} exited during the memory capture, before memray wrote it")
    capture.leaks.attrs["exited"] = True
    return capture


def empty(pid: int, seconds: float, timeline: pd.DataFrame, note: str) -> MemoryCapture:
    """RSS over time only, where memray could not attach (``note`` says why and how to fix it)."""
    leaks = pd.DataFrame(columns=STACK_COLUMNS)
    leaks.attrs.update(pid=pid, seconds=seconds, rss_growth_mb=growth(timeline))
    return MemoryCapture(pid, seconds, pd.DataFrame(columns=STACK_COLUMNS), leaks, timeline, note=note)
