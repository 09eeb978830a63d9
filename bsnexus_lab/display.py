"""How the lab's objects look: HTML in JupyterLab and reports, clean text in a terminal.

Probes return plain DataFrames with machine units (``idle_ms``, ``registry_ttl_s``) and real missing values;
this module only changes how they are shown: durations as "15 min" and sizes as "120 KiB" (the unit read off
the column's name by :func:`~bsnexus_lab.text.in_units`), one sign for every missing value (NaN, ``<NA>``,
None, NaT), URLs redacted, rows coloured by severity. A frame tagged with :func:`tag` (the ``%lab`` magics tag
what they return) also gets a caption, the default columns its area declares and worker names beside their ids.
:func:`install` registers the formatters with IPython for every DataFrame; the extension (and so the "BSNexus
Lab" kernel and every runbook run) does it on load.
"""

from __future__ import annotations

import html
import json
import math
import re
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from bsnexus_lab.config import redact_url, run_dir
from bsnexus_lab.findings import Finding
from bsnexus_lab.findings.notebook import bundle
from bsnexus_lab.findings.render import COLOURS, to_html, to_text
from bsnexus_lab.text import MISSING, in_units, label, number

KIND = "bsnexus_lab.kind"  # DataFrame.attrs key: what a frame is ("streams.summary"); pandas carries attrs along
NAMES = "bsnexus_lab.names"  # DataFrame.attrs key: {worker id: worker name}, shown beside the ids
# DataFrame.attrs key: the columns shown by default, as the frame's area declares them for its wide frames (so
# they fit a laptop screen and a printed page); the hidden ones are named under the table and stay in the frame.
COLUMNS = "bsnexus_lab.columns"
MAX_ROWS = 50  # a notebook cell or report section shows this many rows, then says how many it left out
MAX_TEXT = 160  # longer cell values (JSON bodies, error text) are cut with an ellipsis
BAR_AFTER_S = 2.0  # a call given a duration this long or longer counts it down on a progress bar

_ID_COLUMNS = {"consumer", "worker_id", "reviewer_id"}
_ENTRY_ID = re.compile(r"^\d+-\d+$")  # a stream entry id: never split across lines
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# Scoped under .bsnexus-frame so JupyterLab's own table rules (right-aligned, fixed layout) do not win.
_T = ".bsnexus-frame table.bsnexus-table"
STYLE = (
    f"{_T}{{border-collapse:collapse;width:100%;table-layout:auto;font-size:13px;margin:4px 0 4px}}"
    f"{_T} caption{{text-align:left;font-weight:600;padding:2px 0 6px}}"
    f"{_T} th,{_T} td{{padding:3px 8px;text-align:left;vertical-align:top;border-bottom:1px solid #ddd;"
    "overflow-wrap:break-word;white-space:normal}"
    f"{_T} td.num{{text-align:right;white-space:nowrap}}"
    f"{_T} .missing{{color:#999}}{_T} .id{{color:#666;font-family:monospace;font-size:11px}}"
    ".bsnexus-frame{max-width:100%;overflow-x:auto}.bsnexus-frame p.more{color:#666;font-size:12px;margin:0 0 12px}"
    # on paper nothing scrolls: wrap everything rather than cut the right-hand columns off
    f"@media print{{.bsnexus-frame{{overflow:visible}}{_T}{{font-size:10px}}"
    f"{_T} th,{_T} td{{overflow-wrap:anywhere}}{_T} td.num{{white-space:normal}}}}"
    + "".join(f"{_T} tr.sev-{k} td{{background:{v}}}" for k, v in COLOURS.items())
)


def tag(
    frame: pd.DataFrame, kind: str, names: Mapping[str, str] | None = None, *, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Mark a frame as the lab's ``kind``, with worker names for its ids and the columns it shows by default
    (:attr:`bsnexus_lab.areas.Area.columns`); returns the same frame."""
    frame.attrs[KIND] = kind
    if names:
        frame.attrs[NAMES] = dict(names)
    if columns:
        frame.attrs[COLUMNS] = list(columns)
    return frame


# -- values --------------------------------------------------------------------------------------------
def is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def cell(column: str, value: Any, names: Mapping[str, str] | None = None) -> str:
    """One value as text, by its column's conventions."""
    value = _plain(value)
    if is_missing(value):
        return MISSING
    shown = in_units(column, value)
    if shown is not None:
        return shown
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return number(value)
    if isinstance(value, datetime):
        utc = value.utcoffset() is not None and not value.utcoffset()
        return value.strftime("%Y-%m-%d %H:%M:%S") + ("Z" if utc else value.strftime("%z"))
    if isinstance(value, Mapping | list | tuple):
        value = json.dumps(value, default=str)
    text = redact_url(str(value)) if "://" in str(value) else str(value)
    if names and column in _ID_COLUMNS and text in names:
        text = f"{names[text]} ({text})"
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _plain(value: Any) -> Any:
    """numpy scalars as Python values, so one set of rules applies to every column's dtype."""
    return value.item() if isinstance(value, np.generic) else value


def _shown(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The columns shown by default (in order) and the names of the ones left out; a meaningful index
    (a time index, a group-by key) becomes leading columns."""
    if not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index()
    if isinstance(frame.columns, pd.MultiIndex):
        frame = frame.set_axis([" / ".join(map(str, c)).strip(" /") for c in frame.columns], axis=1)
    wanted = frame.attrs.get(COLUMNS, list(frame.columns))
    shown = [c for c in wanted if c in frame.columns] or list(frame.columns)
    return frame[shown], [str(c) for c in frame.columns if c not in shown]


def _severity(row: Mapping[str, Any]) -> str | None:
    """The colour a row earns: its own severity, an unreachable dependency, or a dead consumer holding work."""
    row = {k: _plain(v) for k, v in row.items()}
    if isinstance(row.get("severity"), str) and row["severity"] in COLOURS:
        return row["severity"]
    if row.get("reachable") is False:
        return "critical"
    if row.get("registered") is False and isinstance(row.get("pending"), int) and row["pending"] > 0:
        return "warning"
    return None


# -- frames --------------------------------------------------------------------------------------------
def frame_text(frame: pd.DataFrame, max_rows: int = MAX_ROWS) -> str:
    """The frame as aligned plain text, formatted like its HTML."""
    shown, hidden = _shown(frame)
    names = frame.attrs.get(NAMES)
    if shown.empty:
        return f"{_title(frame)}(no rows)"
    rows = shown.head(max_rows)
    text = pd.DataFrame(
        {label(str(c)): [cell(str(c), v, names) for v in rows[c].astype(object)] for c in rows}
    ).to_string(index=False)
    return _title(frame) + text + _more(frame, max_rows, hidden, "\n")


def frame_html(frame: pd.DataFrame, max_rows: int = MAX_ROWS) -> str:
    """A compact, wrapping table that fits the width of a notebook or a printed page."""
    shown, hidden = _shown(frame)
    names = frame.attrs.get(NAMES)
    caption = html.escape(_title(frame).rstrip(": \n"))
    head = "".join(f"<th>{html.escape(label(str(c)))}</th>" for c in shown.columns)
    body = []
    for position, (_, row) in enumerate(shown.head(max_rows).iterrows()):
        severity = _severity(frame.iloc[position].to_dict())
        cells = "".join(_html_cell(str(c), v, names) for c, v in row.items())
        body.append(f'<tr class="sev-{severity}">{cells}</tr>' if severity else f"<tr>{cells}</tr>")
    more = _more(frame, max_rows, hidden, "")
    return (
        f"<div class='bsnexus-frame'><style>{STYLE}</style><table class='bsnexus-table'><caption>{caption}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        + (f"<p class='more'>{html.escape(more)}</p>" if more else "")
        + "</div>"
    )


def _html_cell(column: str, value: Any, names: Mapping[str, str] | None) -> str:
    value = _plain(value)
    if is_missing(value):
        return f'<td class="missing">{MISSING}</td>'
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if names and column in _ID_COLUMNS and str(value) in names:
        content = f"<b>{html.escape(names[str(value)])}</b><br>{_short_id(str(value))}"
    elif isinstance(value, str) and _UUID.match(value):
        content = _short_id(value)
    else:
        content = html.escape(cell(column, value))
    nowrap = numeric or (isinstance(value, str) and _ENTRY_ID.match(value))
    return f'<td class="num">{content}</td>' if nowrap else f"<td>{content}</td>"


def _short_id(uuid: str) -> str:
    """A UUID as its first 8 characters (like a short commit hash), the whole id on hover and in the frame."""
    return f"<span class='id' title='{html.escape(uuid)}'>{html.escape(uuid[:8])}…</span>"


def _title(frame: pd.DataFrame) -> str:
    kind = frame.attrs.get(KIND)
    return f"{kind} ({len(frame)} rows):\n" if kind else ""


def _more(frame: pd.DataFrame, max_rows: int, hidden: list[str], sep: str) -> str:
    notes = []
    if len(frame) > max_rows:
        notes.append(f"{len(frame) - max_rows} more rows")
    if hidden:
        notes.append("more columns in the frame: " + ", ".join(hidden))
    return sep + "; ".join(notes) if notes else ""


# -- the Lab and findings ------------------------------------------------------------------------------
def lab_rows(lab: Any) -> list[tuple[str, str]]:
    """What a Lab is connected to, redacted, and what it can look at."""
    facades = [name for name, area in lab.areas.items() if area.facade is not None]
    return [
        ("target", lab.target.name),
        ("redis", lab.target.redis),
        ("database", lab.target.database or MISSING),
        ("service", lab.target.service_url or MISSING),
        ("mode", "read-write" if lab.allow_writes else "read-only"),
        ("areas", ", ".join(f"lab.{n}" for n in sorted(facades)) or MISSING),
    ]


def lab_text(lab: Any) -> str:
    return "\n".join(f"{key:9} {value}" for key, value in lab_rows(lab))


def lab_html(lab: Any) -> str:
    rows = "".join(f"<tr><th>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in lab_rows(lab))
    return (
        f"<div class='bsnexus-frame'><style>{STYLE}</style><table class='bsnexus-table'>"
        f"<caption>BSNexus Lab</caption>{rows}</table></div>"
    )


class Findings(list[Finding]):
    """Findings as a value: displays as the findings table and, in an executed notebook, carries them for
    the runner (the same MIME bundle as :func:`bsnexus_lab.emit`), so ``findings = %lab triage`` is enough."""

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return bundle(self)


# -- progress ------------------------------------------------------------------------------------------
def wait(thread: threading.Thread, seconds: float, desc: str = "") -> None:
    """Wait for ``thread``, showing a bar over the ``seconds`` it was asked to take (none when 0)."""
    if seconds <= 0:
        thread.join()
        return
    from tqdm.auto import tqdm

    started = time.monotonic()
    with tqdm(total=round(seconds), desc=desc, unit="s", leave=False, disable=_in_run()) as bar:
        while thread.is_alive():
            thread.join(0.25)
            bar.update(min(round(time.monotonic() - started), bar.total) - bar.n)


def _in_run() -> bool:
    return run_dir() is not None


# -- IPython -------------------------------------------------------------------------------------------
def install(ip: Any) -> None:
    """Register the lab's HTML and text formatters with an IPython shell (idempotent)."""
    formatters = ip.display_formatter.formatters
    formatters["text/html"].for_type(pd.DataFrame, frame_html)
    formatters["text/plain"].for_type(pd.DataFrame, _frame_pretty)
    formatters["text/html"].for_type(list, _findings_html)  # what lab.check(...) returns; other lists: no HTML
    formatters["text/plain"].for_type(Findings, lambda found, p, cycle: p.text(to_text(found)))  # not list's
    formatters["text/html"].for_type(Finding, lambda finding: to_html([finding], summary=False))
    formatters["text/plain"].for_type(Finding, lambda finding, p, cycle: p.text(to_text([finding], summary=False)))
    formatters["text/html"].for_type_by_name("bsnexus_lab.lab", "Lab", lab_html)
    formatters["text/plain"].for_type_by_name("bsnexus_lab.lab", "Lab", lambda lab, p, cycle: p.text(lab_text(lab)))


load_ipython_extension = install  # ``--ext=bsnexus_lab.display``: the displays without the magics (runbook runs)


def _findings_html(items: list[Any]) -> str | None:
    return to_html(items) if items and all(isinstance(item, Finding) for item in items) else None


def _frame_pretty(frame: pd.DataFrame, p: Any, cycle: bool) -> None:
    p.text(frame_text(frame))
