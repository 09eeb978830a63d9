"""Which processes are the service: found by the target's ``process`` setting (pid, listening port or
command-line substring), with their uvicorn/gunicorn workers, read with psutil."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from typing import TYPE_CHECKING, Any

import pandas as pd
import psutil

from bsnexus_lab.areas.profile.access import require_process
from bsnexus_lab.checkout import app_pid, listeners, roots
from bsnexus_lab.config import ProcessMatch
from bsnexus_lab.errors import ConfigError, NotFound

if TYPE_CHECKING:
    from bsnexus_lab.context import Context

COLUMNS = ["pid", "parent", "role", "command", "rss_mb", "cpu_percent", "threads", "connections", "listening", "python"]
CPU_WINDOW_S = 0.2


def _match(process: ProcessMatch | int | str | None) -> ProcessMatch:
    if isinstance(process, int):
        return ProcessMatch(pid=process)
    if isinstance(process, str):
        return ProcessMatch(cmdline=process)
    if process is None or not any(process.model_dump().values()):
        raise ConfigError(
            "the target has no `process` setting",
            hint='pass a pid, or set process = { pid = N } / { port = 8000 } / { cmdline = "uvicorn" } in its profile',
        )
    return process


def matching(process: ProcessMatch | int | str | None) -> list[int]:
    """Pids matching the setting: the named pid, the listeners of a port, or command lines containing a text."""
    match = _match(process)
    if match.pid is not None:
        require_process(match.pid)
        return [match.pid]
    found: set[int] = set()
    if match.port is not None:
        found.update(listeners(match.port))
    if match.cmdline is not None:
        for proc in psutil.process_iter(["pid", "cmdline"]):
            line = " ".join(proc.info["cmdline"] or [])
            if match.cmdline in line and proc.info["pid"] != os.getpid():
                found.add(proc.info["pid"])
    if not found:
        raise NotFound(f"no process matches {_text(match)}", hint="is the service running on this machine?")
    return sorted(found)


def main_pid(process: ProcessMatch | int | str | None) -> int:
    """The service's main process: the uvicorn/gunicorn master when there are workers, but the worker child of
    a ``--reload`` parent (which only watches files: profiling it shows nothing of the app)."""
    pids = matching(process)
    trees = roots(pids)
    return app_pid(trees[0] if trees else pids[0])


def _text(match: ProcessMatch) -> str:
    return ", ".join(f"{k}={v}" for k, v in match.model_dump().items() if v is not None)


def python_version(proc: psutil.Process) -> str | None:
    """The interpreter's version from its executable or loaded libpython (None when not Python)."""
    with contextlib.suppress(psutil.Error, OSError):
        names = [os.path.realpath(proc.exe())]
        found = re.search(r"python(\d+\.\d+)", names[0])
        if found is None:
            found = next((m for mm in proc.memory_maps() if (m := re.search(r"libpython(\d+\.\d+)", mm.path))), None)
        return found.group(1) if found else None
    return None


async def processes(ctx: Context, process: ProcessMatch | int | str | None = None) -> pd.DataFrame:
    """The matched processes and their children: pid, parent, role, command, RSS, CPU %, threads, connections."""
    roots = matching(process if process is not None else ctx.target.process)
    procs: dict[int, psutil.Process] = {}
    for pid in roots:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            procs[pid] = proc
            procs.update({child.pid: child for child in proc.children(recursive=True)})
    for proc in procs.values():
        with contextlib.suppress(psutil.Error):
            proc.cpu_percent(None)
    await asyncio.sleep(CPU_WINDOW_S)
    rows = []
    for pid, proc in sorted(procs.items()):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess), proc.oneshot():
            parent = proc.ppid()
            conns = _connections(proc)
            rows.append(
                {
                    "pid": pid,
                    "parent": parent,
                    "role": "worker" if parent in procs else ("master" if len(procs) > 1 else "main"),
                    "command": ctx.target.scrub(" ".join(proc.cmdline())),
                    "rss_mb": round(proc.memory_info().rss / 2**20, 1),
                    "cpu_percent": proc.cpu_percent(None),
                    "threads": proc.num_threads(),
                    "connections": len(conns),
                    "listening": sorted({c.laddr.port for c in conns if c.status == psutil.CONN_LISTEN}),
                    "python": python_version(proc),
                }
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def _connections(proc: psutil.Process) -> list[Any]:
    with contextlib.suppress(psutil.AccessDenied):
        return proc.net_connections(kind="inet")
    return []
