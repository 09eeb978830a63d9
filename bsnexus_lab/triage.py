"""Triage: reachability first, then every area's quick snapshot and every check, ranked cause before symptom.

Reachability is the deps area (Redis, PostgreSQL) and the service area (``/health``, ``/health/deps`` when
the target has a ``service_url``).

Areas are discovered through the registry (:func:`bsnexus_lab.areas.areas` and each area's ``collect``), so
triage grows as areas land. A dependency that is down shortens the run (areas that need it are skipped with
a finding the ``deps.unreachable`` cause explains); an area that cannot collect is a "could not check"
finding, never a crash. Lag needs a window: triage samples briefly itself and adds the samples that recent
runs on the same target kept in the history (:func:`bsnexus_lab.history.keep`).
"""

from __future__ import annotations

import dataclasses
import html
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from bsnexus_lab.areas import areas as registered_areas
from bsnexus_lab.errors import LabError
from bsnexus_lab.findings import Finding, Kind, Severity, flatten, link
from bsnexus_lab.history import History

SAMPLES = "streams.samples"
REACHABILITY = ("deps", "service")  # collected first: Redis, PostgreSQL, then the service's /health endpoints
SUMMARY_LINES = 3  # causes on the one-screen summary; the rest follows in the findings table


@dataclass
class Snapshot:
    """Frames keyed by qualified name, the areas that could not be checked (as findings), seconds per step."""

    frames: dict[str, Any] = field(default_factory=dict)
    problems: list[Finding] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def collect(lab: Any, names: Iterable[str] | None = None, *, health: pd.DataFrame | None = None) -> Snapshot:
    """Every registered area's quick snapshot (or only ``names``), after reachability."""
    snapshot = Snapshot()
    started = time.perf_counter()
    health = lab.health() if health is None else health
    snapshot.timings["deps"] = time.perf_counter() - started
    snapshot.frames["deps.health"] = health
    down = {row.dependency for row in health.itertuples() if not row.reachable}
    wanted = set(names) if names is not None else None
    reachability_first = sorted(registered_areas().items(), key=lambda item: item[0] not in REACHABILITY)
    for name, area in reachability_first:
        if area.collect is None or name == "deps" or (wanted is not None and name not in wanted):
            continue
        if "redis" in down and area.commands:
            snapshot.problems.append(_skipped(name, "Redis is unreachable", {"dep:redis"}))
            continue
        started = time.perf_counter()
        try:
            snapshot.frames |= area.collect(getattr(lab, name))
        except LabError as exc:
            scope = {"dep:postgresql"} if "postgresql" in down else set()
            snapshot.problems.append(_skipped(name, str(exc), scope))
        snapshot.timings[name] = time.perf_counter() - started
    return snapshot


def _skipped(area: str, reason: str, scope: set[str]) -> Finding:
    return Finding(
        check=f"{area}.skipped",
        severity=Severity.WARNING,
        title=f"{area} not checked: {reason}",
        evidence={"area": area, "reason": reason},
        remedy="Restore what it needs, then triage again." if scope else "See the reason; it names what to fix.",
        subject=(area,),
        scope=frozenset(scope),
    )


@dataclass
class Triage:
    """What a triage found; shows itself as the one-screen summary."""

    target: str
    started: datetime
    elapsed_s: float
    health: pd.DataFrame
    frames: dict[str, Any]
    findings: list[Finding]
    own_samples: pd.DataFrame | None
    timings: dict[str, float]

    def problems(self) -> list[Finding]:
        """Top-level findings above info, causes first within a severity (as ranked)."""
        return [f for f in self.findings if f.effective.rank > Severity.INFO.rank]

    def verdict(self) -> Severity:
        return max((f.effective for f in self.findings), key=lambda s: s.rank, default=Severity.OK)

    def _lines(self) -> list[tuple[str, str, list[str], str]]:
        out = []
        for finding in self.problems()[:SUMMARY_LINES]:
            evidence = [f"{k}: {v}" for k, v in list(finding.evidence.items())[:4]]
            if finding.explains:
                evidence.append(f"explains: {'; '.join(f.title for f in finding.explains[:3])}")
            out.append(
                (finding.effective.value.upper(), f"{finding.title} [{finding.check}]", evidence, finding.remedy)
            )
        return out

    def _footer(self) -> str:
        counts = {s: sum(1 for f in flatten(self.findings) if f.severity is s) for s in Severity}
        more = max(0, len(self.problems()) - SUMMARY_LINES)
        deps = ", ".join(
            f"{r.dependency} {'up ' + str(r.version) if r.reachable else 'DOWN'}" for r in self.health.itertuples()
        )
        return (
            f"{more} more above info below; {counts[Severity.INFO]} info, {counts[Severity.OK]} checks ok. "
            f"Dependencies: {deps}. Took {self.elapsed_s:.1f} s."
        )

    def __repr__(self) -> str:
        head = f"Triage of {self.target} at {self.started:%Y-%m-%d %H:%M:%S} UTC: {self.verdict().value.upper()}"
        lines = [head]
        if not self.problems():
            lines.append("Nothing wrong found above info.")
        for severity, title, evidence, remedy in self._lines():
            lines.append(f"{severity:8} {title}")
            lines += [f"         {e}" for e in evidence]
            lines.append(f"         what to do: {remedy}")
        lines.append(self._footer())
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        items = "".join(
            f"<li><b>{html.escape(severity)}</b> {html.escape(title)}<br><small>"
            + "<br>".join(html.escape(e) for e in evidence)
            + f"</small><br><i>What to do:</i> {html.escape(remedy)}</li>"
            for severity, title, evidence, remedy in self._lines()
        )
        body = f"<ol>{items}</ol>" if items else "<p>Nothing wrong found above info.</p>"
        return (
            f'<div id="bsnexus-lab-triage"><h3>Triage of {html.escape(self.target)}: {self.verdict().value.upper()}'
            f"</h3><p>{self.started:%Y-%m-%d %H:%M:%S} UTC</p>{body}<p>{html.escape(self._footer())}</p></div>"
        )


def run(
    lab: Any,
    *,
    window_s: float = 3.0,
    every_s: float = 0.5,
    history_window: timedelta = timedelta(minutes=15),
    runs_dir: Path | None = None,
) -> Triage:
    """Reachability, then every area and check; lag judged over recent runs' samples plus ``window_s`` of its own."""
    started = datetime.now(UTC)
    clock = time.perf_counter()
    health = lab.health()
    redis_up = bool(health.set_index("dependency").loc["redis", "reachable"])
    sampler = (
        lab.streams.sample(every=every_s, duration=window_s) if redis_up and "streams" in registered_areas() else None
    )
    snapshot = collect(lab, health=health)
    own = None
    if sampler is not None:
        own = sampler.wait()
        snapshot.frames[SAMPLES] = _with_history(own, lab.target.name, started - history_window, runs_dir)
    extra = snapshot.problems
    checked = [dataclasses.replace(f, explains=()) for f in flatten(lab.check(snapshot.frames))]  # linked anew below
    findings = link([*checked, *(_targeted(f, lab.target.name) for f in extra)])
    return Triage(
        target=lab.target.name,
        started=started,
        elapsed_s=time.perf_counter() - clock,
        health=health,
        frames=snapshot.frames,
        findings=findings,
        own_samples=own,
        timings=snapshot.timings,
    )


def _targeted(finding: Finding, target: str) -> Finding:
    return dataclasses.replace(finding, target=target, kind=finding.kind or Kind.SYMPTOM)


def _with_history(own: pd.DataFrame, target: str, since: datetime, runs_dir: Path | None) -> pd.DataFrame:
    """This triage's samples after those that recent runs on the same target kept."""
    history = History(runs_dir)
    past = history.samples(SAMPLES, target=target, since=since) if history.path.exists() else pd.DataFrame()
    if past.empty or "time" not in past:
        return own
    past = past.assign(time=pd.to_datetime(past["time"], utc=True, format="ISO8601")).set_index("time")
    combined = pd.concat([past[[c for c in own.columns if c in past]], own])
    for column in own.columns:
        if str(own[column].dtype) == "Int64":
            combined[column] = pd.to_numeric(combined[column]).astype("Int64")
    return combined.sort_index()
