"""Checks: pure functions from probe frames to findings, registered by area.

A check's parameters name the frames it needs; a parameter ``summary`` of a check registered as
``streams.*`` is the frame ``"streams.summary"``, so frames of different areas never collide. A check that
needs another area's frame says so with ``inputs={"held": "streams.held"}``. A parameter defaulting to None
is optional evidence. :func:`run` passes what the caller collected and skips checks whose required frames are
missing (or, with only optional ones, all of them), so a runbook that gathered only part of the picture still
gets every check that applies. A probe that could not look returns :class:`~bsnexus_lab.findings.Unavailable`
instead of a frame: an empty frame means "nothing wrong", an ``Unavailable`` means "could not look". A check
that required it (or has nothing else to look at) reports "not checked" with its reason and remedy; one that
only used it as optional evidence runs without it.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bsnexus_lab.errors import LabError
from bsnexus_lab.findings import Finding, Kind, Severity, Unavailable, link, not_checked
from bsnexus_lab.thresholds import Thresholds

CheckFunction = Callable[..., list[Finding]]


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    kind: Kind
    function: CheckFunction
    inputs: Mapping[str, str]  # parameter -> qualified frame name
    required: frozenset[str]  # parameters without a default

    @property
    def area(self) -> str:
        return self.id.split(".")[0]


REGISTRY: dict[str, Check] = {}


def check(
    id: str, title: str, *, kind: Kind = Kind.SYMPTOM, inputs: Mapping[str, str] | None = None
) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check under a stable id ``area.name``; ``title`` reads as what it looks for.

    ``kind`` says whether its findings report a root cause, a symptom another finding may explain, or a
    standing configuration risk.
    """

    def decorate(function: CheckFunction) -> CheckFunction:
        if id in REGISTRY:
            raise ValueError(f"check {id!r} registered twice")
        area = id.split(".")[0]
        parameters = {n: p for n, p in inspect.signature(function).parameters.items() if n != "thresholds"}
        named = {name: (inputs or {}).get(name, f"{area}.{name}") for name in parameters}
        required = frozenset(n for n, p in parameters.items() if p.default is inspect.Parameter.empty)
        REGISTRY[id] = Check(id, title, kind, function, named, required)
        return function

    return decorate


def run(
    frames: Mapping[str, Any],
    *,
    thresholds: Thresholds,
    area: str | None = None,
    target: str = "",
) -> list[Finding]:
    """Every applicable check (of ``area``, or all); an ``ok`` finding for each that found nothing.

    ``frames`` are keyed by qualified name (``"streams.summary"``). The result is linked (symptoms under the
    causes that explain them) and ranked. The checks are those the areas registered when they were discovered
    (by the Lab, or :func:`bsnexus_lab.areas.areas`); this module imports no area.
    """
    known = sorted({c.area for c in REGISTRY.values()})
    selected = [c for c in REGISTRY.values() if area is None or c.area == area]
    if area is not None and not selected:
        raise LabError(f"no checks for area {area!r}", hint=f"known areas: {', '.join(known)}")
    unqualified = sorted(name for name in frames if name.split(".")[0] not in known)
    if unqualified:
        raise LabError(
            f"frames must be named area.probe, not {', '.join(unqualified)}",
            hint=f"name each <area>.<probe>; areas: {', '.join(known)}",
        )
    findings: list[Finding] = []
    for chk in selected:
        if any(frames.get(chk.inputs[name]) is None for name in chk.required):
            continue
        given = {name: frames[q] for name, q in chk.inputs.items() if frames.get(q) is not None}
        if not given:  # all its inputs optional and none collected: it has nothing to look at, so says nothing
            continue
        missing = {n: v for n, v in given.items() if isinstance(v, Unavailable)}
        given = {n: v for n, v in given.items() if n not in missing}
        if missing and (missing.keys() & chk.required or not given):  # could not look: never "none found"
            findings.append(_not_checked(chk, next(iter(missing.values()))))
            continue
        result = chk.function(thresholds=getattr(thresholds, chk.area, None), **given)
        if not isinstance(result, list):
            raise TypeError(f"check {chk.id} returned {type(result).__name__}, not a list")
        findings.extend(result or [Finding(chk.id, Severity.OK, f"{chk.title}: none found")])
    return link(_completed(f, target) for f in findings)


def needing(frames: Iterable[str]) -> list[str]:
    """The ids of the registered checks that cannot run without one of ``frames`` (qualified names): what a
    probe that could not look leaves not checked."""
    wanted = set(frames)
    return sorted(c.id for c in REGISTRY.values() if any(c.inputs[name] in wanted for name in c.required))


def _not_checked(chk: Check, missing: Unavailable) -> Finding:
    return not_checked(
        chk.id,
        f"{chk.title}: not checked: {missing.reason}",
        area=chk.area,
        reason=missing.reason,
        remedy=missing.remedy,
        dependency=missing.dependency,
        checks=[chk.id],
    )


def _completed(finding: Finding, target: str) -> Finding:
    """The finding with its target, and its kind from its check's registration when it did not set one."""
    registered = REGISTRY.get(finding.check)
    kind = finding.kind or (registered.kind if registered else Kind.SYMPTOM)
    return dataclasses.replace(finding, target=target, kind=kind)
