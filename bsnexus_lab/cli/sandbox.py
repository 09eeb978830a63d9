"""``bsnexus-lab sandbox ...``: the embedded servers and their BSNexus-shaped world."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from bsnexus_lab.cli import add

if TYPE_CHECKING:
    from bsnexus_lab.sandbox import Sandbox, ServerStatus


def sandbox_up(args: argparse.Namespace) -> int:
    """Start the sandbox's redis-server and PostgreSQL (idempotent) and write the `sandbox` profile;
    `--service` also runs its BSNexus-shaped service (uvicorn) for profiling."""
    box = make_sandbox()
    rows = box.up(args.source, service=args.service)
    if args.service:
        print(f"service    running  {box.start_service()}")
    return print_status(rows)


def sandbox_down(args: argparse.Namespace) -> int:
    """Stop the sandbox's servers; nothing is left running."""
    return print_status(make_sandbox().down())


def sandbox_status(args: argparse.Namespace) -> int:
    """Show each sandbox server as running, stopped, or died, and whether its traffic runs."""
    box = make_sandbox()
    print_status(box.status())
    print_traffic(box)
    return 0


def sandbox_reset(args: argparse.Namespace) -> int:
    """Stop, delete all sandbox state, and start afresh with the healthy world."""
    return print_status(make_sandbox().reset(args.source))


def sandbox_scenario(args: argparse.Namespace) -> int:
    """Reload the sandbox world with a planted fault (see --list)."""
    from bsnexus_lab.sandbox import all_scenarios

    if args.list or not args.name:
        known = all_scenarios()
        width = max(len(name) for name in known) + 2
        for name, plant in sorted(known.items()):
            print(f"{name:{width}} {(plant.__doc__ or '').strip().splitlines()[0]}")
        return 0
    facts = make_sandbox().load(args.name)
    print(f"loaded scenario {args.name}")
    for key, value in facts.items():
        print(f"  {key}: {value}")
    return 0


def sandbox_traffic(args: argparse.Namespace) -> int:
    """Stop or start everything in the sandbox that writes (the scenario's traffic and the service's
    consumers): stopped, nothing but the lab touches the servers, which is how read-only is proven."""
    box = make_sandbox()
    if args.state == "stop":
        box.stop_traffic()
    elif args.state == "start" and not box.start_traffic():
        print(f"scenario {box.facts().get('scenario', '-')} has no traffic")
    print_traffic(box)
    return 0


def print_traffic(box: Sandbox) -> None:
    print(f"traffic    {'running' if box.traffic_running() else 'stopped'}")


def make_sandbox() -> Sandbox:
    from bsnexus_lab.sandbox import Sandbox

    return Sandbox()


def print_status(rows: list[ServerStatus]) -> int:
    for row in rows:
        print(row.line())
    return 0


def register(sub: Any) -> None:
    sandbox = sub.add_parser("sandbox", help="the embedded servers and their BSNexus-shaped world")
    actions = sandbox.add_subparsers(dest="action", required=True)
    for name, func in (("up", sandbox_up), ("reset", sandbox_reset)):
        add(actions, name, func).add_argument("--source", choices=["system", "embedded"], help="force a server source")
    actions.choices["up"].add_argument("--service", action="store_true", help="also run the BSNexus-shaped service")
    add(actions, "down", sandbox_down)
    add(actions, "status", sandbox_status)
    scenario = add(actions, "scenario", sandbox_scenario)
    scenario.add_argument("name", nargs="?", help="the scenario to load")
    scenario.add_argument("--list", action="store_true", help="list the scenarios and what each plants")
    traffic = add(actions, "traffic", sandbox_traffic)
    traffic.add_argument("state", choices=["stop", "start", "status"], help="stop, start or show the writers")
