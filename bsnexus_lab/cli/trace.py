"""``bsnexus-lab trace ID``: why is this task stuck? One screen: the verdict, then the timeline."""

from __future__ import annotations

import argparse
import json

from bsnexus_lab.cli import add
from bsnexus_lab.lab import connect


def trace(args: argparse.Namespace) -> int:
    """Follow one task through PostgreSQL, Redis, the logs and the live process: what is wrong with it, or
    where it is in its normal life.

    ID is a task id or a unique prefix of one (4+ hex digits), a stream entry id (STREAM/ID, or with
    --stream), or a worker id. Exit 0: nothing at warning or worse concerns it (healthy, or only slow);
    1: something does (the verdict names it); 4: no task, entry or worker by that id; 2: the tool failed.
    """
    with connect(args.target) as lab:
        found = lab.trace(args.id, stream=args.stream)
    if args.json:
        print(json.dumps(found.to_dict(), indent=2, default=str))
    else:
        print(found.text())
    return found.exit_code


def register(sub: argparse._SubParsersAction) -> None:
    parser = add(sub, "trace", trace)
    parser.add_argument("id", metavar="ID")
    parser.add_argument("--stream", help="the stream an entry id is in (default: any of the target's streams)")
    parser.add_argument("--target", help="profile name (default: resolved from the environment)")
    parser.add_argument("--json", action="store_true", help="the verdict, findings and timeline as JSON")
