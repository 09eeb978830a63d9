"""Executing a runbook: papermill on a kernel the runner owns, under signals, a whole-run timeout and a lock.

:func:`execute` never raises for what happens inside the kernel: a cell that raised, a kernel that died or
was killed at the deadline, SIGINT/SIGTERM all come back as an :class:`Outcome` (the partial notebook stays in
the scratch file), so the run directory always gets its evidence. :func:`exclusive` allows one run of a runbook
per target at a time (:class:`~bsnexus_lab.errors.RunbookBusy` otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bsnexus_lab.config import RUN_DIR_ENV, state_dir
from bsnexus_lab.errors import RunbookBusy
from bsnexus_lab.runbooks import KERNEL


class Interrupted(BaseException):
    """SIGINT/SIGTERM during a run: unwinds papermill like KeyboardInterrupt, whichever signal it was."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass(frozen=True)
class Outcome:
    """How the kernel's execution ended, before any judging: ``failure`` is None (every cell ran), ``failed`` (a
    cell raised, or the tool could not run it), ``timed-out``, ``dead-kernel`` or ``interrupted`` (by ``signum``)."""

    started: float
    ended: float
    failure: str | None = None
    error: str | None = None  # one line for people, when failure is set
    signum: int | None = None


def execute(path: Path, scratch: Path, values: dict[str, Any], run_dir: Path, timeout_s: float | None) -> Outcome:
    """Run the notebook at ``path`` into ``scratch`` with ``values`` injected; the kernel sees ``run_dir``."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    started = time.time()
    failure, error, signum = None, None, None
    kernel = _kernel_manager()
    try:
        with _signals_interrupt(), _kernel_sees(run_dir), _deadline(kernel, timeout_s) as expired:
            papermill.execute_notebook(
                str(path),
                str(scratch),
                parameters=values,
                kernel_name=KERNEL,
                cwd=str(Path.cwd()),
                progress_bar=False,
                log_output=False,
                # the lab's displays in the report; the kernel's start-up chatter kept off stderr
                extra_arguments=["--ext=bsnexus_lab.display", "--IPKernelApp.log_level=CRITICAL"],
                km=kernel,
            )
    except PapermillExecutionError as exc:
        failure, error = "failed", f"cell {exc.exec_count} raised {exc.ename}: {exc.evalue}"
    except (Interrupted, KeyboardInterrupt) as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        failure, error = "interrupted", f"interrupted by {signal.Signals(signum).name}"
    except Exception as exc:  # a kernel that died or never started: still leave evidence behind
        failure = "dead-kernel" if type(exc).__name__ == "DeadKernelError" else "failed"
        error = f"{type(exc).__name__}: {exc}"
    finally:
        _shutdown(kernel)
    if expired.is_set():
        failure, error = "timed-out", f"timed out after {timeout_s:g} s (whole run); the kernel was stopped"
    return Outcome(started, time.time(), failure, error, signum)


@contextlib.contextmanager
def quiet_channels() -> Iterator[None]:
    """A kernel's channels torn down mid-message (at shutdown, on a signal, on a loaded machine) make pyzmq log
    "Uncaught exception in ZMQStream callback" with a traceback through tornado's logger, straight to stderr:
    plumbing, not the run's outcome (the notebook and exit status say that), so it is kept off the user's screen.

    A filter, not ``Logger.disabled``: ``logging.config.dictConfig``, which Jupyter's traitlets applications call,
    re-enables every existing logger it does not name, and did so mid-run on a loaded machine."""
    channels = logging.getLogger("tornado.general")
    channels.addFilter(_nothing)
    try:
        yield
    finally:
        channels.removeFilter(_nothing)


def _nothing(record: logging.LogRecord) -> bool:
    return False


@contextlib.contextmanager
def _kernel_sees(run_dir: Path) -> Iterator[None]:
    """The kernel inherits :data:`~bsnexus_lab.config.RUN_DIR_ENV`: remediation journals its writes
    (``writes.jsonl``), and the profile area keeps its captures and flame graphs, in the run directory."""
    previous = os.environ.get(RUN_DIR_ENV)
    os.environ[RUN_DIR_ENV] = str(run_dir)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(RUN_DIR_ENV, None)
        else:
            os.environ[RUN_DIR_ENV] = previous


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGINT raise :class:`Interrupted` in the main thread while a kernel runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C is not swallowed
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise Interrupted(signum)

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# -- one run per runbook and target -----------------------------------------------------------------------
@contextlib.contextmanager
def exclusive(target: str, runbook: str) -> Iterator[Path]:
    """Hold the lock of ``runbook`` on ``target`` (an flock, so the kernel frees it when a run is killed);
    :class:`RunbookBusy` when another run holds it. A lock file left by a killed run is noticed and cleared."""
    directory = state_dir() / "locks"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', target)}--{runbook}.lock"
    handle = path.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise RunbookBusy(
                f"runbook {runbook} is already running on target {target} ({holder})",
                hint="wait for it to finish; a killed run's lock is cleared automatically",
            ) from None
        handle.seek(0)
        left = handle.read().strip()
        if left:
            print(f"bsnexus-lab: cleared a lock left by a run that did not finish ({left})", file=sys.stderr)
        handle.truncate(0)
        handle.write(f"pid {os.getpid()} since {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}")
        handle.flush()
        yield path
        handle.truncate(0)
    finally:
        handle.close()


# -- the kernel and the whole-run timeout --------------------------------------------------------------------
def _kernel_manager() -> Any:
    from jupyter_client.manager import AsyncKernelManager

    return AsyncKernelManager(kernel_name=KERNEL)


@contextlib.contextmanager
def _deadline(kernel: Any, timeout_s: float | None) -> Iterator[threading.Event]:
    """Kill the kernel when the run outlives ``timeout_s``: papermill then stops like for a dead kernel."""
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        process = getattr(getattr(kernel, "provisioner", None), "process", None)
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)

    timer = threading.Timer(timeout_s, expire) if timeout_s else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        yield expired
    finally:
        if timer is not None:
            timer.cancel()


def _shutdown(kernel: Any) -> None:
    """The runner owns the kernel manager it handed papermill, so it stops the kernel itself."""
    if kernel.has_kernel:
        with contextlib.suppress(Exception):
            asyncio.run(kernel.shutdown_kernel(now=True))
