"""``bsnexus-lab fleet``: every target's latest run per runbook, from the run history (shared or local)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bsnexus_lab import fleet
from bsnexus_lab.cli import add
from bsnexus_lab.config import HISTORY_URL_ENV, RUNS_DIR_ENV
from bsnexus_lab.history import History


def fleet_command(args: argparse.Namespace) -> int:
    """Show every target's latest run of each runbook: verdict, worst finding, age, what changed since the run
    before, and where its run directory lives; --html writes the same as a page."""
    index = History(args.runs_dir)
    state = fleet.state(index)
    print(fleet.text(state))
    if args.html:
        args.html.parent.mkdir(parents=True, exist_ok=True)
        args.html.write_text(fleet.page(state, source=index.where))
        print(f"\nwrote {args.html}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = add(sub, "fleet", fleet_command)
    parser.add_argument("--html", type=Path, help="also write the page here")
    parser.add_argument(
        "--runs-dir",
        type=Path,
        default=None,
        help=f"default: {HISTORY_URL_ENV}, else the nearest runs/ (or {RUNS_DIR_ENV})",
    )
