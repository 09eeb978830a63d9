"""Run Python source inside a live process through memray's injector, the mechanism ``memray attach`` uses.

A debugger (gdb, or lldb where gdb cannot restore the registers: memray issue #723) loads memray's
``_inject`` library into the target; it starts a thread there that reads source from a socket and runs it
under the GIL, sending back the exception if one is raised. The library uses only CPython's stable ABI and
imports nothing, so any CPython can run code sent this way, with or without memray in its own environment.
The debugger runs in a child process (``python -m bsnexus_lab.areas.profile.inject PID METHOD FILE``) whose
output tells the failures apart.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import sys
from pathlib import Path

from bsnexus_lab.areas.profile import access
from bsnexus_lab.errors import LabError

ATTACH_TIMEOUT_S = 60.0
_REMOTE = "REMOTE ERROR: "  # the child's prefix for an exception raised by the source inside the target
_UNUSABLE: set[str] = set()  # debuggers that could not inject on this machine (tried again next process start)


class RemoteError(LabError):
    """The source ran inside the target and raised: the target refused what was sent, nothing was injected."""


def debuggers() -> list[str]:
    """The debuggers memray's injector can use here, gdb first, leaving out one already found unable to inject."""
    found = [name for name in ("gdb", "lldb") if shutil.which(name) and name not in _UNUSABLE]
    if not found and _UNUSABLE:
        raise LabError("gdb cannot inject into a process on this kernel", hint="install lldb (apt-get install lldb)")
    if not found:
        raise LabError(
            "injecting into a process needs a debugger and none is installed",
            hint="install lldb or gdb (apt-get install lldb)",
        )
    return found


async def run(pid: int, source: str, folder: Path, timeout: float) -> None:
    """Run ``source`` in ``pid`` and return once it has finished there; RemoteError when it raised."""
    script = folder / "injected.py"
    script.write_text(source)
    failures: list[str] = []
    for method in debuggers():
        args = [sys.executable, "-m", __name__, str(pid), method, str(script)]
        result = await access.run(args, ATTACH_TIMEOUT_S + timeout)
        if result.returncode == 0:
            return
        if _REMOTE in result.stderr:
            raise RemoteError(f"inside pid {pid}: {result.stderr.split(_REMOTE, 1)[1].strip()}")
        failures.append(result.stdout + result.stderr)
        if "extended state" in failures[-1]:
            _UNUSABLE.add(method)
    if not access.alive(pid):
        raise access.exited(pid, "memory capture")
    raise _attach_error(pid, failures)


def _attach_error(pid: int, failures: list[str]) -> LabError:
    output = "\n".join(failures)
    if "extended state" in output and len(failures) == 1:
        return LabError(
            f"gdb could not inject into pid {pid} (it cannot restore the registers on this kernel)",
            hint="install lldb (apt-get install lldb), which is used instead; see memray issue #723",
        )
    return access.refusal(pid, output, "injection")


def _main(pid: int, method: str, script: Path) -> int:
    """The child: inject, send the source, wait until it has run; exit 2 when injection failed, 3 when it raised."""
    from memray._errors import MemrayCommandError
    from memray.commands.attach import _DebuggerCommand

    try:
        client = _DebuggerCommand().inject_control_channel(method, pid, verbose=True)
    except MemrayCommandError as exc:
        print(exc, file=sys.stderr)
        return 2
    with contextlib.closing(client):
        client.sendall(script.read_bytes())
        client.shutdown(socket.SHUT_WR)
        error = b"".join(iter(lambda: client.recv(4096), b"")).decode(errors="replace")
    if error:
        print(f"{_REMOTE}{error}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(_main(int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])))
