"""Renderings of findings: JSON (the contract schedulers read), HTML (notebooks, reports), plain text (CLI).

Each takes findings as :func:`bsnexus_lab.findings.model.link` left them: causes with what they explain.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from bsnexus_lab.findings import document
from bsnexus_lab.findings.model import Finding, ranked

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
)


def to_html(findings: Iterable[Finding]) -> str:
    """A self-contained table that fits the width of a notebook or a printed page."""
    rows = [_html_row(f, depth=0) for f in ranked(findings)]
    return (
        f'<div class="bsnexus-findings-wrap"><style>{STYLE}</style>'
        '<table class="bsnexus-findings"><thead><tr><th>Severity</th><th>Finding</th><th>Evidence</th>'
        f"<th>Remedy</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _html_row(f: Finding, depth: int) -> str:
    evidence = "<br>".join(f"{html.escape(str(k))}: {html.escape(str(v))}" for k, v in f.evidence.items())
    classes = f"sev-{f.severity.value}" + (" explained" if depth else "")
    row = (
        f'<tr class="{classes}"><td><b>{"↳ " if depth else ""}{f.severity.value.upper()}</b></td>'
        f"<td><b>{html.escape(f.title)}</b><br><code>{html.escape(f.check)}</code></td>"
        f'<td class="evidence">{evidence}</td><td>{html.escape(f.remedy)}</td></tr>'
    )
    return row + "".join(_html_row(e, depth + 1) for e in f.explains)


def to_text(findings: Iterable[Finding]) -> str:
    lines: list[str] = []
    for f in ranked(findings):
        _text_lines(f, lines, indent="")
    return "\n".join(lines) or "no findings"


def _text_lines(f: Finding, lines: list[str], indent: str) -> None:
    lines.append(f"{indent}{f.severity.value.upper():8} {f.title} [{f.check}]")
    pad = indent + " " * 9
    lines.extend(f"{pad}{k}: {v}" for k, v in f.evidence.items())
    if f.remedy:
        lines.append(f"{pad}remedy: {f.remedy}")
    for explained in f.explains:
        lines.append(f"{pad}explains:")
        _text_lines(explained, lines, indent=pad + "  ")
