"""Scheduled runbooks: a crontab line, a systemd timer, or an Airflow DAG file for a fleet of targets.

Each schedule calls ``bsnexus-lab run`` itself (through the Python that has the lab installed), so a
scheduled run keeps the CLI's exit statuses (0 clean, 1 findings, 2 failed, 3 already running) for alerting
and lands in the run history like any other run.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bsnexus_lab.errors import ConfigError
from bsnexus_lab.text import parse_duration

MARKER = "# bsnexus-lab schedule"


@dataclass(frozen=True)
class Job:
    """One runbook on one target, every ``every``, from ``directory`` (where runs/ is written)."""

    runbook: str
    every: timedelta
    target: str | None
    directory: Path
    python: str = sys.executable

    @property
    def name(self) -> str:
        return "-".join(_safe(p) for p in ("bsnexus-lab", self.runbook, self.target or "default"))

    def command(self) -> list[str]:
        target = ["--target", self.target] if self.target else []
        return [self.python, "-m", "bsnexus_lab", "run", self.runbook, *target, "--fail-on", "new"]

    def shell(self, *, log: bool = True) -> str:
        """The command line from the job's directory; with ``log``, output appended to ``runs/<name>.log``."""
        line = f"cd {shlex.quote(str(self.directory))} && {shlex.join(self.command())}"
        if not log:
            return line
        runs = self.directory / "runs"
        return f"mkdir -p {shlex.quote(str(runs))} && {line} >> {shlex.quote(str(runs / f'{self.name}.log'))} 2>&1"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def cron_spec(every: timedelta) -> str:
    """``*/15 * * * *``: cron can only repeat evenly within an hour or a day, so other periods are refused."""
    minutes = every.total_seconds() / 60
    if 1 <= minutes < 60 and minutes.is_integer() and 60 % minutes == 0:
        return "* * * * *" if minutes == 1 else f"*/{int(minutes)} * * * *"
    hours = minutes / 60
    if hours.is_integer() and hours < 24 and 24 % hours == 0:
        return f"0 */{int(hours)} * * *" if hours > 1 else "0 * * * *"
    if every == timedelta(days=1):
        return "0 0 * * *"
    raise ConfigError(
        f"cron cannot repeat every {every}", hint="use minutes dividing 60 (15m), hours dividing 24 (6h), or 1d"
    )


def crontab_line(job: Job) -> str:
    return f"{cron_spec(job.every)} {job.shell()}  {MARKER} {job.name}"


def systemd_units(job: Job) -> dict[str, str]:
    """``<name>.service`` (one run) and ``<name>.timer`` (every ``every``; missed runs catch up once)."""
    seconds = int(job.every.total_seconds())
    service = (
        "[Unit]\n"
        f"Description=BSNexus Lab runbook {job.runbook} on {job.target or 'the default target'}\n\n"
        "[Service]\nType=oneshot\n"
        f"WorkingDirectory={job.directory}\n"
        f"ExecStart={shlex.join(job.command())}\n"
        "# exit 1: findings, 2: the run failed, 3: already running (see README, exit statuses)\n"
        "SuccessExitStatus=0\n"
    )
    timer = (
        "[Unit]\n"
        f"Description=Run {job.name} every {job.every}\n\n"
        f"[Timer]\nOnBootSec=120\nOnUnitActiveSec={seconds}\nPersistent=true\n\n"
        "[Install]\nWantedBy=timers.target\n"
    )
    return {f"{job.name}.service": service, f"{job.name}.timer": timer}


def install_crontab(job: Job) -> str:
    """Add (or replace) the job's line in the user's crontab; returns the line."""
    current = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=False)
    kept = [line for line in current.stdout.splitlines() if not line.endswith(f"{MARKER} {job.name}")]
    line = crontab_line(job)
    written = subprocess.run(["crontab", "-"], input="\n".join([*kept, line]) + "\n", text=True, capture_output=True)
    if written.returncode != 0:
        raise ConfigError("crontab refused the schedule", hint=written.stderr.strip()[:200])
    return line


def install_systemd(job: Job, directory: Path) -> list[Path]:
    """Write the units into ``directory`` (the user's systemd directory) and enable the timer."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in systemd_units(job).items():
        (directory / name).write_text(text)
        written.append(directory / name)
    for command in (["daemon-reload"], ["enable", "--now", f"{job.name}.timer"]):
        done = subprocess.run(["systemctl", "--user", *command], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ConfigError(f"systemctl --user {' '.join(command)} failed", hint=done.stderr.strip()[:200])
    return written


def dag_file(
    targets: list[str], runbooks: list[str], every: timedelta, directory: Path, python: str = sys.executable
) -> str:
    """An Airflow DAG (2.x or 3.x) with one BashOperator task per target and runbook, each calling
    ``bsnexus-lab run`` so exit statuses fail the task and runs land in the history."""
    if not targets:
        raise ConfigError("name at least one target", hint="--targets prod-eu,prod-us")
    tasks = []
    for target in targets:
        for runbook in runbooks:
            job = Job(runbook, every, target, directory, python)
            tasks.append((f"{_safe(runbook)}__{_safe(target)}", job.shell(log=False)))  # Airflow keeps the log
    lines = "\n".join(f"    BashOperator(task_id={task!r}, bash_command={command!r})" for task, command in tasks)
    return f'''"""BSNexus Lab runbooks on {", ".join(targets)}, written by `bsnexus-lab airflow dags` (regenerate it).

A task fails when its run exits non-zero: 1 findings (new ones only: --fail-on new), 2 the run failed,
3 the runbook was still running from the previous interval.
"""

from datetime import datetime, timedelta

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG
try:
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2
    from airflow.operators.bash import BashOperator

with DAG(
    dag_id="bsnexus_lab",
    schedule=timedelta(seconds={int(every.total_seconds())}),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["bsnexus-lab"],
):
{lines}
'''


def parse_every(text: str) -> timedelta:
    every = parse_duration(text)
    if every < timedelta(minutes=1):
        raise ConfigError(f"--every {text} is shorter than a minute", hint="schedules run at most once a minute")
    return every
