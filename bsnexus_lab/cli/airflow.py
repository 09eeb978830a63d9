"""``bsnexus-lab airflow dags``: an Airflow DAG file running runbooks on a fleet of targets."""

from __future__ import annotations

import argparse
from pathlib import Path

from bsnexus_lab import runbooks, schedule
from bsnexus_lab.cli import add


def dags(args: argparse.Namespace) -> int:
    """Write an Airflow DAG file with one task per target and runbook (each calls `bsnexus-lab run`)."""
    names = [r.strip() for r in args.runbooks.split(",") if r.strip()]
    for name in names:
        runbooks.find(name)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    text = schedule.dag_file(targets, names, schedule.parse_every(args.every), Path.cwd())
    args.output.write_text(text)
    print(f"wrote {args.output}: {len(targets) * len(names)} tasks, every {args.every}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("airflow", help="Airflow integration")
    actions = parser.add_subparsers(dest="action", required=True)
    command = add(actions, "dags", dags)
    command.add_argument("--targets", required=True, help="comma-separated profile names")
    command.add_argument("--runbooks", default="triage", help="comma-separated runbooks (default: triage)")
    command.add_argument("--every", default="15m")
    command.add_argument("--output", type=Path, default=Path("bsnexus_lab_dags.py"))
