"""``bsnexus-lab postmortem``: a postmortem assembled from the run history (and an RCA notebook)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from bsnexus_lab import postmortem
from bsnexus_lab.cli import add
from bsnexus_lab.history import History, parse_time


def postmortem_command(args: argparse.Namespace) -> int:
    """Write a postmortem (markdown and self-contained HTML) from the run history.

    postmortems/INCIDENT/postmortem.md and postmortem.html: timeline, findings, detection and figures from
    the history; impact, trigger, resolution and action items from --rca, or left as marked prompts.
    """
    written = postmortem.write(
        args.incident,
        since=parse_time(args.since),
        until=parse_time(args.until) if args.until else datetime.now(UTC),
        runs=args.runs or (),
        rca=args.rca,
        history=History(args.runs_dir),
    )
    print(f"wrote {written.markdown}\nwrote {written.html}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = add(sub, "postmortem", postmortem_command)
    parser.add_argument("incident")
    parser.add_argument("--since", required=True, help="1h, 30m, or an ISO time (UTC unless it says)")
    parser.add_argument("--until", help="default: now")
    parser.add_argument("--runs", nargs="+", metavar="ID", help="these runs instead of every run in the window")
    parser.add_argument("--rca", type=Path, help="the RCA notebook that answers impact, trigger, resolution")
    parser.add_argument("--runs-dir", type=Path, default=None)
