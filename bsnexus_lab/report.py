"""HTML reports of executed runbooks: the verdict first, then the notebook's outputs without its code."""

from __future__ import annotations

import html as html_lib
from typing import Any

from bsnexus_lab import findings as findings_io
from bsnexus_lab.findings import Finding

# Wide frames (held tasks, pending entries) scroll inside their own box and wrap long cells, instead of
# pushing the page sideways.
FIT_TABLES = (
    ".jp-RenderedHTMLCommon table{display:block;max-width:100%;overflow-x:auto}"
    ".jp-RenderedHTMLCommon td,.jp-RenderedHTMLCommon th{white-space:normal;overflow-wrap:anywhere;max-width:28em}"
)


def html(notebook: Any, found: list[Finding], *, title: str, error: str | None = None) -> str:
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": title}})
    verdict = "RUN FAILED" if error else findings_io.worst(found).value.upper()
    failure = (
        f'<p style="background:#f8d7da;padding:6px"><b>The runbook failed:</b> {html_lib.escape(error)}.'
        " Findings below are what it emitted before that; the notebook shows where it stopped.</p>"
        if error
        else ""
    )
    header = (
        f"<style>{FIT_TABLES}</style>"
        f'<header id="bsnexus-lab-summary" style="margin:16px 32px">'
        f"<h1>{html_lib.escape(title)}</h1><p>Verdict: <b>{verdict}</b></p>{failure}"
        f"{findings_io.to_html(found)}</header>"
    )
    start = body.index("<body")
    start = body.index(">", start) + 1
    return body[:start] + header + body[start:]
