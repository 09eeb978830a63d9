"""``bsnexus-lab``: the command line. One module per command group, each with ``register(sub)``; a command's
docstring is its help.

Exit statuses (one place):
  0  done; for ``run``, no finding reached --fail-on
  1  ``run``: a finding reached --fail-on
  2  the command could not do its job (bad input, unreachable target, failed runbook); one line on stderr
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Callable, Sequence
from typing import Any

from bsnexus_lab.errors import LabError

Command = Callable[[argparse.Namespace], int]
DESCRIPTION = "Diagnose a BSNexus deployment (Redis Streams, PostgreSQL, the service) read-only."


def add(parent: Any, name: str, func: Command) -> argparse.ArgumentParser:
    """A subcommand whose help is ``func``'s docstring."""
    doc = (func.__doc__ or "").strip()
    command = parent.add_parser(name, help=doc.splitlines()[0] if doc else None, description=doc)
    command.set_defaults(func=func)
    return command


def build_parser() -> argparse.ArgumentParser:
    from bsnexus_lab import __version__

    parser = argparse.ArgumentParser(prog="bsnexus-lab", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"bsnexus-lab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}").register(sub)
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
