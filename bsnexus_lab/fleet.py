"""The fleet on one page: every target's latest run of every runbook, read from the run history.

With ``BSNEXUS_LAB_HISTORY_URL`` the history is the fleet's shared one (every Airflow worker, cron host or
laptop writes it), so one page shows every target whichever machine ran it. Per row: the verdict, the worst
finding (ranked as reports rank: incidents before configuration risks, "not checked" never worst), how long ago
the run ended, what changed since the run before (:meth:`~bsnexus_lab.history.History.diff`), and where the
run directory lives.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime

import pandas as pd

from bsnexus_lab.findings import Kind, Severity, rank_key
from bsnexus_lab.findings.render import COLOURS
from bsnexus_lab.history import NOT_CHECKED, History, location
from bsnexus_lab.text import duration, plural

COLUMNS = ["target", "runbook", "verdict", "worst", "severity", "age", "changed", "run", "where"]


def state(index: History, *, now: datetime | None = None) -> pd.DataFrame:
    """One row per (target, runbook): its newest run, by target then runbook."""
    now = now or datetime.now(UTC)
    rows = []
    for run in index.latest().to_dict("records"):
        worst = _worst(index.findings(run["id"]))
        previous = index.previous(run["id"])
        rows.append(
            {
                "target": run["target"],
                "runbook": run["runbook"],
                "verdict": f"{run['status']} (exit {run['exit_code']})",
                "worst": worst["title"] if worst else "-",
                "severity": worst["severity"] if worst else "ok",
                "age": duration((now - datetime.fromisoformat(run["ended"])).total_seconds()) + " ago",
                "changed": _changed(index.diff(previous, run["id"])) if previous else "first run",
                "run": run["id"],
                "where": location(run),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def text(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "no runs in the history yet"
    return frame.drop(columns="severity").to_string(index=False)


def page(frame: pd.DataFrame, *, source: str, now: datetime | None = None) -> str:
    """A self-contained HTML page (no script, no external resource), each row coloured by its worst finding."""
    now = now or datetime.now(UTC)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS if c != "severity")
    body = (
        "".join(
            f"<tr style='background:{COLOURS.get(row['severity'], '#fff')}'>"
            + "".join(f"<td>{html.escape(str(row[c]))}</td>" for c in COLUMNS if c != "severity")
            + "</tr>"
            for row in frame.to_dict("records")
        )
        or f"<tr><td colspan='{len(COLUMNS) - 1}'>no runs in the history yet</td></tr>"
    )
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>BSNexus Lab: fleet</title>"
        f"<style>{style}</style></head><body><h1>BSNexus Lab: fleet</h1>"
        f"<p>{plural(frame['target'].nunique(), 'target')}, {plural(len(frame), 'latest run')}; history "
        f"{html.escape(source)}; {now:%Y-%m-%d %H:%M:%S} UTC.</p>"
        f"<table><tr>{head}</tr>{body}</table></body></html>"
    )


def _worst(found: pd.DataFrame) -> dict[str, str] | None:
    """The run's first finding above OK in the one ranking; what could not be checked is never it."""
    shown = found[(found["severity"] != "ok") & (found["kind"] != NOT_CHECKED)]
    ranked = sorted(
        shown.to_dict("records"),
        key=lambda f: rank_key(Severity(f["severity"]), Kind(f["kind"]) if f["kind"] else None),
    )
    return ranked[0] if ranked else None


def _changed(changes: pd.DataFrame) -> str:
    """``1 appeared, 2 resolved`` (persisted ones by whether their severity moved), or ``no change``."""
    moved = changes["before"] != changes["after"]
    labels = changes["change"].where(changes["change"] != "persisted", moved.map({True: "changed severity"}))
    counts = labels.dropna().value_counts()
    return ", ".join(f"{count} {label}" for label, count in counts.items()) or "no change"
