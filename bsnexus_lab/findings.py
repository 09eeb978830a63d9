"""Findings: what a check concluded, as a value that survives JSON, notebooks and reports.

A finding travels out of an executed notebook as a display output of MIME type :data:`MIME_TYPE`, so the
runner reads them back from the notebook itself rather than from a side channel.
"""

from __future__ import annotations

import enum
import html
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

MIME_TYPE = "application/vnd.bsnexus-lab.findings+json"


class Severity(enum.StrEnum):
    OK = "ok"
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


@dataclass(frozen=True)
class Finding:
    """One conclusion. ``check`` is a stable id (``streams.dead_consumer``), usable in suppressions and diffs."""

    check: str
    severity: Severity
    title: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    remedy: str = ""
    target: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        data["evidence"] = dict(self.evidence)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        return cls(**{**data, "severity": Severity(data["severity"])})


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 pending entry``, ``3 pending entries``: titles read as sentences whatever the count."""
    if count == 1:
        return f"{count} {singular}"
    if plural_form is None:
        plural_form = (
            singular[:-1] + "ies" if singular.endswith("y") and singular[-2:-1] not in "aeiou" else singular + "s"
        )
    return f"{count} {plural_form}"


def ranked(findings: Iterable[Finding]) -> list[Finding]:
    """Most severe first; stable within a severity."""
    return sorted(findings, key=lambda f: -f.severity.rank)


def worst(findings: Iterable[Finding]) -> Severity:
    return max((f.severity for f in findings), key=lambda s: s.rank, default=Severity.OK)


def to_json(findings: Iterable[Finding]) -> str:
    return json.dumps([f.to_dict() for f in ranked(findings)], indent=2, default=str)


def to_html(findings: Iterable[Finding]) -> str:
    """A self-contained table, legible in JupyterLab and in an exported report."""
    rows = []
    for f in ranked(findings):
        evidence = "<br>".join(f"{html.escape(str(k))}: {html.escape(str(v))}" for k, v in f.evidence.items())
        rows.append(
            f'<tr class="sev-{f.severity.value}"><td><b>{f.severity.value.upper()}</b></td>'
            f"<td><b>{html.escape(f.title)}</b><br><code>{html.escape(f.check)}</code></td>"
            f"<td>{evidence}</td><td>{html.escape(f.remedy)}</td></tr>"
        )
    colours = {"critical": "#f8d7da", "warning": "#fff3cd", "info": "#d1ecf1", "ok": "#d4edda"}
    style = "".join(f".bsnexus-findings tr.sev-{k} td{{background:{v}}}" for k, v in colours.items())
    return (
        f"<style>{style}.bsnexus-findings td{{vertical-align:top;padding:4px 8px;text-align:left}}</style>"
        '<table class="bsnexus-findings"><thead><tr><th>Severity</th><th>Finding</th><th>Evidence</th>'
        f"<th>Remedy</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def to_text(findings: Iterable[Finding]) -> str:
    lines = []
    for f in ranked(findings):
        lines.append(f"{f.severity.value.upper():8} {f.title} [{f.check}]")
        lines.extend(f"         {k}: {v}" for k, v in f.evidence.items())
        if f.remedy:
            lines.append(f"         remedy: {f.remedy}")
    return "\n".join(lines) or "no findings"


def emit(findings: Iterable[Finding]) -> None:
    """Show findings in a notebook and carry them in its outputs for the runner to collect."""
    from IPython.display import display

    findings = ranked(findings)
    bundle = {
        MIME_TYPE: {"version": 1, "findings": [f.to_dict() for f in findings]},
        "text/html": to_html(findings),
        "text/plain": to_text(findings),
    }
    display(bundle, raw=True)


def from_notebook(notebook: Mapping[str, Any]) -> list[Finding]:
    """Every finding emitted in an executed notebook, in order."""
    found = []
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            for item in output.get("data", {}).get(MIME_TYPE, {}).get("findings", []):
                found.append(Finding.from_dict(item))
    return found
