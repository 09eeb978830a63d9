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

FAIL_ON_CHOICES = (*(s.value for s in Severity), "new", "not-checked")


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
    fail_on, new_only, not_checked = parse_fail_on(args.fail_on or [])
    result = runner.run(
        args.runbook, target=args.target, params=parse_params(args.param),
        fail_on=fail_on, fail_on_new=new_only, fail_on_not_checked=not_checked,
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


def parse_fail_on(given: Sequence[str]) -> tuple[Severity, bool, bool]:
    """``--fail-on`` values (repeated or comma-separated): at most one severity (default warning), ``new`` and
    ``not-checked`` -> (severity, new only, count "not checked")."""
    values = [v.strip() for value in given for v in value.split(",") if v.strip()]
    unknown = sorted(set(values) - set(FAIL_ON_CHOICES))
    severities = [v for v in values if v in {s.value for s in Severity}]
    if unknown or len(severities) > 1:
        raise RunbookError(
            f"--fail-on {','.join(values)}: " + (f"unknown {', '.join(unknown)}" if unknown else "one severity only"),
            hint=f"one of {', '.join(s.value for s in Severity)}, plus new and/or not-checked",
        )
    return Severity(severities[0]) if severities else Severity.WARNING, "new" in values, "not-checked" in values


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
        "--fail-on", action="append", metavar="|".join(FAIL_ON_CHOICES),
        help="exit 1 when a finding is at least this severe (default: warning); new: only one the previous run "
        "did not have; not-checked: a check that could not look counts too (by default it never fails a run); "
        "repeat or comma-separate, e.g. --fail-on critical,not-checked",
    )  # fmt: skip
    run_cmd.add_argument(
        "--fail-on-config", action="store_true", help="count configuration risks (e.g. eviction policy) in --fail-on"
    )
    run_cmd.add_argument("--timeout", type=float, default=None, help="seconds for the whole run")
    run_cmd.add_argument(
        "--output-dir", type=Path, default=None, help="where run directories go (default: the nearest runs/)"
    )
    run_cmd.add_argument("--list", action="store_true", help="list runbooks and their parameters")
