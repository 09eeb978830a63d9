"""Root-cause analyses as notebooks, and their regression checks as runbooks.

``new`` copies the RCA template (symptom, expected vs actual, timeline, hypotheses, evidence, root cause,
fix, regression check, prevention) and pre-fills its evidence from the latest triage run in the history.
``promote`` turns the cells tagged ``regression-check`` into a runbook of their own (with a parameters cell
and the RCA's set-up), so a scheduled run fails when the root cause comes back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell

from bsnexus_lab.errors import LabError
from bsnexus_lab.findings import Kind, Severity, rank_key
from bsnexus_lab.history import History

TEMPLATE = Path(__file__).resolve().parent / "notebooks" / "rca_template.ipynb"
TRIAGE = "triage"
REGRESSION_TAG = "regression-check"


def new(slug: str, *, history: History | None = None, directory: Path | None = None) -> Path:
    """``notebooks/rca/<date>-<slug>.ipynb`` from the template, evidence pre-filled from the latest triage."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", slug):
        raise LabError(
            f"RCA name {slug!r} must be lower-case letters, digits and '-'", hint="e.g. results-stuck-on-pm0"
        )
    today = datetime.now(UTC)
    path = (directory or Path.cwd() / "notebooks" / "rca") / f"{today:%Y-%m-%d}-{slug}.ipynb"
    if path.exists():
        raise LabError(f"{path} already exists", hint="open it, or pick another name")
    notebook = nbformat.read(TEMPLATE, as_version=4)
    notebook.cells[0].source = (
        notebook.cells[0].source.replace("TITLE", slug.replace("-", " ")).replace("DATE", f"{today:%Y-%m-%d %H:%M}")
    )
    triage = _latest_triage(history or History())
    findings = triage[1] if triage else []
    evidence_at = next(i for i, c in enumerate(notebook.cells) if c.source.startswith("## Evidence")) + 1
    notebook.cells[evidence_at:evidence_at] = _evidence_cells(triage[0] if triage else None, findings)
    regression = next(c for c in notebook.cells if REGRESSION_TAG in c.metadata.get("tags", []))
    checks = sorted(
        {f["check_id"] for f in _worst_first(findings)[:1]} | {f["check_id"] for f in findings if f["kind"] == "cause"}
    )
    areas = sorted({c.split(".")[0] for c in checks})
    regression.source = regression.source.replace("CHECKS: list[str] = []", f"CHECKS: list[str] = {checks!r}").replace(
        "AREAS: list[str] | None = None", f"AREAS: list[str] | None = {areas or None!r}"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def _latest_triage(history: History) -> tuple[Mapping[str, Any], list[dict[str, Any]]] | None:
    if not history.exists():
        return None
    runs = history.runs(runbook=TRIAGE)
    if runs.empty:
        return None
    run = runs.iloc[0]
    found = history.findings(run["id"])
    problems = found[found["severity"] != "ok"]
    return run.to_dict(), problems.to_dict("records")


def _worst_first(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The history's rows in the one ranking (:func:`~bsnexus_lab.findings.model.ranked`): incidents, then
    standing risks, then the rest, then what could not be checked."""

    def key(row: dict[str, Any]) -> tuple[int, int, int]:
        return rank_key(Severity(row["severity"]), Kind(row["kind"]) if isinstance(row["kind"], str) else None)

    return sorted(findings, key=key)


def _label(row: Mapping[str, Any]) -> str:
    """A row's severity as people read it; what could not be checked is no severity."""
    return "UNCHECKED" if row["kind"] == Kind.NOT_CHECKED.value else str(row["severity"]).upper()


def _evidence_cells(run: Mapping[str, Any] | None, findings: list[dict[str, Any]]) -> list[Any]:
    if run is None:
        return [new_markdown_cell("No triage run in the history yet: `bsnexus-lab run triage` gathers the evidence.")]
    lines = [f"From triage run `{run['id']}` on {run['target']} ({run['started']}):", ""]
    lines += [f"- **{_label(f)}** {f['title']} (`{f['key']}`)" for f in _worst_first(findings)]
    if not findings:
        lines.append("- nothing above ok")
    areas = sorted({f["check_id"].split(".")[0] for f in findings})
    collect = (
        "from bsnexus_lab import triage\n\n"
        f"evidence = triage.collect(lab, {areas or None!r})  # the same snapshot the triage took, now\n"
        "bl.emit(lab.check(evidence.frames))"
    )
    frames = "\n".join(
        [
            "# every frame the snapshot holds, to look into (a probe that could not look says why):",
            "{name: len(frame) if hasattr(frame, '__len__') else frame for name, frame in evidence.frames.items()}",
        ]
    )
    return [new_markdown_cell("\n".join(lines)), new_code_cell(collect), new_code_cell(frames)]


def promote(notebook: Path, *, directory: Path | None = None) -> Path:
    """A runbook ``runbooks/regression_<slug>.ipynb`` made of the RCA's ``regression-check`` cells."""
    if not notebook.is_file():
        raise LabError(f"no notebook {notebook}")
    rca = nbformat.read(notebook, as_version=4)
    checks = [c for c in rca.cells if REGRESSION_TAG in c.metadata.get("tags", [])]
    if not checks:
        raise LabError(f"{notebook} has no cell tagged {REGRESSION_TAG!r}", hint="tag the cells that emit the check")
    slug = re.sub(r"^\d{4}-\d{2}-\d{2}-", "", notebook.stem).replace("-", "_")
    path = (directory or Path.cwd() / "runbooks") / f"regression_{slug}.ipynb"
    if path.exists():
        raise LabError(f"{path} already exists", hint="remove it first to promote again")
    parameters = _tagged(rca, "parameters") or new_code_cell('target: str = ""  # profile name')
    setup = _tagged(rca, "setup") or new_code_cell("import bsnexus_lab as bl\n\nlab = bl.connect(target or None)")
    title = new_markdown_cell(
        f"# Regression check: {slug.replace('_', ' ')}\n"
        f"Promoted from `{notebook.name}` on {datetime.now(UTC):%Y-%m-%d}: it fails when that root cause comes back."
    )
    cells = [title, parameters, setup, *checks]
    runbook = nbformat.v4.new_notebook(cells=[_clean(c) for c in cells], metadata=rca.metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(runbook, path)
    return path


def _tagged(notebook: Any, tag: str) -> Any:
    return next((c for c in notebook.cells if tag in c.metadata.get("tags", [])), None)


def _clean(cell: Any) -> Any:
    """A copy without outputs or execution counts (runbooks are committed clean)."""
    copy = nbformat.from_dict(dict(cell))
    if copy.cell_type == "code":
        copy.outputs, copy.execution_count = [], None
    return copy
