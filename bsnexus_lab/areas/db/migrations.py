"""Migration drift: the revision in ``alembic_version`` against the head of an Alembic versions directory.

The directory is read with :mod:`ast`, not with Alembic's ``ScriptDirectory``: that one imports every
migration module, which runs the deployment's code (and needs its imports: the app's models, drivers) on the
engineer's machine. Only the module-level ``revision``/``down_revision``/``depends_on`` literals are needed.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from bsnexus_lab.areas.db.activity import MARKER
from bsnexus_lab.errors import ConfigError, NotFound
from bsnexus_lab.findings import Unavailable

if TYPE_CHECKING:
    from bsnexus_lab.context import Context

NO_VERSIONS = "no Alembic versions directory"
NO_VERSIONS_REMEDY = "set versions_dir (a profile setting, or BSNEXUS_LAB_VERSIONS_DIR) or run from BSNexus's checkout"
VERSION_SQL = f"{MARKER} SELECT version_num FROM alembic_version ORDER BY version_num"
MIGRATION_COLUMNS = [
    "current",
    "heads",
    "expected",
    "state",
    "behind",
    "not_applied",
    "unknown",
    "versions_dir",
    "versions_source",
    "unparsed",
]


@dataclass(frozen=True)
class Revision:
    revision: str
    down_revisions: tuple[str, ...]
    depends_on: tuple[str, ...]
    message: str
    path: str


def _names(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def read_revision(path: Path) -> Revision | None:
    """A migration file's identifiers, or None when it declares no ``revision``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: dict[str, Any] = {}
    for node in tree.body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        for target in targets:
            if isinstance(target, ast.Name) and node.value is not None:
                try:
                    found[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    continue
    if not isinstance(found.get("revision"), str):
        return None
    doc = (ast.get_docstring(tree) or "").strip().splitlines()
    return Revision(
        found["revision"],
        _names(found.get("down_revision")),
        _names(found.get("depends_on")),
        doc[0] if doc else "",
        path.name,
    )


def read_versions(directory: str | Path) -> tuple[dict[str, Revision], list[str]]:
    """Every revision of an Alembic versions directory, and the files that could not be read as one."""
    root = Path(directory)
    if not root.is_dir():
        raise ConfigError(
            f"no Alembic versions directory at {root}", hint="pass the directory holding the *.py revisions"
        )
    graph: dict[str, Revision] = {}
    unparsed = []
    for path in sorted(root.glob("*.py")):
        try:
            revision = read_revision(path)
        except (SyntaxError, UnicodeDecodeError):
            revision = None
        if revision is None:
            if not path.name.startswith("__"):
                unparsed.append(path.name)
            continue
        graph[revision.revision] = revision
    if not graph:
        raise ConfigError(f"no Alembic revisions in {root}", hint="expected files with revision = '...'")
    return graph, unparsed


def heads(graph: dict[str, Revision]) -> list[str]:
    parents = {p for r in graph.values() for p in r.down_revisions}
    return sorted(r for r in graph if r not in parents)


def ancestry(graph: dict[str, Revision], starts: list[str]) -> set[str]:
    """The revisions ``starts`` stand on (themselves included): what applying them applied."""
    seen: set[str] = set()
    stack = [s for s in starts if s in graph]
    while stack:
        revision = stack.pop()
        if revision not in seen:
            seen.add(revision)
            stack.extend(p for p in (*graph[revision].down_revisions, *graph[revision].depends_on) if p in graph)
    return seen


def in_order(graph: dict[str, Revision], revisions: set[str]) -> list[str]:
    """``revisions`` oldest first (parents before children)."""
    ordered: list[str] = []
    placed: set[str] = set()
    while len(ordered) < len(revisions):
        ready = sorted(
            r for r in revisions - placed if all(p in placed or p not in revisions for p in graph[r].down_revisions)
        )
        ordered.extend(ready)
        placed.update(ready)
    return ordered


def revisions(directory: str | Path) -> pd.DataFrame:
    """The versions directory as a frame, oldest first: revision, parents, message, file, head."""
    graph, _ = read_versions(directory)
    tips = set(heads(graph))
    return pd.DataFrame(
        [
            {
                "revision": r,
                "down_revisions": list(graph[r].down_revisions),
                "merge": len(graph[r].down_revisions) > 1,
                "head": r in tips,
                "message": graph[r].message,
                "file": graph[r].path,
            }
            for r in in_order(graph, set(graph))
        ]
    )


def compare(
    current: list[str], graph: dict[str, Revision] | None, expected: str | None, unparsed: list[str] | None = None
) -> dict[str, Any]:
    """Where the database stands against the expected head (pure: the probe and the tests share it).

    With several heads and no expected one, what is not applied is counted against all of them.
    """
    tips = heads(graph) if graph else ([expected] if expected else [])
    row: dict[str, Any] = {
        "current": current,
        "heads": tips,
        "expected": expected or (tips[0] if len(tips) == 1 else None),
        "behind": None,
        "not_applied": [],
        "unknown": [c for c in current if graph is not None and c not in graph],
        "unparsed": unparsed or [],
    }
    targets = [row["expected"]] if row["expected"] else tips
    if graph is not None and not row["unknown"]:
        missing = ancestry(graph, targets) - ancestry(graph, current)
        row["not_applied"] = in_order(graph, missing)
        row["behind"] = len(missing)
    if not current:
        row["state"] = "empty"
    elif row["unknown"]:
        row["state"] = "unknown"
    elif graph is None:
        row["state"] = "current" if expected is None or current == [expected] else "differs"
    elif row["expected"] is None:
        row["state"] = "several heads"
    elif set(current) - ancestry(graph, targets):
        row["state"] = "ahead"
    else:
        row["state"] = "behind" if row["behind"] else "current"
    return row


async def current(ctx: Context) -> list[str] | None:
    """The revision(s) in ``alembic_version``, oldest id first; None when there is no such table."""
    try:
        return sorted((await ctx.query(VERSION_SQL))["version_num"].astype(str))
    except NotFound:
        return None


async def migrations(
    ctx: Context, versions_dir: str | Path | None = None, expected_head: str | None = None
) -> pd.DataFrame | Unavailable:
    """One row: the database's revision(s), the expected head, the state, how far behind, what is not applied.

    ``state`` is current, behind, ahead, unknown (a revision the directory does not hold), several heads, empty
    (the table has no row) or missing (no ``alembic_version`` table: never migrated, or not a BSNexus database).
    Without ``versions_dir`` the target's is used (set, or found in BSNexus's checkout: ``versions_source`` says
    which); with neither it nor ``expected_head`` there is nothing to compare with, so an :class:`Unavailable`
    ("not checked"), unless the table is missing or empty, which needs no head to tell.
    """
    source = "argument"
    if versions_dir is None and expected_head is None and ctx.target.versions_dir is not None:
        versions_dir, source = ctx.target.versions_dir, ctx.target.sources.get("versions_dir", "target")
    graph, unparsed = read_versions(versions_dir) if versions_dir else (None, [])
    revisions = await current(ctx)
    row = compare(revisions or [], graph, expected_head, unparsed)
    if revisions is None:
        row["state"] = "missing"
    elif graph is None and expected_head is None and revisions:
        why = ctx.target.sources.get("versions_dir")  # the checkout's candidates, when it found several
        return Unavailable(f"{NO_VERSIONS} ({why})" if why else NO_VERSIONS, remedy=NO_VERSIONS_REMEDY)
    row["versions_dir"] = str(versions_dir) if versions_dir else None
    row["versions_source"] = source if versions_dir else None
    return pd.DataFrame([row], columns=MIGRATION_COLUMNS)
