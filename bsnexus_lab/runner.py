"""Runbooks: parameterized notebooks executed by papermill into a run directory kept as evidence.

A run directory ``runs/<runbook>/<UTC timestamp>-<id>/`` holds:

- ``notebook.ipynb``: the executed notebook (kept even when a cell failed, with the error in it);
- ``report.html``: the notebook without its code, findings first;
- ``findings.json``: the findings the notebook emitted;
- ``run.json``: what ran, against which target (redacted), with which parameters, and how it ended.

Every artefact is scrubbed of the target's passwords and of BSNexus's own credentials before it is written.

Exit statuses (``run.json`` records the same as ``status``):

- 0 ``ok``: the runbook ran and no finding reached ``fail_on``;
- 1 ``findings``: a finding reached ``fail_on``;
- 2 ``failed``: the tool could not do its job (bad parameters, an unusable target or output directory, a runbook
  that is not a notebook or has no parameters cell, a cell that raised, a run that emitted no findings);
- 3 ``interrupted``: SIGINT or SIGTERM (a scheduler's timeout) ended the run; the kernel is stopped and the
  partial notebook and ``run.json`` are kept.
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import os
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bsnexus_lab import findings as findings_io
from bsnexus_lab import report
from bsnexus_lab.config import Target, resolve, scrub_data
from bsnexus_lab.errors import RunbookError
from bsnexus_lab.findings import Finding, Severity
from bsnexus_lab.masking import mask_data, mask_text

EXIT_OK, EXIT_FINDINGS, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3
STATUS = {EXIT_OK: "ok", EXIT_FINDINGS: "findings", EXIT_FAILED: "failed", EXIT_INTERRUPTED: "interrupted"}
KERNEL = "python3"
# Parameters named ``*_s`` are seconds: more than zero, at most a day (a longer run is a typo, not a plan).
MAX_SECONDS = 86_400.0
MAX_COUNT = 1_000_000_000


class Interrupted(BaseException):
    """SIGINT/SIGTERM during a run: unwinds papermill like KeyboardInterrupt, whichever signal it was."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)


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
    import nbformat
    import papermill

    try:
        declared = papermill.inspect_notebook(str(path))
    except (OSError, ValueError, nbformat.ValidationError, KeyError, TypeError) as exc:
        raise RunbookError(
            f"runbook {path} is not a readable notebook", hint=f"{type(exc).__name__}: {_first_line(exc)}"
        ) from None
    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nbformat.read(path, 4).cells):
        raise RunbookError(
            f"runbook {path} has no cell tagged 'parameters'",
            hint="tag the cell that declares its parameters (target: str = \"\" first) with 'parameters'",
        )
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
        converted = _convert(value, kind)
    except (ValueError, TypeError):
        raise RunbookError(
            f"parameter {param.name} expects {param.type}, got {value!r}", hint=f"accepted: {accepted}"
        ) from None
    if problem := _out_of_range(param.name, converted):
        raise RunbookError(f"parameter {param.name}={value!r} is out of range: {problem}", hint=f"accepted: {accepted}")
    return converted


def _out_of_range(name: str, value: Any) -> str | None:
    """Why a number cannot be meant: not finite, negative, a zero or absurd interval, an absurd count."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value):
        return "it must be a finite number"
    if name.endswith("_s"):
        if not 0 < value <= MAX_SECONDS:
            return f"seconds must be more than 0 and at most {MAX_SECONDS:.0f} (a day)"
    elif value < 0:
        return "it must not be negative"
    elif value > MAX_COUNT:
        return f"it must be at most {MAX_COUNT}"
    return None


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
        if isinstance(value, str) and value.strip().startswith("["):
            value = json.loads(value)  # a JSON list; a malformed one is a ValueError like any bad value
            if not isinstance(value, list):
                raise TypeError(value)
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
) -> RunResult:
    """Execute a runbook against a target (a profile name; None resolves from the environment)."""
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
    error, interrupted = None, False
    try:
        with _signals_interrupt():
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
    except (Interrupted, KeyboardInterrupt) as exc:
        _stop_kernels()
        interrupted = True
        error = f"interrupted by {exc.args[0] if isinstance(exc, Interrupted) else 'SIGINT'}"
    except Exception as exc:  # a kernel that died or never started: still leave evidence behind
        error = f"{type(exc).__name__}: {exc}"
    return _finish(path.stem, run_dir, scratch, resolved, values, fail_on, started, error, interrupted=interrupted)


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGINT raise :class:`Interrupted` in the main thread while a kernel runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C is not swallowed
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise Interrupted(signum)

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _stop_kernels() -> None:
    """End the kernels this process started: an interrupted papermill does not get to shut them down."""
    import psutil

    kernels = [c for c in psutil.Process().children() if "ipykernel" in " ".join(_cmdline(c))]
    for child in kernels:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    _, alive = psutil.wait_procs(kernels, timeout=5)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()
    psutil.wait_procs(alive, timeout=5)


def _cmdline(process: Any) -> list[str]:
    import psutil

    try:
        return list(process.cmdline())
    except psutil.Error:
        return []


def _new_run_dir(root: Path, runbook: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = root / runbook / f"{stamp}-{secrets.token_hex(3)}"
    try:
        run_dir.mkdir(parents=True)
        (run_dir / ".writable").touch()
        (run_dir / ".writable").unlink()
    except OSError as exc:
        raise RunbookError(
            f"cannot write the run directory under {root}", hint=f"{exc.strerror or exc}; choose another --output-dir"
        ) from None
    return run_dir


def _finish(
    runbook: str,
    run_dir: Path,
    scratch: Path,
    target: Target,
    values: dict[str, Any],
    fail_on: Severity,
    started: float,
    error: str | None,
    *,
    interrupted: bool = False,
) -> RunResult:
    import nbformat

    secrets_ = target.secrets()

    def clean(data: Any) -> Any:
        return mask_data(scrub_data(data, secrets_))

    notebook = None
    if scratch.exists():
        try:
            notebook = nbformat.reads(json.dumps(clean(json.loads(scratch.read_text()))), as_version=4)
        except ValueError as exc:  # a kernel killed mid-save: say so rather than lose the run
            error = error or f"the executed notebook could not be read back: {exc}"
        scratch.unlink()
        if notebook is not None:
            nbformat.write(notebook, run_dir / "notebook.ipynb")
    found = findings_io.from_notebook(notebook) if notebook is not None else []
    if not error and not found:
        error = "the runbook emitted no findings (no bl.emit(...) cell ran)"
    error = clean(error) if error else None
    (run_dir / "findings.json").write_text(json.dumps(clean(json.loads(findings_io.to_json(found))), indent=2))
    if interrupted:
        exit_code = EXIT_INTERRUPTED
    elif error:
        exit_code = EXIT_FAILED
    elif findings_io.worst(found).rank >= fail_on.rank:
        exit_code = EXIT_FINDINGS
    else:
        exit_code = EXIT_OK
    if notebook is not None or error:
        shown = notebook if notebook is not None else nbformat.v4.new_notebook()
        html = report.html(shown, found, title=f"{runbook} on {target.name}", error=error)
        (run_dir / "report.html").write_text(mask_text(target.scrub(html)))
    manifest = {
        "runbook": runbook,
        "target": {"name": target.name, "redis": target.redis, "database": target.database},
        "parameters": values,
        "started": datetime.fromtimestamp(started, UTC).isoformat(),
        "duration_s": round(time.time() - started, 2),
        "status": STATUS[exit_code],
        "exit_code": exit_code,
        "error": error,
        "worst": findings_io.worst(found).value,
    }
    (run_dir / "run.json").write_text(json.dumps(clean(json.loads(json.dumps(manifest, default=str))), indent=2))
    return RunResult(runbook, run_dir, exit_code, found, error)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip() or type(exc).__name__).splitlines()[0]
