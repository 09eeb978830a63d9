"""Renderings of findings: JSON (the contract schedulers read), HTML (notebooks, reports), plain text (CLI).

Each takes findings as :func:`bsnexus_lab.findings.model.link` left them: causes with what they explain. HTML
and text open with the first screen an engineer reads at 3 a.m. (:func:`sections`): what is wrong now (at most
:data:`FIRST_SCREEN` incidents told with their evidence and what to do, then any others), the standing
configuration risks, the rest; then what could not be checked, as a short list of its own; and the checks
that found nothing as one line. Every row shows the severity a finding is ranked by (its effective one) and
its own beside it when that is milder; evidence reads in units (:func:`bsnexus_lab.text.in_units`).
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Iterable
from dataclasses import dataclass, field

from bsnexus_lab.findings import document
from bsnexus_lab.findings.model import Finding, Kind, Severity, flatten, rank_key, ranked, worst
from bsnexus_lab.text import in_units, label, number, plural

TRACE_HINTS = 3  # a finding naming at most this many tasks shows the command to trace each; more would be a list
FIRST_SCREEN = 3  # incidents told first, with evidence and what to do; more would push the cause off a screen
MAX_VALUE = 160  # longer evidence values (id lists, JSON) are cut with an ellipsis

COLOURS = {"critical": "#f8d7da", "warning": "#fff3cd", "info": "#d1ecf1", "ok": "#d4edda"}


def to_json(findings: Iterable[Finding]) -> str:
    """The ``findings.json`` document (:func:`bsnexus_lab.findings.document.dumps`)."""
    return document.dumps(findings)


# Scoped under the wrapper so JupyterLab's table rules (right-aligned cells, its own widths) do not win; fixed
# column widths and wrapping anywhere keep the table inside a laptop-width page even with long ids and commands.
_T = ".bsnexus-findings-wrap table.bsnexus-findings"
STYLE = (
    f"{_T}{{width:100%;table-layout:fixed;border-collapse:collapse;font-size:13px}}"
    f"{_T} th,{_T} td{{vertical-align:top;padding:4px 8px;text-align:left;overflow-wrap:anywhere;"
    "border-bottom:1px solid #ddd}"
    f"{_T} th:nth-child(1){{width:7.5em}}{_T} th:nth-child(2){{width:34%}}{_T} th:nth-child(3){{width:30%}}"
    f"{_T} tr.explained td:first-child{{padding-left:24px}}{_T} td.evidence{{font-size:12px}}"
    + "".join(f"{_T} tr.sev-{k} td{{background:{v}}}" for k, v in COLOURS.items())
    + ".bsnexus-findings-wrap h4{margin:12px 0 4px}.bsnexus-findings-wrap small{font-weight:normal}"
)


@dataclass
class Sections:
    """Top-level findings as the first screen groups them, each list ranked."""

    incidents: list[Finding] = field(default_factory=list)  # what is wrong now: a cause or symptom >= warning
    risks: list[Finding] = field(default_factory=list)  # standing configuration risks >= warning
    notes: list[Finding] = field(default_factory=list)  # info, with same-status rows of one check collapsed
    not_checked: list[Finding] = field(default_factory=list)  # every level: could not look, and why
    nothing: list[Finding] = field(default_factory=list)  # checks that found nothing


def sections(findings: Iterable[Finding]) -> Sections:
    """Split findings by the tiers :func:`~bsnexus_lab.findings.model.ranked` orders them in."""
    out = Sections()
    top = ranked(findings)
    for f in top:
        tier = rank_key(f.effective, f.kind)[0]
        if tier == 0:
            out.incidents.append(f)
        elif tier == 1:
            out.risks.append(f)
        elif tier == 2 and f.effective is Severity.OK:
            out.nothing.append(f)
        elif tier == 2:
            out.notes.append(f)
    out.notes = collapsed(out.notes)
    out.not_checked = [f for f in flatten(top) if f.kind is Kind.NOT_CHECKED]
    return out


def collapsed(findings: list[Finding]) -> list[Finding]:
    """Info rows of one check with the same ``status`` (several groups NODATA) as one row; a warning or worse,
    or a finding that explains others, keeps its own row."""
    groups: dict[object, list[Finding]] = {}
    for f in findings:
        status = f.evidence.get("status")
        foldable = status and not f.explains and f.effective.rank <= Severity.INFO.rank
        groups.setdefault((f.check, status, f.effective) if foldable else id(f), []).append(f)
    out = []
    for first, *more in groups.values():
        if not more:
            out.append(first)
            continue
        names = ", ".join("/".join(m.subject) or m.title for m in (first, *more))
        title = f"{first.evidence['status']} ({len(more) + 1}): {names}"
        out.append(dataclasses.replace(first, title=title, evidence={"e.g.": first.title}))
    return out


def verdict(findings: Iterable[Finding]) -> str:
    """One line for a report's or a run's head: "CRITICAL: 1 incident, 0 configuration risks, 36 checks found
    nothing"."""
    findings = list(findings)
    return f"{worst(findings).value.upper()}: {tally(findings)}"


def tally(findings: Iterable[Finding]) -> str:
    """How many incidents, configuration risks, checks that found nothing (and that could not look, if any)."""
    parts = sections(findings)
    line = (
        f"{plural(len(parts.incidents), 'incident')}, {plural(len(parts.risks), 'configuration risk')}, "
        f"{found_nothing(len(parts.nothing))}"
    )
    return line + (f", {len(parts.not_checked)} not checked" if parts.not_checked else "")


def found_nothing(count: int) -> str:
    return f"{plural(count, 'check')} found nothing"


def evidence(finding: Finding) -> list[tuple[str, str]]:
    """The evidence as people read it: values in units, nothing for None or an empty value, long values cut."""
    out = []
    for key, value in finding.evidence.items():
        if value is None or (isinstance(value, str | list | tuple | dict) and not value):
            continue
        shown = in_units(str(key), value, precise=True) or (number(value) if isinstance(value, float) else str(value))
        out.append((label(str(key)), shown if len(shown) <= MAX_VALUE else shown[: MAX_VALUE - 1] + "…"))
    return out


def _severity(f: Finding) -> str:
    """The severity a row shows: the effective one; "not checked" is not a severity at all."""
    return "NOT CHECKED" if f.kind is Kind.NOT_CHECKED else f.effective.value.upper()


def _own(f: Finding) -> str:
    """The finding's own severity, when what it explains ranks it higher."""
    return f"own: {f.severity.value}" if f.effective is not f.severity and f.kind is not Kind.NOT_CHECKED else ""


# -- HTML ----------------------------------------------------------------------------------------------
def to_html(findings: Iterable[Finding], *, summary: bool = True, hints: bool = True) -> str:
    """Self-contained tables that fit the width of a notebook or a printed page; ``summary``: the first screen
    (:func:`sections`), else one table of every finding, ranked; ``hints`` as for :func:`to_text`."""
    findings = list(findings)
    if not summary:
        return _wrap(_table(ranked(findings), summary=False, hints=hints))
    parts = sections(findings)
    first, more = parts.incidents[:FIRST_SCREEN], parts.incidents[FIRST_SCREEN:]
    now = _table(first, hints=hints) if first else "<p>Nothing at warning or worse.</p>"
    out = ["<h4>What is wrong now</h4>" + now]
    for heading, rows in (
        ("More incidents", more),
        ("Standing configuration risks", parts.risks),
        ("Also seen", parts.notes),
    ):
        if rows:
            out.append(f"<h4>{heading}</h4>{_table(rows, hints=hints)}")
    if parts.not_checked:
        items = "".join(_not_checked_html(f) for f in parts.not_checked)
        out.append(f"<h4>Not checked</h4><ul>{items}</ul>")
    if parts.nothing:
        items = "".join(f"<li>{html.escape(f.title)} <code>{html.escape(f.check)}</code></li>" for f in parts.nothing)
        out.append(f"<details><summary>{found_nothing(len(parts.nothing))}.</summary><ul>{items}</ul></details>")
    return _wrap("".join(out))


def _wrap(body: str) -> str:
    return f'<div class="bsnexus-findings-wrap"><style>{STYLE}</style>{body}</div>'


def _table(findings: list[Finding], *, summary: bool = True, hints: bool = True) -> str:
    rows = "".join(_html_row(f, 0, summary, hints) for f in findings)
    return (
        '<table class="bsnexus-findings"><thead><tr><th>Severity</th><th>Finding</th><th>Evidence</th>'
        f"<th>What to do</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _html_row(f: Finding, depth: int, summary: bool, hints: bool) -> str:
    shown = "<br>".join(f"{html.escape(k)}: {html.escape(v)}" for k, v in evidence(f))
    classes = f"sev-{f.effective.value}" + (" explained" if depth else "")
    own = f"<br><small>({_own(f)})</small>" if _own(f) else ""
    traces = "".join(f"<br>trace: <code>{html.escape(c)}</code>" for c in (trace_commands(f) if hints else []))
    row = (
        f'<tr class="{classes}"><td><b>{"↳ " if depth else ""}{_severity(f)}</b>{own}</td>'
        f"<td><b>{html.escape(f.title)}</b><br><code>{html.escape(f.check)}</code></td>"
        f'<td class="evidence">{shown}</td><td>{html.escape(f.remedy)}{traces}</td></tr>'
    )
    return row + "".join(_html_row(e, depth + 1, summary, hints) for e in _explained(f, summary))


def trace_commands(f: Finding) -> list[str]:
    """``bsnexus-lab trace <id>`` for each task a finding names (its ``task:`` scope), when they are few."""
    tasks = sorted(token.removeprefix("task:") for token in f.scope if token.startswith("task:"))
    return [f"bsnexus-lab trace {task}" for task in tasks] if len(tasks) <= TRACE_HINTS else []


def _not_checked_html(f: Finding) -> str:
    lines = "".join(f"<br>{label}: {html.escape(text)}" for label, text in _why_and_how(f))
    return f"<li><b>{html.escape(f.title)}</b> <code>{html.escape(f.check)}</code>{lines}</li>"


def _why_and_how(f: Finding) -> list[tuple[str, str]]:
    """Why a check could not look (unless its title says it already) and how to enable it."""
    reason = str(f.evidence.get("reason") or "")
    out = [("why", reason)] if reason and reason not in f.title else []
    return out + ([("how to enable it", f.remedy)] if f.remedy else [])


def _explained(f: Finding, summary: bool) -> list[Finding]:
    """What a finding explains, as shown under it; on the first screen "not checked" has its own list and
    same-status rows are one."""
    if not summary:
        return list(f.explains)
    return collapsed([e for e in f.explains if e.kind is not Kind.NOT_CHECKED])


# -- text ----------------------------------------------------------------------------------------------
def to_text(findings: Iterable[Finding], *, summary: bool = True, hints: bool = True) -> str:
    """Plain text for a terminal; ``summary``: the first screen (:func:`sections`), else every finding, ranked;
    ``hints``: the command to trace each task a finding names (:func:`trace_commands`)."""
    findings = list(findings)
    lines: list[str] = []
    if not summary:
        for f in ranked(findings):
            _text_lines(f, lines, "", summary=False, hints=hints)
        return "\n".join(lines) or "no findings"
    parts = sections(findings)
    first, more = parts.incidents[:FIRST_SCREEN], parts.incidents[FIRST_SCREEN:]
    lines.append("What is wrong now:" + ("" if first else " nothing at warning or worse."))
    for heading, rows in (
        ("", first),
        ("More incidents:", more),
        ("Standing configuration risks:", parts.risks),
        ("Also seen:", parts.notes),
    ):
        if rows and heading:
            lines.append(heading)
        for f in rows:
            _text_lines(f, lines, "", summary=True, hints=hints)
    if parts.not_checked:
        lines.append("Not checked:")
        for f in parts.not_checked:
            lines.append(f"- {f.title} [{f.check}]")
            lines.extend(f"  {label}: {text}" for label, text in _why_and_how(f))
    if parts.nothing:
        lines.append(found_nothing(len(parts.nothing)) + ".")
    return "\n".join(lines)


def _text_lines(f: Finding, lines: list[str], indent: str, *, summary: bool, hints: bool) -> None:
    own = f" ({_own(f)})" if _own(f) else ""
    lines.append(f"{indent}{_severity(f):8} {f.title} [{f.check}]{own}")
    pad = indent + " " * 9
    lines.extend(f"{pad}{k}: {v}" for k, v in evidence(f))
    if f.remedy:
        lines.append(f"{pad}what to do: {f.remedy}")
    lines.extend(f"{pad}trace: {command}" for command in (trace_commands(f) if hints else []))
    explained = _explained(f, summary)
    if explained:
        lines.append(f"{pad}explains:")
    for e in explained:
        _text_lines(e, lines, pad + "  ", summary=summary, hints=hints)
