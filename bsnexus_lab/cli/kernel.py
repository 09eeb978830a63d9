"""``bsnexus-lab kernel ...``: the "BSNexus Lab" Jupyter kernel."""

from __future__ import annotations

import argparse
from typing import Any

from bsnexus_lab import kernel
from bsnexus_lab.cli import add


def kernel_install(args: argparse.Namespace) -> int:
    """Register the "BSNexus Lab" Jupyter kernel: this environment's Python with %lab and the displays loaded."""
    where = kernel.install(user=args.user, prefix=args.prefix)
    print(f'installed the "{kernel.DISPLAY_NAME}" kernel ({kernel.KERNEL_NAME}) in {where}')
    return 0


def register(sub: Any) -> None:
    group = sub.add_parser("kernel", help="the BSNexus Lab Jupyter kernel").add_subparsers(required=True)
    install = add(group, "install", kernel_install)
    where = install.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="for this user, not only this environment")
    where.add_argument("--prefix", help="under PREFIX/share/jupyter/kernels (default: this environment)")
