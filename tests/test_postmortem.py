"""Postmortems from the history: timeline, findings first/last seen, detection, figures, RCA answers, no secrets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import nbformat
import pytest

from bsnexus_lab import rca, runner
from bsnexus_lab.cli import main
from bsnexus_lab.sandbox import Sandbox

QUICK = {"duration_s": "1", "every_s": "0.25", "idle_threshold_s": "60"}


@pytest.mark.usefixtures("one_source")
def test_postmortem_of_a_stuck_consumer(
    sandbox: Sandbox, stuck: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    os.chdir(project)
    detected = runner.run("stream_backlog", target="sandbox", params=QUICK)
    sandbox.load("healthy")
    fixed = runner.run("stream_backlog", target="sandbox", params=QUICK)

    notebook = rca.new("worker-died-mid-task")  # no triage run yet: the evidence says how to get one
    assert notebook == project / "notebooks" / "rca" / f"{notebook.stem[:10]}-worker-died-mid-task.ipynb"
    filled = nbformat.read(notebook, as_version=4)
    assert any("No triage run in the history yet" in c.source for c in filled.cells)
    for cell in filled.cells:
        if cell.source.startswith("## Root cause"):
            cell.source += "\nWorker host w-17 was decommissioned while it held three tasks; nothing claims them."
        if cell.source.startswith("## Fix"):
            cell.source += "\nClaimed the entries to a live worker at 10:40 UTC."
    nbformat.write(filled, notebook)

    (project / "sub").mkdir()
    os.chdir(project / "sub")  # the history is found from below the project too
    assert main(["postmortem", "INC-42", "--since", "1h", "--rca", str(notebook)]) == 0
    folder = project / "sub" / "postmortems" / "INC-42"
    text = (folder / "postmortem.md").read_text()
    key = f"streams.dead_consumer:tasks:queue/workers/{stuck['dead_consumer']}"
    assert "| critical |" in text and key in text
    assert f"run `{detected.run_dir.name}` (stream_backlog): findings" in text
    assert f"run `{fixed.run_dir.name}` (stream_backlog): ok" in text
    assert f"resolved (run `{fixed.run_dir.name}` no longer reports it)" in text
    assert "First detected at" in text and f"(run `{detected.run_dir.name}`)" in text
    assert "Worker host w-17 was decommissioned" in text  # root cause from the RCA
    assert "Claimed the entries to a live worker" in text  # resolution from the RCA's Fix
    assert "**To fill in (people):** what set it off" in text  # the trigger only people know
    assert (folder / "figure-1.png").read_bytes()[:4] == b"\x89PNG" and "![Findings per run](figure-1.png)" in text
    assert "![stream_backlog, run" in text  # the evidence run's own plots
    page = (folder / "postmortem.html").read_text()
    assert "data:image/png;base64," in page and "figure-1.png" not in page  # self-contained
    assert f"../../../runs/stream_backlog/{detected.run_dir.name}/report.html" in text
    secrets = [urlsplit(u).password for u in sandbox.urls().values() if urlsplit(u).password]
    for path in [*folder.iterdir(), *(project / "runs").rglob("*")]:
        if path.is_file():
            assert not any(s.encode() in path.read_bytes() for s in secrets), path

    assert main(["postmortem", "INC-43", "--since", "2020-01-01T00:00", "--until", "2020-01-02T00:00"]) == 2
    assert main(["postmortem", "../escape", "--since", "1h"]) == 2
