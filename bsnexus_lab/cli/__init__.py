"""``bsnexus-lab``: the command line. One small function per subcommand; its docstring is its help.

Exit statuses (one place):
  0  done; for ``run``, no finding reached --fail-on (acknowledged ones do not count)
  1  ``run``: a finding reached --fail-on (with ``--fail-on new``: one the previous run did not have)
  2  the command could not do its job (bad input, unreachable target, failed runbook); one line on stderr
  3  ``run``: the same runbook is already running on the same target
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bsnexus_lab import findings as findings_io
from bsnexus_lab import runner
from bsnexus_lab.cli import ack, airflow, postmortem, rca, runs, schedule
from bsnexus_lab.config import resolve
from bsnexus_lab.errors import LabError, RunbookError
from bsnexus_lab.findings import Severity

if TYPE_CHECKING:
    from bsnexus_lab.sandbox import Sandbox, ServerStatus

Command = Callable[[argparse.Namespace], int]
DEMO_SCENARIO = "stuck-consumer"
DEMO_RUNBOOK = "stream_backlog"
DEMO_PARAMS = {"duration_s": 5, "every_s": 0.5}  # a newcomer should not wait the runbook's default 30 s


def target_show(args: argparse.Namespace) -> int:
    """Print the resolved target and where each setting came from (passwords masked)."""
    target = resolve(args.target)
    width = max(len(key) for key, _, _ in target.describe())
    for key, value, source in target.describe():
        print(f"{key:{width}}  {value}    [{source}]")
    return 0


def sandbox_up(args: argparse.Namespace) -> int:
    """Start the sandbox's redis-server and PostgreSQL (idempotent) and write the `sandbox` profile."""
    return _print_status(_sandbox().up(args.source))


def sandbox_down(args: argparse.Namespace) -> int:
    """Stop the sandbox's servers; nothing is left running."""
    return _print_status(_sandbox().down())


def sandbox_status(args: argparse.Namespace) -> int:
    """Show each sandbox server as running, stopped, or died."""
    return _print_status(_sandbox().status())


def sandbox_reset(args: argparse.Namespace) -> int:
    """Stop, delete all sandbox state, and start afresh with the healthy world."""
    return _print_status(_sandbox().reset(args.source))


def sandbox_scenario(args: argparse.Namespace) -> int:
    """Reload the sandbox world with a planted fault (see --list)."""
    from bsnexus_lab.sandbox import SCENARIOS

    if args.list or not args.name:
        for name, plant in sorted(SCENARIOS.items()):
            print(f"{name:18} {(plant.__doc__ or '').strip().splitlines()[0]}")
        return 0
    facts = _sandbox().load(args.name)
    print(f"loaded scenario {args.name}")
    for key, value in facts.items():
        print(f"  {key}: {value}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Execute a runbook with papermill; keep the notebook, an HTML report and findings.json."""
    if args.list:
        for name, path in sorted(runner.available().items()):
            print(f"{name}  ({path})")
            for param in runner.parameters(path).values():
                print(f"    -p {param.signature():40} {param.help}")
        return 0
    if not args.runbook:
        raise RunbookError("name a runbook", hint="see `bsnexus-lab run --list`")
    new_only = args.fail_on == "new"
    result = runner.run(
        args.runbook, target=args.target, params=_parse_params(args.param),
        fail_on=Severity.WARNING if new_only else Severity(args.fail_on), fail_on_new=new_only,
        output_root=args.output_dir, timeout_s=args.timeout,
    )  # fmt: skip
    _print_result(result)
    return result.exit_code


def demo(args: argparse.Namespace) -> int:
    """Sandbox up, plant a stuck consumer, run the stream_backlog runbook, print what it found."""
    sandbox = _sandbox()
    _print_status(sandbox.up(args.source))
    facts = sandbox.load(DEMO_SCENARIO)
    print(f"\nplanted {DEMO_SCENARIO}: consumer {facts['dead_consumer']} died holding {facts['pending']} entries\n")
    result = runner.run(DEMO_RUNBOOK, target="sandbox", params=DEMO_PARAMS, output_root=args.output_dir)
    _print_result(result)
    return 0 if result.exit_code != runner.EXIT_FAILED else runner.EXIT_FAILED


def _print_result(result: runner.RunResult) -> None:
    print(findings_io.to_text(result.findings))
    if result.error:
        print(f"\nthe runbook failed: {result.error}", file=sys.stderr)
    print(f"\nreport:   {result.report}\nnotebook: {result.notebook}\nfindings: {result.run_dir / 'findings.json'}")


def _parse_params(pairs: Sequence[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise RunbookError(f"parameter {pair!r} is not NAME=VALUE")
        params[name.strip()] = value
    return params


def _sandbox() -> Sandbox:
    from bsnexus_lab.sandbox import Sandbox

    return Sandbox()


def _print_status(rows: list[ServerStatus]) -> int:
    for row in rows:
        print(row.line())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bsnexus-lab", description=__doc__.split("\n")[0].strip("`: "))
    sub = parser.add_subparsers(dest="command", required=True)

    def add(parent: Any, name: str, func: Command) -> argparse.ArgumentParser:
        command = parent.add_parser(name, help=(func.__doc__ or "").strip(), description=func.__doc__)
        command.set_defaults(func=func)
        return command

    target = sub.add_parser("target", help="inspect the target configuration").add_subparsers(required=True)
    add(target, "show", target_show).add_argument("--target", help="profile name")

    sandbox = sub.add_parser("sandbox", help="the embedded servers and their BSNexus-shaped world")
    actions = sandbox.add_subparsers(dest="action", required=True)
    for name, func in (("up", sandbox_up), ("reset", sandbox_reset)):
        add(actions, name, func).add_argument("--source", choices=["system", "embedded"], help="force a server source")
    add(actions, "down", sandbox_down)
    add(actions, "status", sandbox_status)
    scenario = add(actions, "scenario", sandbox_scenario)
    scenario.add_argument("name", nargs="?")
    scenario.add_argument("--list", action="store_true")

    run_cmd = add(sub, "run", run)
    run_cmd.add_argument("runbook", nargs="?")
    run_cmd.add_argument("--target", help="profile name (default: resolved from the environment)")
    run_cmd.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    run_cmd.add_argument(
        "--fail-on", default="warning", choices=[*(s.value for s in Severity), "new"],
        help="the severity that fails the run; `new`: a warning or worse the previous run did not have",
    )  # fmt: skip
    run_cmd.add_argument("--timeout", type=float, default=None, help="seconds for the whole run")
    run_cmd.add_argument("--output-dir", type=Path, default=None, help="default: ./runs")
    run_cmd.add_argument("--list", action="store_true", help="list runbooks and their parameters")

    demo_cmd = add(sub, "demo", demo)
    demo_cmd.add_argument("--source", choices=["system", "embedded"])
    demo_cmd.add_argument("--output-dir", type=Path, default=None)
    for module in (runs, ack, rca, postmortem, schedule, airflow):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except LabError as exc:
        print(f"bsnexus-lab: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
