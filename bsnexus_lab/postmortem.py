"""Postmortems assembled from the evidence: what the history can tell is generated, what only people know is
asked for.

Generated: the timeline (run times; when each finding was first and last seen, and when it was resolved or a
run could not check it, which is never "resolved"), the findings (each at its worst severity, with the title it
had then), what could not be checked, detection time, key figures (from the evidence runs' notebooks, plus
findings per run) and links to the runs.
From the RCA notebook when one is given (its ``##`` sections), otherwise left as marked prompts: summary,
impact, root cause, trigger, resolution, action items. ``postmortem.md`` sits beside its figures;
``postmortem.html`` inlines them so it can be attached to a ticket.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from bsnexus_lab.errors import LabError
from bsnexus_lab.findings import Kind, Severity, rank_key
from bsnexus_lab.history import NOT_CHECKED, History, location, unreadable

PROMPT = "> **To fill in (people):** {}"
# Section of the postmortem -> the RCA notebook headings that answer it, and the prompt when none does.
HUMAN_SECTIONS = {
    "Summary": (("summary", "symptom"), "one paragraph: what broke, for whom, for how long."),
    "Impact": (("impact", "expected vs actual"), "who and what was affected (projects stalled, tasks delayed)."),
    "Root cause": (("root cause",), "the cause the evidence below supports."),
    "Trigger": (("trigger",), "what set it off (a deploy, a worker host lost, a traffic spike)."),
    "Resolution": (("fix", "resolution"), "what was done to restore service, and when."),
    "Action items": (("prevention", "action items"), "what keeps it from recurring: owner and date for each."),
}
FIGURES_PER_RUN = 2


@dataclass(frozen=True)
class Postmortem:
    folder: Path
    markdown: Path
    html: Path


def write(
    incident: str,
    *,
    since: datetime,
    until: datetime,
    runs: Iterable[str] = (),
    rca: Path | None = None,
    history: History | None = None,
    output: Path | None = None,
) -> Postmortem:
    """Write ``postmortems/<incident>/postmortem.md`` and ``.html`` (under ``output``, default the cwd)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", incident):
        raise LabError(f"incident name {incident!r} must be letters, digits, '.', '_' or '-'")
    index = history or History()
    listed = index.runs()
    wanted = list(runs)
    if wanted:
        missing = sorted(set(wanted) - set(listed["id"]))
        if missing:
            raise LabError(f"no run {', '.join(missing)} in {index.where}", hint="list them with `bsnexus-lab runs`")
        chosen = listed[listed["id"].isin(wanted)]
    else:
        started = pd.to_datetime(listed["started"], utc=True, format="ISO8601")
        chosen = listed[(started >= since) & (started <= until)]
    if chosen.empty:
        raise LabError(
            f"no runs between {since:%Y-%m-%d %H:%M} and {until:%Y-%m-%d %H:%M} UTC in {index.where}",
            hint="widen --since/--until or name runs with --runs",
        )
    chosen = chosen.sort_values("started", ignore_index=True)
    folder = (output or Path.cwd()) / "postmortems" / incident
    folder.mkdir(parents=True, exist_ok=True)
    seen = index.timeline(since=since, until=until, run_ids=chosen["id"])
    unchecked = {run_id: index.unchecked(run_id) for run_id in chosen["id"]}
    not_looked = _not_checked(index, chosen)
    answers = rca_sections(rca) if rca else {}
    figures = [("Findings per run", _findings_figure(chosen)), *_run_figures(chosen)]
    for number, (_, png) in enumerate(figures, 1):
        (folder / f"figure-{number}.png").write_bytes(png)
    markdown = _markdown(incident, since, until, chosen, seen, unchecked, not_looked, answers, figures, folder, rca)
    (folder / "postmortem.md").write_text(markdown)
    (folder / "postmortem.html").write_text(_html(incident, markdown, figures))
    return Postmortem(folder, folder / "postmortem.md", folder / "postmortem.html")


def rca_sections(path: Path) -> dict[str, str]:
    """The RCA notebook's ``##`` markdown sections by lower-cased heading, template prompts left out."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    sections: dict[str, list[str]] = {}
    current = None
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            heading = re.match(r"^##\s+(.*)$", line)
            if heading:
                current = heading[1].strip().lower()
                sections.setdefault(current, [])
            elif current is not None and not line.lstrip().startswith(">"):  # quoted lines are the template's prompts
                sections[current].append(line)
    return {name: "\n".join(lines).strip() for name, lines in sections.items() if "\n".join(lines).strip()}


def _markdown(
    incident: str,
    since: datetime,
    until: datetime,
    runs: pd.DataFrame,
    seen: pd.DataFrame,
    unchecked: Mapping[str, set[str]],
    not_looked: list[str],
    answers: Mapping[str, str],
    figures: list[tuple[str, bytes]],
    folder: Path,
    rca: Path | None,
) -> str:
    lines = [f"# Postmortem: {incident}", "", f"Window: {since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC. "]
    lines[-1] += f"Evidence: {len(runs)} runs on {', '.join(sorted(set(runs['target'])))}."
    if rca:
        lines.append(f"Root-cause analysis: `{rca}`.")
    for section, (headings, prompt) in HUMAN_SECTIONS.items():
        answer = next((answers[h] for h in headings if h in answers), None)
        lines += ["", f"## {section}", "", answer or PROMPT.format(prompt)]
    lines += ["", "## Detection", "", _detection(runs, since)]
    lines += ["", "## Findings", "", "| finding | worst | first seen | last seen | runs |", "|---|---|---|---|---|"]
    lines += [
        f"| {_cell(row.title)} (`{row.key}`) | {row.worst} | {_short(row.first_seen)} | {_short(row.last_seen)} | "
        f"{row.runs} |"
        for row in sorted(seen.itertuples(), key=_rank)
    ] or ["| none above ok | | | | |"]
    if not_looked:
        lines += ["", "## Not checked", "", *not_looked]
    lines += ["", "## Timeline (UTC)", ""]
    lines += _timeline(runs, seen, unchecked)
    lines += ["", "## Key figures", ""]
    lines += [f"![{title}](figure-{n}.png)\n" for n, (title, _) in enumerate(figures, 1)]
    lines += ["## Evidence runs", ""]
    for row in runs.to_dict("records"):
        report = Path(row["run_dir"]) / "report.html"
        link = _relative(report, folder) if report.exists() else location(row)
        lines.append(
            f"- [{row['id']}]({link}): {row['runbook']} on {row['target']}, {row['status']} (exit {row['exit_code']})"
        )
    missing = unreadable(runs)
    if missing:  # a fleet's history: runs made on other hosts keep their directories there
        lines += ["", "## Artefacts not read", ""]
        lines += [f"- `{run_id}`: notebook and report at {where}, not readable here (no figures, no link)"
                  for run_id, where in missing.items()]  # fmt: skip
    return "\n".join(lines) + "\n"


def _detection(runs: pd.DataFrame, since: datetime) -> str:
    alarming = runs[(runs["warning"] > 0) | (runs["critical"] > 0)]
    if alarming.empty:
        return "No run in the window reported a warning or worse."
    first = alarming.iloc[0]
    at = datetime.fromisoformat(first["ended"])
    delay = (at - since).total_seconds() / 60
    return (
        f"First detected at {at:%Y-%m-%d %H:%M:%S} UTC by runbook `{first['runbook']}` (run `{first['id']}`), "
        f"{delay:.0f} min after the window opened ({since:%H:%M}); {int(first['critical'])} critical, "
        f"{int(first['warning'])} warning."
    )


def _rank(row: Any) -> tuple[int, int, int]:
    """A timeline row's place in the one ranking: incidents, then standing risks, then the rest."""
    return rank_key(Severity(row.worst), Kind(row.kind) if isinstance(row.kind, str) else None)


def _not_checked(index: History, runs: pd.DataFrame) -> list[str]:
    """One line per check that some run could not do: its title, and in which runs."""
    missed: dict[str, list[str]] = {}
    for run_id in runs["id"]:
        found = index.findings(run_id)
        for title in dict.fromkeys(found[found["kind"] == NOT_CHECKED]["title"]):
            missed.setdefault(title, []).append(run_id)
    return [f"- {_cell(title)} (runs {', '.join(f'`{r}`' for r in ids)})" for title, ids in missed.items()]


def _timeline(runs: pd.DataFrame, seen: pd.DataFrame, unchecked: Mapping[str, set[str]]) -> list[str]:
    events = [
        (row.started, f"run `{row.id}` ({row.runbook}): {row.status}, {row.critical} critical, {row.warning} warning")
        for row in runs.itertuples()
    ]
    events += [(row.first_seen, f"first seen: {row.title}") for row in seen.itertuples()]
    events += [(row.last_seen, f"last seen: {row.title}") for row in seen.itertuples()]
    for row in seen.itertuples():  # gone from a run that looked: resolved; from one that could not: not checked
        for later in runs[runs["started"] > row.last_seen].itertuples():
            if row.check in unchecked.get(later.id, ()):
                events.append((later.started, f"not checked (run `{later.id}` could not look): {row.title}"))
                continue
            events.append((later.started, f"resolved (run `{later.id}` no longer reports it): {row.title}"))
            break
    return [f"- {_short(at)}: {_cell(text)}" for at, text in sorted(events)]


def _findings_figure(runs: pd.DataFrame) -> bytes:
    from bsnexus_lab.plotting import figure

    fig, [axes] = figure((8, 3))
    times = pd.to_datetime(runs["started"], utc=True, format="ISO8601")
    colours = {"critical": "#c0392b", "warning": "#e0a800", "info": "#5dade2"}
    bottom = pd.Series(0, index=runs.index)
    for severity, colour in colours.items():
        axes.bar(times, runs[severity], bottom=bottom, width=0.0005, color=colour, label=severity)
        bottom = bottom + runs[severity]
    axes.set_ylabel("findings")
    axes.set_xlabel("run start (UTC)")
    axes.legend(loc="upper right", fontsize="small")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def _run_figures(runs: pd.DataFrame) -> list[tuple[str, bytes]]:
    """The plots of the first run that found something (the incident as detected) and of the last run."""
    alarming = runs[(runs["warning"] > 0) | (runs["critical"] > 0)]
    picked = list(dict.fromkeys([*alarming["id"].head(1), runs["id"].iloc[-1]]))
    figures = []
    for row in runs[runs["id"].isin(picked)].itertuples():
        notebook = Path(row.run_dir) / "notebook.ipynb"
        if not notebook.exists():
            continue
        cells = json.loads(notebook.read_text()).get("cells", [])
        pngs = [o["data"]["image/png"] for c in cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
        figures += [(f"{row.runbook}, run {row.id}", base64.b64decode(png)) for png in pngs[:FIGURES_PER_RUN]]
    return figures


def _html(incident: str, markdown: str, figures: list[tuple[str, bytes]]) -> str:
    import mistune

    for number, (_, png) in enumerate(figures, 1):
        markdown = markdown.replace(
            f"(figure-{number}.png)", f"(data:image/png;base64,{base64.b64encode(png).decode()})"
        )
    body = mistune.create_markdown(plugins=["table"])(markdown)
    style = (
        "body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        "blockquote{background:#fff3cd;margin:0;padding:4px 12px}img{max-width:100%}"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Postmortem: {html.escape(incident)}</title>"
        f"<style>{style}</style></head><body>{body}</body></html>"
    )


def _short(moment: str) -> str:
    return datetime.fromisoformat(moment).strftime("%Y-%m-%d %H:%M:%S")


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _relative(path: Path, start: Path) -> str:
    import os

    return os.path.relpath(path, start)
