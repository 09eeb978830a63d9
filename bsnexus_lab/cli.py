"""``bsnexus-lab``: the command line. One small function per subcommand; its docstring is its help."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bsnexus_lab import findings as findings_io
from bsnexus_lab import runner
from bsnexus_lab.config import redact_urls_in, resolve
from bsnexus_lab.errors import LabError, RunbookError
from bsnexus_lab.findings import Severity

if TYPE_CHECKING:
    from bsnexus_lab.sandbox import Sandbox, ServerStatus

Command = Callable[[argparse.Namespace], int]
DESCRIPTION = "Diagnose a BSNexus deployment (Redis Streams + PostgreSQL) from runbooks, read-only."
EXIT_STATUSES = f"""exit statuses:
  {runner.EXIT_OK}  done; for run: no finding reached --fail-on
  {runner.EXIT_FINDINGS}  run: a finding reached --fail-on (default: warning)
  {runner.EXIT_FAILED}  the command could not do its job: bad input, unusable target or output directory,
     a broken runbook, a cell that raised, a run that emitted no findings (one line on stderr)
  {runner.EXIT_INTERRUPTED}  run: interrupted by SIGINT/SIGTERM; the kernel is stopped, run.json says
     "interrupted" and the partial notebook is kept"""
DEMO_SCENARIO = "stuck-consumer"
DEMO_RUNBOOK = "stream_backlog"
DEMO_PARAMS = {"duration_s": 5, "every_s": 0.5}  # a newcomer should not wait the runbook's default 30 s


def target_show(args: argparse.Namespace) -> int:
    """Show which deployment the lab would look at, and where each setting came from (passwords masked)."""
    target = resolve(args.target)
    width = max(len(key) for key, _, _ in target.describe())
    for key, value, source in target.describe():
        print(f"{key:{width}}  {value}    [{source}]")
    return 0


def target_role_sql(args: argparse.Namespace) -> int:
    """Print the least-privilege PostgreSQL role and Redis ACL user to give the lab in production."""
    from bsnexus_lab.clients import CONNECTION_COMMANDS, READ_COMMANDS
    from bsnexus_lab.least_privilege import postgres_role_sql, redis_acl_line

    commands = READ_COMMANDS | CONNECTION_COMMANDS
    print("-- PostgreSQL: run as a superuser, then put the role in DATABASE_URL (set its password first)")
    print(postgres_role_sql(args.database))
    print("\n# Redis 7.0 and later (scripts only as EVAL_RO, which cannot write):")
    print(redis_acl_line(commands, (7, 0)))
    print("# Redis 6.2 (no EVAL_RO; the ACL still refuses writes inside scripts):")
    print(redis_acl_line(commands, (6, 2)))
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
    """Run a runbook against the target; keep the executed notebook, an HTML report and findings.json."""
    if args.list:
        for name, path in sorted(runner.available().items()):
            print(f"{name}  ({path})")
            for param in runner.parameters(path).values():
                print(f"    -p {param.signature():40} {param.help}")
        return 0
    if not args.runbook:
        raise RunbookError("name a runbook", hint="see `bsnexus-lab run --list`")
    result = runner.run(
        args.runbook, target=args.target, params=_parse_params(args.param), fail_on=Severity(args.fail_on),
        output_root=args.output_dir,
    )  # fmt: skip
    _print_result(result)
    return result.exit_code


def demo(args: argparse.Namespace) -> int:
    """Start the sandbox, plant a stuck consumer, and show what the stream_backlog runbook finds."""
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
    print(f"\nrun directory: {result.run_dir} ({runner.STATUS[result.exit_code]})")
    for label, path in (("report", result.report), ("notebook", result.notebook)):
        print(f"{label + ':':14} {path if path.exists() else '(not written)'}")
    print(f"{'findings:':14} {result.run_dir / 'findings.json'}")


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
    parser = argparse.ArgumentParser(
        prog="bsnexus-lab",
        description=DESCRIPTION,
        epilog=EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(parent: Any, name: str, func: Command) -> argparse.ArgumentParser:
        command = parent.add_parser(name, help=(func.__doc__ or "").strip(), description=func.__doc__)
        command.set_defaults(func=func)
        return command

    target = sub.add_parser("target", help="which deployment the lab looks at, and how to give it access")
    target_actions = target.add_subparsers(dest="action", required=True)
    add(target_actions, "show", target_show).add_argument("--target", help="profile name")
    role = add(target_actions, "role-sql", target_role_sql)
    role.add_argument("--database", default="bsnexus", help="database to grant CONNECT on (default: bsnexus)")

    sandbox = sub.add_parser("sandbox", help="the embedded servers and their BSNexus-shaped world")
    actions = sandbox.add_subparsers(dest="action", required=True)
    for name, func in (("up", sandbox_up), ("reset", sandbox_reset)):
        add(actions, name, func).add_argument("--source", choices=["system", "embedded"], help="force a server source")
    add(actions, "down", sandbox_down)
    add(actions, "status", sandbox_status)
    scenario = add(actions, "scenario", sandbox_scenario)
    scenario.add_argument("name", nargs="?", help="the scenario to load")
    scenario.add_argument("--list", action="store_true", help="list the scenarios and what each plants")

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
        "--fail-on", default="warning", choices=[s.value for s in Severity],
        help="exit 1 when a finding is at least this severe (default: warning)",
    )  # fmt: skip
    run_cmd.add_argument("--output-dir", type=Path, default=None, help="where run directories go (default: ./runs)")
    run_cmd.add_argument("--list", action="store_true", help="list runbooks and their parameters")

    demo_cmd = add(sub, "demo", demo)
    demo_cmd.add_argument("--source", choices=["system", "embedded"], help="force a server source")
    demo_cmd.add_argument("--output-dir", type=Path, default=None, help="where the run directory goes (./runs)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except LabError as exc:
        print(f"bsnexus-lab: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return runner.EXIT_INTERRUPTED
    except Exception as exc:  # never a traceback: one line, URLs' credentials masked
        print(f"bsnexus-lab: {type(exc).__name__}: {redact_urls_in(str(exc))}", file=sys.stderr)
        return runner.EXIT_FAILED


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bsnexus-lab")
    except PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
