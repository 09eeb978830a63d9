"""``bsnexus-lab ack``: acknowledge a known finding so scheduled runs report it without failing on it."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from bsnexus_lab.cli import add
from bsnexus_lab.config import resolve
from bsnexus_lab.errors import LabError
from bsnexus_lab.history import History
from bsnexus_lab.text import parse_duration


def ack(args: argparse.Namespace) -> int:
    """Acknowledge a known finding: runs report it but do not fail on it.

    Until --for has passed, or until the finding gets worse than it was when acknowledged.
    """
    target = resolve(args.target).name
    index = History(args.runs_dir)
    key = index.resolve(args.key)  # a key quoted from an older report is the key it became
    severity = index.latest_severity(key, target)
    if severity is None:
        raise LabError(
            f"no finding {args.key!r} in the history of target {target}",
            hint="keys are listed by `bsnexus-lab runs show ID`",
        )
    until = datetime.now(UTC) + parse_duration(args.duration)
    index.ack(key, target, severity=severity, until=until, why=args.why)
    print(f"acknowledged {key} on {target} at {severity} until {until:%Y-%m-%d %H:%M} UTC: {args.why}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = add(sub, "ack", ack)
    parser.add_argument("key", metavar="FINDING_KEY")
    parser.add_argument("--for", dest="duration", required=True, help="how long, e.g. 7d")
    parser.add_argument("--why", required=True, help="the reason, kept with the acknowledgement")
    parser.add_argument("--target", help="profile name (default: resolved from the environment)")
    parser.add_argument("--runs-dir", type=Path, default=None)
