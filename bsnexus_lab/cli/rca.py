"""``bsnexus-lab rca``: root-cause analysis notebooks and their regression checks."""

from __future__ import annotations

import argparse
from pathlib import Path

from bsnexus_lab import rca
from bsnexus_lab.cli import add
from bsnexus_lab.history import History


def new(args: argparse.Namespace) -> int:
    """Create notebooks/rca/<date>-<slug>.ipynb from the template, evidence pre-filled from the latest triage."""
    path = rca.new(args.slug, history=History(args.runs_dir))
    print(f"created {path}")
    return 0


def promote(args: argparse.Namespace) -> int:
    """Turn the notebook's cells tagged regression-check into a runbook under runbooks/."""
    path = rca.promote(args.notebook)
    print(f"created runbook {path.stem} ({path}); schedule it with `bsnexus-lab schedule {path.stem} --every 15m`")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("rca", help="root-cause analysis notebooks")
    actions = parser.add_subparsers(dest="action", required=True)
    command = add(actions, "new", new)
    command.add_argument("slug")
    command.add_argument("--runs-dir", type=Path, default=None)
    add(actions, "promote", promote).add_argument("notebook", type=Path)
