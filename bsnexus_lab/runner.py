"""Running a runbook, end to end: the workflow that composes the runner's modules (papermill's shape).

    runbooks   find the runbook, read its parameters cell, coerce the given values
    execute    run it on a kernel under a lock, signals and the whole-run timeout -> an Outcome
    verdict    findings + outcome (+ fail_on, acknowledgements, the previous run) -> status and exit code, once
    artefacts  the run directory's notebook, report.html, findings.json and run.json, each written once
    history    the run indexed under its findings' keys (:mod:`bsnexus_lab.history`)

Exit statuses and their names are in :mod:`bsnexus_lab.errors` and :mod:`bsnexus_lab.verdict`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bsnexus_lab import artefacts, execute, history, runbooks, verdict
from bsnexus_lab.config import resolve, scrub_text
from bsnexus_lab.findings import Finding, Severity, from_notebook


@dataclass
class RunResult:
    runbook: str
    run_dir: Path
    exit_code: int
    status: str
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None

    @property
    def notebook(self) -> Path:
        return self.run_dir / "notebook.ipynb"

    @property
    def report(self) -> Path:
        return self.run_dir / "report.html"


def run(
    name: str,
    *,
    target: str | None = None,
    params: dict[str, Any] | None = None,
    fail_on: Severity = Severity.WARNING,
    output_root: Path | None = None,
    fail_on_config: bool = False,
    fail_on_new: bool = False,
    timeout_s: float | None = None,
    fail_on_not_checked: bool = False,
) -> RunResult:
    """Execute a runbook against a target (a profile name; None resolves from the environment).

    Configuration risks (``Kind.CONFIG``) are reported but count towards ``fail_on`` only with
    ``fail_on_config``: a standing risk must not page a scheduler at every run. ``timeout_s`` bounds the whole
    run (the kernel is killed, the partial notebook kept); ``fail_on_new`` fails only on findings the previous
    run of this runbook on this target did not have (a check the previous run could not do keeps the keys of
    the last run that could); "not checked" findings count only with ``fail_on_not_checked``.
    """
    path = runbooks.find(name)
    declared = runbooks.parameters(path)
    values = runbooks.coerce(dict(params or {}), declared)
    target = target or values.get("target") or None
    resolved = resolve(target)  # fails here, before a kernel starts, when the target is unusable
    if target is not None and "target" in declared:
        values["target"] = target
    root = history.runs_dir(output_root)
    index = history.History(root)
    clean, hidden = artefacts.cleaner(resolved, values, index.secrets())
    with execute.exclusive(resolved.name, path.stem), execute.quiet_channels():
        run_dir = artefacts.new_run_dir(root, path.stem)
        outcome = execute.execute(path, run_dir / ".executing.ipynb", values, run_dir, timeout_s)
        notebook, unreadable = artefacts.executed_notebook(run_dir / ".executing.ipynb", clean, values)
        if unreadable and outcome.failure is None:
            outcome = dataclasses.replace(outcome, failure="failed", error=unreadable)
        outcome = dataclasses.replace(outcome, error=clean(outcome.error))  # a cell's error may quote a secret
        found = artefacts.cleaned(from_notebook(notebook) if notebook is not None else [], clean)
        judged = verdict.judge(
            found,
            outcome,
            fail_on=fail_on,
            fail_on_config=fail_on_config,
            acks={key: Severity(ack.severity) for key, ack in index.acks(resolved.name).items()},
            previous=index.latest_keys(path.stem, resolved.name) if fail_on_new else None,
            fail_on_not_checked=fail_on_not_checked,
        )
        manifest = artefacts.manifest(
            path.stem,
            resolved,
            values,
            outcome,
            judged,
            found,
            revision=runbooks.revision(path),
            facts=artefacts.environment(resolved),
        )
        artefacts.write(
            run_dir,
            notebook=notebook,
            found=found,
            verdict=judged,
            title=f"{path.stem} on {resolved.name}",
            manifest=manifest,
            clean=clean,
            hidden=hidden,
        )
        index.record(run_dir, scrub=lambda text: scrub_text(text, hidden))
    return RunResult(path.stem, run_dir, judged.exit_code, judged.status, found, judged.error)
