"""Scenarios: the healthy world plus one planted fault each, one module per area.

Adding one is a single decorated function in ``scenarios/<area>.py``: build on
:func:`~bsnexus_lab.sandbox.world.build_healthy`, plant the fault with the :class:`World` verbs, and return
the planted facts (the values a test or demo expects the checks to find). Modules here are discovered.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any

from bsnexus_lab.errors import SandboxError
from bsnexus_lab.sandbox.world import World

Scenario = Callable[[World], Awaitable[dict[str, Any]]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str) -> Callable[[Scenario], Scenario]:
    def decorate(function: Scenario) -> Scenario:
        if name in SCENARIOS:
            raise ValueError(f"scenario {name!r} defined twice")
        SCENARIOS[name] = function
        return function

    return decorate


@cache
def discover() -> dict[str, Scenario]:
    """Import every scenario module (which also registers their traffic actors)."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return SCENARIOS


def get(name: str) -> Scenario:
    known = discover()
    if name not in known:
        raise SandboxError(f"no scenario named {name!r}", hint=f"known: {', '.join(sorted(known))}")
    return known[name]
