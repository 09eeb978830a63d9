"""Checks: pure functions from probe frames to findings, registered by area.

A check names the frames it needs as keyword parameters (``consumers``, ``health``...) plus
``thresholds``; a parameter defaulting to None is optional evidence. :func:`run` passes what the caller
collected and skips checks whose required frames are missing, so a runbook that gathered only part of the
picture still gets every check that applies.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bsnexus_lab.errors import LabError
from bsnexus_lab.findings import Finding, Severity, ranked
from bsnexus_lab.thresholds import DEFAULTS, Thresholds

CheckFunction = Callable[..., list[Finding]]


@dataclass(frozen=True)
class Check:
    id: str
    area: str
    title: str
    function: CheckFunction

    @property
    def frames(self) -> list[str]:
        return [p for p in inspect.signature(self.function).parameters if p != "thresholds"]

    @property
    def required(self) -> list[str]:
        parameters = inspect.signature(self.function).parameters
        return [p for p in self.frames if parameters[p].default is inspect.Parameter.empty]


REGISTRY: dict[str, Check] = {}


def register(id: str, title: str) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check under a stable id ``area.name``; ``title`` reads as what it looks for."""

    def decorate(function: CheckFunction) -> CheckFunction:
        if id in REGISTRY:
            raise ValueError(f"check {id!r} registered twice")
        REGISTRY[id] = Check(id=id, area=id.split(".")[0], title=title, function=function)
        return function

    return decorate


def run(
    area: str | None = None, *, thresholds: Thresholds = DEFAULTS, target: str = "", **frames: Any
) -> list[Finding]:
    """Every applicable check of ``area`` (all areas when None); an ``ok`` finding for each that found nothing."""
    selected = [c for c in REGISTRY.values() if area is None or c.area == area]
    if area is not None and not selected:
        known = ", ".join(sorted({c.area for c in REGISTRY.values()}))
        raise LabError(f"no checks for area {area!r}", hint=f"known areas: {known}")
    findings: list[Finding] = []
    for check in selected:
        if any(frames.get(name) is None for name in check.required):
            continue
        given = {name: frames[name] for name in check.frames if frames.get(name) is not None}
        result = check.function(thresholds=thresholds, **given)
        if not isinstance(result, list):
            raise TypeError(f"check {check.id} returned {type(result).__name__}, not a list")
        findings.extend(result or [Finding(check.id, Severity.OK, f"{check.title}: none found")])
    return ranked(dataclasses.replace(f, target=target) for f in findings)


# Importing the areas registers their checks.
from bsnexus_lab.checks import deps, lag, streams  # noqa: E402, F401
