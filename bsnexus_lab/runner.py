"""Runbooks: parameterized notebooks executed by papermill into a run directory kept as evidence.

A run directory ``runs/<runbook>/<UTC timestamp>-<id>/`` holds:

- ``notebook.ipynb``: the executed notebook (kept even when a cell failed, with the error in it);
- ``report.html``: the notebook without its code, findings first;
- ``findings.json``: the findings the notebook emitted;
- ``run.json``: what ran, against which target (redacted), with which parameters, and how it ended.

Every artefact is scrubbed of the target's passwords before it is written. Exit statuses: 0 when no finding
reaches ``fail_on`` (configuration risks only count with ``fail_on_config``), 1 when one does, 2 when the
notebook failed.
"""

from __future__ import annotations

import ast
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bsnexus_lab import findings as findings_io
from bsnexus_lab import report
from bsnexus_lab.config import Target, resolve
from bsnexus_lab.errors import RunbookError
from bsnexus_lab.findings import Finding, Kind, Severity

COUNTED = (Kind.CAUSE, Kind.SYMPTOM)  # what fail_on counts unless fail_on_config

EXIT_OK, EXIT_FINDINGS, EXIT_FAILED = 0, 1, 2
KERNEL = "python3"


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    default: str
    help: str

    def signature(self) -> str:
        return f"{self.name}: {self.type} = {self.default}"


@dataclass
class RunResult:
    runbook: str
    run_dir: Path
    exit_code: int
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None

    @property
    def notebook(self) -> Path:
        return self.run_dir / "notebook.ipynb"

    @property
    def report(self) -> Path:
        return self.run_dir / "report.html"


def runbook_dirs() -> list[Path]:
    configured = os.environ.get("BSNEXUS_LAB_RUNBOOKS")
    dirs = [Path(configured)] if configured else []
    return [*dirs, Path.cwd() / "runbooks", Path(__file__).resolve().parent.parent / "runbooks"]


def available() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory in runbook_dirs():
        for path in sorted(directory.glob("*.ipynb")):
            found.setdefault(path.stem, path)
    return found


def find(name: str) -> Path:
    if name.endswith(".ipynb") and Path(name).is_file():
        return Path(name)
    runbooks = available()
    if name not in runbooks:
        raise RunbookError(f"no runbook named {name!r}", hint=f"available: {', '.join(sorted(runbooks)) or 'none'}")
    return runbooks[name]


def parameters(path: Path) -> dict[str, Parameter]:
    """The runbook's declared parameters (its cell tagged ``parameters``), read without starting a kernel."""
    import papermill

    declared = papermill.inspect_notebook(str(path))
    return {
        name: Parameter(name, info["inferred_type_name"], info["default"], info.get("help", ""))
        for name, info in declared.items()
    }


def coerce(given: dict[str, Any], declared: dict[str, Parameter]) -> dict[str, Any]:
    """Check names and types against the declaration; CLI strings become the declared type."""
    accepted = ", ".join(p.signature() for p in declared.values())
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise RunbookError(f"unknown parameter {', '.join(unknown)}", hint=f"accepted: {accepted}")
    for name, value in given.items():
        if any(_has_password(v) for v in (value if isinstance(value, list | tuple) else [value])):
            raise RunbookError(
                f"parameter {name} carries a password, which would be written into the notebook",
                hint="put credentials in a profile or BSNEXUS_LAB_* variables and pass the profile name",
            )
    return {name: _coerce_one(value, declared[name], accepted) for name, value in given.items()}


def _has_password(value: Any) -> bool:
    try:
        return isinstance(value, str) and "://" in value and urlsplit(value).password is not None
    except ValueError:
        return "@" in value


def _coerce_one(value: Any, param: Parameter, accepted: str) -> Any:
    declared = param.type if param.type != "None" else _type_of_default(param.default)
    kinds = [k.strip() for k in declared.replace("Optional[", "").rstrip("]").split("|")]
    optional = "None" in kinds
    kind = next((k for k in kinds if k != "None"), "str")
    if optional and (value is None or (isinstance(value, str) and value.lower() in {"none", "null"})):
        return None
    try:
        return _convert(value, kind)
    except (ValueError, TypeError):
        raise RunbookError(
            f"parameter {param.name} expects {param.type}, got {value!r}", hint=f"accepted: {accepted}"
        ) from None


def _type_of_default(default: str) -> str:
    """papermill reports an unannotated parameter's type as 'None': take it from the default's literal."""
    try:
        value = ast.literal_eval(default)
    except (ValueError, SyntaxError):
        return "str"
    return "None" if value is None else type(value).__name__


def _convert(value: Any, kind: str) -> Any:
    if kind in {"int", "float"}:
        if isinstance(value, bool):
            raise TypeError(value)
        return int(value) if kind == "int" else float(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if str(value).lower() in {"true", "1", "yes", "on"}:
            return True
        if str(value).lower() in {"false", "0", "no", "off"}:
            return False
        raise ValueError(value)
    if kind.startswith("list"):
        if isinstance(value, list | tuple):
            return [str(v) for v in value]
        return [part.strip() for part in str(value).split(",") if part.strip()]
    if kind == "str":
        if not isinstance(value, str):
            raise TypeError(value)
        return value
    return value


def run(
    name: str,
    *,
    target: str | None = None,
    params: dict[str, Any] | None = None,
    fail_on: Severity = Severity.WARNING,
    output_root: Path | None = None,
    fail_on_config: bool = False,
) -> RunResult:
    """Execute a runbook against a target (a profile name; None resolves from the environment).

    Configuration risks (``Kind.CONFIG``) are reported but count towards ``fail_on`` only with
    ``fail_on_config``: a standing risk must not page a scheduler at every run.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    path = find(name)
    declared = parameters(path)
    values = coerce(dict(params or {}), declared)
    target = target or values.get("target") or None
    resolved = resolve(target)  # fails here, before a kernel starts, when the target is unusable
    if target is not None and "target" in declared:
        values["target"] = target
    run_dir = _new_run_dir(output_root or Path.cwd() / "runs", path.stem)
    scratch = run_dir / ".executing.ipynb"
    started = time.time()
    error = None
    try:
        papermill.execute_notebook(
            str(path),
            str(scratch),
            parameters=values,
            kernel_name=KERNEL,
            cwd=str(Path.cwd()),
            progress_bar=False,
            log_output=False,
            # the lab's displays in the report; the kernel's start-up chatter kept off stderr
            extra_arguments=["--ext=bsnexus_lab.display", "--IPKernelApp.log_level=CRITICAL"],
        )
    except PapermillExecutionError as exc:
        error = f"cell {exc.exec_count} raised {exc.ename}: {exc.evalue}"
    except KeyboardInterrupt:
        _finish(path.stem, run_dir, scratch, resolved, values, (fail_on, fail_on_config), started, "interrupted")
        raise
    except Exception as exc:  # a kernel that died or never started: still leave evidence behind
        error = f"{type(exc).__name__}: {exc}"
    return _finish(path.stem, run_dir, scratch, resolved, values, (fail_on, fail_on_config), started, error)


def _new_run_dir(root: Path, runbook: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = root / runbook / f"{stamp}-{secrets.token_hex(3)}"
    run_dir.mkdir(parents=True)
    return run_dir


def _finish(
    runbook: str,
    run_dir: Path,
    scratch: Path,
    target: Target,
    values: dict[str, Any],
    failing: tuple[Severity, bool],
    started: float,
    error: str | None,
) -> RunResult:
    import nbformat

    error = target.scrub(error) if error else None
    notebook = None
    if scratch.exists():
        notebook = nbformat.reads(target.scrub(scratch.read_text()), as_version=4)
        scratch.unlink()
        nbformat.write(notebook, run_dir / "notebook.ipynb")
    found = findings_io.from_notebook(notebook) if notebook is not None else []
    (run_dir / "findings.json").write_text(findings_io.to_json(found))
    if error:
        exit_code = EXIT_FAILED
    elif found and findings_io.worst(found, kinds=None if failing[1] else COUNTED).rank >= failing[0].rank:
        exit_code = EXIT_FINDINGS
    else:
        exit_code = EXIT_OK
    if notebook is not None:
        html = report.html(notebook, found, title=f"{runbook} on {target.name}", error=error)
        (run_dir / "report.html").write_text(target.scrub(html))
    manifest = {
        "runbook": runbook,
        "target": {"name": target.name, "redis": target.redis, "database": target.database},
        "parameters": values,
        "started": datetime.fromtimestamp(started, UTC).isoformat(),
        "duration_s": round(time.time() - started, 2),
        "exit_code": exit_code,
        "error": error,
        "worst": findings_io.worst(found).value,
    }
    (run_dir / "run.json").write_text(target.scrub(json.dumps(manifest, indent=2, default=str)))
    return RunResult(runbook, run_dir, exit_code, found, error)
