"""Can the lab look inside a process? Finding the tools, and turning py-spy's, gdb's and memray's refusals
into one-line errors that say which obstacle it is and how to remove it.

The obstacles, in the order they are told apart: the pid does not exist (or exited mid-capture); it is in
another PID namespace (a container seen from the host); ptrace is refused (``kernel.yama.ptrace_scope``, a
container without ``SYS_PTRACE``, another user's process); the process is not Python; a tool is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

from bsnexus_lab.errors import LabError, NotFound, PermissionDenied

GRACE_S = 10.0  # how long past its duration a capture may run before it is killed

PTRACE_FIX = (
    "run the lab as the process's user or as root; on Linux with Yama, `sysctl kernel.yama.ptrace_scope=0` "
    "(or grant CAP_SYS_PTRACE); in Docker `--cap-add SYS_PTRACE`, in Kubernetes "
    "`securityContext.capabilities.add: [SYS_PTRACE]`"
)


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str


def tool(name: str, package: str) -> str:
    """The path of a command-line tool (the venv's own first), or an error naming the package to install."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise LabError(f"{name} is not installed", hint=f"install {package}")
    return found


def ptrace_scope() -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(Path("/proc/sys/kernel/yama/ptrace_scope").read_text())
    return None


def require_process(pid: int) -> psutil.Process:
    """The live process ``pid``, or NotFound / PermissionDenied naming what is wrong."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            raise psutil.NoSuchProcess(pid)
    except psutil.NoSuchProcess:
        raise NotFound(f"no process with pid {pid}", hint="it does not exist or has exited") from None
    if _other_namespace(pid):
        raise PermissionDenied(
            f"pid {pid} runs in another PID namespace",
            hint="run the lab inside its container (`docker exec`, `kubectl debug --target=<container>`), "
            "where py-spy and memray see the same pids",
        )
    return process


def _other_namespace(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
    return False


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def exited(pid: int, what: str) -> NotFound:
    return NotFound(f"pid {pid} exited during the {what}", hint="nothing was captured after it ended")


def refusal(pid: int, output: str, what: str) -> LabError:
    """The lab's error for a failed py-spy / memray / gdb run on ``pid`` (never the tool's raw output)."""
    text = output.lower()
    if not alive(pid):
        return exited(pid, what)
    if any(s in text for s in ("permission denied", "operation not permitted", "ptrace", "os error 1)")):
        scope = ptrace_scope()
        why = f"kernel.yama.ptrace_scope is {scope}" if scope else "ptrace was refused"
        return PermissionDenied(f"cannot trace pid {pid} ({why})", hint=PTRACE_FIX)
    if any(s in text for s in ("python version", "python interpreter", "not a python", "executable name")):
        return LabError(f"pid {pid} is not a Python process", hint="point the lab at the uvicorn/gunicorn process")
    first = next((line.strip() for line in output.splitlines() if line.strip()), "no output")
    return LabError(f"the {what} of pid {pid} failed", hint=first[:200])


async def run(args: list[str], timeout: float) -> Completed:
    """Run a tool, killing it (and never waiting more) once ``timeout`` seconds have passed."""
    process = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise LabError(f"{Path(args[0]).name} did not finish within {timeout:.0f} s", hint="it was stopped") from None
    return Completed(process.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"))
