"""Starting and stopping the sandbox's service process (called by the sandbox's life cycle)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bsnexus_lab.errors import SandboxError
from bsnexus_lab.sandbox import servers

MARKER = "bsnexus_lab.sandbox.service"
LOG_NAMES = ("bsnexus.log", "orchestrator.log")


def start(root: Path, redis_url: str, database_url: str) -> dict[str, Any]:
    """Run uvicorn on a free loopback port with BSNexus's environment; return pid, port, url and log files."""
    logs = root / "service"
    logs.mkdir(exist_ok=True)
    port = servers.free_port()
    env = os.environ | {"REDIS_URL": redis_url, "DATABASE_URL": database_url, "LOG_DIR": str(logs)}
    with (logs / "uvicorn.log").open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", MARKER, str(root), str(port)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + servers.START_TIMEOUT_S
    while not servers._port_open(port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            tail = (logs / "uvicorn.log").read_text(errors="replace").splitlines()[-2:]
            raise SandboxError("the sandbox service did not start", hint=" | ".join(tail) or f"see {logs}")
        time.sleep(0.05)
    return {
        "pid": process.pid,
        "port": port,
        "url": f"http://127.0.0.1:{port}",
        "log_files": [str(logs / name) for name in LOG_NAMES],
    }


def alive(root: Path, pid: int | None) -> bool:
    return servers.pid_alive(pid, f"{MARKER}\0{root}")


def stop(root: Path, pid: int | None) -> None:
    servers.terminate(pid, f"{MARKER}\0{root}")


def consumers(url: str, *, running: bool) -> None:
    """Pause or resume the service's stream consumers (the orchestrator loops): `sandbox traffic stop|start`."""
    httpx.post(f"{url}/lab/consumers", json={"running": running}, timeout=10).raise_for_status()
