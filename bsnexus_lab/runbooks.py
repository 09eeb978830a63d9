"""Runbooks: where they are found, the parameters cell they declare, and how given values are coerced to it.

A runbook is a notebook with a cell tagged ``parameters`` (papermill's convention): ``target: str = ""`` first,
then one annotated assignment per parameter, its comment the help. Runbooks are found by name in
``BSNEXUS_LAB_RUNBOOKS``, then ``./runbooks``, then the ones shipped in the package; a path to a ``.ipynb``
works too.

Given values (CLI strings or Python values) are converted to the declared type (``a,b`` or a JSON list for a
``list[str]``; ``none``/``null`` for an optional one) and refused before a kernel starts when they cannot be
meant. A number's unit is read from its name: ``*_s`` is seconds, anything else a count. The rules are
:data:`RULES`, checked in order; every row that applies to the parameter (``number``, its unit, or its exact
name) must hold:

    applies to   holds when                     why
    number       finite                         nan and inf are never meant
    seconds      0 < x <= MAX_SECONDS (a day)   a longer run is a typo, not a plan
    every_s      x >= sampler.MIN_EVERY_S       a sampling interval bounds the load on the target
    count        0 <= x <= MAX_COUNT            a negative or absurd count is a typo

A value that carries a password (``redis://:pw@host``) is refused: it would be written into the notebook.
"""

from __future__ import annotations

import ast
import json
import math
import os
import reprlib
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bsnexus_lab.config import RUNBOOKS_ENV
from bsnexus_lab.errors import RunbookError, first_line
from bsnexus_lab.sampler import MIN_EVERY_S

PACKAGED = Path(__file__).resolve().parent / "runbooks"  # shipped in the wheel (see pyproject.toml)
KERNEL = "python3"
MAX_SECONDS = 86_400.0
MAX_COUNT = 1_000_000_000


@dataclass(frozen=True)
class Rule:
    """One row of the parameter rules: ``applies_to`` is ``number``, a unit (``seconds``, ``count``) or a name."""

    applies_to: str
    holds: Callable[[float], bool]
    problem: str


RULES = (
    Rule("number", lambda v: not isinstance(v, float) or math.isfinite(v), "it must be a finite number"),
    Rule(
        "seconds",
        lambda v: 0 < v <= MAX_SECONDS,
        f"seconds must be more than 0 and at most {MAX_SECONDS:.0f} (a day)",
    ),
    Rule(
        "every_s",
        lambda v: v >= MIN_EVERY_S,
        f"a sampling interval must be at least {MIN_EVERY_S} s (the target's load is bounded)",
    ),
    Rule("count", lambda v: v >= 0, "it must not be negative"),
    Rule("count", lambda v: v <= MAX_COUNT, f"it must be at most {MAX_COUNT}"),
)


def unit(name: str) -> str:
    """A number parameter's unit, from its name: ``*_s`` is seconds, anything else a count."""
    return "seconds" if name.endswith("_s") else "count"


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    default: str
    help: str

    def signature(self) -> str:
        return f"{self.name}: {self.type} = {self.default}"


def runbook_dirs() -> list[Path]:
    configured = os.environ.get(RUNBOOKS_ENV)
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
            f"runbook {path} is not a readable notebook", hint=f"{type(exc).__name__}: {first_line(exc)}"
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


def revision(path: Path) -> str | None:
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
    if problem := out_of_range(param.name, converted):
        raise RunbookError(f"parameter {param.name}={shown} is out of range: {problem}", hint=f"accepted: {accepted}")
    return converted


def out_of_range(name: str, value: Any) -> str | None:
    """Why a number given for ``name`` cannot be meant (the first rule of :data:`RULES` it breaks), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    applying = {"number", unit(name), name}
    return next((r.problem for r in RULES if r.applies_to in applying and not r.holds(value)), None)


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
