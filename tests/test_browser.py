"""A run's HTML report opened in a real browser (headless Chromium over the DevTools protocol): the findings
table and the figures render, nothing runs off the side of a laptop-sized window, and a screenshot of it is
kept in the run's folder."""

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

from bsnexus_lab import runner
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
