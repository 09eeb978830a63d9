"""Findings: what a check concluded, as a value that survives JSON, notebooks and reports.

A finding is a cause, a symptom, or a standing configuration risk (:class:`Kind`). Findings about one story
(consumers stop, the backlog grows, trimming drops messages) share scope tokens such as
``stream:tasks:queue/workers`` or ``task:<id>``; :func:`link` nests every symptom that a cause in the same
run explains under that cause, so a report reads as causes with their consequences, not as unrelated alarms.

The severity and ranking policy (README, "Severities and ranking"), enforced here rather than per check:
what is wrong now ranks first, a cause then its symptoms; standing configuration risks are graded by their
exposure and never rank above an incident; a finding is shown at its :attr:`Finding.effective` severity (never
milder than what it explains), its own kept as ``own_severity``; what could not be checked
(:data:`Kind.NOT_CHECKED`) is a list of its own, counted by no severity and failing a run only with
``--fail-on not-checked`` (:func:`bsnexus_lab.verdict.judge`).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class Severity(enum.StrEnum):
    OK = "ok"
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class Kind(enum.StrEnum):
    """What a finding reports: a root cause, a consequence another finding may explain, or a standing risk."""

    CAUSE = "cause"
    SYMPTOM = "symptom"
    CONFIG = "config"
    NOT_CHECKED = "not-checked"  # the check could not look: neither a problem nor "none found"


_KIND_ORDER = {Kind.CAUSE: 0, Kind.CONFIG: 1, Kind.SYMPTOM: 2, None: 2, Kind.NOT_CHECKED: 3}


@dataclass(frozen=True)
class Unavailable:
    """A probe's answer when it could not look (no versions directory, memray not importable, no privilege).

    A frame of this type tells :func:`bsnexus_lab.checks.run` that the input is *missing*, not empty: the
    checks that needed it say "not checked: ``reason``" with ``remedy``, never "none found".
    """

    reason: str
    remedy: str = ""
    dependency: str | None = None

    @classmethod
    def from_error(cls, error: Exception) -> Unavailable:
        """What a refusal said (a :class:`~bsnexus_lab.errors.LabError`): its message, and its hint as remedy."""
        hint = getattr(error, "hint", None) or ""
        text = str(error)
        return cls(text.removesuffix(f": {hint}") if hint else text, remedy=hint)


@dataclass(frozen=True)
class Finding:
    """One conclusion. ``check`` is a stable id (``streams.dead_consumer``); with ``subject`` it forms
    :attr:`key`, which names the same problem across runs (for diffs and silencing)."""

    check: str
    severity: Severity
    title: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    remedy: str = ""
    target: str = ""
    kind: Kind | None = None
    subject: tuple[str, ...] = ()
    scope: frozenset[str] = frozenset()
    explains: tuple[Finding, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.check}:{'/'.join(self.subject)}" if self.subject else self.check

    @property
    def effective(self) -> Severity:
        """The worst of this finding and what it explains: a cause ranks by its worst consequence.

        What could not be checked raises nothing: it is neither a problem nor its absence.
        """
        return max(
            [self.severity, *(f.effective for f in self.explains if f.kind is not Kind.NOT_CHECKED)],
            key=lambda s: s.rank,
        )

    def to_dict(self) -> dict[str, Any]:
        """As ``findings.json`` keeps it: ``severity`` is the effective one (what the reader must see), the
        finding's own is ``own_severity``."""
        return {
            "check": self.check,
            "severity": self.effective.value,
            "own_severity": self.severity.value,
            "title": self.title,
            "evidence": dict(self.evidence),
            "remedy": self.remedy,
            "target": self.target,
            "kind": self.kind.value if self.kind else None,
            "key": self.key,
            "subject": list(self.subject),
            "scope": sorted(self.scope),
            "explains": [f.to_dict() for f in self.explains],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """A finding from :meth:`to_dict` (or schema 1's dict, whose ``severity`` was its own)."""
        return cls(
            check=data["check"],
            severity=Severity(data.get("own_severity") or data["severity"]),
            title=data["title"],
            evidence=dict(data.get("evidence", {})),
            remedy=data.get("remedy", ""),
            target=data.get("target", ""),
            kind=Kind(data["kind"]) if data.get("kind") else None,
            subject=tuple(data.get("subject", ())),
            scope=frozenset(data.get("scope", ())),
            explains=tuple(cls.from_dict(f) for f in data.get("explains", ())),
        )


def ranked(findings: Iterable[Finding]) -> list[Finding]:
    """The one ranking every rendering uses: what is wrong now, then standing risks, then the rest.

    Tiers, in order: incidents (a cause or symptom at warning or worse, by effective severity), configuration
    risks at warning or worse, everything at info or ok, then what could not be checked. Within a tier, worst
    effective severity first, then causes before configuration risks before symptoms. So a standing risk never
    outranks an incident, whatever its severity, and "not checked" never reads as a result.
    """
    return sorted(findings, key=lambda f: rank_key(f.effective, f.kind))


def rank_key(effective: Severity, kind: Kind | None) -> tuple[int, int, int]:
    """Where a finding of this effective severity and kind stands in :func:`ranked` (smallest first): for
    rankings of stored rows (the history) that are no longer findings."""
    if kind is Kind.NOT_CHECKED:
        tier = 3
    elif effective.rank < Severity.WARNING.rank:
        tier = 2
    else:
        tier = 1 if kind is Kind.CONFIG else 0
    return tier, -effective.rank, _KIND_ORDER[kind]


def link(findings: Iterable[Finding]) -> list[Finding]:
    """Nest each symptom under the cause that explains it (shared scope); return the top level, ranked.

    A symptom with several candidate causes goes to the most severe one. Causes and configuration risks stay
    at the top level; ``ok`` findings are never nested.
    """
    findings = list(findings)
    causes = ranked(f for f in findings if f.kind is Kind.CAUSE and f.severity is not Severity.OK and f.scope)
    attached: dict[int, list[Finding]] = {id(c): list(c.explains) for c in causes}
    top = []
    for finding in findings:
        if finding.kind is not Kind.CAUSE and finding.severity is not Severity.OK and finding.scope:
            cause = next((c for c in causes if c.scope & finding.scope), None)
            if cause is not None:
                attached[id(cause)].append(finding)
                continue
        top.append(finding)
    return ranked(
        dataclasses.replace(f, explains=tuple(ranked(attached[id(f)]))) if id(f) in attached else f for f in top
    )


def flatten(findings: Iterable[Finding]) -> list[Finding]:
    """Every finding, explained ones included, depth first."""
    out = []
    for f in findings:
        out.append(f)
        out.extend(flatten(f.explains))
    return out


def worst(findings: Iterable[Finding], *, kinds: Iterable[Kind] | None = None) -> Severity:
    """The worst severity among the findings and everything they explain (optionally only some kinds).

    Findings that could not look are not counted: a run that could check nothing is not "ok", but neither is
    it critical; :func:`bsnexus_lab.verdict.judge` decides what "not checked" means for an exit status.
    """
    wanted = None if kinds is None else set(kinds)
    return max(
        (
            f.severity
            for f in flatten(findings)
            if f.kind is not Kind.NOT_CHECKED and (wanted is None or (f.kind or Kind.SYMPTOM) in wanted)
        ),
        key=lambda s: s.rank,
        default=Severity.OK,
    )


def not_checked(
    check: str,
    title: str,
    *,
    area: str,
    reason: str,
    probe: str = "",
    error: Any = "",
    remedy: str = "",
    dependency: str | None = None,
    not_run: Sequence[str] | None = None,
    checks: Sequence[str] | None = None,
    severity: Severity = Severity.INFO,
) -> Finding:
    """An area, or one probe of it, could not look: said as a finding of its own, never silence or a traceback.

    Every such finding carries the same evidence (``area``, ``probe``, ``reason``, ``error``, and ``not_run``
    when the probes after it were given up) and, when a dependency stopped it, that dependency's ``dep:`` scope,
    so the finding that the dependency is down explains it.
    """
    evidence = {"area": area, "probe": probe, "reason": reason, "error": error}
    if not_run is not None:
        evidence["not_run"] = list(not_run)
    if checks is not None:
        evidence["checks"] = list(checks)
    return Finding(
        check,
        severity,
        title,
        evidence=evidence,
        remedy=remedy,
        kind=Kind.NOT_CHECKED,
        subject=(probe or area,),
        scope=frozenset({f"dep:{dependency}"} if dependency else ()),
    )
