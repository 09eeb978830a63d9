"""Every notebook in notebooks/ runs top to bottom on the BSNexus Lab kernel against the sandbox.

A notebook names the scenario it wants loaded in its metadata (``"bsnexus_lab": {"scenario": "..."}``);
``stuck-consumer`` (a busy world with one dead worker) otherwise; ``"service": true`` runs the sandbox's service
for it (started first, so the scenario's load reaches it before the notebook looks; stopped after). New notebooks
are picked up by themselves. They test the notebooks, not the server build: one server source is enough.
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
    path: Path,
    one_source: None,
    sandbox: Sandbox,
    lab_kernel: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JUPYTER_PATH", str(lab_kernel))
    wants = json.loads(path.read_text())["metadata"].get("bsnexus_lab", {})
    if wants.get("service"):
        sandbox.start_service()
    try:
        facts = sandbox.load(wants.get("scenario", DEFAULT_SCENARIO))
        out = tmp_path / path.name
        papermill.execute_notebook(
            str(path), str(out), kernel_name=kernel.KERNEL_NAME, progress_bar=False, cwd=str(tmp_path)
        )
    finally:
        if wants.get("service"):
            sandbox.load("healthy")  # ends the scenario's load on the service
            sandbox.stop_service()
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


def _findings(outputs: list[dict]) -> list[dict]:
    """The findings the notebook emitted last (its verdict), causes first."""
    return [o["data"][MIME_TYPE]["findings"] for o in outputs if MIME_TYPE in o.get("data", {})][-1]


def _explore_db(outputs: list[dict], facts: dict) -> None:
    text = json.dumps(outputs)
    assert "Seq Scan on task_history" in text  # the plan of BSNexus's task-history read
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3  # connections, statements, tables
    [scan] = [f for f in _findings(outputs) if f["check"] == "db.seq_scans"]
    assert scan["evidence"]["table"] == facts["table"] and scan["evidence"]["seq_scan"] >= facts["calls"]


def _explore_keys(outputs: list[dict], facts: dict) -> None:
    missing = {f["evidence"]["prefix"]: f for f in _findings(outputs) if f["check"] == "keys.missing_ttl"}
    cache = missing[facts["prefix"]]["evidence"]
    assert (cache["keys"], cache["without_ttl"]) == (facts["keys"], facts["without_ttl"])
    assert missing["worker:{id}"]["evidence"]["examples"] == [facts["registry_key"]]
    assert "server.eviction_risk" in {f["check"] for f in _findings(outputs)}  # BSNexus's allkeys-lru


def _explore_profile(outputs: list[dict], facts: dict) -> None:
    assert any("image/svg+xml" in o.get("data", {}) for o in outputs)  # the flame graph, inline
    stall = _findings(outputs)[0]
    assert stall["check"] == "profile.loop_stall" and stall["evidence"]["function"] == facts["function"]


def _explore_logs(outputs: list[dict], facts: dict) -> None:
    assert "BSNexus backend 0.1.0 started" in json.dumps(outputs)  # read back from the service's bsnexus.log
    found = _findings(outputs)
    assert found[0]["check"] == "streams.stuck_on_live_consumer" and found[0]["evidence"]["id"] == facts["entry"]
    assert {"logs.errors", "logs.result_exception"} <= {f["check"] for f in found}


EXPECTED = {
    "00_start_here": _start_here,
    "explore_streams": _explore_streams,
    "explore_db": _explore_db,
    "explore_keys": _explore_keys,
    "explore_profile": _explore_profile,
    "explore_logs": _explore_logs,
}
