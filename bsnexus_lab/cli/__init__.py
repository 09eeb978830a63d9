"""``bsnexus-lab``: the command line. One module per command group, each with ``register(sub)``; a command's
docstring is its help. The exit statuses are :data:`EXIT_STATUSES` (shown in ``--help``)."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from bsnexus_lab.config import redact_urls_in
from bsnexus_lab.errors import (
    EXIT_BUSY,
    EXIT_FAILED,
    EXIT_FINDINGS,
    EXIT_NO_SUCH_TASK,
    EXIT_OK,
    LabError,
    exit_interrupted,
)

Command = Callable[[argparse.Namespace], int]
DESCRIPTION = "Diagnose a BSNexus deployment (Redis Streams, PostgreSQL, the service) read-only."
INTERRUPTED, TERMINATED = exit_interrupted(signal.SIGINT), exit_interrupted(signal.SIGTERM)
EXIT_STATUSES = f"""exit statuses:
  {EXIT_OK}    done; for run: no finding reached --fail-on (acknowledged ones do not count)
  {EXIT_FINDINGS}    run: a finding reached --fail-on (default: warning; with --fail-on new: one the
       previous run did not have; a check that could not look only with --fail-on not-checked)
  {EXIT_FAILED}    the command could not do its job: bad input, unusable target or output directory,
       a broken runbook, a cell that raised, a run that emitted no findings, a timeout (one line on stderr)
  {EXIT_BUSY}    run: the same runbook is already running on the same target
  {EXIT_NO_SUCH_TASK}    trace: no task, stream entry or worker by that id (nothing to follow: neither the
       tool's failure nor a finding)
  {INTERRUPTED}  run: interrupted by SIGINT, or SIGTERM ({TERMINATED}): 128 + the signal; the kernel is
       stopped, run.json says "interrupted" and the partial notebook is kept"""


def add(parent: Any, name: str, func: Command) -> argparse.ArgumentParser:
    """A subcommand whose help is ``func``'s docstring."""
    doc = (func.__doc__ or "").strip()
    command = parent.add_parser(name, help=doc.splitlines()[0] if doc else None, description=doc)
    command.set_defaults(func=func)
    return command


def build_parser() -> argparse.ArgumentParser:
    from bsnexus_lab import __version__

    parser = argparse.ArgumentParser(
        prog="bsnexus-lab",
        description=DESCRIPTION,
        epilog=EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"bsnexus-lab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Jupyter asks platformdirs for a runtime directory, which warns on every run where no login session set
    # XDG_RUNTIME_DIR (CI, containers, cron) although its /tmp fallback works: noise in every command's output.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    # pyzmq reports a kernel channel's callback that failed on teardown through tornado's logger; it can fire
    # after a run has ended (a signal, a loaded machine), when the runner's execute.quiet_channels no longer
    # holds: for a command, that plumbing stays off the screen to the end. A filter of its own (not `disabled`,
    # which logging.config.dictConfig turns back on for every logger it does not name, as Jupyter's apps do).
    logging.getLogger("tornado.general").addFilter(lambda record: False)
    # jsonschema (under nbformat and papermill) enables its "iri" format check when rfc3987_syntax imports, and
    # that module compiles a Lark grammar on import: 0.8 s of every command's start (python-jsonschema#1392).
    # Nothing the lab validates uses that format, so a command does without it.
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[assignment]
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except LabError as exc:
        print(f"bsnexus-lab: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return INTERRUPTED
    except Exception as exc:  # never a traceback: one line, URLs' credentials masked
        print(f"bsnexus-lab: {type(exc).__name__}: {redact_urls_in(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
