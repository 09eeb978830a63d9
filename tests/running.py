"""Running a runbook while something happens to its target: wait for a cell, act, read what the run left behind.

Shared by the scheduler contract (tests/test_contract.py), the fault tests (tests/test_faults.py) and the tests
that run a small runbook of their own (``write_runbook``).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat

from bsnexus_lab import runner
from bsnexus_lab.findings import Finding, document, flatten

SAMPLING = "lab.streams.sample("  # the stream_backlog cell that samples for duration_s
KERNELSPEC = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}


def write_runbook(directory: Path, name: str, cells: list[Any]) -> Path:
    """A runbook of ``cells`` in ``directory`` (found through BSNEXUS_LAB_RUNBOOKS); code cells may be strings."""
    directory.mkdir(exist_ok=True)
    path = directory / f"{name}.ipynb"
    made = [nbformat.v4.new_code_cell(c) if isinstance(c, str) else c for c in cells]
    nbformat.write(nbformat.v4.new_notebook(cells=made, metadata=KERNELSPEC), path)
    return path


def parameters_cell(source: str = 'target: str = ""') -> Any:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["parameters"]
    return cell


def running_cell(run_root: Path, marker: str) -> bool:
    """Has papermill started (or finished) the cell whose source contains ``marker``?"""
    for scratch in run_root.glob("*/*/.executing.ipynb"):
        try:
            notebook = json.loads(scratch.read_text())
        except ValueError:
            continue  # caught mid-save
        for cell in notebook["cells"]:
            if marker in "".join(cell["source"]):
                return cell["metadata"].get("papermill", {}).get("status") in {"running", "completed"}
    return False


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def run_and_kill(
    kill: Callable[[], None],
    tmp_path: Path,
    params: dict[str, Any],
    *,
    runbook: str = "stream_backlog",
    marker: str = SAMPLING,
    after_s: float = 2.0,
    target: str | None = "sandbox",
    timeout_s: float | None = None,
    begun: Callable[[Path], bool] | None = None,
) -> runner.RunResult:
    """Run ``runbook`` and call ``kill`` ``after_s`` seconds into the cell whose source contains ``marker``
    (and, with ``begun``, once ``begun(runs root)`` says the work to interrupt has started: on a loaded machine
    a cell can spend its first seconds before it)."""
    root = tmp_path / "runs"

    def killer() -> None:
        wait_for(lambda: running_cell(root, marker), f"the cell running {marker}")
        if begun is not None:
            wait_for(lambda: begun(root), "the work to interrupt to begin")
        time.sleep(after_s)
        kill()

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    result = runner.run(runbook, target=target, params=params, output_root=root, timeout_s=timeout_s)
    thread.join(timeout=1)
    return result


def found(result: runner.RunResult, check: str) -> list[dict[str, Any]]:
    """The run's findings (``findings.json``, explained ones included) of ``check``."""
    saved = document.records(result.run_dir / "findings.json")
    return [f.to_dict() for f in flatten(Finding.from_dict(f) for f in saved) if f.check == check]


def lost(result: runner.RunResult) -> list[dict[str, Any]]:
    return found(result, "deps.lost_during_run")


@contextlib.contextmanager
def ptrace_held(pid: int) -> Iterator[None]:
    """Another tracer holds ``pid`` (PTRACE_SEIZE leaves it running): the kernel refuses py-spy and debuggers, as
    Yama or a container without SYS_PTRACE would. The process is released when the block ends."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import ctypes, sys, time\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            f"assert libc.ptrace(0x4206, {pid}, 0, 0) == 0, ctypes.get_errno()\n"
            "print('held', flush=True)\n"
            "time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.kill()
        holder.wait()
