"""A run's artefacts, each written once, after the verdict, into ``runs/<runbook>/<UTC timestamp>-<id>/``:

- ``notebook.ipynb``: the executed notebook (kept even when a cell failed, with the error in it), with
  secret-named parameters shown as ``***``;
- ``report.html``: the notebook without its code, findings first;
- ``findings.json``: the findings the notebook emitted, each with its ``key`` (:mod:`~bsnexus_lab.findings.document`);
- ``run.json``: what ran, against which target (redacted) and what it ran against (:func:`environment`), with
  which parameters, and how it ended (status, exit code, error, acknowledged keys).

Everything is scrubbed of the target's passwords, of the values of secret-named parameters (``api_token``,
``password``, ...: the kernel gets them, no artefact shows them) and of BSNexus's own credentials.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bsnexus_lab import findings as findings_io
from bsnexus_lab import report
from bsnexus_lab.config import Target, scrub_data, scrub_text
from bsnexus_lab.errors import RunbookError
from bsnexus_lab.execute import Outcome
from bsnexus_lab.findings import Finding, document
from bsnexus_lab.history import redact_parameters
from bsnexus_lab.masking import is_secret_parameter, mask_data, mask_text
from bsnexus_lab.runbooks import KERNEL
from bsnexus_lab.verdict import Verdict

ENVIRONMENT_WAIT_S = 5.0  # what the run ran against: how long the target may take to say it

Clean = Callable[[Any], Any]


def new_run_dir(root: Path, runbook: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = root / runbook / f"{stamp}-{secrets.token_hex(6)}"
    try:
        run_dir.mkdir(parents=True)
        (run_dir / ".writable").touch()
        (run_dir / ".writable").unlink()
    except OSError as exc:
        raise RunbookError(
            f"cannot write the run directory under {root}", hint=f"{exc.strerror or exc}; choose another --output-dir"
        ) from None
    return run_dir


def cleaner(target: Target, values: dict[str, Any], others: Sequence[str] = ()) -> tuple[Clean, list[str]]:
    """What scrubs data for the artefacts (the target's passwords, secret parameters' values, credentials, and
    ``others``: the shared history's password), and the secrets it scrubs."""
    hidden = [*target.secrets(), *_secret_values(values), *others]
    return (lambda data: mask_data(scrub_data(data, hidden))), hidden


def executed_notebook(scratch: Path, clean: Clean, values: dict[str, Any]) -> tuple[Any, str | None]:
    """The executed notebook read back from papermill's scratch file (then removed), scrubbed, parameters hidden;
    None and why when there is none to read."""
    import nbformat

    if not scratch.exists():
        return None, None
    try:
        notebook = nbformat.reads(json.dumps(clean(json.loads(scratch.read_text()))), as_version=4)
    except ValueError as exc:  # a kernel killed mid-save: say so rather than lose the run
        return None, f"the executed notebook could not be read back: {exc}"
    finally:
        scratch.unlink()
    _hide_parameters(notebook, values)
    return notebook, None


def cleaned(found: list[Finding], clean: Clean) -> list[Finding]:
    """The findings as the artefacts and the history keep them: scrubbed, keys made from the scrubbed subject."""
    return document.load(clean(json.loads(document.dumps(found))))


def write(
    run_dir: Path,
    *,
    notebook: Any,
    found: list[Finding],
    verdict: Verdict,
    title: str,
    manifest: dict[str, Any],
    clean: Clean,
    hidden: list[str],
) -> None:
    """Write the notebook, findings.json, report.html and run.json (each once)."""
    import nbformat

    if notebook is not None:
        nbformat.write(notebook, run_dir / "notebook.ipynb")
    (run_dir / "findings.json").write_text(document.dumps(found))
    if notebook is not None or verdict.error:
        shown = notebook if notebook is not None else nbformat.v4.new_notebook()
        html = report.html(shown, found, title=title, error=verdict.error)
        (run_dir / "report.html").write_text(mask_text(scrub_text(html, hidden)))
    (run_dir / "run.json").write_text(json.dumps(clean(json.loads(json.dumps(manifest, default=str))), indent=2))


def manifest(
    runbook: str,
    target: Target,
    values: dict[str, Any],
    outcome: Outcome,
    verdict: Verdict,
    found: list[Finding],
    *,
    revision: str | None,
    facts: dict[str, Any],
) -> dict[str, Any]:
    """run.json: what ran, against what, and how it ended."""
    return {
        "runbook": runbook,
        "target": {"name": target.name, "redis": target.redis, "database": target.database},
        "parameters": redact_parameters(values),
        "started": datetime.fromtimestamp(outcome.started, UTC).isoformat(),
        "duration_s": round(outcome.ended - outcome.started, 2),
        "status": verdict.status,
        "exit_code": verdict.exit_code,
        "error": verdict.error,
        "worst": findings_io.worst(found).value,
        "acknowledged": list(verdict.acknowledged),
        "revision": revision,
        "environment": facts,
    }


def environment(target: Target) -> dict[str, Any]:
    """What the run ran against (versions, Alembic revision, maxmemory-policy...), so a diff shows what changed:
    what each area's ``environment`` says, through a read-only Lab on the target.

    Facts, not diagnosis: an area whose server does not answer within :data:`ENVIRONMENT_WAIT_S` (all areas ask
    at once) gives no value, never an error (the run's findings said why); its probe finishes in the background.
    """
    from bsnexus_lab.areas import areas
    from bsnexus_lab.lab import Lab

    lab = Lab(target)
    asking = {name: getattr(lab, name) for name, area in areas().items() if area.environment is not None}
    facts: dict[str, Any] = {}
    lock = threading.Lock()

    def ask(name: str) -> None:
        try:
            said = areas()[name].environment(asking[name])  # type: ignore[misc]
        except Exception:  # a fact the target cannot give is no fact, not a failure
            return
        with lock:
            facts.update({k: v.decode() if isinstance(v, bytes) else v for k, v in said.items()})

    threads = [threading.Thread(target=ask, args=(name,), daemon=True) for name in asking]
    for thread in threads:
        thread.start()

    def close() -> None:
        for thread in threads:
            thread.join()
        lab.close()

    closer = threading.Thread(target=close, name="bsnexus-lab-environment", daemon=True)
    closer.start()
    closer.join(ENVIRONMENT_WAIT_S)
    with lock:
        return {k: facts[k] for k in sorted(facts)}


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

    shown = redact_parameters(values)
    if shown == values:
        return
    if "papermill" in notebook.metadata:
        notebook.metadata.papermill["parameters"] = shown
    for cell in notebook.cells:
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.source = translate_parameters(KERNEL, "python", shown, "Parameters")
