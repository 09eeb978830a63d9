"""Schedules: crontab lines and systemd timers that call `bsnexus-lab run`, and their installation."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from bsnexus_lab import schedule
from bsnexus_lab.cli import main
from bsnexus_lab.errors import ConfigError


def test_cron_specs() -> None:
    assert schedule.cron_spec(timedelta(minutes=15)) == "*/15 * * * *"
    assert schedule.cron_spec(timedelta(minutes=1)) == "* * * * *"
    assert schedule.cron_spec(timedelta(hours=1)) == "0 * * * *"
    assert schedule.cron_spec(timedelta(hours=6)) == "0 */6 * * *"
    assert schedule.cron_spec(timedelta(days=1)) == "0 0 * * *"
    with pytest.raises(ConfigError, match="cron cannot repeat every 0:07:00"):
        schedule.cron_spec(timedelta(minutes=7))


def test_crontab_line_runs_the_cli_from_this_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.chdir(tmp_path)
    assert main(["schedule", "stream_backlog", "--every", "15m", "--target", "prod"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"*/15 * * * * mkdir -p {tmp_path}/runs && cd {tmp_path} && {sys.executable} -m bsnexus_lab")
    assert "run stream_backlog --target prod --fail-on new" in line
    assert line.endswith("# bsnexus-lab schedule bsnexus-lab-stream_backlog-prod")
    assert main(["schedule", "nope", "--every", "15m"]) == 2
    assert main(["schedule", "stream_backlog", "--every", "10s"]) == 2


def test_systemd_units(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.chdir(tmp_path)
    assert main(["schedule", "stream_backlog", "--every", "1h", "--systemd"]) == 0
    printed = capsys.readouterr().out
    assert "# bsnexus-lab-stream_backlog-default.timer" in printed and "OnUnitActiveSec=3600" in printed
    assert f"WorkingDirectory={tmp_path}" in printed and "Type=oneshot" in printed


def test_install_replaces_its_own_crontab_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crontab stand-in on PATH keeps the table in a file, as crontab -l / crontab - would."""
    table = tmp_path / "table"
    table.write_text("0 3 * * * backup.sh\n")
    fake = tmp_path / "bin" / "crontab"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\nif [ "$1" = "-l" ]; then cat {table}; else cat > {table}; fi\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    os.chdir(tmp_path)
    for every in ("15m", "30m"):
        assert main(["schedule", "stream_backlog", "--every", every, "--target", "prod", "--install"]) == 0
    lines = table.read_text().splitlines()
    assert lines[0] == "0 3 * * * backup.sh" and len(lines) == 2 and lines[1].startswith("*/30 ")
    result = subprocess.run(["sh", "-n", "-c", lines[1].split("  # ")[0].split(" ", 5)[5]], capture_output=True)
    assert result.returncode == 0, result.stderr  # valid shell
