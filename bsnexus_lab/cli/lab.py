"""``bsnexus-lab lab``: JupyterLab on the notebooks, against the configured target or the sandbox."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from bsnexus_lab import kernel
from bsnexus_lab.cli import add
from bsnexus_lab.config import TARGET_ENV, Target, resolve


def lab(args: argparse.Namespace) -> int:
    """Start JupyterLab on notebooks/ against the configured target, or the sandbox (started if needed), and
    print its URL; Ctrl-C stops it."""
    target = _target(args.target)
    if kernel.installed() is None:
        print(f"installed the {kernel.DISPLAY_NAME} kernel in {kernel.install()}")
    log = Path(tempfile.gettempdir()) / "bsnexus-lab-jupyterlab.log"
    env = {TARGET_ENV: args.target} if args.target else {}
    server = kernel.start_lab(args.notebooks or kernel.notebooks_dir(), port=args.port, env=env, log=log)
    print(f"target:     {target.name} (redis {target.redis}, database {target.database or '-'})")
    print(f"JupyterLab: {server.lab_url}")
    print(f"log:        {log}\nCtrl-C stops it.")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a service manager's stop also stops JupyterLab
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _target(name: str | None) -> Target:
    """The target the notebooks will resolve; the sandbox is started when nothing else is configured."""
    from bsnexus_lab.sandbox import ensure

    for row in ensure(name):
        print(row.line())
    return resolve(name)


def register(sub: Any) -> None:
    command = add(sub, "lab", lab)
    command.add_argument("--target", help="profile name (default: resolved as the CLI does, else the sandbox)")
    command.add_argument("--port", type=int, default=None, help="default: a free port")
    command.add_argument("--notebooks", type=Path, default=None, help="default: ./notebooks")
