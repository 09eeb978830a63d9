"""``bsnexus-lab schedule``: run a runbook on a timer (crontab line or systemd timer)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bsnexus_lab import runbooks, schedule
from bsnexus_lab.cli import add


def schedule_command(args: argparse.Namespace) -> int:
    """Print (or --install) a crontab line or a systemd timer that runs a runbook every --every.

    Scheduled runs use --fail-on new, so a known finding alerts once, not at every interval.
    """
    runbooks.find(args.name)  # an unknown runbook is refused now, not at 3 a.m.
    job = schedule.Job(args.name, schedule.parse_every(args.every), args.target, Path.cwd())
    if args.systemd:
        if args.install:
            for path in schedule.install_systemd(job, args.unit_dir):
                print(f"wrote {path}")
            print(f"enabled {job.name}.timer")
            return 0
        for name, text in schedule.systemd_units(job).items():
            print(f"# {name}\n{text}")
        return 0
    if args.install:
        print(f"installed: {schedule.install_crontab(job)}")
        return 0
    print(schedule.crontab_line(job))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = add(sub, "schedule", schedule_command)
    parser.add_argument("name", help="the runbook")
    parser.add_argument("--every", required=True, help="e.g. 15m, 1h")
    parser.add_argument("--target", help="profile name (default: resolved from the environment at run time)")
    parser.add_argument("--systemd", action="store_true", help="a systemd user timer instead of a crontab line")
    parser.add_argument("--install", action="store_true", help="install it instead of printing it")
    parser.add_argument(
        "--unit-dir", type=Path, default=Path.home() / ".config" / "systemd" / "user", help=argparse.SUPPRESS
    )
