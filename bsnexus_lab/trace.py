"""``lab.trace(id)``: one task followed through PostgreSQL, Redis, the logs and the live process, in one view.

The areas do the looking (each declares :class:`~bsnexus_lab.timeline.TraceStep`\\ s); this module runs their
steps in stage order, joins their timeline rows, runs the checks on the frames they gathered and keeps the
findings whose scope meets the task's (its row, entries, consumers, sessions), so the verdict names the same
cause, consumer and remedy the stream and db checks name. When no finding applies, the verdict says where the
task is in its normal life and how long that stage usually takes. What a source could not show is a "not
checked" line, never an error. It names no area.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from bsnexus_lab import checks
from bsnexus_lab.errors import NoSuchTask
from bsnexus_lab.findings import Finding, Kind, Severity, flatten, link, not_checked, to_html, to_text, worst
from bsnexus_lab.findings.render import sections
from bsnexus_lab.text import duration
from bsnexus_lab.timeline import EVENT_COLUMNS, Part, Subject

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bsnexus_lab.lab import Lab

NORM_MIN_TASKS = 5  # fewer finished tasks say nothing about how long a stage usually takes
SLOW_RATIO = 2.0  # a stage lasting more than twice its usual p90 is "slower than usual" (info, never an alarm)


@dataclass(frozen=True)
class Trace:
    """A task's timeline (``timeline``: time, source, event, detail; newest last) and its verdict: the findings
    that concern it, cause first, or its stage in a normal life; plus what could not be looked at."""

    subject: Subject
    timeline: pd.DataFrame
    findings: list[Finding]
    facts: dict[str, Any] = field(default_factory=dict)
    target: str = ""

    @property
    def stage(self) -> dict[str, Any] | None:
        return self.facts.get("stage")

    @property
    def worst(self) -> Severity:
        return worst(self.findings)

    @property
    def exit_code(self) -> int:
        """0 when nothing at warning or worse concerns the task (healthy, or only slow), 1 when something does."""
        return 1 if self.worst.rank >= Severity.WARNING.rank else 0

    def to_dict(self) -> dict[str, Any]:
        """What ``bsnexus-lab trace --json`` prints: the verdict, the findings (as findings.json has them), the
        timeline."""
        return {
            "query": self.subject.query,
            "task_id": self.subject.task_id,
            "worker_id": self.subject.worker_id,
            "target": self.target,
            "verdict": self.headline(),
            "stage": self.stage,
            "exit_code": self.exit_code,
            "findings": [f.to_dict() for f in self.findings],
            "timeline": [{**r, "time": r["time"].isoformat()} for r in self.timeline.to_dict("records")],
        }

    def verdict(self) -> list[Finding]:
        """The findings a runbook emits: those that concern the task, and when none is at warning or worse, one
        ``ok`` finding saying where the task is in its normal life (so a healthy trace is a result too)."""
        if self.worst.rank >= Severity.WARNING.rank:
            return list(self.findings)
        scope = frozenset({f"task:{self.subject.task_id}"} if self.subject.task_id else ())
        subject = (self.subject.task_id or self.subject.worker_id or self.subject.query,)
        said = Finding("trace.verdict", Severity.OK, self.headline(), subject=subject, scope=scope, target=self.target)
        return [*self.findings, said]

    def headline(self) -> str:
        """One line: what the task is and what is wrong with it, or where it is in its life."""
        facts, subject = self.facts, self.subject
        if subject.task_id:
            what = f"Task {subject.task_id}"
            if facts.get("title"):
                what += f" {facts['title']!r} ({facts.get('status')}, {facts.get('project')})"
        else:
            what = f"Worker {subject.worker_id}" if subject.worker_id else f"Entry {subject.query}"
        incidents = sections(self.findings).incidents
        if incidents:
            return f"{what}: {self.worst.value.upper()}: {incidents[0].title}"
        return f"{what}: {self.where()}"

    def context(self) -> list[str]:
        """The task's place in its project: phase, priority, retries, dependencies, who waits behind it, its keys."""
        facts = self.facts
        if "project" not in facts:
            return [f"Holds: {', '.join(facts['tasks'])}"] if facts.get("tasks") else []
        lines = [
            f"Project {facts['project']}, {facts.get('phase') or 'no phase'}; priority {facts.get('priority')}; "
            f"retries {facts.get('retry_count', 0)}; {facts.get('waiting_behind', 0)} tasks of its project wait "
            "behind it"
        ]
        if deps := facts.get("dependencies"):
            lines.append("Depends on: " + ", ".join(f"{d['title']} ({d['status']})" for d in deps))
        if keys := facts.get("task_keys"):
            lines.append("Keys: " + ", ".join(f"{name} {detail}" for name, detail in keys.items()))
        return lines

    def where(self) -> str:
        """Where the task is in its normal life, and how long that stage usually takes."""
        stage, facts = self.stage, self.facts
        if stage is None:
            status = facts.get("status")
            if status is None:
                tasks = facts.get("tasks")
                return f"holds {', '.join(tasks)}" if tasks else "nothing found that needs attention"
            return f"{status} for {duration(facts.get('status_since_s'))}" + _behind(facts)
        text = stage["text"]
        norm = _norm(facts, stage)
        if norm:
            text += f"; usually {duration(norm['median_s'])} (median of {norm['tasks']} tasks)"
        if stage.get("slow"):
            text += ": slower than usual, but nothing is stuck"
        return text

    def text(self) -> str:
        """One screen for a terminal: the verdict, then the timeline."""
        verdict = to_text(self.findings, hints=False) if self.findings else f"Verdict: {self.where()}."
        lines = [self.headline(), *self.context(), "", verdict]
        lines += ["", "Timeline (UTC):"]
        for row in self.timeline.itertuples():
            lines.append(f"  {row.time:%Y-%m-%d %H:%M:%S}  {row.source:8} {row.event}: {row.detail}".rstrip(": "))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from bsnexus_lab.display import frame_html

        head = f"<h3>{html.escape(self.headline())}</h3>"
        head += "".join(f"<div>{html.escape(line)}</div>" for line in self.context())
        verdict = f"<p>Verdict: {html.escape(self.where())}.</p>"
        if self.findings:
            verdict = to_html(self.findings, hints=False)
        shown = self.timeline.assign(time=self.timeline["time"].dt.strftime("%Y-%m-%d %H:%M:%S"))
        buffer = io.BytesIO()
        self.plot().savefig(buffer, format="png", dpi=80)
        lanes = f'<img alt="timeline lanes" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'
        return head + verdict + lanes + frame_html(shown, max_rows=200)

    def plot(self) -> Figure:
        """The timeline as lanes, one per source (postgres, redis, logs, process)."""
        from bsnexus_lab.plotting import figure

        fig, (ax,) = figure((11, 0.9 + 0.7 * max(1, self.timeline["source"].nunique())))
        lanes = {s: n for n, s in enumerate(dict.fromkeys(self.timeline["source"]))}
        for source, rows in self.timeline.groupby("source", sort=False):
            ax.scatter(rows["time"], [lanes[source]] * len(rows), s=36, zorder=3)
            for row in rows.itertuples():
                ax.annotate(str(row.event)[:28], (row.time, lanes[source]), xytext=(0, 7),
                            textcoords="offset points", fontsize=7, rotation=20)  # fmt: skip
        ax.set_yticks(list(lanes.values()), list(lanes))
        ax.set_ylim(-0.6, len(lanes) - 0.2)
        ax.grid(axis="x", alpha=0.3)
        ax.set_title(self.headline()[:110], fontsize=9, loc="left")
        return fig


def trace(lab: Lab, query: str, *, stream: str | None = None) -> Trace:
    """Follow ``query`` (a task id or a unique prefix of one, an entry id, with ``stream`` or as
    ``stream/id``, or a worker id) through every area's trace steps; raises :class:`NoSuchTask` when no source
    knows it."""
    subject = Subject(query.strip(), stream=stream)
    steps = sorted(
        ((step.stage, name, step) for name, area in lab.areas.items() for step in area.trace), key=lambda s: s[:2]
    )
    parts: list[tuple[str, Part]] = []
    for _, name, step in steps:
        part = getattr(lab, name).follow(step, subject)
        subject = part.subject or subject
        parts.append((name, part))
    if not subject.found:
        missing = [p for _, p in parts if p.unavailable]
        looked = "" if not missing else f" (not checked: {_missed(missing)})"
        raise NoSuchTask(f"no task, stream entry or worker named {query!r}{looked}", target=lab.target.name)
    facts: dict[str, Any] = dict(subject.facts)
    for _, part in parts:
        facts.update(part.facts)
    facts["stage"] = _judged(facts)
    frames = {k: v for _, part in parts for k, v in part.frames.items()}
    scope = frozenset().union(*(part.scope for _, part in parts))
    concerning = _concerning(checks.run(frames, thresholds=lab.thresholds, target=lab.target.name), scope)
    unseen = [
        not_checked(
            f"trace.{name}", f"{what}: not checked: {why.reason}", area=name, reason=why.reason, remedy=why.remedy
        )
        for name, part in parts
        for what, why in part.unavailable
    ]
    findings = link([*concerning, *_slow(facts), *unseen])
    rows = [p.events for _, p in parts if p.events is not None and not p.events.empty]
    timeline = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=EVENT_COLUMNS)
    timeline = timeline.sort_values("time", kind="stable", ignore_index=True)
    return Trace(subject, timeline, findings, facts, lab.target.name)


def _missed(parts: list[Part]) -> str:
    return "; ".join(f"{what}: {why.reason}" for p in parts for what, why in p.unavailable)


def _concerning(findings: list[Finding], scope: frozenset[str]) -> list[Finding]:
    """The findings about this task's story (unnested, to be linked again among themselves), none "ok"."""
    return [
        dataclasses.replace(f, explains=())
        for f in flatten(findings)
        if f.scope & scope and f.severity is not Severity.OK and f.kind is not Kind.NOT_CHECKED
    ]


def _judged(facts: dict[str, Any]) -> dict[str, Any] | None:
    """The stage, marked slow when it has lasted over :data:`SLOW_RATIO` times its usual p90."""
    stage = facts.get("stage")
    if stage is None:
        return None
    norm = _norm(facts, stage)
    if norm and stage["since_s"] > SLOW_RATIO * norm["p90_s"]:
        return {**stage, "slow": True}
    return stage


def _norm(facts: dict[str, Any], stage: dict[str, Any]) -> dict[str, Any] | None:
    """How long the stage's status usually lasts, when enough finished tasks say so."""
    norm = facts.get("norms", {}).get(stage["stage"])
    return norm if norm and norm["tasks"] >= NORM_MIN_TASKS and norm.get("p90_s") is not None else None


def _slow(facts: dict[str, Any]) -> list[Finding]:
    """A slow but healthy stage is said at info, with the norm it is measured against: never an alarm."""
    stage = facts.get("stage")
    if not stage or not stage.get("slow"):
        return []
    norm = _norm(facts, stage) or {}
    return [
        Finding(
            "trace.slow_stage",
            Severity.INFO,
            f"{stage['text'][0].upper()}{stage['text'][1:]}: longer than usual (p90 {duration(norm['p90_s'])})",
            evidence={
                "since_s": stage["since_s"],
                "median_s": norm["median_s"],
                "p90_s": norm["p90_s"],
                "tasks": norm["tasks"],
            },
            remedy="Nothing is stuck: the task's holder is alive. Look at the task itself (its size, its worker's "
            "log) if it keeps going.",
            kind=Kind.SYMPTOM,
        )
    ]


def _behind(facts: dict[str, Any]) -> str:
    holding = facts.get("holding_task")
    if facts.get("status") in ("ready", "waiting") and holding:
        return f", behind task {holding} ({facts.get('holding_status')}), one task per project at a time"
    return ""
