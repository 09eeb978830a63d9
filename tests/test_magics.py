"""``%lab`` in a real IPython shell against the sandbox: each command shows its table, findings and plots,
returns its frame, and a command for an area or call that does not exist says so in one line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.pylabtools import select_figure_formats
from IPython.utils.capture import capture_output

import bsnexus_lab as bl
from bsnexus_lab import display, runner
from bsnexus_lab.areas import areas
from bsnexus_lab.errors import EXIT_FINDINGS
from bsnexus_lab.findings import MIME_TYPE, Finding, flatten
from bsnexus_lab.magics import _arguments, _duration, _value
from bsnexus_lab.sandbox import Sandbox


@pytest.mark.parametrize(
    ("word", "value"),
    [("10s", 10.0), ("500ms", 0.5), ("5m", 300.0), ("1h", 3600.0), ("42", 42), ("0.25", 0.25), ("true", True),
     ("none", None), ("tasks:queue", "tasks:queue"), ("8ec4002d-ac95", "8ec4002d-ac95")],
)  # fmt: skip
def test_arguments_read_like_a_command_line(word: str, value: Any) -> None:
    assert _value(word) == value


def test_the_duration_a_call_was_given() -> None:
    assert _duration(["1234", "10s"]) == 10.0 and _duration(["duration=5m", "every=1s"]) == 300.0
    assert _duration(["tasks:queue", "42"]) == 0.0


def test_keywords() -> None:
    assert _arguments(["tasks:queue", "group=workers", "limit=10"]) == (
        ["tasks:queue"],
        {"group": "workers", "limit": 10},
    )


@pytest.fixture
def shell(sandbox: Sandbox) -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    select_figure_formats(ip, {"png"})  # what a kernel's inline backend does
    bl.load_ipython_extension(ip)
    yield ip
    lab = ip.user_ns.pop("lab", None)
    if isinstance(lab, bl.Lab):
        lab.close()


def _outputs(captured: Any) -> list[dict[str, Any]]:
    return [output.data for output in captured.outputs]


def test_connect_and_health(shell: InteractiveShell, healthy: dict[str, Any]) -> None:
    lab = shell.run_line_magic("lab", "connect sandbox")
    assert shell.user_ns["lab"] is lab and lab.target.name == "sandbox"
    health = shell.run_line_magic("lab", "health")
    assert set(health.dependency) == {"redis", "postgresql"} and health.reachable.all()
    html = shell.display_formatter.format(health)[0]["text/html"]
    assert "deps.health (2 rows)" in html and "***" in html  # redacted URLs


def test_area_snapshot_shows_findings_frames_and_plots(shell: InteractiveShell, stuck: dict[str, Any]) -> None:
    with capture_output() as captured:
        summary = shell.run_line_magic("lab", "streams")
    assert isinstance(summary, pd.DataFrame) and summary.attrs[display.KIND] == "streams.summary"
    row = summary.set_index(["stream", "group"]).loc[("tasks:queue", "workers")]
    assert row["pending"] >= stuck["pending"]
    outputs = _outputs(captured)
    findings = next(o[MIME_TYPE]["findings"] for o in outputs if MIME_TYPE in o)
    assert findings[0]["check"] == "streams.dead_consumer" and findings[0]["severity"] == "critical"
    assert sum("image/png" in o for o in outputs) >= 1  # the area's plots that its frames allow
    assert any("streams.consumers" in o.get("text/html", "") and "worker-gone" in o["text/html"] for o in outputs)


def test_one_call_returns_its_frame_with_worker_names(shell: InteractiveShell, stuck: dict[str, Any]) -> None:
    consumers = shell.run_line_magic("lab", "streams consumers tasks:queue group=workers")
    dead = stuck["dead_consumer"]
    assert set(consumers.stream) == {"tasks:queue"} and dead in set(consumers.consumer)
    assert consumers.attrs[display.NAMES][dead] == "worker-gone"
    text = display.frame_text(consumers)
    assert f"worker-gone ({dead})" in text and "15 min" in text


def test_triage_returns_ranked_findings_that_a_runbook_collects(shell: InteractiveShell, stuck: dict[str, Any]) -> None:
    findings = shell.run_line_magic("lab", "triage")
    assert isinstance(findings, display.Findings)
    assert findings[0].check == "streams.dead_consumer" and stuck["dead_consumer"] in findings[0].title
    bundle, _ = shell.display_formatter.format(findings)  # what the notebook shows and keeps
    assert bundle[MIME_TYPE]["findings"][0]["check"] == "streams.dead_consumer"
    assert (
        bundle["text/plain"].startswith("What is wrong now:\nCRITICAL ") and "bsnexus-findings" in bundle["text/html"]
    )


def test_trace_shows_its_verdict_lanes_and_timeline(shell: InteractiveShell, stuck: dict[str, Any]) -> None:
    trace = shell.run_line_magic("lab", f"trace {stuck['task_ids'][0][:8]}")
    assert trace.findings[0].check == "streams.dead_consumer" and trace.subject.task_id == stuck["task_ids"][0]
    html = shell.display_formatter.format(trace)[0]["text/html"]
    assert html.startswith(f"<h3>Task {stuck['task_ids'][0]} ") and "Dead consumer" in html
    lanes, table = html.split("<img", 1)[1].split(">", 1)
    assert lanes.startswith(' alt="timeline lanes" src="data:image/png;base64,') and "tasks:queue" in table
    with pytest.raises(UsageError, match="%lab trace ID"):
        shell.run_line_magic("lab", "trace")


def _stable(findings: list[Finding]) -> set[tuple[str, str, tuple[str, ...]]]:
    """Each finding's key, severity and what it explains: what two triages of one world agree on (titles carry
    live ages and timings)."""
    return {(f.key, f.severity.value, tuple(sorted(e.key for e in f.explains))) for f in flatten(findings)}


def test_the_magic_and_run_triage_find_the_same(shell: InteractiveShell, stuck: dict[str, Any], tmp_path: Path) -> None:
    shell.run_line_magic("lab", "connect sandbox")
    with capture_output() as captured:
        magic = shell.run_line_magic("lab", "triage")
    assert any("bsnexus-lab-triage" in o.get("text/html", "") for o in _outputs(captured))  # the summary first
    run = runner.run("triage", target="sandbox", params={"window_s": "1", "every_s": "0.25"}, output_root=tmp_path)
    assert run.exit_code == EXIT_FINDINGS, run.error
    assert _stable(magic) == _stable(run.findings)
    checks = {f.check for f in flatten(magic)}
    assert {"streams.dead_consumer", "streams.lag_status", "server.memory_pressure"} <= checks, checks


def test_cell_magic_runs_the_call_while_the_cell_runs(shell: InteractiveShell, healthy: dict[str, Any]) -> None:
    summary = shell.run_cell_magic("lab", "streams summary tasks:queue", "ran_beside = 6 * 7")
    assert shell.user_ns["ran_beside"] == 42 and list(summary.stream.unique()) == ["tasks:queue"]


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("nosuch", "%lab nosuch: no such command or area in this installation (areas: "),
        ("streams nosuch", "lab.streams has no call 'nosuch'; calls: "),
        ("connect nosuch", "no profile named 'nosuch'"),
    ],
)
def test_what_does_not_exist_says_so_in_one_line(shell: InteractiveShell, healthy: dict[str, Any], line: str,
                                                 says: str) -> None:  # fmt: skip
    with pytest.raises(UsageError) as raised:
        shell.run_line_magic("lab", line)
    assert says in str(raised.value) and "\n" not in str(raised.value)


def test_triage_of_a_dead_redis_says_what_it_could_not_check_under_the_cause() -> None:
    ip = InteractiveShell.instance()
    bl.load_ipython_extension(ip)
    ip.user_ns["lab"] = bl.connect(redis_url="redis://:hunter2@127.0.0.1:1/0")  # nothing listens on port 1
    try:
        findings = ip.run_line_magic("lab", "triage")
    finally:
        ip.user_ns.pop("lab").close()
    top = findings[0]
    assert top.check == "deps.unreachable" and top.severity == "critical"
    explained = [f.check for f in top.explains]  # what the dead server kept from being checked, not silence
    assert "streams.skipped" in explained and all(check.endswith(".skipped") for check in explained)
    assert "hunter2" not in repr(findings)


@pytest.mark.parametrize("area", [n for n, a in areas().items() if a.facade is not None and a.collect is not None])
def test_every_area_answers_with_its_snapshot(shell: InteractiveShell, stuck: dict[str, Any], area: str) -> None:
    """A new area appears in %lab without any edit: its quick snapshot, findings first, its headline frame back."""
    with capture_output() as captured:
        frame = shell.run_line_magic("lab", area)
    if area in {"logs", "profile", "service"}:  # the default sandbox names no log files, process or service URL
        assert frame is None and f"%lab {area}: nothing to show for sandbox" in captured.stdout
        return
    assert isinstance(frame, pd.DataFrame) and frame.attrs[display.KIND].startswith(f"{area}.")
    assert any(MIME_TYPE in o for o in _outputs(captured))
