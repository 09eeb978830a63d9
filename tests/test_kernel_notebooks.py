"""Every notebook in notebooks/ runs top to bottom on the BSNexus Lab kernel against the sandbox.

A notebook names the scenario it wants loaded in its metadata (``"bsnexus_lab": {"scenario": "..."}``);
``stuck-consumer`` (a busy world with one dead worker) otherwise. New notebooks are picked up by themselves.
"""

from __future__ import annotations

import json
from pathlib import Path

import papermill
import pytest

from bsnexus_lab import kernel
from bsnexus_lab.findings import MIME_TYPE
from bsnexus_lab.sandbox import Sandbox

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(ROOT.glob("notebooks/*.ipynb"))
DEFAULT_SCENARIO = "stuck-consumer"


@pytest.fixture(scope="module")
def lab_kernel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prefix = tmp_path_factory.mktemp("kernel-env")
    kernel.install(prefix=str(prefix))
    return prefix / "share" / "jupyter"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_clean_and_on_the_lab_kernel(path: Path) -> None:
    notebook = json.loads(path.read_text())
    assert notebook["metadata"]["kernelspec"]["name"] == kernel.KERNEL_NAME
    for cell in notebook["cells"]:
        assert not cell.get("outputs") and not cell.get("execution_count"), path


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_on_the_sandbox(
    path: Path, sandbox: Sandbox, lab_kernel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_PATH", str(lab_kernel))
    scenario = json.loads(path.read_text())["metadata"].get("bsnexus_lab", {}).get("scenario", DEFAULT_SCENARIO)
    facts = sandbox.load(scenario)
    out = tmp_path / path.name
    papermill.execute_notebook(
        str(path), str(out), kernel_name=kernel.KERNEL_NAME, progress_bar=False, cwd=str(tmp_path)
    )
    executed = json.loads(out.read_text())
    outputs = [o for cell in executed["cells"] for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    if path.stem in EXPECTED:
        EXPECTED[path.stem](outputs, facts)


def _start_here(outputs: list[dict], facts: dict) -> None:
    text = json.dumps(outputs)
    assert "BSNexus Lab" in text and "read-only" in text  # the Lab, connected
    assert "postgresql" in text and "%lab streams" in text  # health, then where to go next
    findings = next(o["data"][MIME_TYPE]["findings"] for o in outputs if MIME_TYPE in o.get("data", {}))
    assert findings[0]["check"] == "streams.dead_consumer" and facts["dead_consumer"] in findings[0]["title"]


def _explore_streams(outputs: list[dict], facts: dict) -> None:
    text = json.dumps(outputs)
    assert "worker-gone" in text and facts["dead_consumer"] in text  # the dead worker, by name and id
    assert "15 min" in text  # how long its entries have waited, in words
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 1
    assert "would claim" in text  # the remediation plan for the dead worker's entries: a dry run, not an action


EXPECTED = {"00_start_here": _start_here, "explore_streams": _explore_streams}
