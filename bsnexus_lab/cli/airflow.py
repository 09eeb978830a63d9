"""``bsnexus-lab airflow dags``: an Airflow DAG file running runbooks on a fleet of targets."""

from __future__ import annotations

import argparse
from pathlib import Path

from bsnexus_lab import runbooks, schedule
from bsnexus_lab.cli import add
from bsnexus_lab.cli.run import parse_params
from bsnexus_lab.text import parse_duration


def dags(args: argparse.Namespace) -> int:
    """Write an Airflow DAG file with one task per target and runbook (each calls `bsnexus-lab run` and maps its
    exit status to a task state), and a last task writing the fleet page (runs/fleet.html)."""
    names = [r.strip() for r in args.runbooks.split(",") if r.strip()]
    for name in names:
        runbooks.find(name)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    parse_params(args.param)  # NAME=VALUE, refused now rather than at every run
    text = schedule.dag_file(
        targets, names, schedule.parse_every(args.every), Path.cwd(),
        params=args.param, retries=args.retries, retry_delay=parse_duration(args.retry_delay),
    )  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"wrote {args.output}: {len(targets) * len(names)} tasks and the fleet page, every {args.every}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("airflow", help="Airflow integration")
    actions = parser.add_subparsers(dest="action", required=True)
    command = add(actions, "dags", dags)
    command.add_argument("--targets", required=True, help="comma-separated profile names")
    command.add_argument("--runbooks", default="triage", help="comma-separated runbooks (default: triage)")
    command.add_argument("--every", default="15m")
    command.add_argument("--output", type=Path, default=Path("bsnexus_lab_dags.py"))
    command.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE", help="for every run")
    command.add_argument("--retries", type=int, default=1, help="for a run that failed after it started (default 1)")
    command.add_argument("--retry-delay", default="2m", help="default 2m")
