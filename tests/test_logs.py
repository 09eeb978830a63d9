"""BSNexus's log files: format, rotations in order, tracebacks joined, compose prefixes, zones, windows, groups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

import bsnexus_lab as bl
from bsnexus_lab.areas.logs import checks, plots
from bsnexus_lab.areas.logs.errors import grouped, shape
from bsnexus_lab.areas.logs.read import files, read
from bsnexus_lab.areas.logs.thresholds import LogsThresholds
from bsnexus_lab.errors import ConfigError

TASK = "6f1c2a4e-9b7d-4e2a-8c1f-0a9b8c7d6e5f"
ENTRY = "1764400000000-0"
TRACEBACK = f"""2026-11-29 10:00:05,120 ERROR bsnexus.orchestrator: Failed to process result {ENTRY} for task {TASK}
Traceback (most recent call last):
  File "/app/backend/src/orchestrator/pm.py", line 88, in _process_result
    await self.state_machine.transition(task, "review")
  File "/app/backend/src/core/state_machine.py", line 41, in transition
    raise ValueError(f"Invalid transition: {{task.status}} -> {{target}}")
ValueError: Invalid transition: done -> review
"""


def pending_on(stream: str, group: str, entry: str, consumer: str, idle_ms: int = 1) -> dict[str, object]:
    """One row of a streams.pending frame."""
    return {"stream": stream, "group": group, "id": entry, "consumer": consumer, "idle_ms": idle_ms, "deliveries": 1}


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    write(tmp_path / "bsnexus.log.2", "2026-11-29 09:00:00,000 INFO uvicorn.access: oldest\n")
    write(tmp_path / "bsnexus.log.1", "2026-11-29 09:30:00,000 WARNING bsnexus.api: older\n")
    write(
        tmp_path / "bsnexus.log",
        "2026-11-29 10:00:00,000 INFO bsnexus.api: newest\n"
        "2026-11-29 10:00:01,500 ERROR bsnexus.workers: Worker 5d3c1b2a-0000-4000-8000-000000000001 timed out "
        "after 92 s\n"
        "2026-11-29 10:00:02,500 ERROR bsnexus.workers: Worker 5d3c1b2a-0000-4000-8000-000000000002 timed out "
        "after 95 s\n",
    )
    write(
        tmp_path / "orchestrator.log", "2026-11-29 09:59:00,000 INFO bsnexus.orchestrator: loop started\n" + TRACEBACK
    )
    return tmp_path


def test_rotations_are_read_oldest_first_and_tracebacks_join_their_record(logdir: Path) -> None:
    assert [p.name for p in files(logdir / "bsnexus.log")] == ["bsnexus.log.2", "bsnexus.log.1", "bsnexus.log"]
    records = read(logdir / "*.log", timezone="UTC")
    assert list(records["message"].str.split("\n").str[0].head(3)) == ["oldest", "older", "loop started"]
    assert len(records) == 7  # the traceback's six lines belong to one record
    error = records[records["exception"].notna()].iloc[0]
    assert error["exception"] == "ValueError" and error["logger"] == "bsnexus.orchestrator"
    assert error["message"].endswith("ValueError: Invalid transition: done -> review")
    assert error["time"] == pd.Timestamp("2026-11-29 10:00:05.120", tz="UTC")
    assert error["file"].endswith("orchestrator.log") and error["line"] == 2


def test_log_time_zone_is_converted_to_utc(logdir: Path) -> None:
    records = read(logdir / "bsnexus.log", timezone="Europe/Berlin")  # UTC+1 in November
    assert records["time"].iloc[-1] == pd.Timestamp("2026-11-29 09:00:02.500", tz="UTC")
    with pytest.raises(ConfigError, match="unknown log time zone 'Mars/Olympus'"):
        read(logdir / "bsnexus.log", timezone="Mars/Olympus")


def test_docker_compose_prefixes_are_read(tmp_path: Path) -> None:
    compose = (
        "\n".join(f"backend-1  | {line}" if line else "backend-1  |" for line in TRACEBACK.splitlines())
        + "\npostgres-1  | 2026-11-29 10:00:06,000 INFO other.logger: hello\n"
    )
    records = read(write(tmp_path / "compose.txt", compose), timezone="UTC")
    assert list(records["service"]) == ["backend-1", "postgres-1"]
    assert records["exception"].iloc[0] == "ValueError"
    assert "Traceback (most recent call last):" in records["message"].iloc[0]


def test_window_of_a_large_file_is_bisected_not_read_whole(tmp_path: Path) -> None:
    start = datetime(2026, 11, 29, 0, 0, 0)
    with (tmp_path / "bsnexus.log").open("w") as handle:
        for second in range(0, 86_400, 2):  # a day, every 2 s: 43,200 records, ~3 MB
            moment = start + timedelta(seconds=second)
            handle.write(f"{moment:%Y-%m-%d %H:%M:%S},000 INFO bsnexus.api: request {second} served\n")
    since = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
    records = read(tmp_path / "bsnexus.log", since, since + timedelta(minutes=1), timezone="UTC")
    assert len(records) == 31
    assert records["time"].iloc[0] == pd.Timestamp(since) and records["line"].isna().all()
    newest = read(tmp_path / "bsnexus.log", timezone="UTC", limit=5)
    assert list(newest["message"]) == [f"request {s} served" for s in range(86_390, 86_400, 2)]


def test_errors_group_by_exception_shape_and_logger(logdir: Path) -> None:
    groups = grouped(read(logdir / "*.log", timezone="UTC"))
    assert list(groups["count"]) == [2, 1]
    top = groups.iloc[0]
    assert top["shape"] == "Worker <uuid> timed out after <n> s" and top["logger"] == "bsnexus.workers"
    assert groups.iloc[1]["exception"] == "ValueError"
    assert (
        shape(f"Failed to process result {ENTRY} for task '{TASK}'")
        == "Failed to process result <entry> for task <str>"
    )


def test_repeated_errors_earn_warning_only_in_a_burst(logdir: Path) -> None:
    records = read(logdir / "*.log", timezone="UTC")
    assert {f.severity.value for f in checks.repeated_errors(records, LogsThresholds())} == {"info"}
    burst = pd.concat([records] * 5, ignore_index=True)
    top = checks.repeated_errors(burst, LogsThresholds())[0]
    assert top.severity.value == "warning" and top.evidence["count"] == 10


def test_an_exception_for_a_result_stuck_on_pm0_is_evidence(logdir: Path) -> None:
    records = read(logdir / "*.log", timezone="UTC")
    pending = pd.DataFrame(
        [
            pending_on("tasks:results", "pm", ENTRY, "pm-0", idle_ms=600_000),
            pending_on("tasks:results", "pm", "1764400000001-0", "pm-0"),
            pending_on("tasks:queue", "workers", ENTRY, "w1"),
        ]
    )
    [finding] = checks.result_exception(records, pending, LogsThresholds())
    assert finding.severity.value == "warning"
    assert finding.evidence["id"] == ENTRY and finding.evidence["consumer"] == "pm-0"
    assert finding.evidence["exception"] == "ValueError: Invalid transition: done -> review"
    bodies = pd.DataFrame([{"stream": "tasks:results", "id": "1764400000001-0", "exists": True, "task_id": TASK}])
    by_task = checks.result_exception(records, pending.iloc[1:2], LogsThresholds(), bodies)
    assert [f.evidence["task_id"] for f in by_task] == [TASK]  # matched through the entry's task id
    assert checks.result_exception(records.iloc[:0], pending, LogsThresholds()) == []


def test_errors_over_time_plots_each_exception(logdir: Path) -> None:
    figure = plots.errors_over_time(read(logdir / "*.log", timezone="UTC"))
    assert "3 errors" in figure.axes[0].get_title()
    assert {t.get_text() for t in figure.axes[0].get_legend().get_texts()} == {
        "ValueError",
        "Worker <uuid> timed out after <n> s",
    }


def test_no_log_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no log files match"):
        read(tmp_path / "missing.log")


def test_lab_logs_reads_the_targets_log_files_and_the_check_links_to_the_stuck_entry(logdir: Path) -> None:
    lab = bl.connect(redis_url="redis://127.0.0.1:9/0", log_files=[str(logdir / "*.log")], log_timezone="UTC")
    records = lab.logs.read()
    assert len(records) == 7 and records["time"].dt.tz is not None
    assert list(lab.logs.errors(records)["count"]) == [2, 1]
    pending = pd.DataFrame([pending_on("tasks:results", "pm", ENTRY, "pm-0", idle_ms=600_000)])
    top = lab.check({"logs.records": records, "streams.pending": pending})[0]
    assert top.check == "streams.stuck_on_live_consumer" and top.evidence["id"] == ENTRY
    [evidence] = top.explains  # the logged exception is evidence on the stuck entry
    assert evidence.check == "logs.result_exception" and evidence.evidence["exception"].startswith("ValueError")
    assert evidence.key == f"logs.result_exception:tasks:results/pm/pm-0/{ENTRY}"
    with pytest.raises(ConfigError, match="this target has no log_files"):
        bl.connect(redis_url="redis://127.0.0.1:9/0").logs.read()
