"""Runbooks: parameterized notebooks executed by papermill into a run directory kept as evidence.

A run directory ``runs/<runbook>/<UTC timestamp>-<id>/`` holds:

- ``notebook.ipynb``: the executed notebook (kept even when a cell failed, with the error in it);
- ``report.html``: the notebook without its code, findings first;
- ``findings.json``: the findings the notebook emitted;
- ``run.json``: what ran, against which target (redacted), with which parameters, and how it ended.

Every artefact is scrubbed of the target's passwords, of the values of secret-named parameters (``api_token``,
``password``, ...: the kernel gets them, no artefact shows them) and of BSNexus's own credentials before it is
written.

Exit statuses (``run.json`` records them as ``status``): 0 ``ok`` when no finding reaches ``fail_on``
(configuration risks only count with ``fail_on_config``; acknowledged findings and, with ``fail_on_new``,
findings the previous run had, do not count); 1 ``findings`` when one does; 2 ``failed`` when the tool could not
do its job (bad parameters, an unusable target or output directory, a runbook that is not a notebook or has no
parameters cell, a cell that raised, a run that emitted no findings, a timeout); 3 when the runbook is already
running on the target; 128 + the signal (130 SIGINT, 143 SIGTERM) ``interrupted``: the kernel is stopped and the
partial notebook and ``run.json`` are kept. Every run is indexed in the history
(:mod:`bsnexus_lab.history`).
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import fcntl
import json
import logging
import math
import os
import re
import reprlib
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bsnexus_lab import findings as findings_io
from bsnexus_lab import history, report
from bsnexus_lab.config import Target, resolve, scrub_data, scrub_text, state_dir
from bsnexus_lab.errors import LabError, RunbookError
from bsnexus_lab.findings import Finding, Kind, Severity
from bsnexus_lab.masking import is_secret_parameter, mask_data, mask_text
from bsnexus_lab.sampler import MIN_EVERY_S

COUNTED = (Kind.CAUSE, Kind.SYMPTOM)  # what fail_on counts unless fail_on_config

RUN_DIR_ENV = "BSNEXUS_LAB_RUN_DIR"
EXIT_OK, EXIT_FINDINGS, EXIT_FAILED, EXIT_BUSY = 0, 1, 2, 3
STATUS = {EXIT_OK: "ok", EXIT_FINDINGS: "findings", EXIT_FAILED: "failed", EXIT_BUSY: "busy"}
# Parameters named ``*_s`` are seconds: more than zero, at most a day (a longer run is a typo, not a plan).
MAX_SECONDS = 86_400.0
MAX_COUNT = 1_000_000_000
ENVIRONMENT_WAIT_S = 5.0  # the versions recorded after a run: how long a server may take to say them


def exit_interrupted(signum: int) -> int:
    """The shell's convention: 128 + the signal (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + signum


class Interrupted(BaseException):
    """SIGINT/SIGTERM during a run: unwinds papermill like KeyboardInterrupt, whichever signal it was."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


KERNEL = "python3"
PACKAGED = Path(__file__).resolve().parent / "runbooks"  # shipped in the wheel (see pyproject.toml)


class RunbookBusy(RunbookError):
    """The same runbook is already running on the same target."""

    exit_code = EXIT_BUSY


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
    return [*dirs, Path.cwd() / "runbooks", PACKAGED]


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
    unknown = sorted(repr(name) for name in set(given) - set(declared))  # quoted: one line whatever the name
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
    shown = reprlib.repr(value)  # a huge value is shortened, so the message stays one readable line
    try:
        converted = _convert(value, kind)
    except (ValueError, TypeError, OverflowError):  # float(10**400), int(float("inf"))
        raise RunbookError(
            f"parameter {param.name} expects {param.type}, got {shown}", hint=f"accepted: {accepted}"
        ) from None
    if problem := _out_of_range(param.name, converted):
        raise RunbookError(f"parameter {param.name}={shown} is out of range: {problem}", hint=f"accepted: {accepted}")
    return converted


def _out_of_range(name: str, value: Any) -> str | None:
    """Why a number cannot be meant: not finite, negative, a zero or absurd interval, an absurd count."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):  # math.isfinite(10**400) would overflow
        return "it must be a finite number"
    if name.endswith("_s"):
        if not 0 < value <= MAX_SECONDS:
            return f"seconds must be more than 0 and at most {MAX_SECONDS:.0f} (a day)"
        if name == "every_s" and value < MIN_EVERY_S:
            return f"a sampling interval must be at least {MIN_EVERY_S} s (the target's load is bounded)"
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
        if kind == "int" and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)  # int() would silently truncate 2.5 to 2
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
    fail_on_config: bool = False,
    fail_on_new: bool = False,
    timeout_s: float | None = None,
) -> RunResult:
    """Execute a runbook against a target (a profile name; None resolves from the environment).

    Configuration risks (``Kind.CONFIG``) are reported but count towards ``fail_on`` only with
    ``fail_on_config``: a standing risk must not page a scheduler at every run. ``timeout_s`` bounds the whole
    run (the kernel is killed, the partial notebook kept); ``fail_on_new`` fails only on findings the previous
    run of this runbook on this target did not have.
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
    root = history.runs_dir(output_root)
    failing = (fail_on, fail_on_config)
    with exclusive(resolved.name, path.stem), _quiet_channels():
        run_dir = _new_run_dir(root, path.stem)
        scratch = run_dir / ".executing.ipynb"
        started = time.time()
        error, interrupted = None, None
        kernel = _kernel_manager()
        try:
            with _signals_interrupt(), _kernel_sees(run_dir), _deadline(kernel, timeout_s) as expired:
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
                    km=kernel,
                )
        except PapermillExecutionError as exc:
            error = f"cell {exc.exec_count} raised {exc.ename}: {exc.evalue}"
        except (Interrupted, KeyboardInterrupt) as exc:
            interrupted = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
            error = f"interrupted by {signal.Signals(interrupted).name}"
        except Exception as exc:  # a kernel that died or never started: still leave evidence behind
            error = f"{type(exc).__name__}: {exc}"
        finally:
            _shutdown(kernel)
        if expired.is_set():
            error = f"timed out after {timeout_s:g} s (whole run); the kernel was stopped"
        result = _finish(path.stem, run_dir, scratch, resolved, values, failing, started, error, interrupted)
    return _settle(result, path, resolved, failing=failing, fail_on_new=fail_on_new)


@contextlib.contextmanager
def _quiet_channels() -> Iterator[None]:
    """A kernel's channels torn down mid-message (at shutdown, on a signal, on a loaded machine) make pyzmq log
    "Uncaught exception in ZMQStream callback" with a traceback through tornado's logger, straight to stderr:
    plumbing, not the run's outcome (the notebook and exit status say that), so it is kept off the user's screen."""
    channels = logging.getLogger("tornado.general")
    was = channels.disabled
    channels.disabled = True
    try:
        yield
    finally:
        channels.disabled = was


@contextlib.contextmanager
def _kernel_sees(run_dir: Path) -> Iterator[None]:
    """The kernel inherits ``BSNEXUS_LAB_RUN_DIR``: remediation journals its writes (``writes.jsonl``), and the
    profile area keeps its captures and flame graphs, in the run directory."""
    previous = os.environ.get(RUN_DIR_ENV)
    os.environ[RUN_DIR_ENV] = str(run_dir)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(RUN_DIR_ENV, None)
        else:
            os.environ[RUN_DIR_ENV] = previous


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
    failing: tuple[Severity, bool],
    started: float,
    error: str | None,
    interrupted: int | None = None,
) -> RunResult:
    import nbformat

    secrets_ = [*target.secrets(), *_secret_values(values)]

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
            _hide_parameters(notebook, values)
            nbformat.write(notebook, run_dir / "notebook.ipynb")
    found = findings_io.from_notebook(notebook) if notebook is not None else []
    if not error and not found:
        error = "the runbook emitted no findings (no bl.emit(...) cell ran)"
    error = clean(error) if error else None
    (run_dir / "findings.json").write_text(json.dumps(clean(json.loads(findings_io.to_json(found))), indent=2))
    if interrupted:
        exit_code = exit_interrupted(interrupted)
    elif error:
        exit_code = EXIT_FAILED
    elif findings_io.worst(found, kinds=None if failing[1] else COUNTED).rank >= failing[0].rank:
        exit_code = EXIT_FINDINGS
    else:
        exit_code = EXIT_OK
    if notebook is not None or error:
        shown = notebook if notebook is not None else nbformat.v4.new_notebook()
        html = report.html(shown, found, title=f"{runbook} on {target.name}", error=error)
        (run_dir / "report.html").write_text(mask_text(scrub_text(html, secrets_)))
    manifest = {
        "runbook": runbook,
        "target": {"name": target.name, "redis": target.redis, "database": target.database},
        "parameters": history.redact_parameters(values),
        "started": datetime.fromtimestamp(started, UTC).isoformat(),
        "duration_s": round(time.time() - started, 2),
        "status": "interrupted" if interrupted else None,  # otherwise history.status() tells, in _settle
        "exit_code": exit_code,
        "error": error,
        "worst": findings_io.worst(found).value,
    }
    (run_dir / "run.json").write_text(json.dumps(clean(json.loads(json.dumps(manifest, default=str))), indent=2))
    return RunResult(runbook, run_dir, exit_code, found, error)


def _secret_values(values: dict[str, Any]) -> list[str]:
    """The values of secret-named parameters, to be scrubbed wherever a cell printed them."""
    found: list[str] = []
    for name, value in values.items():
        if is_secret_parameter(name):
            found += [str(v) for v in (value if isinstance(value, list) else [value]) if v not in ("", None)]
    return found


def _hide_parameters(notebook: Any, values: dict[str, Any]) -> None:
    """Papermill's injected-parameters cell and its metadata, rewritten with secret-named parameters as ``***``
    (scrubbing alone would leave a value shorter than MIN_SCRUBBED_LEN)."""
    from papermill.translators import translate_parameters

    shown = history.redact_parameters(values)
    if shown == values:
        return
    if "papermill" in notebook.metadata:
        notebook.metadata.papermill["parameters"] = shown
    for cell in notebook.cells:
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.source = translate_parameters(KERNEL, "python", shown, "Parameters")


# -- one run per runbook and target -----------------------------------------------------------------------
@contextlib.contextmanager
def exclusive(target: str, runbook: str) -> Iterator[Path]:
    """Hold the lock of ``runbook`` on ``target`` (an flock, so the kernel frees it when a run is killed);
    :class:`RunbookBusy` when another run holds it. A lock file left by a killed run is noticed and cleared."""
    directory = state_dir() / "locks"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', target)}--{runbook}.lock"
    handle = path.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise RunbookBusy(
                f"runbook {runbook} is already running on target {target} ({holder})",
                hint="wait for it to finish; a killed run's lock is cleared automatically",
            ) from None
        handle.seek(0)
        left = handle.read().strip()
        if left:
            print(f"bsnexus-lab: cleared a lock left by a run that did not finish ({left})", file=sys.stderr)
        handle.truncate(0)
        handle.write(f"pid {os.getpid()} since {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}")
        handle.flush()
        yield path
        handle.truncate(0)
    finally:
        handle.close()


# -- whole-run timeout ---------------------------------------------------------------------------------------
def _kernel_manager() -> Any:
    from jupyter_client.manager import AsyncKernelManager

    return AsyncKernelManager(kernel_name=KERNEL)


@contextlib.contextmanager
def _deadline(kernel: Any, timeout_s: float | None) -> Iterator[threading.Event]:
    """Kill the kernel when the run outlives ``timeout_s``: papermill then stops like for a dead kernel."""
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        process = getattr(getattr(kernel, "provisioner", None), "process", None)
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)

    timer = threading.Timer(timeout_s, expire) if timeout_s else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        yield expired
    finally:
        if timer is not None:
            timer.cancel()


def _shutdown(kernel: Any) -> None:
    """The runner owns the kernel manager it handed papermill, so it stops the kernel itself."""
    if kernel.has_kernel:
        with contextlib.suppress(Exception):
            asyncio.run(kernel.shutdown_kernel(now=True))


# -- after the run: acknowledgements, --fail-on new, what it ran against, the history ----------------------
def _settle(
    result: RunResult,
    path: Path,
    target: Target,
    *,
    failing: tuple[Severity, bool] = (Severity.WARNING, False),
    fail_on_new: bool = False,
) -> RunResult:
    """Judge the findings against acknowledgements (and the previous run), then index the run."""
    manifest_file = result.run_dir / "run.json"
    manifest = json.loads(manifest_file.read_text())
    index = history.History(result.run_dir.parent.parent)
    acks = index.acks(target.name)
    previous = _latest_keys(index, manifest["runbook"], target.name) if fail_on_new else None
    fail_on, fail_on_config = failing
    counting, silenced = [], []
    for finding, _ in history.flatten(f.to_dict() for f in result.findings):
        counted = fail_on_config or finding.get("kind") != Kind.CONFIG.value
        if not counted or Severity(finding["severity"]).rank < fail_on.rank:
            continue
        key = history.finding_key(finding)
        ack = acks.get(key)
        if ack is not None and Severity(finding["severity"]).rank <= Severity(ack.severity).rank:
            silenced.append(key)
        elif previous is None or key not in previous:
            counting.append(key)
    if result.exit_code == EXIT_FINDINGS and not counting:
        result.exit_code = EXIT_OK
    manifest |= {
        "exit_code": result.exit_code,
        "status": manifest.get("status") or history.status({**manifest, "exit_code": result.exit_code}),
        "acknowledged": silenced,
        "revision": _revision(path),
        "environment": environment(target),
    }
    # scrubbed as data: a password that is also a key's name ("redis") must not rename the key
    manifest_file.write_text(json.dumps(scrub_data(manifest, target.secrets()), indent=2, default=str))
    index.record(result.run_dir, scrub=target.scrub)
    return result


def _latest_keys(index: history.History, runbook: str, target: str) -> set[str]:
    earlier = index.runs(target=target, runbook=runbook)
    if earlier.empty:
        return set()
    found = index.findings(earlier.iloc[0]["id"])
    return set(found[found["severity"] != "ok"]["key"])


def _revision(path: Path) -> str | None:
    """The commit that last changed the runbook, ``+dirty`` when it has local edits (None outside git)."""
    try:
        commit = subprocess.run(
            ["git", "log", "-1", "--format=%h", "--", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return f"{commit}+dirty" if commit and dirty else commit or None


def environment(target: Target) -> dict[str, Any]:
    """What the run ran against (versions, Alembic revision, maxmemory-policy), so a diff shows what changed.
    A dependency that is down gives no value, never an error. Its own client may send INFO only."""
    from bsnexus_lab.clients import Clients
    from bsnexus_lab.loop import Loop

    clients = Clients(target, allow_writes=False, commands=frozenset({"INFO"}), scripts=frozenset())
    loop = Loop()
    try:
        return loop.run(_environment(target, clients))
    finally:
        loop.close(clients.aclose())


async def _environment(target: Target, clients: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    # Facts, not diagnosis: a server that does not answer at once gives none (the run's findings said why), and
    # costs the run ENVIRONMENT_WAIT_S rather than the probes' timeouts and retries.
    with contextlib.suppress(Exception), clients.redis_errors():
        async with asyncio.timeout(ENVIRONMENT_WAIT_S):
            redis = clients.redis()
            facts["redis_version"] = (await redis.info("server")).get("redis_version")
            facts["maxmemory_policy"] = (await redis.info("memory")).get("maxmemory_policy")
    if target.database_url is not None:
        queries = {
            "postgresql_version": "SHOW server_version",
            "alembic_revision": "SELECT version_num FROM alembic_version",
        }
        with contextlib.suppress(Exception):
            async with asyncio.timeout(ENVIRONMENT_WAIT_S):
                for name, sql in queries.items():
                    with contextlib.suppress(LabError):  # no alembic_version table: no revision
                        frame = await clients.query(sql)
                        facts[name] = str(frame.iloc[0, 0]) if len(frame) else None
    if target.service_url:
        facts["service_version"] = await asyncio.to_thread(_service_version, target.service_url)
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in facts.items()}


def _service_version(url: str) -> str | None:
    import urllib.request

    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=3) as response:
            return json.loads(response.read()).get("version")
    except (OSError, ValueError):
        return None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip() or type(exc).__name__).splitlines()[0]
