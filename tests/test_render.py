"""The first screen, on hand-built findings: incident before standing risk, effective severity with the own one
beside it, NODATA groups as one row, "not checked" as its own list, found-nothing as one line, units."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from bsnexus_lab import text, triage
from bsnexus_lab.findings import MIME_TYPE, Finding, Kind, Severity, link, not_checked, render, to_html, to_text

QUEUE = frozenset({"stream:tasks:queue/workers"})


def world() -> list[Finding]:
    """BSNexus's compose Redis (a standing risk) beside a saturated group that lost 351 entries (an incident)."""
    return link(
        [
            Finding(
                "server.eviction_policy",
                Severity.WARNING,
                "maxmemory-policy allkeys-lru with maxmemory 512 MiB",
                evidence={"used_memory": 1_782_579, "maxmemory": 512 * 1024**2, "memory_ratio": 0.0033},
                remedy="Set maxmemory-policy noeviction.",
                kind=Kind.CONFIG,
            ),
            Finding(
                "streams.lag_status",
                Severity.INFO,
                "tasks:queue/workers is SATURATED",
                evidence={"span_s": 3.0, "first_lag": None, "exposure": []},
                remedy="Add workers.",
                kind=Kind.CAUSE,
                subject=("tasks:queue", "workers"),
                scope=QUEUE,
            ),
            Finding(
                "streams.lost_messages",
                Severity.CRITICAL,
                "351 entries trimmed",
                evidence={"oldest_idle_ms": 150_000},
                remedy="Raise MAXLEN.",
                kind=Kind.SYMPTOM,
                scope=QUEUE,
            ),
            *(
                Finding(
                    "streams.lag_status",
                    Severity.INFO,
                    f"{stream}/{group} is NODATA: 2 samples over 1 s",
                    evidence={"stream": stream, "group": group, "status": "NODATA"},
                    remedy="Sample longer.",
                    kind=Kind.SYMPTOM,
                    subject=(stream, group),
                )
                for stream, group in (
                    ("tasks:qa", "reviewers"),
                    ("tasks:results", "pm"),
                    ("tasks:escalation", "architect"),
                )
            ),
            *(Finding(f"area.check{i}", Severity.OK, f"Thing {i}: none found", kind=Kind.SYMPTOM) for i in range(4)),
            not_checked(
                "db.migrations",
                "Schema not at the expected Alembic revision: not checked",
                area="db",
                reason="no versions directory",
                remedy="Set versions_dir in the profile.",
            ),
        ]
    )


def test_the_first_screen_opens_with_the_incident_at_its_effective_severity() -> None:
    lines = to_text(world()).splitlines()
    assert lines[:2] == [
        "What is wrong now:",
        "CRITICAL tasks:queue/workers is SATURATED [streams.lag_status] (own: info)",
    ]
    risks = lines.index("Standing configuration risks:")
    assert lines[risks + 1] == "WARNING  maxmemory-policy allkeys-lru with maxmemory 512 MiB [server.eviction_policy]"
    assert lines.index("         explains:") < risks  # the lost entries under their cause, before the risk
    assert "                    what to do: Raise MAXLEN." in lines


def test_no_incident_says_so_and_the_risk_follows() -> None:
    [risk] = [f for f in world() if f.kind is Kind.CONFIG]
    assert to_text([risk]).splitlines()[:2] == [
        "What is wrong now: nothing at warning or worse.",
        "Standing configuration risks:",
    ]


def test_nodata_groups_are_one_row() -> None:
    lines = to_text(world()).splitlines()
    nodata = [line for line in lines if "NODATA" in line]
    assert nodata == [
        "INFO     NODATA (3): tasks:qa/reviewers, tasks:results/pm, tasks:escalation/architect [streams.lag_status]",
        "         e.g.: tasks:qa/reviewers is NODATA: 2 samples over 1 s",
    ]
    assert lines[lines.index(nodata[0]) - 1] == "Also seen:"


def test_found_nothing_is_one_line_and_not_checked_a_list_of_its_own() -> None:
    lines = to_text(world()).splitlines()
    assert lines[-1] == "4 checks found nothing."
    assert not any("none found" in line for line in lines)
    start = lines.index("Not checked:")
    assert lines[start + 1 : start + 4] == [
        "- Schema not at the expected Alembic revision: not checked [db.migrations]",
        "  why: no versions directory",
        "  how to enable it: Set versions_dir in the profile.",
    ]
    assert render.verdict(world()) == (
        "CRITICAL: 1 incident, 1 configuration risk, 4 checks found nothing, 1 not checked"
    )


def test_html_shows_the_same_screen() -> None:
    shown = to_html(world())
    assert shown.index("What is wrong now") < shown.index("Standing configuration risks") < shown.index("Not checked")
    assert "<details><summary>4 checks found nothing.</summary>" in shown and "Thing 3: none found" in shown
    body = shown.index("<tbody>")
    first = shown[body : shown.index("</tr>", body)]
    assert "<b>CRITICAL</b><br><small>(own: info)</small>" in first and "SATURATED" in first
    assert "oldest idle: 2 min 30 s" in shown and "used memory: 1.7 MiB" in shown and "None" not in shown
    assert "exposure" not in shown  # an empty list says nothing


def test_without_summary_every_finding_is_a_row() -> None:
    lines = to_text(world(), summary=False).splitlines()
    assert lines[0] == "CRITICAL tasks:queue/workers is SATURATED [streams.lag_status] (own: info)"
    assert sum("none found" in line for line in lines) == 4
    assert "NOT CHECKED Schema not at the expected Alembic revision: not checked [db.migrations]" in lines


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("used_memory", 1_782_579, "1.7 MiB"),
        ("maxmemory", 512 * 1024**2, "512 MiB"),
        ("headroom_bytes", 1536, "1.5 KiB"),
        ("rss_growth_mb", 844.0, "844 MiB"),
        ("oldest_idle_ms", 850, "850 ms"),
        ("idle_ms", 150_000, "2 min 30 s"),
        ("xact_age_s", 600, "10 min"),
        ("idle", 42, "42 s"),
        ("cache_hit_ratio", 0.9876, "98.8 %"),
        ("memory_share", 0.003, "0.3 %"),
        ("xid_age", 150_000, None),  # transactions, not time
        ("pending", 3, None),
        ("reachable_s", True, None),
    ],
)
def test_evidence_reads_in_units(name: str, value: object, shown: str | None) -> None:
    assert text.in_units(name, value, precise=True) == shown


def test_evidence_drops_none_and_names_lose_their_unit() -> None:
    evidence = {"oldest_idle_ms": 850, "first_lag": None, "error": "", "n": 2, "last_lag": 1.0, "rate": 0.256}
    finding = Finding("x.y", Severity.INFO, "t", evidence=evidence)
    assert render.evidence(finding) == [("oldest idle", "850 ms"), ("n", "2"), ("last lag", "1"), ("rate", "0.26")]


def test_triage_shows_the_first_screen_once_and_carries_its_findings() -> None:
    health = pd.DataFrame({"dependency": ["redis"], "reachable": [True], "version": ["7.2.4"]})
    result = triage.Triage(
        target="sandbox",
        started=datetime(2026, 12, 3, 3, 0, tzinfo=UTC),
        elapsed_s=4.2,
        health=health,
        frames={},
        findings=world(),
        own_samples={},
        timings={},
    )
    lines = repr(result).splitlines()
    assert lines[0] == (
        "Triage of sandbox at 2026-12-03 03:00:00 UTC: "
        "CRITICAL: 1 incident, 1 configuration risk, 4 checks found nothing, 1 not checked"
    )
    assert lines[1] == "What is wrong now:" and lines[-1] == "Dependencies: redis up 7.2.4. Took 4.2 s."
    assert sum(line == "What is wrong now:" for line in lines) == 1
    shown = result._repr_mimebundle_()
    assert shown[MIME_TYPE]["findings"][0]["check"] == "streams.lag_status"
    assert shown["text/html"].count("What is wrong now") == 1 and 'id="bsnexus-lab-triage"' in shown["text/html"]


def test_only_info_rows_fold_into_one() -> None:
    held = [
        Finding("db.held", Severity.WARNING, f"task {n} held", evidence={"status": "queued"}, subject=(n,))
        for n in ("a", "b")
    ]
    nodata = [
        Finding("s.lag", Severity.INFO, f"{n} is NODATA", evidence={"status": "NODATA"}, subject=(n,)) for n in "cd"
    ]
    assert [f.title for f in render.collapsed([*held, *nodata])] == ["task a held", "task b held", "NODATA (2): c, d"]
