"""The scheduler contract: exit statuses and findings never lie (tool failures, interruptions, lost servers)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from bsnexus_lab import RunbookError, runbooks, runner
from bsnexus_lab.cli import main
from bsnexus_lab.errors import EXIT_FAILED, EXIT_FINDINGS, exit_interrupted
from bsnexus_lab.sandbox import Sandbox, servers
from tests.running import SAMPLING, lost, parameters_cell, run_and_kill, running_cell, wait_for, write_runbook


@pytest.fixture
def books(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BSNEXUS_LAB_RUNBOOKS", str(tmp_path / "books"))
    return tmp_path / "books"


# -- failures of the tool itself: exit 2, one line, no traceback -------------------------------------------
def test_unwritable_output_dir_exits_2_with_one_line(
    healthy: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code = main(["run", "stream_backlog", "--target", "sandbox", "--output-dir", str(blocker / "runs")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("bsnexus-lab: cannot write the run directory under") and "--output-dir" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [("this is not json", "is not a readable notebook"), (None, "has no cell tagged 'parameters'")],
)
def test_broken_runbooks_exit_2_before_a_kernel_starts(
    sandbox: Sandbox, books: Path, content: str | None, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if content is None:
        write_runbook(books, "broken", [nbformat.v4.new_code_cell("print('no parameters cell')")])
    else:
        books.mkdir()
        (books / "broken.ipynb").write_text(content)
    code = main(["run", "broken", "--target", "sandbox", "--output-dir", str(books.parent / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (books.parent / "runs").exists()


def test_a_run_that_emits_nothing_failed_and_says_so(sandbox: Sandbox, books: Path, tmp_path: Path) -> None:
    write_runbook(books, "silent", [parameters_cell(), nbformat.v4.new_code_cell("print('forgot to emit')")])
    result = runner.run("silent", target="sandbox", output_root=tmp_path / "runs")
    assert result.exit_code == EXIT_FAILED
    assert result.error == "the runbook emitted no findings (no bl.emit(...) cell ran)"
    report = result.report.read_text()
    assert "NO FINDINGS" not in report and "Verdict: <b>RUN FAILED</b>" in report
    manifest = json.loads((result.run_dir / "run.json").read_text())
    assert (manifest["status"], manifest["exit_code"]) == ("failed", 2)


# -- parameters, checked before any kernel starts ---------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"duration_s": "nan"}, "duration_s='nan' is out of range: it must be a finite number"),
        ({"duration_s": "inf"}, "it must be a finite number"),
        ({"every_s": "0"}, "every_s='0' is out of range: seconds must be more than 0 and at most 86400"),
        ({"idle_threshold_s": "-5"}, "seconds must be more than 0"),
        ({"duration_s": "1e9"}, "at most 86400 \\(a day\\)"),
        ({"streams": '["tasks:queue", '}, "parameter streams expects list\\[str\\]"),
    ],
)
def test_absurd_parameters_are_refused(params: dict[str, str], message: str, tmp_path: Path) -> None:
    with pytest.raises(RunbookError, match=message):
        runner.run("stream_backlog", params=params, output_root=tmp_path)
    assert not any(tmp_path.iterdir())


def test_a_list_parameter_as_json_or_commas() -> None:
    declared = runbooks.parameters(runbooks.find("stream_backlog"))
    as_json = runbooks.coerce({"streams": '["tasks:queue", "tasks:qa"]'}, declared)
    as_commas = runbooks.coerce({"streams": "tasks:queue, tasks:qa"}, declared)
    assert as_json == as_commas == {"streams": ["tasks:queue", "tasks:qa"]}


# -- signals: a scheduler's timeout ----------------------------------------------------------------------
def children(pid: int) -> list[int]:
    import psutil

    return [c.pid for c in psutil.Process(pid).children(recursive=True)]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_kernel_and_keeps_the_partial_run(
    healthy: dict[str, Any], tmp_path: Path, signum: int
) -> None:
    command = [sys.executable, "-m", "bsnexus_lab.cli", "run", "stream_backlog", "--target", "sandbox"]
    command += ["-p", "duration_s=600", "--output-dir", str(tmp_path / "runs")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        wait_for(lambda: running_cell(tmp_path / "runs", SAMPLING), "the sampling cell")
        kernels = children(process.pid)
        assert kernels
        process.send_signal(signum)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == exit_interrupted(signum) == 128 + signum, err
    (run_dir,) = (tmp_path / "runs" / "stream_backlog").iterdir()
    assert f"run directory: {run_dir} (interrupted)" in out
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["error"] == f"interrupted by {signal.Signals(signum).name}"
    partial = nbformat.read(run_dir / "notebook.ipynb", as_version=4)
    assert any(SAMPLING in cell.source for cell in partial.cells)
    assert any(cell.get("outputs") for cell in partial.cells)  # what ran before the signal is kept
    assert not any(servers.pid_alive(pid) for pid in kernels), "the kernel outlived the run"
    assert "Traceback" not in err


# -- a dependency lost mid-run -------------------------------------------------------------------------------
def test_redis_killed_mid_run_is_a_finding_and_fails_the_run(
    healthy: dict[str, Any], restore: Sandbox, tmp_path: Path
) -> None:
    redis_pid = restore.status()[0].pid
    assert redis_pid
    result = run_and_kill(lambda: os.kill(redis_pid, signal.SIGKILL), tmp_path, {"duration_s": "5", "every_s": "0.5"})
    assert result.exit_code == EXIT_FINDINGS, result.error
    (finding,) = lost(result)
    assert finding["severity"] == "critical" and finding["title"].startswith("Redis was lost during the run")
    evidence = finding["evidence"]
    assert evidence["failed_samples"] >= 1 and evidence["samples"] > evidence["failed_samples"]
    assert evidence["recovered"] is False and "Redis" in evidence["error"]
    assert finding["title"] in result.report.read_text()


def test_postgresql_stopped_mid_run_is_a_finding_and_fails_the_run(
    healthy: dict[str, Any], restore: Sandbox, tmp_path: Path
) -> None:
    postgres_pid = restore.status()[1].pid
    assert postgres_pid

    def stop() -> None:
        os.kill(postgres_pid, signal.SIGINT)  # PostgreSQL's fast shutdown: sessions end, the server stops
        wait_for(lambda: not servers.pid_alive(postgres_pid), "PostgreSQL to stop", timeout=60)

    result = run_and_kill(stop, tmp_path, {"duration_s": "4", "every_s": "0.5"})
    assert result.exit_code == EXIT_FINDINGS, result.error
    (finding,) = lost(result)
    assert finding["severity"] == "critical"
    assert finding["title"] == "PostgreSQL was lost during the run: it answered when the run began and not at the end"
    assert finding["evidence"]["recovered"] is False and "PostgreSQL" in finding["evidence"]["error"]
