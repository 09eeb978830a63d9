"""Renderings of findings: JSON (the contract schedulers read), HTML (notebooks, reports), plain text (CLI).

Each takes findings as :func:`bsnexus_lab.findings.model.link` left them: causes with what they explain.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable

from bsnexus_lab.findings.model import Finding, ranked

COLOURS = {"critical": "#f8d7da", "warning": "#fff3cd", "info": "#d1ecf1", "ok": "#d4edda"}


def to_json(findings: Iterable[Finding]) -> str:
    """A JSON list, ranked as the report ranks it; explained findings nested in their cause's ``explains``."""
    return json.dumps([f.to_dict() for f in ranked(findings)], indent=2, default=str)


def to_html(findings: Iterable[Finding]) -> str:
    """A self-contained table, legible in JupyterLab and in an exported report."""
    rows = [_html_row(f, depth=0) for f in ranked(findings)]
    style = "".join(f".bsnexus-findings tr.sev-{k} td{{background:{v}}}" for k, v in COLOURS.items())
    return (
        f"<style>{style}.bsnexus-findings td{{vertical-align:top;padding:4px 8px;text-align:left}}"
        ".bsnexus-findings tr.explained td:first-child{padding-left:24px}</style>"
        '<table class="bsnexus-findings"><thead><tr><th>Severity</th><th>Finding</th><th>Evidence</th>'
        f"<th>Remedy</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _html_row(f: Finding, depth: int) -> str:
    evidence = "<br>".join(f"{html.escape(str(k))}: {html.escape(str(v))}" for k, v in f.evidence.items())
    classes = f"sev-{f.severity.value}" + (" explained" if depth else "")
    row = (
        f'<tr class="{classes}"><td><b>{"↳ " if depth else ""}{f.severity.value.upper()}</b></td>'
        f"<td><b>{html.escape(f.title)}</b><br><code>{html.escape(f.check)}</code></td>"
        f"<td>{evidence}</td><td>{html.escape(f.remedy)}</td></tr>"
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
