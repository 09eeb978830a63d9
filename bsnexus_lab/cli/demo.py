"""``bsnexus-lab demo``: the whole loop on the sandbox in one command."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bsnexus_lab import runner
from bsnexus_lab.cli import add
from bsnexus_lab.cli.run import print_result
from bsnexus_lab.cli.sandbox import make_sandbox, print_status
from bsnexus_lab.errors import EXIT_FAILED

DEMO_SCENARIO = "stuck-consumer"
DEMO_RUNBOOK = "stream_backlog"
DEMO_PARAMS = {"duration_s": 10, "every_s": 1}  # long enough for a lag verdict, short for a newcomer


def demo(args: argparse.Namespace) -> int:
    """Start the sandbox, plant a stuck consumer, and show what the stream_backlog runbook finds."""
    sandbox = make_sandbox()
    print_status(sandbox.up(args.source))
    facts = sandbox.load(DEMO_SCENARIO)
    print(f"\nplanted {DEMO_SCENARIO}: consumer {facts['dead_consumer']} died holding {facts['pending']} entries\n")
    result = runner.run(DEMO_RUNBOOK, target="sandbox", params=DEMO_PARAMS, output_root=args.output_dir)
    print_result(result)
    return 0 if result.exit_code != EXIT_FAILED else EXIT_FAILED


def register(sub: Any) -> None:
    demo_cmd = add(sub, "demo", demo)
    demo_cmd.add_argument("--source", choices=["system", "embedded"], help="force a server source")
    demo_cmd.add_argument("--output-dir", type=Path, default=None, help="where the run directory goes (./runs)")
