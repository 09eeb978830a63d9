"""Findings in and out of notebooks.

A finding travels out of an executed notebook as a display output of MIME type :data:`MIME_TYPE`, so the
runner reads them back from the notebook itself rather than from a side channel.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bsnexus_lab.findings.model import Finding, ranked
from bsnexus_lab.findings.render import to_html, to_text

MIME_TYPE = "application/vnd.bsnexus-lab.findings+json"


def bundle(findings: Iterable[Finding]) -> dict[str, Any]:
    """The display bundle that shows findings and carries them: HTML, text, and :data:`MIME_TYPE` JSON."""
    findings = ranked(findings)
    return {
        MIME_TYPE: {"version": 2, "findings": [f.to_dict() for f in findings]},
        "text/html": to_html(findings),
        "text/plain": to_text(findings),
    }


def emit(findings: Iterable[Finding]) -> None:
    """Show findings in a notebook and carry them in its outputs for the runner to collect."""
    from IPython.display import display

    display(bundle(findings), raw=True)


def from_notebook(notebook: Mapping[str, Any]) -> list[Finding]:
    """Every finding emitted in an executed notebook, in order (explained ones inside their causes)."""
    found = []
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            for item in output.get("data", {}).get(MIME_TYPE, {}).get("findings", []):
                found.append(Finding.from_dict(item))
    return found
