"""BSNexus Lab: read-only diagnosis of a BSNexus deployment from notebooks, runbooks and the CLI."""

from bsnexus_lab.config import Target
from bsnexus_lab.errors import (
    ConfigError,
    LabError,
    NotFound,
    PermissionDenied,
    QueryTimedOut,
    RunbookError,
    TargetUnreachable,
    WrongType,
)
from bsnexus_lab.findings import Finding, Kind, Severity, Unavailable, emit
from bsnexus_lab.lab import Lab, connect

__version__ = "0.2.0"

__all__ = [
    "ConfigError",
    "Finding",
    "Kind",
    "Lab",
    "LabError",
    "NotFound",
    "PermissionDenied",
    "QueryTimedOut",
    "RunbookError",
    "Severity",
    "Target",
    "TargetUnreachable",
    "Unavailable",
    "WrongType",
    "__version__",
    "connect",
    "emit",
]


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext bsnexus_lab``: the ``%lab`` magics and the lab's displays (see :mod:`bsnexus_lab.magics`)."""
    from bsnexus_lab.magics import load_ipython_extension as load

    load(ipython)
