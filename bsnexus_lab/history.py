"""The run history: an SQLite index beside the run directories (which stay the evidence).

Every run is one row (runbook, its git revision, redacted target, parameters with secrets redacted, times,
status and exit code as the verdict decided them, counts by severity, what it ran against) with its findings,
each under its :attr:`~bsnexus_lab.findings.Finding.key` (the key ``findings.json`` carries) so the same problem
matches across runs and at its effective severity (as ``findings.json`` shows it; "not checked" findings are
kept but counted at no severity, and the checks they stand for are "not checked" in diffs, never resolved),
and the samples the runbook kept (:func:`keep`). Acknowledgements (``bsnexus-lab ack``)
live here too.

The schema's version is SQLite's ``user_version``. Version 0 keyed findings ``check:`` + a subject rebuilt from
the evidence, always with a ``:`` (``db.privileges:``); opening such an index migrates its findings and acks
to the findings' own keys (read from each run's ``findings.json`` where it still exists, else the trailing
``:`` dropped) and keeps every old key in ``key_aliases``, so a key quoted from an old report, RCA or
postmortem still resolves (:meth:`History.resolve`).

The index is ``<runs>/history.sqlite``; :func:`runs_dir` finds ``runs/`` from any directory below the
project (like git finds ``.git``), or takes ``BSNEXUS_LAB_RUNS_DIR``.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from bsnexus_lab.config import RUNS_DIR_ENV
from bsnexus_lab.errors import ConfigError, LabError
from bsnexus_lab.findings import Finding, Kind, document, flatten
from bsnexus_lab.masking import MASK, is_secret_parameter
from bsnexus_lab.text import parse_duration

SAMPLES_MIME = "application/vnd.bsnexus-lab.samples+json"
DATABASE = "history.sqlite"
SEVERITIES = ("ok", "info", "warning", "critical")
VERSION = 1  # 1: findings and acks keyed by Finding.key, old keys kept in key_aliases
NOT_CHECKED = Kind.NOT_CHECKED.value
# How many runs back `--fail-on new` looks for the keys of checks the newest runs could not do: a check down for
# longer than that has its findings counted as new again when it comes back (bounded, so the look-up stays cheap).
CARRY_RUNS = 50

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, runbook TEXT, revision TEXT, target TEXT, target_redis TEXT, target_database TEXT,
    parameters TEXT, started TEXT, ended TEXT, status TEXT, exit_code INTEGER, error TEXT,
    ok INTEGER, info INTEGER, warning INTEGER, critical INTEGER, environment TEXT, run_dir TEXT
);
CREATE TABLE IF NOT EXISTS findings (
    run_id TEXT REFERENCES runs(id) ON DELETE CASCADE, key TEXT, check_id TEXT, severity TEXT, title TEXT,
    kind TEXT, cause TEXT, evidence TEXT
);
CREATE TABLE IF NOT EXISTS samples (
    run_id TEXT REFERENCES runs(id) ON DELETE CASCADE, name TEXT, rows TEXT
);
CREATE TABLE IF NOT EXISTS acks (
    key TEXT, target TEXT, severity TEXT, until TEXT, why TEXT, created TEXT, PRIMARY KEY (key, target)
);
CREATE TABLE IF NOT EXISTS key_aliases (old TEXT PRIMARY KEY, new TEXT);
CREATE INDEX IF NOT EXISTS findings_run ON findings(run_id);
CREATE INDEX IF NOT EXISTS runs_target ON runs(target, runbook, started);
"""


def runs_dir(explicit: str | Path | None = None) -> Path:
    """The runs directory: explicit, ``BSNEXUS_LAB_RUNS_DIR``, or the nearest ``runs/`` holding a history
    (this directory or a parent), else ``./runs`` (where the CLI writes)."""
    if explicit is not None:
        return Path(explicit)
    if configured := os.environ.get(RUNS_DIR_ENV):
        return Path(configured)
    here = Path.cwd()
    for directory in [here, *here.parents]:
        if (directory / "runs" / DATABASE).is_file():
            return directory / "runs"
    return here / "runs"


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """``1h`` / ``30m`` (that long ago) or an ISO time (naive means UTC), as an aware UTC datetime."""
    now = now or datetime.now(UTC)
    try:
        return now - parse_duration(text)
    except ConfigError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"not a time: {text!r}", hint="write it like 1h, 30m or 2026-11-29T10:00") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def redact_parameters(values: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as they may be stored: a value whose name says secret becomes ``***``."""
    return {k: MASK if is_secret_parameter(k) and v not in ("", None) else v for k, v in values.items()}


def keep(name: str, frame: pd.DataFrame) -> None:
    """In a runbook: keep a frame of samples (e.g. the backlog sampled over time) in the run's history, so
    later runs judge trends over more than their own short window."""
    from IPython.display import display

    rows = json.loads(frame.reset_index().to_json(orient="records", date_format="iso"))
    display({SAMPLES_MIME: {"name": name, "rows": rows}, "text/plain": f"kept {len(rows)} samples as {name}"}, raw=True)


def samples_from_notebook(notebook: Mapping[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    kept = []
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            bundle = output.get("data", {}).get(SAMPLES_MIME)
            if bundle:
                kept.append((bundle["name"], bundle["rows"]))
    return kept


@dataclass(frozen=True)
class Ack:
    key: str
    target: str
    severity: str
    until: datetime
    why: str


class History:
    """The index of one runs directory."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = runs_dir(root)
        self.path = self.root / DATABASE

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        self.root.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA foreign_keys = ON")
            db.executescript(SCHEMA)
            with db:
                if db.execute("PRAGMA user_version").fetchone()[0] < VERSION:
                    _migrate(db)
                yield db

    # -- writing -----------------------------------------------------------------------------------------
    def record(self, run_dir: Path, *, scrub: Any = str) -> str:
        """Index a finished run directory (its run.json, findings.json and notebook); returns its id."""
        manifest = json.loads((run_dir / "run.json").read_text())
        findings_file = run_dir / "findings.json"
        found = _read_findings(findings_file)
        causes = {id(nested): f.key for f in found for nested in f.explains}
        notebook_file = run_dir / "notebook.ipynb"
        kept = samples_from_notebook(json.loads(notebook_file.read_text())) if notebook_file.exists() else []
        run_id = run_dir.name
        counts = dict.fromkeys(SEVERITIES, 0)
        for finding in found:  # what could not be checked is no result: it counts at no severity
            if finding.kind is not Kind.NOT_CHECKED:
                counts[finding.effective.value] += 1
        started = datetime.fromisoformat(manifest["started"])
        ended = started + timedelta(seconds=float(manifest.get("duration_s") or 0))
        target = manifest.get("target", {})
        row = {
            "id": run_id,
            "runbook": manifest["runbook"],
            "revision": manifest.get("revision"),
            "target": target.get("name", ""),
            "target_redis": target.get("redis"),
            "target_database": target.get("database"),
            "parameters": json.dumps(redact_parameters(manifest.get("parameters", {})), default=str),
            "started": started.isoformat(),
            "ended": ended.isoformat(),
            "status": manifest.get("status"),
            "exit_code": manifest.get("exit_code"),
            "error": manifest.get("error"),
            **counts,
            "environment": json.dumps(manifest.get("environment") or {}, default=str),
            "run_dir": str(run_dir.resolve()),
        }
        row = {k: scrub(v) if isinstance(v, str) else v for k, v in row.items()}
        with self._db() as db:
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            db.execute(f"INSERT INTO runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
            db.executemany(
                "INSERT INTO findings VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run_id,
                        scrub(f.key),
                        f.check,
                        f.effective.value,  # as findings.json shows it: never milder than what it explains
                        scrub(f.title),
                        f.kind.value if f.kind else None,
                        scrub(causes[id(f)]) if id(f) in causes else None,
                        scrub(json.dumps(dict(f.evidence), default=str)),
                    )
                    for f in found
                ],
            )
            db.executemany(
                "INSERT INTO samples VALUES (?, ?, ?)", [(run_id, name, scrub(json.dumps(rows))) for name, rows in kept]
            )
        return run_id

    def prune(self, keep: timedelta, *, now: datetime | None = None) -> list[str]:
        """Forget runs that started more than ``keep`` ago, and delete their run directories."""
        cutoff = ((now or datetime.now(UTC)) - keep).isoformat()
        with self._db() as db:
            old = db.execute("SELECT id, run_dir FROM runs WHERE started < ?", (cutoff,)).fetchall()
            db.execute("DELETE FROM runs WHERE started < ?", (cutoff,))
        for row in old:
            path = Path(row["run_dir"])
            if path.is_dir() and path.resolve().is_relative_to(self.root.resolve()):
                shutil.rmtree(path)
        return [row["id"] for row in old]

    def ack(self, key: str, target: str, *, severity: str, until: datetime, why: str) -> Ack:
        key = self.resolve(key)
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO acks VALUES (?, ?, ?, ?, ?, ?)",
                (key, target, severity, until.isoformat(), why, datetime.now(UTC).isoformat()),
            )
        return Ack(key, target, severity, until, why)

    # -- reading -----------------------------------------------------------------------------------------
    def runs(self, *, target: str | None = None, runbook: str | None = None) -> pd.DataFrame:
        """Every run, newest first."""
        where, args = _filters(target=target, runbook=runbook)
        with self._db() as db:
            rows = db.execute(f"SELECT * FROM runs {where} ORDER BY started DESC, id DESC", args).fetchall()
        return pd.DataFrame([dict(r) for r in rows], columns=_columns("runs"))

    def run(self, run_id: str) -> dict[str, Any]:
        with self._db() as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise LabError(f"no run {run_id!r} in {self.path}", hint="list them with `bsnexus-lab runs`")
        return dict(row) | {"parameters": json.loads(row["parameters"]), "environment": json.loads(row["environment"])}

    def findings(self, run_id: str) -> pd.DataFrame:
        with self._db() as db:
            rows = db.execute("SELECT * FROM findings WHERE run_id = ?", (run_id,)).fetchall()
        return pd.DataFrame([dict(r) for r in rows], columns=_columns("findings"))

    def previous(self, run_id: str) -> str | None:
        """The run of the same runbook on the same target just before this one."""
        run = self.run(run_id)
        with self._db() as db:
            row = db.execute(
                "SELECT id FROM runs WHERE runbook = ? AND target = ? AND (started, id) < (?, ?) "
                "ORDER BY started DESC, id DESC LIMIT 1",
                (run["runbook"], run["target"], run["started"], run_id),
            ).fetchone()
        return row["id"] if row else None

    def diff(self, old: str, new: str) -> pd.DataFrame:
        """Findings above OK that ``appeared`` in ``new``, ``persisted`` from ``old``, or were ``resolved``; one
        of ``old``'s that ``new`` could not check is ``not checked``, never resolved."""
        before = _problems(self.findings(old))
        new_rows = self.findings(new)
        after = _problems(new_rows)
        unchecked = _unchecked(new_rows)
        rows = []
        for key in sorted(set(before) | set(after)):
            if key in before and key in after:
                change, shown = "persisted", after[key]
            elif key in after:
                change, shown = "appeared", after[key]
            elif before[key]["check_id"] in unchecked:
                change, shown = "not checked", before[key]
            else:
                change, shown = "resolved", before[key]
            rows.append(
                {
                    "change": change,
                    "key": key,
                    "before": before[key]["severity"] if key in before else "",
                    "after": after[key]["severity"] if key in after else "",
                    "title": shown["title"],
                }
            )
        order = {"appeared": 0, "persisted": 1, "not checked": 2, "resolved": 3}
        frame = pd.DataFrame(rows, columns=["change", "key", "before", "after", "title"])
        return frame.sort_values("change", key=lambda c: c.map(order), kind="stable", ignore_index=True)

    def unchecked(self, run_id: str) -> set[str]:
        """The ids of the checks ``run_id`` could not do (its "not checked" findings stand for them)."""
        return _unchecked(self.findings(run_id))

    def samples(self, name: str, *, target: str, since: datetime) -> pd.DataFrame:
        """Every kept sample of ``name`` on ``target`` from runs that started since ``since``, oldest first."""
        with self._db() as db:
            rows = db.execute(
                "SELECT s.rows FROM samples s JOIN runs r ON r.id = s.run_id "
                "WHERE s.name = ? AND r.target = ? AND r.started >= ? ORDER BY r.started",
                (name, target, since.isoformat()),
            ).fetchall()
        frames = [pd.DataFrame(json.loads(r["rows"])) for r in rows]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def timeline(self, *, since: datetime, until: datetime, run_ids: Iterable[str] = ()) -> pd.DataFrame:
        """Each finding key above OK: first and last seen, worst severity and the title it had then (the newest
        run at that severity), in how many runs, its kind (postmortems). "Not checked" findings are none here."""
        ids = list(run_ids)
        where = f"r.id IN ({','.join('?' * len(ids))})" if ids else "r.started BETWEEN ? AND ?"
        args = ids or [since.isoformat(), until.isoformat()]
        with self._db() as db:
            rows = db.execute(
                "SELECT f.key, f.check_id, f.severity, f.title, f.kind, r.started, r.ended, r.id FROM findings f "
                f"JOIN runs r ON r.id = f.run_id WHERE {where} AND f.severity != 'ok' AND f.kind IS NOT ? "
                "ORDER BY r.started",
                [*args, NOT_CHECKED],
            ).fetchall()
        frame = pd.DataFrame(
            [dict(r) for r in rows], columns=["key", "check_id", "severity", "title", "kind", "started", "ended", "id"]
        )
        if frame.empty:
            return pd.DataFrame(columns=["key", "check", "worst", "first_seen", "last_seen", "runs", "title", "kind"])
        frame["rank"] = frame["severity"].map(SEVERITIES.index)
        grouped = frame.groupby("key", sort=False)
        at_worst = frame[frame["rank"] == grouped["rank"].transform("max")].groupby("key", sort=False)
        return pd.DataFrame(
            {
                "check": grouped["check_id"].first(),
                "worst": grouped["rank"].max().map(lambda r: SEVERITIES[r]),
                "first_seen": grouped["started"].min(),
                "last_seen": grouped["ended"].max(),
                "runs": grouped["id"].nunique(),
                "title": at_worst["title"].last(),
                "kind": grouped["kind"].last(),
            }
        ).reset_index()

    def latest_severity(self, key: str, target: str) -> str | None:
        """The severity of ``key`` (or the key it became, see :meth:`resolve`) in the newest run on ``target``
        that reported it."""
        with self._db() as db:
            row = db.execute(
                "SELECT f.severity FROM findings f JOIN runs r ON r.id = f.run_id WHERE f.key = ? AND r.target = ? "
                "ORDER BY r.started DESC LIMIT 1",
                (self.resolve(key), target),
            ).fetchone()
        return row["severity"] if row else None

    def latest_keys(self, runbook: str, target: str) -> set[str]:
        """The keys above OK in the newest run of ``runbook`` on ``target`` (what ``--fail-on new`` compares to).

        A check that run could not do keeps the keys it had in the last run that could (at most
        :data:`CARRY_RUNS` back): a finding is not new because the run before could not look for it.
        """
        keys: set[str] = set()
        carried: set[str] | None = None  # the checks still to look further back for; None: the newest run
        for run_id in self.runs(target=target, runbook=runbook)["id"].head(CARRY_RUNS):
            found = self.findings(run_id)
            problems = found[found["severity"] != "ok"]
            if carried is None:
                keys |= set(problems["key"])
                carried = _unchecked(found)
            else:
                keys |= set(problems[problems["check_id"].isin(carried) & (problems["kind"] != NOT_CHECKED)]["key"])
                carried &= _unchecked(found)
            if not carried:
                break
        return keys

    def resolve(self, key: str) -> str:
        """The key a finding has now: an old-format key (``db.privileges:``) becomes the one it was migrated to."""
        with self._db() as db:
            row = db.execute("SELECT new FROM key_aliases WHERE old = ?", (key,)).fetchone()
        return row["new"] if row else key

    def acks(self, target: str, *, now: datetime | None = None) -> dict[str, Ack]:
        """Acknowledgements of ``target`` still in force."""
        now = now or datetime.now(UTC)
        with self._db() as db:
            rows = db.execute("SELECT * FROM acks WHERE target = ? AND until > ?", (target, now.isoformat())).fetchall()
        return {
            r["key"]: Ack(r["key"], r["target"], r["severity"], datetime.fromisoformat(r["until"]), r["why"])
            for r in rows
        }


def _problems(findings: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The findings above OK by key, "not checked" ones left out (they are no result to compare)."""
    problems = findings[(findings["severity"] != "ok") & (findings["kind"] != NOT_CHECKED)]
    return {row["key"]: row for row in problems.to_dict("records")}


def _unchecked(findings: pd.DataFrame) -> set[str]:
    """The check ids a run's "not checked" findings stand for (their evidence's ``checks``, else their own)."""
    ids: set[str] = set()
    for row in findings[findings["kind"] == NOT_CHECKED].itertuples():
        ids |= set(json.loads(row.evidence or "{}").get("checks") or [row.check_id])
    return ids


def _filters(**values: str | None) -> tuple[str, list[str]]:
    given = {k: v for k, v in values.items() if v}
    where = " AND ".join(f"{k} = ?" for k in given)
    return (f"WHERE {where}" if where else ""), list(given.values())


def _columns(table: str) -> list[str]:
    block = SCHEMA.split(f"CREATE TABLE IF NOT EXISTS {table} (", 1)[1].split(");", 1)[0]
    return [
        part.split()[0] for part in block.replace("\n", " ").split(",") if part.strip() and "PRIMARY KEY (" not in part
    ]


def _read_findings(path: Path) -> list[Finding]:
    """Every finding of a run's ``findings.json``, explained ones included (depth first); none without it."""
    if not path.exists():
        return []
    return flatten(document.load(path))


def _migrate(db: sqlite3.Connection) -> None:
    """Version 0 -> 1: findings and acks re-keyed by Finding.key; every changed key kept in key_aliases."""
    db.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait, then find it done
    if db.execute("PRAGMA user_version").fetchone()[0] >= VERSION:
        return
    runs = []
    for run in db.execute("SELECT id, run_dir FROM runs").fetchall():
        rows = db.execute(
            "SELECT rowid, key, check_id, cause FROM findings WHERE run_id = ? ORDER BY rowid", (run["id"],)
        ).fetchall()
        runs.append((rows, _exact_keys(rows, Path(run["run_dir"] or "") / "findings.json")))
    aliases: dict[str, str] = {}
    for rows, exact in runs:
        aliases |= _changed(rows, exact or [])
    for rows, exact in runs:  # a run without its findings.json: keys learnt from other runs, else ':' dropped
        new = exact or [
            (_renamed(row["key"], aliases), row["cause"] and _renamed(row["cause"], aliases)) for row in rows
        ]
        for row, (key, cause) in zip(rows, new, strict=True):
            db.execute("UPDATE findings SET key = ?, cause = ? WHERE rowid = ?", (key, cause, row["rowid"]))
        aliases |= _changed(rows, new)
    for ack in db.execute("SELECT * FROM acks").fetchall():
        key = _renamed(ack["key"], aliases)
        if key != ack["key"]:
            aliases.setdefault(ack["key"], key)
            db.execute("DELETE FROM acks WHERE key = ? AND target = ?", (ack["key"], ack["target"]))
            db.execute("INSERT OR REPLACE INTO acks VALUES (?, ?, ?, ?, ?, ?)", (key, *tuple(ack)[1:]))
    db.executemany("INSERT OR REPLACE INTO key_aliases VALUES (?, ?)", aliases.items())
    db.execute(f"PRAGMA user_version = {VERSION}")


def _exact_keys(rows: Sequence[sqlite3.Row], findings_file: Path) -> list[tuple[str, str | None]] | None:
    """The true (key, cause) of each of one run's version-0 finding rows, from its ``findings.json``: version 0
    stored a run's findings in the file's order, the findings each explains (one level) after it. None when the
    file is gone or does not match the rows."""
    try:
        top = document.load(findings_file) if findings_file.is_file() else []
    except (ValueError, KeyError, TypeError, LabError):  # not a findings file this version can read
        return None
    written = [pair for f in top for pair in [(f, None), *((g, f.key) for g in f.explains)]]
    if not written or [f.check for f, _ in written] != [row["check_id"] for row in rows]:
        return None
    return [(f.key, cause) for f, cause in written]


def _changed(rows: Sequence[sqlite3.Row], new: Sequence[tuple[str, str | None]]) -> dict[str, str]:
    """Old key -> new key, for the keys (and causes) of ``rows`` that ``new`` renames."""
    pairs = [(row["key"], key) for row, (key, _) in zip(rows, new, strict=False)]
    pairs += [(row["cause"], cause) for row, (_, cause) in zip(rows, new, strict=False) if row["cause"] and cause]
    return {old: renamed for old, renamed in pairs if old != renamed}


def _renamed(key: str, aliases: Mapping[str, str]) -> str:
    """An old key's new name: as a run's findings.json told, else without its trailing ``:``."""
    return aliases.get(key) or _stripped(key)


def _stripped(key: str) -> str:
    """An old key without its trailing ``:`` (``db.privileges:`` -> ``db.privileges``)."""
    return key[:-1] if key.endswith(":") else key
