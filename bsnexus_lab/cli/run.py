"""``bsnexus-lab run``: runbooks, executed with papermill into a run directory."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bsnexus_lab import findings as findings_io
from bsnexus_lab import runbooks, runner
from bsnexus_lab.cli import EXIT_STATUSES, add
from bsnexus_lab.errors import RunbookError
from bsnexus_lab.findings import Severity, render


def run(args: argparse.Namespace) -> int:
    """Run a runbook against the target; keep the executed notebook, an HTML report and findings.json."""
    if args.list:
        for name, path in sorted(runbooks.available().items()):
            print(f"{name}  ({path})")
            for param in runbooks.parameters(path).values():
                print(f"    -p {param.signature():40} {param.help}")
        return 0
    if not args.runbook:
        raise RunbookError("name a runbook", hint="see `bsnexus-lab run --list`")
    new_only = args.fail_on == "new"
    result = runner.run(
        args.runbook, target=args.target, params=parse_params(args.param),
        fail_on=Severity.WARNING if new_only else Severity(args.fail_on), fail_on_new=new_only,
        fail_on_config=args.fail_on_config, output_root=args.output_dir, timeout_s=args.timeout,
    )  # fmt: skip
    print_result(result)
    return result.exit_code


def print_result(result: runner.RunResult) -> None:
    verdict = f"RUN FAILED: {render.tally(result.findings)}" if result.error else render.verdict(result.findings)
    print(f"Verdict: {verdict}\n")
    print(findings_io.to_text(result.findings))
    if result.error:
        print(f"\nthe runbook failed: {result.error}", file=sys.stderr)
    print(f"\nrun directory: {result.run_dir} ({result.status})")
    for label, path in (("report", result.report), ("notebook", result.notebook)):
        print(f"{label + ':':14} {path if path.exists() else '(not written)'}")
    print(f"{'findings:':14} {result.run_dir / 'findings.json'}")


def parse_params(pairs: Sequence[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise RunbookError(f"parameter {pair!r} is not NAME=VALUE")
        params[name.strip()] = value
    return params


def register(sub: Any) -> None:
    run_cmd = add(sub, "run", run)
    run_cmd.epilog = EXIT_STATUSES
    run_cmd.formatter_class = argparse.RawDescriptionHelpFormatter
    run_cmd.add_argument("runbook", nargs="?", help="a runbook name (see --list) or a path to a .ipynb")
    run_cmd.add_argument("--target", help="profile name (default: resolved from the environment)")
    run_cmd.add_argument(
        "-p", "--param", action="append", default=[], metavar="NAME=VALUE",
        help="a runbook parameter; lists as a,b or as a JSON list; checked before the kernel starts",
    )  # fmt: skip
    run_cmd.add_argument(
        "--fail-on", default="warning", choices=[*(s.value for s in Severity), "new"],
        help="exit 1 when a finding is at least this severe (default: warning); new: a warning or worse the "
        "previous run did not have",
    )  # fmt: skip
    run_cmd.add_argument(
        "--fail-on-config", action="store_true", help="count configuration risks (e.g. eviction policy) in --fail-on"
    )
    run_cmd.add_argument("--timeout", type=float, default=None, help="seconds for the whole run")
    run_cmd.add_argument(
        "--output-dir", type=Path, default=None, help="where run directories go (default: the nearest runs/)"
    )
    run_cmd.add_argument("--list", action="store_true", help="list runbooks and their parameters")
