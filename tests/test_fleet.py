"""A fleet's shared history: runs from two processes (two workers) in one PostgreSQL history, one `runs` listing
and one `fleet` page; what a host cannot reach is left and said, never deleted or silently skipped."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from bsnexus_lab import runner
from bsnexus_lab.cli import main
from bsnexus_lab.errors import EXIT_FINDINGS
from bsnexus_lab.history import HOST, History
from bsnexus_lab.sandbox import Sandbox
from tests.conftest import HISTORY_PASSWORD
from tests.running import parameters_cell, write_runbook

REPO = Path(__file__).resolve().parent.parent
STUCK = """import bsnexus_lab as bl
from bsnexus_lab.findings import Finding, Severity

bl.emit([Finding("demo.stuck", Severity(severity), f"3 entries stuck on {target} ({severity})", subject=("w1",))])"""


@pytest.mark.usefixtures("one_source")
def test_two_workers_write_one_history_and_one_fleet_page(
    sandbox: Sandbox,
    history_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_runbook(tmp_path / "books", "stuck", [parameters_cell('target: str = ""\nseverity: str = "warning"'), STUCK])
    urls = sandbox.urls()
    Path("bsnexus-lab.toml").write_text(
        f'[profiles.eu]\nredis_url = "{urls["redis_url"]}"\n[profiles.us]\nredis_url = "{urls["redis_url"]}"\n'
    )
    env = {**os.environ, "BSNEXUS_LAB_RUNBOOKS": str(tmp_path / "books"), "BSNEXUS_LAB_HISTORY_URL": history_url}
    env["PYTHONPATH"] = str(REPO)
    workers = {
        target: subprocess.Popen(  # two workers at once, each with its own runs directory
            [
                sys.executable,
                "-m",
                "bsnexus_lab",
                "run",
                "stuck",
                "--target",
                target,
                "-p",
                f"severity={severity}",
                "--output-dir",
                str(tmp_path / target / "runs"),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for target, severity in (("eu", "warning"), ("us", "critical"))
    }
    for process in workers.values():
        out, err = process.communicate(timeout=300)
        assert process.returncode == EXIT_FINDINGS, err
        assert HISTORY_PASSWORD not in out + err and "h1st%40ry" not in out + err
    monkeypatch.setenv("BSNEXUS_LAB_HISTORY_URL", history_url)
    monkeypatch.setenv("BSNEXUS_LAB_RUNBOOKS", str(tmp_path / "books"))
    again = runner.run("stuck", target="eu", params={"severity": "critical"}, output_root=tmp_path / "eu" / "runs")
    assert again.exit_code == EXIT_FINDINGS and not (tmp_path / "eu" / "runs" / "history.sqlite").exists()

    capsys.readouterr()
    assert main(["runs", "--runs-dir", str(tmp_path / "elsewhere")]) == 0  # one listing, whichever runs dir
    listed = capsys.readouterr().out
    index = History(tmp_path / "elsewhere")
    runs = index.runs()
    assert sorted(runs["target"]) == ["eu", "eu", "us"] and set(runs["host"]) == {HOST}
    assert all(run_id in listed for run_id in runs["id"])
    assert main(["fleet", "--html", str(tmp_path / "fleet.html")]) == 0
    shown = capsys.readouterr().out
    page = (tmp_path / "fleet.html").read_text()
    for text in (shown, page):
        assert "3 entries stuck on eu (critical)" in text and "3 entries stuck on us (critical)" in text
        assert "1 changed severity" in text and "first run" in text  # eu: warning -> critical; us: its first
        assert "warning)" not in text  # only each target's latest run
    assert HISTORY_PASSWORD not in page and "lab_history:***@" in page

    # us's worker is another host: its directory is not here. Diffs say so, prune leaves its run there.
    [us] = runs[runs["target"] == "us"]["id"]
    with psycopg.connect(history_url) as db:
        db.execute("UPDATE bsnexus_lab.runs SET host = 'worker-b' WHERE id = %s", (us,))
    shutil.rmtree(tmp_path / "us")
    assert main(["runs", "diff", again.run_dir.name, us]) == 0
    assert f"not read   run {us}'s artefacts (notebook, report): its directory worker-b:" in capsys.readouterr().out
    pruned = History(tmp_path / "eu" / "runs").prune(timedelta(0))
    assert sorted(pruned.forgotten) == sorted(runs[runs["target"] == "eu"]["id"])
    assert list(pruned.left) == [us] and "on worker-b:" in pruned.left[us] and "prune there" in pruned.left[us]
    assert not again.run_dir.exists() and list(index.runs()["id"]) == [us]


def test_an_unusable_history_is_one_line_without_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = {
        "postgresql://lab:s3cr%40t@127.0.0.1:9/h": "the run history cannot be used (postgresql://lab:***@127.0.0.1:9/h)",
        "postgresql://lab:s3cr@t@127.0.0.1:9/h": "BSNEXUS_LAB_HISTORY_URL is ambiguous",
        "redis://lab:s3cr3t@127.0.0.1:9/0": "BSNEXUS_LAB_HISTORY_URL must start with one of",
    }
    for url, message in expected.items():
        monkeypatch.setenv("BSNEXUS_LAB_HISTORY_URL", url)
        assert main(["fleet"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"bsnexus-lab: {message}") and err.count("\n") == 1 and "s3cr" not in err
