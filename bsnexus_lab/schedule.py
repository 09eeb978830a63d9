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
from collections.abc import Sequence
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

    def command(self, *, fail_on_new: bool = True) -> list[str]:
        """``bsnexus-lab run``, with ``--fail-on new`` for a timer, whose exit status is its only alert (an
        Airflow task's state shows every run instead, see :func:`dag_file`)."""
        target = ["--target", self.target] if self.target else []
        fail_on = ["--fail-on", "new"] if fail_on_new else []
        return [self.python, "-m", "bsnexus_lab", "run", self.runbook, *target, *fail_on]

    def shell(self) -> str:
        """The command line from the job's directory, its output appended to ``runs/<name>.log``."""
        line = f"cd {shlex.quote(str(self.directory))} && {shlex.join(self.command())}"
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
    targets: list[str],
    runbooks: list[str],
    every: timedelta,
    directory: Path,
    python: str = sys.executable,
    *,
    params: Sequence[str] = (),
    retries: int = 1,
    retry_delay: timedelta = timedelta(minutes=2),
) -> str:
    """An Airflow DAG (2.x or 3.x): one task per target and runbook calling ``bsnexus-lab run`` (``params``
    passed as ``-p``) and carrying its exit status into the task's state, then ``fleet``, which writes the fleet
    page whatever they ended with. The file's docstring is the table of states."""
    if not targets:
        raise ConfigError("name at least one target", hint="--targets prod-eu,prod-us")
    tasks = []
    for target in targets:
        for runbook in runbooks:
            command = Job(runbook, every, target, directory, python).command(fail_on_new=False)
            tasks.append((f"{_safe(runbook)}__{_safe(target)}", [*command, *(a for p in params for a in ("-p", p))]))
    fleet = [python, "-m", "bsnexus_lab", "fleet", "--html", str(directory / "runs" / "fleet.html")]
    lines = "\n".join(
        f"        PythonOperator(task_id={task!r}, python_callable=run_lab, op_args=[{command!r}]),"
        for task, command in tasks
    )
    return DAG_TEMPLATE.format(
        targets=", ".join(targets),
        directory=str(directory),
        seconds=int(every.total_seconds()),
        retries=retries,
        retry_delay=int(retry_delay.total_seconds()),
        tasks=lines,
        fleet=fleet,
    )


DAG_TEMPLATE = '''"""BSNexus Lab runbooks on {targets}, written by `bsnexus-lab airflow dags` (regenerate it).

Each task runs `bsnexus-lab run` and carries the lab's exit status into Airflow's state (see `run_lab`):

    exit                          state                   why
    0  no finding counts          success
    1  a finding counts           failed, never retried   the target's state: a retry would find it again. An
                                                          unreachable Redis or PostgreSQL is such a finding
                                                          (deps.unreachable): it fails, it is not retried
    2  refused before running     failed, never retried   bad parameters, an unknown runbook or target: a retry
       (no run directory)                                 would be refused the same way
    2  failed after it started    failed, retried         a cell raised, the kernel died or timed out: the tool's
       (a run directory)                                  trouble, which may pass
    3  busy                       skipped                 the same runbook still runs on the target (the last
                                                          interval's run): that run reports
    130, 143  interrupted         failed, retried         SIGINT/SIGTERM stopped the run (a host shutting down)

A task fails at every run that has a finding, not only when the finding is new: in Airflow the task's state is
the dashboard, and a still-dead worker must not turn green on the second run. Silence a known finding with
`bsnexus-lab ack KEY --for 7d --why ...` (it fails again once the ack expires or the finding gets worse); the
fleet page says what changed since the run before. The task `fleet` writes runs/fleet.html from the history
after every run, whatever the other tasks ended with; Airflow judges a DAG run by its last tasks, so `verdict`,
which runs only when a target's task failed, fails the DAG run with it.
"""

import subprocess
from datetime import datetime, timedelta

try:
    from airflow.sdk import DAG
    from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.exceptions import AirflowException, AirflowFailException, AirflowSkipException
try:
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:  # Airflow 2
    from airflow.operators.python import PythonOperator

DIRECTORY = {directory!r}  # runs/ is here (run directories; the history too without BSNEXUS_LAB_HISTORY_URL)
RUN_DIRECTORY = "run directory: "  # what `bsnexus-lab run` prints once a run directory exists


def run_lab(command):
    """Run one `bsnexus-lab` command, its output in the task's log, and carry the lab's exit status into
    Airflow's states (the table above): AirflowFailException fails the task without a retry,
    AirflowSkipException skips it, AirflowException fails it and leaves the retry to Airflow. (A BashOperator
    can only skip on an exit code.)"""
    process = subprocess.Popen(command, cwd=DIRECTORY, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    started = False
    for line in process.stdout:
        print(line, end="", flush=True)
        started = started or line.startswith(RUN_DIRECTORY)
    code = process.wait()
    if code == 0:
        return
    if code == 1:
        raise AirflowFailException("bsnexus-lab exited 1: a finding (above), the target's state: not retried")
    if code == 2 and not started:
        raise AirflowFailException("bsnexus-lab exited 2: the run was refused (above): not retried")
    if code == 3:
        raise AirflowSkipException("bsnexus-lab exited 3: the runbook still runs on this target: skipped")
    raise AirflowException(f"bsnexus-lab exited {{code}}: the run failed or was interrupted: retried")


def verdict():
    raise AirflowFailException("a target's task failed (see its log): so does this DAG run")


with DAG(
    dag_id="bsnexus_lab",
    schedule=timedelta(seconds={seconds}),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["bsnexus-lab"],
    default_args={{"retries": {retries}, "retry_delay": timedelta(seconds={retry_delay})}},
):
    runs = [
{tasks}
    ]
    fleet = {fleet!r}
    runs >> PythonOperator(task_id="fleet", python_callable=run_lab, op_args=[fleet], trigger_rule="all_done")
    runs >> PythonOperator(task_id="verdict", python_callable=verdict, trigger_rule="one_failed", retries=0)
'''


def parse_every(text: str) -> timedelta:
    every = parse_duration(text)
    if every < timedelta(minutes=1):
        raise ConfigError(f"--every {text} is shorter than a minute", hint="schedules run at most once a minute")
    return every
