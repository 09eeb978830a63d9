"""RCA notebooks: pre-filled from the latest triage, executed, and promoted into a regression runbook."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import nbformat
import pytest

from bsnexus_lab import runbooks, runner
from bsnexus_lab.cli import main
from bsnexus_lab.errors import EXIT_FINDINGS, EXIT_OK
from bsnexus_lab.sandbox import Sandbox

QUICK = {"window_s": "1", "every_s": "0.25"}


@pytest.mark.usefixtures("one_source")
def test_rca_from_triage_promoted_fails_on_the_fault_and_passes_once_fixed(
    sandbox: Sandbox, stuck: dict[str, Any], tmp_path: Path
) -> None:
    os.chdir(tmp_path)
    runner.run("triage", target="sandbox", params=QUICK)
    assert main(["rca", "new", "worker-died-mid-task"]) == 0
    [notebook] = (tmp_path / "notebooks" / "rca").glob("*-worker-died-mid-task.ipynb")
    cells = nbformat.read(notebook, as_version=4).cells
    evidence = next(c.source for c in cells if c.source.startswith("From triage run"))
    assert f"streams.dead_consumer:tasks:queue/workers/{stuck['dead_consumer']}" in evidence
    regression = next(c for c in cells if "regression-check" in c.metadata.get("tags", []))
    assert "CHECKS: list[str] = ['streams.dead_consumer']" in regression.source

    executed = runner.run(str(notebook), target="sandbox")  # the RCA notebook itself runs
    assert executed.exit_code == EXIT_FINDINGS, executed.error

    assert main(["rca", "promote", str(notebook)]) == 0
    promoted = tmp_path / "runbooks" / "regression_worker_died_mid_task.ipynb"
    book = nbformat.read(promoted, as_version=4)
    assert "parameters" in book.cells[1].metadata["tags"] and all(
        not c.get("outputs") for c in book.cells if c.cell_type == "code"
    )
    assert "regression_worker_died_mid_task" in runbooks.available()
    failing = runner.run("regression_worker_died_mid_task", target="sandbox")
    assert failing.exit_code == EXIT_FINDINGS and {f.check for f in failing.findings} == {"streams.dead_consumer"}
    sandbox.load("healthy")
    assert runner.run("regression_worker_died_mid_task", target="sandbox").exit_code == EXIT_OK
    assert main(["rca", "promote", str(notebook)]) == 2  # never overwrites
    assert main(["rca", "new", "Bad Name"]) == 2
