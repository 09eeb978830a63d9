"""Checks are pure: proven here on hand-built frames."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.colors import to_hex

from bsnexus_lab import Finding, Kind, Severity, checks
from bsnexus_lab.areas import default_thresholds
from bsnexus_lab.areas.deps.checks import lost_during_run
from bsnexus_lab.areas.streams import plots
from bsnexus_lab.areas.streams.checks import dead_consumer, trim_risk
from bsnexus_lab.areas.streams.held import HELD_COLUMNS
from bsnexus_lab.errors import LabError
from bsnexus_lab.findings import (
    MIME_TYPE,
    Unavailable,
    document,
    from_notebook,
    link,
    not_checked,
    ranked,
    to_json,
    to_text,
    worst,
)
from bsnexus_lab.findings.render import COLOURS

DEFAULTS = default_thresholds()
STREAMS = DEFAULTS.streams

DEAD = "0b7c4a52-3f0e-4a57-9d1e-6c1f0c2b9a11"
LIVE = "5d2e8f61-0a9b-4c3d-8e7f-1a2b3c4d5e6f"


def consumers(*rows: dict) -> pd.DataFrame:
    base = {"stream": "tasks:queue", "group": "workers", "oldest_pending_id": "1-0", "longest_idle_id": "1-0"}
    frame = pd.DataFrame([base | row for row in rows])
    frame["registered"] = frame["registered"].astype("boolean")
    return frame


def test_dead_consumer_names_consumer_pending_and_idle() -> None:
    frame = consumers(
        {"consumer": DEAD, "pending": 3, "max_pending_idle_ms": 900_000, "registered": False},
        {"consumer": LIVE, "pending": 1, "max_pending_idle_ms": 900_000, "registered": True},
    )
    [finding] = dead_consumer(consumers=frame, thresholds=STREAMS)
    assert finding.severity is Severity.CRITICAL
    assert finding.evidence["consumer"] == DEAD
    assert finding.evidence["pending"] == 3
    assert finding.evidence["longest_idle_s"] == 900.0
    assert "lab.streams.claim_dead('tasks:queue', 'workers', '" + DEAD in finding.remedy
    assert "min_idle_ms=300000" in finding.remedy  # no heartbeat to go by: dead_consumer_idle_s decided
    assert finding.evidence["why"].endswith("no heartbeat to go by: no PostgreSQL evidence collected")


def held(age_s: float | None, consumer: str = DEAD) -> pd.DataFrame:
    """The held frame as the probe returns it: one entry, its worker row's heartbeat age (PostgreSQL's clock)."""
    row = {"stream": "tasks:queue", "group": "workers", "consumer": consumer, "entry_id": "1-0"}
    return pd.DataFrame([row | {"worker_heartbeat_age_s": age_s}]).reindex(columns=HELD_COLUMNS)


FRESH = {"consumer": DEAD, "pending": 2, "max_pending_idle_ms": 150_000, "registered": False}  # under 300 s idle


@pytest.mark.parametrize(
    ("age_s", "severity"),
    [
        (89.0, Severity.WARNING),  # key gone within the registry TTL of a heartbeat: evicted, not expired
        (91.0, None),  # past the TTL, but a live worker's row can be this old (written once a minute)
        (149.0, None),
        (151.0, Severity.CRITICAL),  # past TTL + write interval: dead now, entries idle only 2.5 min
    ],
)
def test_dead_consumer_at_the_heartbeat_boundaries(age_s: float, severity: Severity | None) -> None:
    found = dead_consumer(consumers=consumers(FRESH), thresholds=STREAMS, held=held(age_s))
    assert [f.severity for f in found] == ([severity] if severity else [])
    if severity is Severity.CRITICAL:
        [dead] = found
        assert dead.title == (
            f"Dead consumer {DEAD} holds 2 pending entries on tasks:queue/workers: its key expired and its last "
            "heartbeat is 3 min old"  # 151 s, in whole minutes
        )
        assert dead.evidence["worker_key"] == "expired" and dead.evidence["worker_heartbeat_age_s"] == 151.0
        assert "min_idle_ms=90000)" in dead.remedy and "XCLAIM" in dead.remedy
    if severity is Severity.WARNING:
        assert found[0].evidence["worker_key"] == "missing (evicted?)"


def test_dead_now_needs_no_idle_time_and_its_remedy_can_claim() -> None:
    """A heartbeat past 150 s decides at once; the plan's min_idle_ms never exceeds the entries' idle time."""
    young = FRESH | {"max_pending_idle_ms": 30_000}
    [dead] = dead_consumer(consumers=consumers(young), thresholds=STREAMS, held=held(600.0))
    assert dead.severity is Severity.CRITICAL and "min_idle_ms=30000)" in dead.remedy


def test_dead_consumer_idle_s_is_the_fallback_when_postgresql_cannot_say() -> None:
    unavailable = held(None)
    unavailable.attrs["unavailable"] = "connection refused"
    assert dead_consumer(consumers=consumers(FRESH), thresholds=STREAMS, held=unavailable) == []
    idle = FRESH | {"max_pending_idle_ms": 301_000}
    [dead] = dead_consumer(consumers=consumers(idle), thresholds=STREAMS, held=unavailable)
    assert dead.severity is Severity.CRITICAL and "worker_heartbeat_age_s" not in dead.evidence
    assert dead.evidence["worker_key"] == "gone"  # expired or evicted: no heartbeat to tell which
    assert dead.evidence["why"].endswith("no heartbeat to go by: connection refused")
    assert dead.title.endswith(": its key is gone and its entries have idled 5 min")
    assert "min_idle_ms=300000)" in dead.remedy


@pytest.mark.parametrize(
    "row",
    [
        {"consumer": DEAD, "pending": 3, "max_pending_idle_ms": 299_000, "registered": False},  # not idle long
        {"consumer": DEAD, "pending": 0, "max_pending_idle_ms": None, "registered": False},  # nothing held
        {"consumer": "orchestrator", "pending": 2, "max_pending_idle_ms": 900_000, "registered": None},
    ],
)
def test_dead_consumer_stays_quiet(row: dict) -> None:
    assert dead_consumer(consumers=consumers(row), thresholds=STREAMS) == []


def test_threshold_comes_from_thresholds() -> None:
    frame = consumers({"consumer": DEAD, "pending": 1, "max_pending_idle_ms": 61_000, "registered": False})
    assert dead_consumer(consumers=frame, thresholds=STREAMS) == []
    relaxed = DEFAULTS.replace({"streams.dead_consumer_idle_s": 60}).streams
    assert len(dead_consumer(consumers=frame, thresholds=relaxed)) == 1


def test_run_skips_checks_without_their_frames_and_reports_ok() -> None:
    health = pd.DataFrame([{"dependency": "redis", "url": "redis://h", "reachable": True, "error": None}])
    found = checks.run({"deps.health": health}, thresholds=DEFAULTS, target="prod")
    assert [(f.check, f.severity, f.target) for f in found] == [
        ("deps.unreachable", Severity.OK, "prod"),
        ("deps.lost_during_run", Severity.OK, "prod"),
    ]


def test_unreachable_dependency_is_critical() -> None:
    health = pd.DataFrame(
        [{"dependency": "postgresql", "url": "postgresql://u:***@h/db", "reachable": False, "error": "down"}]
    )
    [finding, quiet] = checks.run({"deps.health": health}, area="deps", thresholds=DEFAULTS)
    assert (quiet.check, quiet.severity) == ("deps.lost_during_run", Severity.OK)
    assert (finding.severity, finding.title) == (Severity.CRITICAL, "postgresql is unreachable")


def test_findings_survive_a_notebook_round_trip() -> None:
    finding = Finding("streams.dead_consumer", Severity.CRITICAL, "t", {"pending": 3}, "r", "sandbox")
    notebook = {"cells": [{"outputs": [{"data": {"application/vnd.bsnexus-lab.findings+json": {
        "version": 1, "findings": [finding.to_dict()]}}}]}]}  # fmt: skip
    assert from_notebook(notebook) == [finding]
    assert '"severity": "critical"' in to_json([finding])


def test_unknown_threshold_is_refused() -> None:
    with pytest.raises(Exception, match="unknown threshold"):
        DEFAULTS.replace({"streams.dead_consumer_idle": 1})


def health(**reachable: bool) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"dependency": d, "url": f"{d}://h", "reachable": r, "error": None if r else "down"}
            for d, r in reachable.items()
        ]
    )


def samples(*errors: str | None) -> pd.DataFrame:
    times = pd.date_range("2026-01-01", periods=len(errors), freq="1s", tz="UTC")
    rows = [{"time": t, "stream": None if e else "tasks:queue", "error": e} for t, e in zip(times, errors, strict=True)]
    return pd.DataFrame(rows).set_index("time")


def test_sampler_gaps_are_redis_lost_during_the_run() -> None:
    gaps = samples(None, None, "cannot reach Redis", "cannot reach Redis")
    [finding] = lost_during_run(health=health(redis=True, postgresql=True), samples=gaps, thresholds=None)
    assert finding.severity is Severity.CRITICAL and finding.scope == frozenset({"dep:redis"})
    assert finding.title == "Redis was lost during the run: 2 of 4 samples failed, and it had not come back at the end"
    assert finding.evidence["error"] == "cannot reach Redis" and finding.evidence["recovered"] is False
    [recovered] = lost_during_run(health=health(redis=True), samples=samples(None, "timeout", None), thresholds=None)
    assert recovered.severity is Severity.WARNING and "1 of 3 samples failed, then it answered again" in recovered.title


def test_postgresql_gone_at_the_end_is_lost_not_unreachable_from_the_start() -> None:
    after = health(redis=True, postgresql=False)
    found = checks.run(
        {"deps.health": health(redis=True, postgresql=True), "deps.health_after": after},
        area="deps",
        thresholds=DEFAULTS,
    )
    [finding] = [f for f in found if f.severity is not Severity.OK]
    assert finding.check == "deps.lost_during_run" and finding.scope == frozenset({"dep:postgresql"})
    assert finding.title.startswith("PostgreSQL was lost during the run") and finding.severity is Severity.CRITICAL
    assert lost_during_run(health=health(redis=True, postgresql=False), health_after=after, thresholds=None) == []


def test_symptoms_nest_under_the_cause_that_explains_them_and_keep_their_severity() -> None:
    scope = frozenset({"stream:tasks:queue/workers"})
    cause = Finding("streams.lag_status", Severity.INFO, "saturated", kind=Kind.CAUSE, scope=scope)
    lost = Finding("streams.lost_messages", Severity.CRITICAL, "300 lost", kind=Kind.SYMPTOM, scope=scope)
    elsewhere = Finding("streams.trim_risk", Severity.WARNING, "qa", scope=frozenset({"stream:tasks:qa/reviewers"}))
    ok = Finding("deps.unreachable", Severity.OK, "none found", kind=Kind.CAUSE)
    top = link([ok, elsewhere, lost, cause])
    assert [f.title for f in top] == ["saturated", "qa", "none found"]
    assert top[0].explains == (lost,) and top[0].effective is Severity.CRITICAL
    assert worst(top) is Severity.CRITICAL
    [data, *_] = document.records(to_json(top))
    assert data["explains"][0]["title"] == "300 lost" and data["explains"][0]["severity"] == "critical"
    assert (data["severity"], data["own_severity"]) == ("critical", "info")  # shown at what it explains
    assert from_notebook({"cells": [{"outputs": [{"data": {MIME_TYPE: {"findings": [data]}}}]}]})[0] == top[0]
    assert "explains:" in to_text(top)


def test_what_is_wrong_now_outranks_standing_risks_and_not_checked_comes_last() -> None:
    symptom = Finding("a.symptom", Severity.WARNING, "s", kind=Kind.SYMPTOM)
    config = Finding("a.config", Severity.CRITICAL, "c", kind=Kind.CONFIG)
    cause = Finding("a.cause", Severity.WARNING, "c", kind=Kind.CAUSE)
    info = Finding("a.info", Severity.INFO, "i", kind=Kind.CAUSE)
    unchecked = not_checked("a.b", "b: not checked", area="a", reason="no input", severity=Severity.WARNING)
    order = ranked([unchecked, info, symptom, config, cause])
    assert [f.check for f in order] == ["a.cause", "a.symptom", "a.config", "a.info", "a.b"]
    assert worst([unchecked, info]) is Severity.INFO


def test_trim_risk_only_where_trimming_shows() -> None:
    row = {"stream": "tasks:queue", "group": "workers", "lag": 900, "length": 900, "max_deleted_id": "0-0"}
    never = pd.DataFrame([row | {"entries_added": 900}])
    trimmed = pd.DataFrame([row | {"entries_added": 1200}])
    assert trim_risk(summary=never, thresholds=STREAMS) == []
    assert len(trim_risk(summary=trimmed, thresholds=STREAMS)) == 1
    assert len(trim_risk(summary=never, thresholds=DEFAULTS.replace({"streams.assume_trimming": True}).streams)) == 1


def test_the_over_time_plot_does_not_show_ok_for_a_group_with_a_critical_finding() -> None:
    samples = pd.DataFrame(
        {
            "time": pd.date_range("2026-11-28T12:00:00Z", periods=3, freq="s"),
            "stream": "tasks:queue",
            "group": "workers",
            "length": 5,
            "lag": 0,
            "pending": 3,
            "error": None,
        }
    ).set_index("time")
    statuses = pd.DataFrame([{"stream": "tasks:queue", "group": "workers", "status": "OK"}])
    dead = Finding("streams.dead_consumer", Severity.CRITICAL, "dead", subject=("tasks:queue", "workers", DEAD))
    [axes, *_] = plots.backlog_over_time(samples, statuses, [dead]).axes
    assert axes.get_title() == "tasks:queue / workers: lag OK, CRITICAL finding"
    assert to_hex(axes.get_facecolor()) == COLOURS["critical"]


def test_findings_json_shows_the_effective_severity_keeps_the_own_and_reads_both_schemas(tmp_path: Path) -> None:
    lost = Finding("streams.lost_messages", Severity.CRITICAL, "351 trimmed", kind=Kind.SYMPTOM)
    cause = Finding("streams.lag_status", Severity.INFO, "SATURATED", kind=Kind.CAUSE, explains=(lost,))
    risk = Finding("server.eviction_policy", Severity.WARNING, "allkeys-lru", kind=Kind.CONFIG)
    assert (cause.to_dict()["severity"], cause.to_dict()["own_severity"]) == ("critical", "info")
    assert Finding.from_dict(cause.to_dict()) == cause  # its own severity restored, not the effective one
    text = document.dumps([risk, cause])
    written = json.loads(text)
    assert written["schema"] == document.SCHEMA == 2
    assert [(f["check"], f["severity"], f["own_severity"]) for f in written["findings"]] == [
        ("streams.lag_status", "critical", "info"),  # the incident first, at what it explains
        ("server.eviction_policy", "warning", "warning"),
    ]
    assert to_json([risk, cause]) == text  # one writer
    path = tmp_path / "findings.json"
    path.write_text(text)
    assert document.load(path) == document.load(str(path)) == document.load(text) == [cause, risk]
    # schema 1: a bare list, each ``severity`` the finding's own (no own_severity)
    old = [{k: v for k, v in f.to_dict().items() if k != "own_severity"} for f in (risk, lost)]
    assert document.load(json.dumps(old)) == [risk, lost] and document.records(old)[1]["title"] == "351 trimmed"
    with pytest.raises(LabError, match="schema 3 is newer"):
        document.records({"schema": 3, "findings": []})
    with pytest.raises(LabError, match="not a findings document"):
        document.records('{"runbook": "triage"}')


def test_a_missing_input_is_not_checked_and_an_empty_one_is_nothing_wrong() -> None:
    missing = Unavailable("Redis did not answer", remedy="Start Redis, then run again.", dependency="redis")
    found = checks.run({"deps.health": missing}, area="deps", thresholds=DEFAULTS)
    assert [(f.check, f.kind, f.severity) for f in found] == [
        ("deps.unreachable", Kind.NOT_CHECKED, Severity.INFO),
        ("deps.lost_during_run", Kind.NOT_CHECKED, Severity.INFO),
    ]
    unreachable = found[0]
    assert unreachable.title == "Unreachable dependencies: not checked: Redis did not answer"
    assert unreachable.evidence["checks"] == ["deps.unreachable"]
    assert unreachable.remedy == "Start Redis, then run again."
    assert unreachable.scope == frozenset({"dep:redis"}) and "none found" not in to_text(found)
    assert worst(found) is Severity.OK  # could not look: no result, neither a problem nor "ok"
    empty = pd.DataFrame(columns=["dependency", "url", "reachable", "error"])
    assert {(f.check, f.severity) for f in checks.run({"deps.health": empty}, area="deps", thresholds=DEFAULTS)} == {
        ("deps.unreachable", Severity.OK),
        ("deps.lost_during_run", Severity.OK),
    }
    assert "streams.dead_consumer" in checks.needing(["streams.consumers"])
    assert "deps.unreachable" not in checks.needing(["streams.consumers"])
