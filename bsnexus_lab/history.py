"""The run history: an SQLite index beside the run directories (which stay the evidence).

Every run is one row (runbook, its git revision, redacted target, parameters with secrets redacted, times,
status, exit code, counts by severity, what it ran against) with its findings, each under a stable key
(check + subject: stream/group/consumer or table) so the same problem matches across runs, and the samples
the runbook kept (:func:`keep`). Acknowledgements (``bsnexus-lab ack``) live here too.

The index is ``<runs>/history.sqlite``; :func:`runs_dir` finds ``runs/`` from any directory below the
project (like git finds ``.git``), or takes ``BSNEXUS_LAB_RUNS_DIR``.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from bsnexus_lab.errors import ConfigError, LabError
from bsnexus_lab.masking import MASK, is_secret_parameter
from bsnexus_lab.text import parse_duration

SAMPLES_MIME = "application/vnd.bsnexus-lab.samples+json"
DATABASE = "history.sqlite"
SEVERITIES = ("ok", "info", "warning", "critical")
# Evidence fields that name what a finding is about, most specific last.
SUBJECT_FIELDS = ("stream", "group", "consumer", "table", "pid", "key", "dependency", "logger", "shape")

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
CREATE INDEX IF NOT EXISTS findings_run ON findings(run_id);
CREATE INDEX IF NOT EXISTS runs_target ON runs(target, runbook, started);
"""


def runs_dir(explicit: str | Path | None = None) -> Path:
    """The runs directory: explicit, ``BSNEXUS_LAB_RUNS_DIR``, or the nearest ``runs/`` holding a history
    (this directory or a parent), else ``./runs`` (where the CLI writes)."""
    if explicit is not None:
        return Path(explicit)
    if configured := os.environ.get("BSNEXUS_LAB_RUNS_DIR"):
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


def finding_key(finding: Mapping[str, Any]) -> str:
    """``check:subject``: the same problem in two runs has the same key (ids and ages left out)."""
    subject = finding.get("subject") or [
        str(finding["evidence"][f]) for f in SUBJECT_FIELDS if f in finding.get("evidence", {})
    ]
    return f"{finding['check']}:{'/'.join(map(str, subject))}"


def flatten(findings: Iterable[Mapping[str, Any]]) -> Iterator[tuple[Mapping[str, Any], str | None]]:
    """Every finding with the key of the cause that explains it (None at the top level)."""
    for finding in findings:
        yield finding, None
        for nested in finding.get("explains", ()):
            yield nested, finding_key(finding)


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
                yield db

    # -- writing -----------------------------------------------------------------------------------------
    def record(self, run_dir: Path, *, scrub: Any = str, environment: Mapping[str, Any] | None = None) -> str:
        """Index a finished run directory (its run.json, findings.json and notebook); returns its id."""
        manifest = json.loads((run_dir / "run.json").read_text())
        findings_file = run_dir / "findings.json"
        found = json.loads(findings_file.read_text()) if findings_file.exists() else []
        notebook_file = run_dir / "notebook.ipynb"
        kept = samples_from_notebook(json.loads(notebook_file.read_text())) if notebook_file.exists() else []
        run_id = run_dir.name
        counts = dict.fromkeys(SEVERITIES, 0)
        for finding, _ in flatten(found):
            counts[finding["severity"]] += 1
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
            "status": status(manifest),
            "exit_code": manifest.get("exit_code"),
            "error": manifest.get("error"),
            **counts,
            "environment": json.dumps(dict(environment or manifest.get("environment") or {}), default=str),
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
                        scrub(finding_key(f)),
                        f["check"],
                        f["severity"],
                        scrub(f["title"]),
                        f.get("kind"),
                        cause,
                        scrub(json.dumps(f.get("evidence", {}), default=str)),
                    )
                    for f, cause in flatten(found)
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
        """Findings above OK that ``appeared`` in ``new``, ``persisted`` from ``old``, or were ``resolved``."""
        before = _problems(self.findings(old))
        after = _problems(self.findings(new))
        rows = []
        for key in sorted(set(before) | set(after)):
            if key in before and key in after:
                change, shown = "persisted", after[key]
            elif key in after:
                change, shown = "appeared", after[key]
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
        order = {"appeared": 0, "persisted": 1, "resolved": 2}
        frame = pd.DataFrame(rows, columns=["change", "key", "before", "after", "title"])
        return frame.sort_values("change", key=lambda c: c.map(order), kind="stable", ignore_index=True)

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
        """Each finding key above OK: first and last seen, worst severity, in how many runs (postmortems)."""
        ids = list(run_ids)
        where = f"r.id IN ({','.join('?' * len(ids))})" if ids else "r.started BETWEEN ? AND ?"
        args = ids or [since.isoformat(), until.isoformat()]
        with self._db() as db:
            rows = db.execute(
                "SELECT f.key, f.check_id, f.severity, f.title, r.started, r.ended, r.id FROM findings f "
                f"JOIN runs r ON r.id = f.run_id WHERE {where} AND f.severity != 'ok' ORDER BY r.started",
                args,
            ).fetchall()
        frame = pd.DataFrame(
            [dict(r) for r in rows], columns=["key", "check_id", "severity", "title", "started", "ended", "id"]
        )
        if frame.empty:
            return pd.DataFrame(columns=["key", "check", "worst", "first_seen", "last_seen", "runs", "title"])
        frame["rank"] = frame["severity"].map(SEVERITIES.index)
        grouped = frame.groupby("key", sort=False)
        return pd.DataFrame(
            {
                "check": grouped["check_id"].first(),
                "worst": grouped["rank"].max().map(lambda r: SEVERITIES[r]),
                "first_seen": grouped["started"].min(),
                "last_seen": grouped["ended"].max(),
                "runs": grouped["id"].nunique(),
                "title": grouped["title"].last(),
            }
        ).reset_index()

    def latest_severity(self, key: str, target: str) -> str | None:
        """The severity of ``key`` in the newest run on ``target`` that reported it."""
        with self._db() as db:
            row = db.execute(
                "SELECT f.severity FROM findings f JOIN runs r ON r.id = f.run_id WHERE f.key = ? AND r.target = ? "
                "ORDER BY r.started DESC LIMIT 1",
                (key, target),
            ).fetchone()
        return row["severity"] if row else None

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
    problems = findings[findings["severity"] != "ok"]
    return {row["key"]: row for row in problems.to_dict("records")}


def _filters(**values: str | None) -> tuple[str, list[str]]:
    given = {k: v for k, v in values.items() if v}
    where = " AND ".join(f"{k} = ?" for k in given)
    return (f"WHERE {where}" if where else ""), list(given.values())


def _columns(table: str) -> list[str]:
    block = SCHEMA.split(f"CREATE TABLE IF NOT EXISTS {table} (", 1)[1].split(");", 1)[0]
    return [
        part.split()[0] for part in block.replace("\n", " ").split(",") if part.strip() and "PRIMARY KEY (" not in part
    ]


def status(manifest: Mapping[str, Any]) -> str:
    """How a run ended: ok, findings, failed, interrupted, timed-out, dead-kernel (run.json's own when set)."""
    if manifest.get("status"):
        return str(manifest["status"])
    error = manifest.get("error") or ""
    if error == "interrupted":
        return "interrupted"
    if error.startswith("DeadKernelError"):
        return "dead-kernel"
    if error.startswith("timed out"):
        return "timed-out"
    if error:
        return "failed"
    return "findings" if manifest.get("exit_code") == 1 else "ok"
