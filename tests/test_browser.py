"""In a real browser (headless Chromium over the DevTools protocol): a run's HTML report, whose findings table and
figures render, nothing running off the side of a laptop-sized window, with a screenshot kept in the run's
folder; and JupyterLab as `bsnexus-lab lab` opens it, on 00_start_here with the BSNexus Lab kernel, where running
the notebook renders its first finding."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket

from bsnexus_lab import kernel, runner
from bsnexus_lab.sandbox import Sandbox

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--remote-debugging-port=0", "--window-size=1280,800", "--hide-scrollbars",
]  # fmt: skip
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (`make test` installs it)")

MEASURE = """(() => {
  const table = document.querySelector('#bsnexus-lab-summary table.bsnexus-findings');
  const width = document.documentElement.clientWidth;
  const box = table ? table.getBoundingClientRect() : null;
  return JSON.stringify({
    width,
    findings_rows: table ? table.querySelectorAll('tbody tr').length : -1,
    findings_right: box ? box.right : -1,
    findings_overflow: table ? table.scrollWidth - table.clientWidth : -1,
    page_overflow: document.documentElement.scrollWidth - width,
    first_row: table ? table.querySelector('tbody tr').innerText : '',
    toc: document.querySelectorAll('#bsnexus-lab-toc a').length,
    images: [...document.images].map(i => ({complete: i.complete, w: i.naturalWidth, h: i.naturalHeight,
                                             shown: i.getBoundingClientRect().width})),
  });
})()"""


class DevTools:
    """The few DevTools-protocol calls the test needs, on one page of a headless Chromium."""

    def __init__(self, url: str) -> None:
        self._ws = websocket.create_connection(url, timeout=60, suppress_origin=True)
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        self._ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") == call_id:
                assert "error" not in message, message
                return message["result"]

    def evaluate(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def close(self) -> None:
        self._ws.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[DevTools]:
    profile = tmp_path / "chromium-profile"  # a fresh user-data-dir each time
    assert CHROMIUM is not None
    process = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        for _ in range(600):
            if port_file.exists() and port_file.read_text().strip():
                break
            assert process.poll() is None, "chromium exited"
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as response:
            page = next(t for t in json.load(response) if t["type"] == "page")
        tools = DevTools(page["webSocketDebuggerUrl"])
        yield tools
        tools.close()
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_report_renders_in_chromium(sandbox: Sandbox, browser: DevTools, tmp_path: Path) -> None:
    facts = sandbox.load("stuck-consumer")
    result = runner.run(
        "stream_backlog",
        target="sandbox",
        params={"duration_s": 1.0, "every_s": 0.25},
        output_root=tmp_path / "runs",
    )
    assert result.report.exists(), result.error

    browser.call("Page.enable")
    browser.call("Page.navigate", url=result.report.resolve().as_uri())
    for _ in range(300):
        if browser.evaluate("document.readyState") == "complete" and browser.evaluate(
            "[...document.images].every(i => i.complete)"
        ):
            break
        time.sleep(0.1)
    seen = json.loads(browser.evaluate(MEASURE))

    assert seen["findings_rows"] >= 1
    assert "CRITICAL" in seen["first_row"] and facts["dead_consumer"] in seen["first_row"]  # findings first
    assert seen["findings_overflow"] <= 0 and seen["findings_right"] <= seen["width"]  # no sideways scrolling
    assert seen["page_overflow"] <= 0
    assert seen["toc"] >= 4  # the runbook's sections are linked at the top
    assert len(seen["images"]) >= 3  # the backlog, pending and over-time figures
    for image in seen["images"]:
        assert image["complete"] and image["w"] > 0 and image["h"] > 0
        assert 0 < image["shown"] <= seen["width"]

    shot = browser.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    screenshot = result.run_dir / "report.png"
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 10_000
    pdf = browser.call("Page.printToPDF", printBackground=True)  # and it prints
    assert base64.b64decode(pdf["data"])[:5] == b"%PDF-"


OPENED = """(() => {
  const app = window.jupyterapp;
  const widget = app ? [...app.shell.widgets('main')].find(w => w.context) : null;  // the open document
  const session = widget && widget.sessionContext;
  return JSON.stringify({
    path: widget && widget.context ? widget.context.path : null,
    kernel: session && session.session && session.session.kernel ? session.session.kernel.name : null,
    kernel_shown: session ? session.kernelDisplayName : null,
    ready: Boolean(session && session.session && session.session.kernel
                   && session.session.kernel.connectionStatus === 'connected'),
  });
})()"""
FIRST_FINDING = """(() => {
  const row = document.querySelector('.jp-OutputArea-output table.bsnexus-findings tbody tr');
  if (!row) return '';
  row.scrollIntoView();  // the notebook may leave cells out of view unrendered: bring it in, then read it
  return row.innerText;
})()"""


@pytest.fixture
def jupyterlab(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[kernel.Server]:
    """JupyterLab as `bsnexus-lab lab` starts it, on a copy of notebooks/ (running cells in the browser changes the
    notebook, which must not touch the committed one). Only for the test, the app is exposed to the page's scripts
    (``window.jupyterapp``), so the test can run all cells as the Run menu does."""
    notebooks = tmp_path / "notebooks"
    shutil.copytree(Path(__file__).resolve().parent.parent / "notebooks", notebooks)
    config = tmp_path / "config"
    config.mkdir()
    (config / "jupyter_lab_config.json").write_text(json.dumps({"LabApp": {"expose_app_in_browser": True}}))
    kernel.install(prefix=str(tmp_path / "env"))
    for name, value in {"JUPYTER_PATH": "env/share/jupyter", "JUPYTER_CONFIG_DIR": "config",
                        "JUPYTER_RUNTIME_DIR": "runtime", "JUPYTERLAB_SETTINGS_DIR": "settings",
                        "JUPYTERLAB_WORKSPACES_DIR": "workspaces"}.items():  # fmt: skip
        monkeypatch.setenv(name, str(tmp_path / value))
    server = kernel.start_lab(notebooks, log=tmp_path / "jupyterlab.log")
    yield server
    server.stop()


def _until(browser: DevTools, expression: str, done: Any, seconds: float) -> Any:
    """Evaluate ``expression`` until ``done(value)``, for at most ``seconds``; the last value."""
    deadline = time.monotonic() + seconds
    while not done(value := browser.evaluate(expression)) and time.monotonic() < deadline:
        time.sleep(0.25)
    return value


def test_jupyterlab_opens_the_start_page_and_renders_its_first_finding(
    one_source: None, stuck: dict[str, Any], jupyterlab: kernel.Server, browser: DevTools, tmp_path: Path
) -> None:
    browser.call("Page.enable")
    browser.call("Page.navigate", url=jupyterlab.lab_url)
    opened = json.loads(_until(browser, OPENED, lambda v: v and json.loads(v)["ready"], 120))
    assert opened == {"path": "00_start_here.ipynb", "kernel": kernel.KERNEL_NAME,
                      "kernel_shown": kernel.DISPLAY_NAME, "ready": True}  # fmt: skip

    run_all = """(() => {
      const app = window.jupyterapp, widget = [...app.shell.widgets('main')].find(w => w.context);
      app.shell.activateById(widget.id);  // the notebook commands act on the active notebook
      app.commands.execute('notebook:run-all-cells');
      return widget.context.path;
    })()"""
    assert browser.evaluate(run_all) == "00_start_here.ipynb"
    first = _until(browser, FIRST_FINDING, bool, 180)
    assert first.startswith("CRITICAL") and stuck["dead_consumer"] in first  # the dead worker, first
    assert "streams.dead_consumer" in first

    shot = browser.call("Page.captureScreenshot", format="png")
    (tmp_path / "jupyterlab.png").write_bytes(base64.b64decode(shot["data"]))
