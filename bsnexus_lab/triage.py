"""Triage: reachability first, then every area's quick snapshot and every check, ranked cause before symptom.

Triage names no area: it reads what each declares in the Lab's registry (``lab.areas``): its part in
reachability (which answers ``lab.health()``, which is collected right after), its quick snapshot
(``collect``) and the samples it takes (``sample``, kept as ``samples``), so triage grows as areas land.
A dependency that is down shortens the run (areas that send Redis commands are skipped when Redis is down,
with a finding the dependency's cause explains); an area that cannot collect is a "not checked" finding
(:func:`bsnexus_lab.findings.not_checked`), never a crash. Lag needs a window: triage samples briefly itself
and adds the samples that recent runs on the same target kept in the history
(:func:`bsnexus_lab.history.keep`).
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

from bsnexus_lab import history
from bsnexus_lab.areas import health_area, reachability_first
from bsnexus_lab.checks import REGISTRY
from bsnexus_lab.errors import LabError
from bsnexus_lab.findings import Finding, Kind, Severity, flatten, link, not_checked, render
from bsnexus_lab.findings.notebook import bundle


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
    answers = health_area(lab.areas)
    snapshot.timings[answers.name] = time.perf_counter() - started
    snapshot.frames[f"{answers.name}.health"] = health
    down = {row.dependency for row in health.itertuples() if not row.reachable}
    wanted = set(names) if names is not None else None
    for area in reachability_first(lab.areas):
        name = area.name
        if area.collect is None or area is answers or (wanted is not None and name not in wanted):
            continue
        if "redis" in down and area.commands:
            snapshot.problems.append(_skipped(name, "Redis is unreachable", dependency="redis"))
            continue
        started = time.perf_counter()
        try:
            snapshot.frames |= area.collect(getattr(lab, name))
        except LabError as exc:
            dependency = "postgresql" if "postgresql" in down else None
            snapshot.problems.append(_skipped(name, str(exc), error=str(exc), dependency=dependency))
        snapshot.timings[name] = time.perf_counter() - started
    return snapshot


def _skipped(area: str, reason: str, *, error: str = "", dependency: str | None) -> Finding:
    """The area could not collect: every check it registered stands not checked (so no history reads it resolved)."""
    return not_checked(
        f"{area}.skipped",
        f"{area} not checked: {reason}",
        area=area,
        reason=reason,
        error=error,
        remedy="Restore what it needs, then triage again." if dependency else "See the reason; it names what to fix.",
        dependency=dependency,
        checks=sorted(c.id for c in REGISTRY.values() if c.area == area),
    )


@dataclass
class Triage:
    """What a triage found; shows itself as the first screen (:func:`bsnexus_lab.findings.render.to_text`)."""

    target: str
    started: datetime
    elapsed_s: float
    health: pd.DataFrame
    frames: dict[str, Any]
    findings: list[Finding]
    own_samples: dict[str, pd.DataFrame]  # what this triage sampled itself, by frame name (for the history)
    timings: dict[str, float]

    def problems(self) -> list[Finding]:
        """Top-level findings above info, causes first within a severity (as ranked); "not checked" is no problem."""
        return [f for f in self.findings if f.kind is not Kind.NOT_CHECKED and f.effective.rank > Severity.INFO.rank]

    def headline(self) -> str:
        """Target, time and verdict line: "Triage of sandbox at ... UTC: CRITICAL: 1 incident, ..."."""
        return f"Triage of {self.target} at {self.started:%Y-%m-%d %H:%M:%S} UTC: {render.verdict(self.findings)}"

    def footer(self) -> str:
        reachable = ", ".join(
            f"{r.dependency} {'up ' + str(r.version) if r.reachable else 'DOWN'}" for r in self.health.itertuples()
        )
        return f"Dependencies: {reachable}. Took {self.elapsed_s:.1f} s."

    def shown_text(self, first_screen: bool = True) -> str:
        """Headline, the first screen of findings (unless ``first_screen`` is False), dependencies."""
        body = [render.to_text(self.findings)] if first_screen else []
        return "\n".join([self.headline(), *body, self.footer()])

    def shown_html(self, first_screen: bool = True) -> str:
        body = render.to_html(self.findings) if first_screen else ""
        return (
            f'<div id="bsnexus-lab-triage"><h3>{html.escape(self.headline())}</h3>{body}'
            f"<p>{html.escape(self.footer())}</p></div>"
        )

    def __repr__(self) -> str:
        return self.shown_text()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """The first screen, carrying the findings for the runner, so a runbook shows them once
        (:func:`bsnexus_lab.findings.notebook.bundle`)."""
        return bundle(self.findings) | {"text/plain": self.shown_text(), "text/html": self.shown_html()}


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
    samplers = {
        area.samples: area.sample(getattr(lab, area.name), every_s, window_s)
        for area in lab.areas.values()
        if area.sample is not None and (redis_up or not area.commands)
    }
    snapshot = collect(lab, health=health)
    own = {name: sampler.wait() for name, sampler in samplers.items()}
    for name, frame in own.items():
        snapshot.frames[name] = _with_history(name, frame, lab.target.name, started - history_window, runs_dir)
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


def keep(result: Triage) -> None:
    """In a runbook: keep the samples this triage took in the run's history, for the next triages' lag."""
    for name, frame in result.own_samples.items():
        history.keep(name, frame)


def _with_history(name: str, own: pd.DataFrame, target: str, since: datetime, runs_dir: Path | None) -> pd.DataFrame:
    """This triage's samples after those that recent runs on the same target kept."""
    runs = history.History(runs_dir)
    past = runs.samples(name, target=target, since=since) if runs.path.exists() else pd.DataFrame()
    if past.empty or "time" not in past:
        return own
    past = past.assign(time=pd.to_datetime(past["time"], utc=True, format="ISO8601")).set_index("time")
    combined = pd.concat([past[[c for c in own.columns if c in past]], own])
    for column in own.columns:
        if str(own[column].dtype) == "Int64":
            combined[column] = pd.to_numeric(combined[column]).astype("Int64")
    return combined.sort_index()
