"""py-spy from outside the process: ``dump`` (every thread's stack now) and ``record`` (sampled stacks over a
window). Both are bounded: a capture that outlives its duration plus :data:`~access.GRACE_S` is killed."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from bsnexus_lab.areas.profile import access, flamegraph
from bsnexus_lab.areas.profile.stacks import parse_collapsed
from bsnexus_lab.config import run_dir

DUMP_COLUMNS = ["pid", "thread_id", "thread", "idle", "depth", "function", "file", "line", "locals"]
DUMP_TIMEOUT_S = 30.0
# py-spy's own default: 100 samples a second, read from outside the target and (``--nonblocking`` unless
# ``blocking=True``) without pausing it; bench/profiling.py measures what that costs the service.
RATE_HZ = 100
EXITED = "Stopped sampling because process exited"  # py-spy record's words when the target ends mid-capture


def artefact_dir(kind: str) -> Path:
    """Where a capture's files go: the run directory inside a runbook, a fresh temporary directory otherwise."""
    if directory := run_dir():
        path = directory / "profile"
        path.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=path))
    return Path(tempfile.mkdtemp(prefix=f"bsnexus-lab-{kind}-"))


async def dump(pid: int, *, with_locals: bool = False) -> pd.DataFrame:
    """Each thread's current stack, innermost frame at depth 0; ``attrs['text']`` reads like py-spy's dump."""
    access.require_process(pid)
    args = [access.tool("py-spy", "py-spy (pip install py-spy)"), "dump", "--pid", str(pid), "--json"]
    result = await access.run([*args, "--locals"] if with_locals else args, DUMP_TIMEOUT_S)
    if result.returncode != 0:
        raise access.refusal(pid, result.stderr + result.stdout, "stack dump")
    rows, text = [], []
    for thread in json.loads(result.stdout or "[]"):
        name = thread.get("thread_name") or str(thread["thread_id"])
        idle = not thread.get("active", True)
        text.append(
            f"Thread {thread.get('os_thread_id', thread['thread_id'])} ({'idle' if idle else 'active'}): {name}"
        )
        for depth, frame in enumerate(thread.get("frames", [])):
            values = {v["name"]: v.get("repr") for v in frame.get("locals") or []}
            rows.append(
                {
                    "pid": thread.get("pid", pid),
                    "thread_id": thread["thread_id"],
                    "thread": name,
                    "idle": idle,
                    "depth": depth,
                    "function": frame["name"],
                    "file": frame["filename"],
                    "line": frame["line"],
                    "locals": values or None,
                }
            )
            text.append(f"    {frame['name']} ({frame['filename']}:{frame['line']})")
            text.extend(f"        {k} = {v}" for k, v in values.items())
    frame = pd.DataFrame(rows, columns=DUMP_COLUMNS)
    frame.attrs["text"] = "\n".join(text)
    return frame


async def record(
    pid: int,
    seconds: float,
    *,
    rate: int = RATE_HZ,
    idle: bool = False,
    subprocesses: bool = True,
    native: bool = False,
    blocking: bool = False,
) -> pd.DataFrame:
    """Sampled stacks over ``seconds``: one row per distinct (pid, thread, stack) with its sample count.

    ``attrs`` carries the capture (pid, seconds, rate, idle, samples, ``exited``) and its artefacts: py-spy's
    raw collapsed stacks and the flame graph SVG. py-spy samples without pausing the target unless ``blocking``.
    A process that exits mid-capture ends it early: what was sampled until then is kept, with ``exited`` set
    (the ``profile.process_exited`` finding), since the stacks just before a crash are the ones worth having.
    """
    if seconds <= 0 or rate <= 0:
        raise ValueError("seconds and rate must be positive")
    access.require_process(pid)
    out = artefact_dir("cpu")
    raw = out / "stacks.txt"
    args = [access.tool("py-spy", "py-spy (pip install py-spy)"), "record", "--pid", str(pid)]
    args += ["--duration", str(max(1, round(seconds))), "--rate", str(rate), "--format", "raw", "--output", str(raw)]
    args += ["--threads", "--function", "--full-filenames"]
    flags: dict[str, bool] = {"--idle": idle, "--subprocesses": subprocesses, "--native": native}
    args += [flag for flag, on in flags.items() if on]
    if not blocking:
        args.append("--nonblocking")
    result = await access.run(args, seconds + access.GRACE_S)
    if result.returncode != 0 or not raw.exists():
        raise access.refusal(pid, result.stderr + result.stdout, "CPU profile")
    # py-spy stops at the exit and writes what it sampled until then; it says so before the process is
    # necessarily gone from the process table (a kill is still being torn down)
    exited = EXITED in result.stdout + result.stderr or not access.alive(pid)
    stacks = parse_collapsed(raw.read_text(errors="replace"), pid)
    samples = int(stacks["count"].sum()) if len(stacks) else 0
    svg = out / "flamegraph.svg"
    title = f"pid {pid}: {samples} samples over {seconds:g} s at {rate} Hz{' (idle included)' if idle else ''}"
    svg.write_text(flamegraph.svg(stacks, title + (": the process exited during the capture" if exited else "")))
    meta: dict[str, Any] = {"pid": pid, "seconds": seconds, "rate": rate, "idle": idle, "samples": samples}
    stacks.attrs.update(meta | {"exited": exited, "raw": str(raw), "svg": str(svg)})
    return stacks
