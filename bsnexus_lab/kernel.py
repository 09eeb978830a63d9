"""The lab inside Jupyter: its kernel spec, a JupyterLab server on ``notebooks/``, and where the user started.

The "BSNexus Lab" kernel is this environment's Python with the ``bsnexus_lab`` extension loaded at start
(``%lab`` magics, rich displays), so a notebook needs no set-up cell.

A kernel runs in its notebook's directory, not where the user started Jupyter, yet a ``.env`` or
``bsnexus-lab.toml`` there should count as it does for the CLI. :func:`start_dir` finds that directory:
``BSNEXUS_LAB_START_DIR`` (set by ``bsnexus-lab lab``), else, for a kernel a Jupyter server started (it sets
``JPY_SESSION_NAME``), the server's own working directory, which is where ``jupyter lab`` was typed; otherwise
(``nbconvert --execute``) the shell's ``$PWD``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bsnexus_lab.errors import ConfigError

KERNEL_NAME = "bsnexus-lab"
DISPLAY_NAME = "BSNexus Lab"
START_DIR = "BSNEXUS_LAB_START_DIR"
START_NOTEBOOK = "00_start_here.ipynb"  # what JupyterLab opens first, when the notebooks folder has it
READY_TIMEOUT_S = 90  # JupyterLab's first start builds its settings; a shared CI machine is slow


def install(*, user: bool = False, prefix: str | None = None) -> Path:
    """Register the "BSNexus Lab" kernel for this environment (``sys.prefix`` unless ``user``/``prefix``)."""
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager

    spec = write_kernel_spec(overrides={"display_name": DISPLAY_NAME}, extra_arguments=["--ext=bsnexus_lab"])
    try:
        where = KernelSpecManager().install_kernel_spec(
            spec, KERNEL_NAME, user=user, prefix=None if user else (prefix or sys.prefix)
        )
    finally:
        shutil.rmtree(spec, ignore_errors=True)
    return Path(where)


def installed() -> Path | None:
    """Where Jupyter finds the kernel, or None."""
    from jupyter_client.kernelspec import KernelSpecManager

    found = KernelSpecManager().find_kernel_specs().get(KERNEL_NAME)
    return Path(found) if found else None


def start_dir() -> Path | None:
    """The directory the user started Jupyter in, when this process is one of its kernels."""
    if explicit := os.environ.get(START_DIR):
        return Path(explicit)
    if "JPY_SESSION_NAME" not in os.environ:
        # `jupyter nbconvert --execute` runs its kernel in the notebook's folder without a Jupyter server; the
        # shell's PWD, which child processes inherit unchanged, still names where the user typed the command.
        started = os.environ.get("PWD")
        return Path(started) if started and Path(started).is_dir() else None
    import psutil

    try:
        return Path(psutil.Process(os.getppid()).cwd())
    except (psutil.Error, OSError):
        return None


def search_dirs() -> list[Path]:
    """Where ``.env`` and ``bsnexus-lab.toml`` are looked for, first wins: here, then where Jupyter started."""
    here = Path.cwd()
    started = start_dir()
    return [here] if started is None or started.resolve() == here.resolve() else [here, started]


@dataclass
class Server:
    """A JupyterLab server this process started."""

    process: subprocess.Popen[bytes]
    url: str  # http://127.0.0.1:PORT/
    token: str
    opens: str = ""  # the notebook the lab URL opens, relative to the notebooks folder

    @property
    def lab_url(self) -> str:
        """JupyterLab, with ``opens`` open in it (on the kernel its metadata names)."""
        return f"{self.url}lab{'/tree/' + self.opens if self.opens else ''}?token={self.token}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_lab(
    notebooks: Path, *, port: int | None = None, env: dict[str, str] | None = None, log: Path | None = None
) -> Server:
    """Start JupyterLab on ``notebooks`` (loopback only) and wait until it answers; its URL opens the start page.

    The kernel learns where the user started from ``BSNEXUS_LAB_START_DIR`` (this process's directory).
    """
    if not notebooks.is_dir():
        raise ConfigError(f"no notebooks directory at {notebooks}")
    port = port or free_port()
    token = secrets.token_hex(24)
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", f"--ServerApp.root_dir={notebooks}", f"--IdentityProvider.token={token}",
    ]  # fmt: skip
    if os.geteuid() == 0:
        command.append("--allow-root")  # containers and CI run as root; it still listens on loopback only
    environment = {**os.environ, START_DIR: str(Path.cwd()), **(env or {})}
    output = log.open("ab") if log else subprocess.DEVNULL
    process = subprocess.Popen(command, env=environment, stdout=output, stderr=output, cwd=Path.cwd())
    opens = START_NOTEBOOK if (notebooks / START_NOTEBOOK).is_file() else ""
    server = Server(process, f"http://127.0.0.1:{port}/", token, opens)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ConfigError(f"JupyterLab exited with status {process.returncode}", hint=f"see {log or 'its output'}")
        try:
            with urllib.request.urlopen(f"{server.url}api/status?token={token}", timeout=2):
                return server
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    server.stop()
    raise ConfigError(f"JupyterLab did not answer on port {port} within {READY_TIMEOUT_S} s")


def notebooks_dir() -> Path:
    """``./notebooks`` when it exists, else the one shipped beside the package."""
    here = Path.cwd() / "notebooks"
    return here if here.is_dir() else Path(__file__).resolve().parent.parent / "notebooks"
