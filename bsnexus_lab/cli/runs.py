"""``bsnexus-lab runs``: the run history, a run's details, what changed between two runs, pruning."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

import pandas as pd

from bsnexus_lab.cli import add
from bsnexus_lab.config import RUNS_DIR_ENV
from bsnexus_lab.history import NOT_CHECKED, History, location, unreadable
from bsnexus_lab.text import parse_duration


def runs(args: argparse.Namespace) -> int:
    """List runs, newest first (each by its id, the run directory's name)."""
    index = History(args.runs_dir)
    listed = index.runs(target=args.target, runbook=args.runbook)
    if listed.empty:
        print(f"no runs in {index.where}")
        return 0
    shown = listed.assign(started=listed["started"].map(_short), counts=listed.apply(_counts, axis=1))
    shown = shown.assign(host=shown["host"].fillna("-"))  # where the run directory lives (a fleet has many)
    print(shown[["id", "runbook", "target", "started", "status", "exit_code", "counts", "host"]].to_string(index=False))
    return 0


def show(args: argparse.Namespace) -> int:
    """One run: what ran, against what, how it ended, its findings by key."""
    index = History(args.runs_dir)
    run = index.run(args.id)
    for key in ("id", "runbook", "revision", "target", "target_redis", "target_database", "started", "ended"):
        print(f"{key:16} {run[key] or '-'}")
    print(f"{'status':16} {run['status']} (exit {run['exit_code']})" + (f": {run['error']}" if run["error"] else ""))
    print(f"{'parameters':16} {json.dumps(run['parameters'])}")
    print(f"{'environment':16} {json.dumps(run['environment'])}")
    print(f"{'run directory':16} {location(run)}")
    found = index.findings(args.id)
    print()
    for row in found.itertuples():  # what could not be checked is no result: never shown as one
        label = "UNCHECKED" if row.kind == NOT_CHECKED else row.severity.upper()
        print(f"{label:9} {row.title}\n          key: {row.key}")
    return 0


def diff(args: argparse.Namespace) -> int:
    """Findings that appeared, persisted, were resolved, or that run B could not check, between run A and run B;
    what the target changed."""
    index = History(args.runs_dir)
    before, after = index.run(args.a), index.run(args.b)
    for name in sorted(set(before["environment"]) | set(after["environment"])):
        old, new = before["environment"].get(name), after["environment"].get(name)
        if old != new:
            print(f"changed  {name}: {old} -> {new}")
    changes = index.diff(args.a, args.b)
    if changes.empty:
        print("no findings above ok in either run")
    for row in changes.itertuples():
        changed = row.change == "persisted" and row.before != row.after
        severity = f"{row.before}->{row.after}" if changed else row.after or row.before
        print(f"{row.change:11} {severity:10} {row.title}\n            key: {row.key}")
    for run_id, where in unreadable(pd.DataFrame([before, after])).items():  # the diff itself needs only the index
        print(f"not read   run {run_id}'s artefacts (notebook, report): its directory {where} is not here")
    return 0


def prune(args: argparse.Namespace) -> int:
    """Forget runs older than --keep and delete their run directories, as far as this host reaches them."""
    pruned = History(args.runs_dir).prune(parse_duration(args.keep))
    print(f"pruned {len(pruned.forgotten)} runs older than {args.keep}")
    for run_id, why in pruned.left.items():
        print(f"left     {run_id}: {why}")
    return 0


def _short(moment: str) -> str:
    return datetime.fromisoformat(moment).strftime("%Y-%m-%d %H:%M:%S")


def _counts(row: pd.Series) -> str:
    return " ".join(f"{row[s]}{s[0].upper()}" for s in ("critical", "warning", "info") if row[s]) or "-"


def register(sub: argparse._SubParsersAction) -> None:
    parser = add(sub, "runs", runs)
    parser.add_argument("--target", help="only runs on this target (profile name)")
    parser.add_argument("--runbook", help="only runs of this runbook")
    parser.add_argument("--runs-dir", type=Path, default=None, help=f"default: the nearest runs/ (or {RUNS_DIR_ENV})")
    actions = parser.add_subparsers(dest="action")
    for name, func in (("show", show), ("diff", diff), ("prune", prune)):
        command = add(actions, name, func)
        command.add_argument("--runs-dir", type=Path, default=argparse.SUPPRESS)
        if name == "show":
            command.add_argument("id")
        elif name == "diff":
            command.add_argument("a")
            command.add_argument("b")
        else:
            command.add_argument("--keep", required=True, help="e.g. 30d")
