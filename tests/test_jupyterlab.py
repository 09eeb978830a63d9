"""A real JupyterLab on a loopback port: the BSNexus Lab kernel is listed, a notebook from notebooks/ opens,
and its cells execute on that kernel against the sandbox (REST API plus the kernel's websocket)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import websocket

from bsnexus_lab import kernel
from bsnexus_lab.sandbox import Sandbox
from tests.conftest import state_directory

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOK = "00_start_here.ipynb"


@pytest.fixture
def server(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[kernel.Server]:
    kernel.install(prefix=str(tmp_path / "env"))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "env/share/jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("JUPYTERLAB_SETTINGS_DIR", str(tmp_path / "settings"))
    monkeypatch.setenv("JUPYTERLAB_WORKSPACES_DIR", str(tmp_path / "workspaces"))
    running = kernel.start_lab(NOTEBOOKS, log=tmp_path / "jupyterlab.log")
    yield running
    running.stop()


def _api(server: kernel.Server, path: str, body: dict[str, Any] | None = None, method: str = "GET") -> Any:
    request = urllib.request.Request(
        f"{server.url}api/{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method="POST" if body is not None else method,
        headers={"Authorization": f"token {server.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        text = response.read()
    return json.loads(text) if text else None


def _execute(channel: websocket.WebSocket, code: str) -> tuple[str, str]:
    """Run ``code`` on the kernel; its reply status and everything it showed, as text."""
    msg_id = uuid.uuid4().hex
    channel.send(
        json.dumps(
            {
                "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test",
                           "session": uuid.uuid4().hex, "version": "5.3"},
                "parent_header": {}, "metadata": {}, "channel": "shell",
                "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                            "allow_stdin": False, "stop_on_error": True},
            }
        )
    )  # fmt: skip
    shown, status, idle = [], None, False
    while status is None or not idle:
        message = json.loads(channel.recv())
        if message.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind, content = message["msg_type"], message["content"]
        if kind == "execute_reply":
            status = content["status"]
        elif kind == "status":
            idle = content["execution_state"] == "idle"
        elif kind == "stream":
            shown.append(content["text"])
        elif kind in {"execute_result", "display_data"}:
            shown.append(content["data"].get("text/plain", ""))
        elif kind == "error":
            shown.append(f"{content['ename']}: {content['evalue']}")
    return status, "\n".join(shown)


def test_notebook_runs_on_the_bsnexus_lab_kernel(server: kernel.Server, stuck: dict[str, Any]) -> None:
    specs = _api(server, "kernelspecs")["kernelspecs"]
    assert specs[kernel.KERNEL_NAME]["spec"]["display_name"] == "BSNexus Lab"

    notebook = _api(server, f"contents/{NOTEBOOK}")
    assert notebook["type"] == "notebook"
    cells = [c["source"] for c in notebook["content"]["cells"] if c["cell_type"] == "code"]

    session = _api(
        server, "sessions", {"path": NOTEBOOK, "name": NOTEBOOK, "type": "notebook", "kernel": {"name": "bsnexus-lab"}}
    )
    assert session["kernel"]["name"] == kernel.KERNEL_NAME
    channel = websocket.create_connection(
        f"ws://127.0.0.1:{server.url.rsplit(':', 1)[1].strip('/')}/api/kernels/{session['kernel']['id']}/channels"
        f"?token={server.token}",
        timeout=120,
        suppress_origin=True,
    )
    try:
        shown = []
        for code in cells[:4]:  # parameters, the sandbox, connect, health: as a user runs them
            status, text = _execute(channel, code)
            assert status == "ok", text
            shown.append(text)
        assert "redis      running" in shown[1]  # the sandbox is the target: started if needed, its servers listed
        assert "sandbox" in shown[2] and "***" in shown[2]  # the Lab, connected to the sandbox, redacted
        assert "redis" in shown[3] and "postgresql" in shown[3] and "yes" in shown[3]
        status, text = _execute(channel, "from bsnexus_lab.kernel import start_dir; print(start_dir())")
        assert status == "ok" and text.strip() == str(Path.cwd())  # where `bsnexus-lab lab` was started
    finally:
        channel.close()
        _api(server, f"sessions/{session['id']}", method="DELETE")


def test_bsnexus_lab_lab_starts_the_sandbox_and_prints_the_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing configured: the command starts the sandbox, then JupyterLab, prints a URL that answers, and a
    SIGTERM stops JupyterLab with it."""
    state = state_directory("bsnexus-lab-lab-")
    kernel.install(prefix=str(tmp_path / "env"))  # so the command finds the kernel and installs nothing
    env = {**os.environ, "BSNEXUS_LAB_STATE_DIR": str(state), "JUPYTER_PATH": str(tmp_path / "env/share/jupyter"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces")}  # fmt: skip
    command = [sys.executable, "-m", "bsnexus_lab.cli", "lab", "--notebooks", str(NOTEBOOKS)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = []
        while not lines or not lines[-1].startswith("JupyterLab:"):
            line = process.stdout.readline()
            assert line, f"bsnexus-lab lab ended early: {''.join(lines)}"
            lines.append(line)
        assert any(line.startswith("redis") and "running" in line for line in lines)  # the sandbox, started
        assert any(line.startswith("target:") and "sandbox" in line for line in lines)
        url = lines[-1].split()[1]
        assert url.split("?")[0].endswith("/lab/tree/00_start_here.ipynb")  # the start page opens first
        with urllib.request.urlopen(url, timeout=60) as response:
            assert response.status == 200
        jupyter = [p for p in psutil.Process(process.pid).children() if "jupyterlab" in p.cmdline()]
        assert len(jupyter) == 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert not [p for p in jupyter if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    finally:
        if process.poll() is None:
            process.kill()
        Sandbox(state).down()
        shutil.rmtree(state, ignore_errors=True)
