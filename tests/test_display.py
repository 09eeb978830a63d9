"""Rich displays on hand-built frames: units, one sign for missing values, redaction, names, colours."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

import bsnexus_lab as bl
from bsnexus_lab import ConfigError, display, report, text
from bsnexus_lab.areas import areas
from bsnexus_lab.findings import MIME_TYPE, Finding, Severity
from bsnexus_lab.text import duration, is_duration, parse_duration

DEAD = "8ec4002d-1111-4222-8333-444455556666"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0 s"), (0.0008, "0.8 ms"), (0.34, "340 ms"), (3.0, "3 s"), (4.25, "4 s"), (9.97, "10 s"), (42, "42 s"),
     (75, "75 s"), (90, "90 s"), (91, "2 min"),
     (900, "15 min"), (3600, "60 min"), (5400, "1 h 30 min"), (7500, "2 h 5 min"),
     (2 * 86400 + 4 * 3600, "2 d 4 h"), (-5, "-5 s"), (None, display.MISSING), (float("nan"), display.MISSING)],
)  # fmt: skip
def test_durations_read_as_time(seconds: float | None, shown: str) -> None:
    assert duration(seconds) == shown


@pytest.mark.parametrize("missing", [None, float("nan"), pd.NA, pd.NaT])
def test_a_missing_duration_shows_the_one_missing_sign(missing: object) -> None:
    assert display.cell("idle_ms", missing) == display.MISSING


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("90s", 90), ("90", 90), ("15m", 900), ("15min", 900), (" 12h ", 43200), ("30d", 2_592_000),
     ("2w", 1_209_600), ("1.5h", 5400)],
)  # fmt: skip
def test_durations_parse_as_people_write_them(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "5 parsecs", "-5s", "tasks:queue", "1h30m"])
def test_what_is_not_a_duration_is_refused_in_one_line(text: str) -> None:
    with pytest.raises(ConfigError, match="not a duration"):
        parse_duration(text)
    assert not is_duration(text)


def test_sizes_and_times_read_short() -> None:
    assert [text.size(n) for n in (512, 1536, 122_880, 3 * 1024**3)] == ["512 B", "1.5 KiB", "120 KiB", "3.0 GiB"]
    frame = pd.DataFrame({"total_bytes": [122_880], "last_vacuum": [pd.Timestamp("2026-11-29 14:13:00", tz="UTC")]})
    assert display.frame_text(frame).splitlines()[-1].split() == ["120", "KiB", "2026-11-29", "14:13:00Z"]


def test_missing_values_are_shown_one_way() -> None:
    frame = pd.DataFrame(
        {
            "a": pd.array([1, None], dtype="Int64"),  # <NA>
            "b": [1.5, np.nan],  # NaN
            "c": ["x", None],  # None
            "d": pd.to_datetime(["2026-11-29 13:00", None]),  # NaT
        }
    )
    text = display.frame_text(frame)
    assert "NaN" not in text and "<NA>" not in text and "None" not in text and "NaT" not in text
    assert text.splitlines()[-1].split() == [display.MISSING] * 4
    html = display.frame_html(frame)
    assert html.count(f'<td class="missing">{display.MISSING}</td>') == 4
    assert "NaN" not in html and "&lt;NA&gt;" not in html and "NaT" not in html


def test_consumer_table_shows_durations_names_and_colours_the_dead_consumer() -> None:
    consumers = pd.DataFrame(
        {
            "stream": ["tasks:queue", "tasks:queue"],
            "group": ["workers", "workers"],
            "consumer": [DEAD, "pm-0"],
            "pending": [3, 0],
            "idle_ms": [900_000, 1_200],
            "max_pending_idle_ms": [900_200, None],
            "longest_idle_deliveries": [1, None],
            "registered": [False, True],
            "registry_ttl_s": [None, 61.0],
        }
    )
    kind = "streams.consumers"
    display.tag(consumers, kind, {DEAD: "worker-7"}, columns=areas()["streams"].columns[kind])
    html = display.frame_html(consumers)
    assert "<th>idle</th>" in html and '<td class="num">15 min</td>' in html and '<td class="num">1 s</td>' in html
    assert "<b>worker-7</b>" in html and f"title='{DEAD}'>8ec4002d…" in html  # the name beside the (short) id
    assert html.count('class="sev-warning"') == 1  # dead (unregistered) and holding work
    assert "more columns in the frame: registry_ttl_s" in html  # the default columns fit the width
    text = display.frame_text(consumers)
    assert f"worker-7 ({DEAD})" in text and "15 min" in text and "streams.consumers (2 rows)" in text


def test_urls_are_redacted_and_long_values_cut() -> None:
    frame = pd.DataFrame({"url": ["redis://:hunter2@db:6379/0"], "body": ["x" * 500]})
    text = display.frame_text(frame)
    assert "hunter2" not in text and "redis://:***@db:6379/0" in text
    assert "x" * display.MAX_TEXT not in text and "…" in text


def test_index_and_row_limit() -> None:
    frame = pd.DataFrame({"n": range(80)}, index=pd.Index([f"r{i}" for i in range(80)], name="row"))
    html = display.frame_html(frame)
    assert "<th>row</th>" in html and ">r0<" in html  # a meaningful index is shown as a column
    assert "30 more rows" in html and html.count("<tr>") == display.MAX_ROWS + 1


def test_findings_value_carries_the_findings_for_the_runner() -> None:
    found = display.Findings([Finding("streams.dead_consumer", Severity.CRITICAL, "Dead consumer holds 3")])
    bundle = found._repr_mimebundle_()
    assert bundle[MIME_TYPE]["findings"][0]["check"] == "streams.dead_consumer"
    assert "Dead consumer holds 3" in bundle["text/html"] and "CRITICAL" in bundle["text/plain"]


def test_ipython_formatters_render_every_frame_the_lab_way() -> None:
    shell = InteractiveShell.instance()
    display.install(shell)
    data, _ = shell.display_formatter.format(pd.DataFrame({"latency_ms": [0.8], "reachable": [True]}))
    assert "0.8 ms" in data["text/html"] and "yes" in data["text/plain"]
    found = [Finding("streams.trim_risk", Severity.WARNING, "Backlog near the trim limit")]
    data, _ = shell.display_formatter.format(found)  # a plain list, as lab.check returns it
    assert "bsnexus-findings" in data["text/html"]
    data, _ = shell.display_formatter.format(found[0])
    assert data["text/plain"].startswith("WARNING  Backlog near the trim limit [streams.trim_risk]")
    assert "text/html" not in shell.display_formatter.format([1, 2])[0]  # other lists are left alone


def test_a_lab_shows_its_target_redacted_and_its_areas() -> None:
    lab = bl.connect(redis_url="redis://:hunter2@redis.internal:6379/0")  # nothing is contacted
    html, text = display.lab_html(lab), display.lab_text(lab)
    assert "hunter2" not in html + text and "redis://:***@redis.internal:6379/0" in text
    assert "lab.streams" in text and "read-only" in html and f"database  {display.MISSING}" in text


def test_report_contents_only_for_long_runs() -> None:
    heading = '<h2 id="s{0}">Section {0}<a class="anchor-link" href="#s{0}">¶</a></h2>'
    short = "".join(heading.format(n) for n in range(report.TOC_MIN_SECTIONS - 1))
    long = "".join(heading.format(n) for n in range(report.TOC_MIN_SECTIONS))
    assert report.contents(short) == ""
    toc = report.contents(long)
    assert '<a href="#s0">Section 0</a>' in toc and "¶" not in toc


def test_a_long_call_counts_down_its_duration(capsys: pytest.CaptureFixture[str]) -> None:
    thread = threading.Thread(target=lambda: None)
    thread.start()
    display.wait(thread, 30, desc="profile.cpu")  # returns when the call ends, whatever the duration said
    assert not thread.is_alive() and "profile.cpu" in capsys.readouterr().err
