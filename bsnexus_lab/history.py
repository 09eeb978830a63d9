"""The run history: an index of the run directories (which stay the evidence), in ``<runs>/history.sqlite`` or,
for a fleet, in PostgreSQL (``BSNEXUS_LAB_HISTORY_URL``: schema ``bsnexus_lab``), the same tables and queries
through SQLAlchemy. Each run records the host its directory is on: what another host ran is listed, diffed and
kept, but its artefacts are read, and its directory pruned, only where they are.

Every run is one row (runbook, its git revision, redacted target, parameters with secrets redacted, times,
status and exit code as the verdict decided them, counts by severity, what it ran against) with its findings,
each under its :attr:`~bsnexus_lab.findings.Finding.key` (the key ``findings.json`` carries) so the same problem
matches across runs and at its effective severity (as ``findings.json`` shows it; "not checked" findings are
kept but counted at no severity, and the checks they stand for are "not checked" in diffs, never resolved),
and the samples the runbook kept (:func:`keep`). Acknowledgements (``bsnexus-lab ack``)
live here too.

The schema's version is SQLite's ``user_version`` (a PostgreSQL history starts at the current one). Version 0
keyed findings ``check:`` + a subject rebuilt from the evidence, always with a ``:`` (``db.privileges:``);
opening such an index migrates its findings and acks to the findings' own keys (read from each run's
``findings.json`` where it still exists, else the trailing ``:`` dropped) and keeps every old key in
``key_aliases``, so a key quoted from an old report, RCA or postmortem still resolves (:meth:`History.resolve`).
Version 2 added ``runs.host``.

The index is ``<runs>/history.sqlite``; :func:`runs_dir` finds ``runs/`` from any directory below the
project (like git finds ``.git``), or takes ``BSNEXUS_LAB_RUNS_DIR``.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, bindparam, text

from bsnexus_lab.config import RUNS_DIR_ENV, history_url, postgres_url, redact_url, scrub_text, url_secrets
from bsnexus_lab.errors import ConfigError, LabError, first_line
from bsnexus_lab.findings import Finding, Kind, document, flatten
from bsnexus_lab.masking import MASK, is_secret_parameter
from bsnexus_lab.text import parse_duration

SAMPLES_MIME = "application/vnd.bsnexus-lab.samples+json"
DATABASE = "history.sqlite"
SEVERITIES = ("ok", "info", "warning", "critical")
VERSION = 2  # 1: findings and acks keyed by Finding.key, old keys kept in key_aliases; 2: runs.host
HOST = socket.gethostname()  # recorded with each run: where its run directory lives
PG_SCHEMA = PG_DATABASE = "bsnexus_lab"  # a shared history's schema, in this database unless the URL names one
SCHEMA_LOCK = 0x6273_6C61_6268  # pg_advisory_xact_lock key: one worker creates the tables, the others wait
NOT_CHECKED = Kind.NOT_CHECKED.value
# How many runs back `--fail-on new` looks for the keys of checks the newest runs could not do: a check down for
# longer than that has its findings counted as new again when it comes back (bounded, so the look-up stays cheap).
CARRY_RUNS = 50

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, runbook TEXT, revision TEXT, target TEXT, target_redis TEXT, target_database TEXT,
    parameters TEXT, started TEXT, ended TEXT, status TEXT, exit_code INTEGER, error TEXT,
    ok INTEGER, info INTEGER, warning INTEGER, critical INTEGER, environment TEXT, run_dir TEXT, host TEXT
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


@dataclass(frozen=True)
class Pruned:
    """What ``prune`` did: the runs it forgot, and the old runs or directories it left, each with why."""

    forgotten: list[str]
    left: dict[str, str]


class History:
    """The index of one runs directory (``<runs>/history.sqlite``), or the fleet's shared one in PostgreSQL
    (``url``, default ``BSNEXUS_LAB_HISTORY_URL``): same tables, same queries, through SQLAlchemy."""

    def __init__(self, root: str | Path | None = None, *, url: str | None = None) -> None:
        self.root = runs_dir(root)
        self.url = url or history_url()
        self.path = self.root / DATABASE
        self._ready = False

    @property
    def where(self) -> str:
        """The index as it may be shown: the SQLite file, or the PostgreSQL URL with its password masked."""
        return redact_url(self.url) if self.url else str(self.path)

    def exists(self) -> bool:
        """Whether there is an index to read (a shared one always is; a local file once a run wrote it)."""
        return bool(self.url) or self.path.is_file()

    def secrets(self) -> list[str]:
        """The shared history's password (as artefacts must not show it); none for SQLite."""
        return url_secrets(self.url) if self.url else []

    @contextmanager
    def _db(self) -> Iterator[Connection]:
        """One transaction; the schema made (and a SQLite index migrated) on this object's first use."""
        from sqlalchemy.exc import DBAPIError

        try:
            engine = _postgres_engine(self.url) if self.url else _sqlite_engine(self.path)
            if not self._ready:
                _create_postgres(engine) if self.url else _create_sqlite(self.path)
                self._ready = True
            with engine.begin() as db:
                yield db
        except DBAPIError as exc:  # the driver's message names the host at most; scrubbed all the same
            hint = scrub_text(first_line(exc.orig), self.secrets())
            raise LabError("the run history cannot be used", target=self.where, hint=hint) from None

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
            "host": HOST,
        }
        row = {k: scrub(v) if isinstance(v, str) else v for k, v in row.items()}
        findings = [
            {
                "run_id": run_id,
                "key": scrub(f.key),
                "check_id": f.check,
                "severity": f.effective.value,  # as findings.json shows it: never milder than what it explains
                "title": scrub(f.title),
                "kind": f.kind.value if f.kind else None,
                "cause": scrub(causes[id(f)]) if id(f) in causes else None,
                "evidence": scrub(json.dumps(dict(f.evidence), default=str)),
            }
            for f in found
        ]
        samples = [{"run_id": run_id, "name": name, "rows": scrub(json.dumps(rows))} for name, rows in kept]
        with self._db() as db:
            same = db.execute(text("SELECT host, run_dir FROM runs WHERE id = :id"), {"id": run_id}).first()
            if same is not None and (same.host, same.run_dir) != (row["host"], row["run_dir"]):
                raise LabError(
                    f"run {run_id} is already in the history from {same.host}:{same.run_dir}", target=self.where
                )
            db.execute(text("DELETE FROM runs WHERE id = :id"), {"id": run_id})  # indexed again: its rows anew
            _insert(db, "runs", [row])
            _insert(db, "findings", findings)
            _insert(db, "samples", samples)
        return run_id

    def prune(self, keep: timedelta, *, now: datetime | None = None) -> Pruned:
        """Forget runs that started more than ``keep`` ago and delete their run directories, as far as this
        host reaches: a run whose directory is on another host (not here) stays, for a prune there; a directory
        outside the runs directory is never deleted (its run is forgotten)."""
        cutoff = ((now or datetime.now(UTC)) - keep).isoformat()
        with self._db() as db:
            old = db.execute(text("SELECT id, run_dir, host FROM runs WHERE started < :cutoff"), {"cutoff": cutoff})
            old = old.mappings().all()
        forgotten, left = [], {}
        for row in old:
            path = Path(row["run_dir"] or "")
            if not path.is_dir() and row["host"] not in (None, HOST):
                left[row["id"]] = f"its directory is on {location(row)}, not reachable from {HOST}: prune there"
                continue
            if path.is_dir():
                if path.resolve().is_relative_to(self.root.resolve()):
                    shutil.rmtree(path)
                else:
                    left[row["id"]] = f"forgotten, but its directory {path} is outside {self.root}: left in place"
            forgotten.append(row["id"])
        with self._db() as db:
            _delete_runs(db, forgotten)
        return Pruned(forgotten, left)

    def ack(self, key: str, target: str, *, severity: str, until: datetime, why: str) -> Ack:
        key = self.resolve(key)
        values = {"key": key, "target": target, "severity": severity, "until": until.isoformat(), "why": why}
        with self._db() as db:
            db.execute(text("DELETE FROM acks WHERE key = :key AND target = :target"), values)
            _insert(db, "acks", [values | {"created": datetime.now(UTC).isoformat()}])
        return Ack(key, target, severity, until, why)

    # -- reading -----------------------------------------------------------------------------------------
    def _rows(self, sql: str, **values: Any) -> list[dict[str, Any]]:
        statement = text(sql)
        for name, value in values.items():  # a list is an IN (...) of its items
            if isinstance(value, list):
                statement = statement.bindparams(bindparam(name, expanding=True))
        with self._db() as db:
            return [dict(row) for row in db.execute(statement, values).mappings()]

    def runs(self, *, target: str | None = None, runbook: str | None = None) -> pd.DataFrame:
        """Every run, newest first."""
        where, values = _filters(target=target, runbook=runbook)
        rows = self._rows(f"SELECT * FROM runs {where} ORDER BY started DESC, id DESC", **values)
        return pd.DataFrame(rows, columns=_columns("runs"))

    def latest(self) -> pd.DataFrame:
        """The newest run of every runbook on every target (the fleet's state), by target then runbook."""
        rows = self._rows(
            "SELECT * FROM runs r WHERE NOT EXISTS (SELECT 1 FROM runs n WHERE n.target = r.target "
            "AND n.runbook = r.runbook AND (n.started, n.id) > (r.started, r.id)) ORDER BY target, runbook"
        )
        return pd.DataFrame(rows, columns=_columns("runs"))

    def run(self, run_id: str) -> dict[str, Any]:
        rows = self._rows("SELECT * FROM runs WHERE id = :id", id=run_id)
        if not rows:
            raise LabError(f"no run {run_id!r} in {self.where}", hint="list them with `bsnexus-lab runs`")
        row = rows[0]
        return row | {"parameters": json.loads(row["parameters"]), "environment": json.loads(row["environment"])}

    def findings(self, run_id: str) -> pd.DataFrame:
        rows = self._rows("SELECT * FROM findings WHERE run_id = :id", id=run_id)
        return pd.DataFrame(rows, columns=_columns("findings"))

    def previous(self, run_id: str) -> str | None:
        """The run of the same runbook on the same target just before this one."""
        run = self.run(run_id)
        rows = self._rows(
            "SELECT id FROM runs WHERE runbook = :runbook AND target = :target AND (started, id) < (:started, :id) "
            "ORDER BY started DESC, id DESC LIMIT 1",
            runbook=run["runbook"],
            target=run["target"],
            started=run["started"],
            id=run_id,
        )
        return rows[0]["id"] if rows else None

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
        rows = self._rows(
            "SELECT s.rows FROM samples s JOIN runs r ON r.id = s.run_id "
            "WHERE s.name = :name AND r.target = :target AND r.started >= :since ORDER BY r.started",
            name=name,
            target=target,
            since=since.isoformat(),
        )
        frames = [pd.DataFrame(json.loads(r["rows"])) for r in rows]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def timeline(self, *, since: datetime, until: datetime, run_ids: Iterable[str] = ()) -> pd.DataFrame:
        """Each finding key above OK: first and last seen, worst severity and the title it had then (the newest
        run at that severity), in how many runs, its kind (postmortems). "Not checked" findings are none here."""
        ids = list(run_ids)
        where, values = ("r.id IN :ids", {"ids": ids}) if ids else ("r.started BETWEEN :since AND :until", {})
        rows = self._rows(
            "SELECT f.key, f.check_id, f.severity, f.title, f.kind, r.started, r.ended, r.id FROM findings f "
            f"JOIN runs r ON r.id = f.run_id WHERE {where} AND f.severity != 'ok' "
            "AND (f.kind IS NULL OR f.kind != :not_checked) ORDER BY r.started",
            **values,
            **({} if ids else {"since": since.isoformat(), "until": until.isoformat()}),
            not_checked=NOT_CHECKED,
        )
        frame = pd.DataFrame(rows, columns=["key", "check_id", "severity", "title", "kind", "started", "ended", "id"])
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
        rows = self._rows(
            "SELECT f.severity FROM findings f JOIN runs r ON r.id = f.run_id WHERE f.key = :key "
            "AND r.target = :target ORDER BY r.started DESC LIMIT 1",
            key=self.resolve(key),
            target=target,
        )
        return rows[0]["severity"] if rows else None

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
        rows = self._rows("SELECT new FROM key_aliases WHERE old = :old", old=key)
        return rows[0]["new"] if rows else key

    def acks(self, target: str, *, now: datetime | None = None) -> dict[str, Ack]:
        """Acknowledgements of ``target`` still in force."""
        now = now or datetime.now(UTC)
        rows = self._rows(
            "SELECT * FROM acks WHERE target = :target AND until > :now", target=target, now=now.isoformat()
        )
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


def _filters(**values: str | None) -> tuple[str, dict[str, str]]:
    given = {k: v for k, v in values.items() if v}
    where = " AND ".join(f"{k} = :{k}" for k in given)
    return (f"WHERE {where}" if where else ""), given


def _insert(db: Connection, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        names = list(rows[0])
        db.execute(text(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(f':{n}' for n in names)})"), rows)


def _delete_runs(db: Connection, ids: Sequence[str]) -> None:
    """Runs and their rows (explicitly: SQLite enforces foreign keys only when asked, per connection)."""
    if ids:
        for table, column in (("findings", "run_id"), ("samples", "run_id"), ("runs", "id")):
            db.execute(text(f"DELETE FROM {table} WHERE {column} IN :ids").bindparams(bindparam("ids", expanding=True)),
                       {"ids": list(ids)})  # fmt: skip


def location(run: Mapping[str, Any]) -> str:
    """Where a run's directory lives, as ``host:path`` (a run indexed before hosts were recorded: the path)."""
    return f"{run['host']}:{run['run_dir']}" if run.get("host") else str(run["run_dir"])


def unreadable(runs: pd.DataFrame) -> dict[str, str]:
    """Run id -> where its directory lives, for the runs whose artefacts (notebook, report, findings.json) this
    host cannot read: run on another host of a fleet, or pruned there."""
    return {
        run["id"]: location(run)
        for run in runs.to_dict("records")
        if not (run["run_dir"] and Path(run["run_dir"]).is_dir())
    }


@functools.lru_cache(maxsize=16)
def _sqlite_engine(path: Path) -> Engine:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    return create_engine(f"sqlite:///{path}", poolclass=NullPool, connect_args={"timeout": 30})


@functools.cache
def _postgres_engine(url: str) -> Engine:
    """One engine per process: psycopg (the lab's sync driver), the lab's own schema first on the search path,
    the database ``bsnexus_lab`` when the URL names none (never BSNexus's by default)."""
    from sqlalchemy import create_engine

    parsed = postgres_url(url).set(drivername="postgresql+psycopg")
    return create_engine(
        parsed.set(database=parsed.database or PG_DATABASE),
        pool_size=2,
        max_overflow=2,
        pool_pre_ping=True,
        connect_args={
            "options": f"-c search_path={PG_SCHEMA}",
            "application_name": "bsnexus-lab-history",
            "connect_timeout": 10,
        },
    )


def _create_postgres(engine: Engine) -> None:
    """The lab's schema and tables, once: workers starting together wait on one advisory lock."""
    with engine.begin() as db:
        db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
        db.execute(text(f"CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}"))
        for statement in SCHEMA.split(";"):
            if statement.strip():
                db.execute(text(statement))


def _create_sqlite(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path, timeout=30)) as db:
        db.row_factory = sqlite3.Row
        db.executescript(SCHEMA)
        with db:
            if db.execute("PRAGMA user_version").fetchone()[0] < VERSION:
                _migrate(db)


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
    """Version 0 -> 1: findings and acks re-keyed by Finding.key; every changed key kept in key_aliases.
    1 -> 2: runs say on which host their directory lives (``host``; unknown, NULL, for older runs)."""
    db.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait, then find it done
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version >= VERSION:
        return
    if "host" not in {column["name"] for column in db.execute("PRAGMA table_info(runs)")}:
        db.execute("ALTER TABLE runs ADD COLUMN host TEXT")
    if version < 1:
        _rekey(db)
    db.execute(f"PRAGMA user_version = {VERSION}")


def _rekey(db: sqlite3.Connection) -> None:
    """Version 0's findings and acks re-keyed by Finding.key, every changed key kept in key_aliases."""
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
