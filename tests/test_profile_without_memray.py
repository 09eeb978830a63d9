"""Memory profiling of a service whose environment has no memray and no pip, as in production images.

The service is pure standard library, shaped like ``uvicorn --reload``: a parent that only waits and a worker
child (started by multiprocessing's spawn, as uvicorn's reloader does) that leaks in ``remember_task_view``.
It runs in a venv built here with ``--without-pip``; one world adds the service's own, incompatible ``rich``
through a ``.pth``, so the lab's memray cannot be lent and tracemalloc must name the leak. The injection is
real (memray's injector through the machine's debugger).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import bsnexus_lab as bl
from bsnexus_lab.areas.profile import memray_capture
from bsnexus_lab.findings import Kind, Severity, Unavailable
from bsnexus_lab.sandbox import servers
from tests.running import ptrace_held

# Captures measure the process: run alone (see `serial` in pyproject.toml).
pytestmark = [
    pytest.mark.serial,
    pytest.mark.skipif(
        not (shutil.which("lldb") or shutil.which("gdb")), reason="injecting needs lldb or gdb (apt-get install lldb)"
    ),
]

WINDOW_S = 3
SERVICE = """
import json, multiprocessing, os, sys, time, tracemalloc

VIEWS = {}


def remember_task_view(n):
    VIEWS[f"task-{n}"] = "x" * 65536  # a fresh key per request, never evicted: the leak


def serve(status):
    n = 0
    while True:
        remember_task_view(n)
        n += 1
        if n % 10 == 0:
            with open(status + ".tmp", "w") as file:
                json.dump({"tracing": tracemalloc.is_tracing(), "modules": sorted(sys.modules)}, file)
            os.replace(status + ".tmp", status)
        time.sleep(0.02)


if __name__ == "__main__":
    worker = multiprocessing.get_context("spawn").Process(target=serve, args=(sys.argv[1],))
    worker.start()
    print(worker.pid, flush=True)
    worker.join()
"""


def venv(root: Path, *, own_rich: bool) -> Path:
    """A venv with neither memray nor pip; with ``own_rich``, the service's own ``rich`` (too old for memray)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    for module in ("memray", "pip"):
        assert subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode != 0
    if own_rich:
        deps = root / "deps"
        (deps / "rich").mkdir(parents=True)
        (deps / "rich" / "__init__.py").write_text(
            '"""The service\'s own rich: an old one without what memray uses."""\n'
        )
        site = next((root / "lib").glob("python3*/site-packages"))
        (site / "service-deps.pth").write_text(f"{deps}\n")
    (root / "service.py").write_text(SERVICE)
    return python


class Service:
    """The reloader parent and its worker; ``status()`` is what the worker says about itself."""

    def __init__(self, root: Path, python: Path) -> None:
        self.status_file = root / "status.json"
        self.parent = subprocess.Popen(
            [python, root / "service.py", str(self.status_file)], stdout=subprocess.PIPE, text=True, cwd=root
        )
        assert self.parent.stdout is not None
        self.worker = int(self.parent.stdout.readline())
        deadline = time.monotonic() + 30
        while not self.status_file.exists():
            assert time.monotonic() < deadline, "the worker never reported"
            time.sleep(0.1)

    def status(self) -> dict[str, Any]:
        before = self.status_file.stat().st_mtime_ns
        deadline = time.monotonic() + 10
        while self.status_file.stat().st_mtime_ns == before:  # a report written after the capture
            assert time.monotonic() < deadline, "the worker stopped reporting"
            time.sleep(0.05)
        return json.loads(self.status_file.read_text())

    def stop(self) -> None:
        for pid in (self.worker, self.parent.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.parent.wait()


@pytest.fixture(scope="module", params=[False, True], ids=["plain-venv", "own-rich"])
def service(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("venv-without-memray")
    running = Service(root, venv(root, own_rich=request.param))
    running.own_rich = request.param  # type: ignore[attr-defined]
    yield running
    running.stop()


@pytest.fixture
def lab() -> Iterator[Any]:
    with bl.connect(redis_url=f"redis://127.0.0.1:{servers.free_port()}/0") as lab:  # nothing is contacted
        yield lab


def test_the_leaking_function_is_named_without_memray_in_the_service(lab: Any, service: Service) -> None:
    own_rich = service.own_rich  # type: ignore[attr-defined]
    assert memray_capture.memray_importable(service.worker) is False
    refusal = memray_capture.lent_refusal(service.worker)
    assert (refusal is None) is not own_rich, refusal
    capture = lab.profile.memory(service.worker, seconds=WINDOW_S)
    assert capture.route == ("tracemalloc" if own_rich else "lent memray")
    top = capture.leaks.iloc[0]
    assert (top["function"], Path(top["file"]).name) == ("remember_task_view", "service.py")
    # about 50 views of 64 KiB a second, for the window: a few MiB, in one allocation each
    assert 1.5 * 2**20 < top["bytes"] < 16 * 2**20 and top["allocations"] >= 30
    assert len(capture.timeline) >= 2 and capture.timeline["rss_mb"].min() > 1
    findings = lab.check({"profile.memory": capture.leaks})
    leak = next(f for f in findings if f.check == "profile.memory_leak")
    assert (leak.kind, leak.severity, leak.evidence["function"]) == (Kind.CAUSE, Severity.WARNING, "remember_task_view")
    status = service.status()
    assert status["tracing"] is False  # tracemalloc stopped (or never started) once the window is over
    if own_rich:  # the service's own packages were neither shadowed nor imported into it
        assert "memray" not in status["modules"] and "rich" not in status["modules"]
    else:  # what lending leaves behind: memray's modules stay loaded
        assert "memray" in status["modules"]
    assert Path(f"/proc/{service.worker}/status").read_text().count("TracerPid:\t0") == 1  # detached
    assert service.parent.poll() is None  # the reloader parent is untouched


def test_no_debugger_means_not_checked_with_its_reason_and_rss_stays(
    lab: Any, service: Service, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # the lab's machine has no gdb or lldb
    capture = lab.profile.memory(service.worker, seconds=2)
    assert isinstance(capture.leaks, Unavailable)
    assert "needs a debugger and none is installed" in capture.leaks.reason
    assert len(capture.timeline) >= 2 and capture.timeline["rss_mb"].min() > 1  # RSS over time stays
    findings = lab.check({"profile.memory": capture.leaks})
    [leak] = [f for f in findings if f.check == "profile.memory_leak"]
    assert leak.kind is Kind.NOT_CHECKED and "none found" not in leak.title
    assert "not checked: injecting into a process needs a debugger" in leak.title
    assert "lldb" in leak.remedy and "profile.memory" not in leak.remedy  # never the capture that just failed


def test_ptrace_refused_means_not_checked_never_none_found(lab: Any, service: Service) -> None:
    """Another tracer already holds the worker (PTRACE_SEIZE leaves it running): the kernel refuses the
    debugger, as Yama or a container without SYS_PTRACE would."""
    with ptrace_held(service.worker):
        capture = lab.profile.memory(service.worker, seconds=1)
    assert isinstance(capture.leaks, Unavailable)
    assert f"cannot trace pid {service.worker}" in capture.leaks.reason
    [leak] = [f for f in lab.check({"profile.memory": capture.leaks}) if f.check == "profile.memory_leak"]
    assert leak.kind is Kind.NOT_CHECKED and "SYS_PTRACE" in leak.remedy
