"""HTML reports of executed runbooks: the verdict line and the first screen of findings, then the notebook's
outputs without code.

Made to be read on a laptop screen and on paper: tables wrap to the page width instead of scrolling
sideways, figures shrink to the page, a long run gets a table of contents, and printing keeps tables and
figures whole and hides what only makes sense on screen.
"""

from __future__ import annotations

import html as html_lib
import re
from typing import Any

from bsnexus_lab import findings as findings_io
from bsnexus_lab.findings import Finding, render

TOC_MIN_SECTIONS = 4  # a run with fewer sections reads top to bottom without one
_HEADING = re.compile(r'<h([1-3]) id="([^"]+)"[^>]*>(.*?)</h\1>', re.DOTALL)
_TAG = re.compile(r"<[^>]+>")

STYLE = """
body { max-width: 1100px; margin: 0 auto; padding: 0 16px; }
#bsnexus-lab-summary, #bsnexus-lab-toc { margin: 16px 0; padding: 0 12px;
  font-family: var(--jp-content-font-family, system-ui, sans-serif); font-size: 14px; }
#bsnexus-lab-toc ul { columns: 2; margin: 4px 0; list-style: none; padding-left: 0; }
.jp-OutputArea-output { overflow-x: visible; }
.jp-RenderedHTMLCommon table.dataframe { display: block; max-width: 100%; overflow-x: auto; }
img { max-width: 100%; height: auto; }
@page { size: A4; margin: 14mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  a.anchor-link, .jp-OutputPrompt, .jp-InputPrompt { display: none; }
  #bsnexus-lab-toc a { color: inherit; text-decoration: none; }
  tr, img, .jp-OutputArea-child { break-inside: avoid; }
  h1, h2, h3 { break-after: avoid; }
  img { max-height: 120mm; width: auto; }
}
"""


def html(notebook: Any, found: list[Finding], *, title: str, error: str | None = None) -> str:
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": title}})
    verdict = "RUN FAILED" if error else findings_io.worst(found).value.upper()
    tally = html_lib.escape(render.tally(found))
    failure = (
        f'<p style="background:#f8d7da;padding:6px"><b>The runbook failed:</b> {html_lib.escape(error)}.'
        " Findings below are what it emitted before that; the notebook shows where it stopped.</p>"
        if error
        else ""
    )
    header = (
        f'<header id="bsnexus-lab-summary"><h1>{html_lib.escape(title)}</h1><p>Verdict: <b>{verdict}</b>: {tally}</p>'
        f"{failure}{findings_io.to_html(found)}</header>{contents(body)}"
    )
    body = body.replace("</head>", f"<style>{STYLE}</style></head>", 1)
    start = body.index("<body")
    start = body.index(">", start) + 1
    return body[:start] + header + body[start:]


def contents(body: str) -> str:
    """A table of contents from the notebook's headings, for runs long enough to need one."""
    sections = [(int(level), anchor, _TAG.sub("", text).rstrip("¶").strip()) for level, anchor, text in
                _HEADING.findall(body)]  # fmt: skip
    if len(sections) < TOC_MIN_SECTIONS:
        return ""
    items = "".join(
        f'<li style="margin-left:{(level - 1) * 1.2}em"><a href="#{anchor}">{html_lib.escape(html_lib.unescape(text))}'
        "</a></li>"
        for level, anchor, text in sections
    )
    return f'<nav id="bsnexus-lab-toc"><b>Contents</b><ul>{items}</ul></nav>'
