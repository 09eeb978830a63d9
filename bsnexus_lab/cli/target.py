"""``bsnexus-lab target ...``: what the lab will look at."""

from __future__ import annotations

import argparse
from typing import Any

from bsnexus_lab.cli import add
from bsnexus_lab.config import resolve


def target_show(args: argparse.Namespace) -> int:
    """Print the resolved target and where each setting came from (passwords masked)."""
    target = resolve(args.target)
    width = max(len(key) for key, _, _ in target.describe())
    for key, value, source in target.describe():
        print(f"{key:{width}}  {value}    [{source}]")
    return 0


def register(sub: Any) -> None:
    target = sub.add_parser("target", help="inspect the target configuration").add_subparsers(required=True)
    add(target, "show", target_show).add_argument("--target", help="profile name")
