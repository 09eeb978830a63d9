"""``findings.json``: the findings of a run as one versioned document, the contract schedulers, acks, ``runs
diff``, the history and postmortems read.

Schema 2 (written): ``{"schema": 2, "findings": [...]}``, ranked (:func:`~bsnexus_lab.findings.model.ranked`),
each finding's ``severity`` its effective severity and ``own_severity`` its own, explained findings nested in
their cause's ``explains``. Schema 1 (still read): a bare list of findings whose ``severity`` was their own.
Every reader goes through :func:`load` or :func:`records`, so the shape is decided here once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bsnexus_lab.errors import LabError
from bsnexus_lab.findings.model import Finding, ranked

SCHEMA = 2

Source = str | Path | Mapping[str, Any] | list[Any]


def dumps(findings: Iterable[Finding]) -> str:
    """The document, ranked as the report ranks it."""
    return json.dumps({"schema": SCHEMA, "findings": [f.to_dict() for f in ranked(findings)]}, indent=2, default=str)


def records(source: Source) -> list[dict[str, Any]]:
    """The top-level finding dicts of a document in either schema: its text, a path to it, or it parsed."""
    data: Any = source
    if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith(("{", "["))):
        data = Path(source).read_text()
    if isinstance(data, str):
        data = json.loads(data)
    if isinstance(data, list):  # schema 1: a bare list
        return data
    if not isinstance(data, Mapping) or not isinstance(data.get("findings"), list):
        raise LabError("not a findings document", hint="findings.json holds {'schema': 2, 'findings': [...]}")
    if data.get("schema", 1) > SCHEMA:
        raise LabError(
            f"findings.json schema {data['schema']} is newer than this lab reads ({SCHEMA})",
            hint="upgrade bsnexus-lab to read it",
        )
    return list(data["findings"])


def load(source: Source) -> list[Finding]:
    """The top-level findings of a document (explained ones inside their causes), each with its own severity."""
    return [Finding.from_dict(f) for f in records(source)]
