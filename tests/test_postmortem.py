"""Postmortems from the history: timeline, findings first/last seen, detection, figures, RCA answers, no secrets."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import nbformat
import pytest

from bsnexus_lab import postmortem, rca, runner
from bsnexus_lab.cli import main
from bsnexus_lab.findings import Finding, Kind, Severity, document, not_checked
from bsnexus_lab.history import History
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


def recorded(index: History, started: datetime, found: list[Finding]) -> str:
    """A run of ``found`` as the runner leaves it (findings.json, run.json), indexed; its id."""
    run_dir = index.root / "looks" / f"{started:%Y%m%dT%H%M%SZ}-{len(list(index.root.glob('looks/*'))):06d}"
    run_dir.mkdir(parents=True)
    (run_dir / "findings.json").write_text(document.dumps(found))
    manifest = {"runbook": "looks", "target": {"name": "prod"}, "started": started.isoformat(), "duration_s": 2}
    (run_dir / "run.json").write_text(json.dumps(manifest | {"status": "findings", "exit_code": 1}))
    return index.record(run_dir)


def test_rows_show_the_worst_run_and_a_run_that_could_not_look_resolves_nothing(tmp_path: Path) -> None:
    index = History(tmp_path / "runs")
    at = datetime(2026, 12, 1, 3, tzinfo=UTC)
    lost = Finding("streams.lost_messages", Severity.CRITICAL, "351 entries trimmed", subject=("tasks:queue",))
    saturated = Finding("streams.lag_status", Severity.INFO, "tasks:queue SATURATED", kind=Kind.CAUSE, explains=(lost,))
    stuck = Finding("streams.dead_consumer", Severity.CRITICAL, "w1 holds 3 entries, idle 16 min", subject=("w1",))
    blind = not_checked(
        "streams.skipped", "streams not checked: Redis is unreachable", area="streams", reason="Redis is unreachable",
        checks=["streams.dead_consumer", "streams.lag_status"], severity=Severity.WARNING,
    )  # fmt: skip
    risk = Finding("server.eviction_policy", Severity.CRITICAL, "allkeys-lru", kind=Kind.CONFIG)
    ids = [
        recorded(index, at, [risk, saturated, stuck]),
        recorded(index, at + timedelta(minutes=5), [replace(stuck, severity=Severity.WARNING, title="NODATA w1")]),
        recorded(index, at + timedelta(minutes=10), [blind]),
        recorded(index, at + timedelta(minutes=15), [Finding("streams.dead_consumer", Severity.OK, "none found")]),
    ]
    written = postmortem.write("INC-7", since=at, until=at + timedelta(hours=1), history=index, output=tmp_path)
    text = written.markdown.read_text()
    # the row names the run at its worst severity, and a cause shows the severity of what it explains
    assert "| w1 holds 3 entries, idle 16 min (`streams.dead_consumer:w1`) | critical |" in text
    assert "| tasks:queue SATURATED (`streams.lag_status`) | critical |" in text
    assert "NODATA w1 (`" not in text
    rows = [line.split(" (`")[0] for line in text.split("## Findings")[1].split("## ")[0].splitlines()[4:] if line]
    assert rows == [  # the incident first, a cause before its symptoms; the standing risk after, though critical
        "| tasks:queue SATURATED",
        "| 351 entries trimmed",
        "| w1 holds 3 entries, idle 16 min",
        "| allkeys-lru",
    ]
    # the run that could not look is "not checked"; the first that looked again and found nothing resolves it
    assert f"not checked (run `{ids[2]}` could not look): w1 holds 3 entries, idle 16 min" in text
    assert f"resolved (run `{ids[2]}`" not in text
    assert f"resolved (run `{ids[3]}` no longer reports it): w1 holds 3 entries, idle 16 min" in text
    assert f"## Not checked\n\n- streams not checked: Redis is unreachable (runs `{ids[2]}`)" in text
    assert list(index.runs()["warning"]) == [0, 0, 1, 0]  # newest first: a run that could not look counts nothing
