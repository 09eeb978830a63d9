"""The profile area against the sandbox's live service: each planted fault is what the profile names.

The service and its load are real (uvicorn, py-spy, memray attach through the machine's debugger). Profiling
does not depend on the Redis/PostgreSQL build, so these run on the first server source only.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import bsnexus_lab as bl
from bsnexus_lab.config import ProcessMatch
from bsnexus_lab.errors import LabError, NotFound
from bsnexus_lab.findings import Kind, Severity
from bsnexus_lab.sandbox import Sandbox
from bsnexus_lab.sandbox.service.load import Background
from tests.conftest import _sources

# Profiles judge CPU shares: run alone (see `serial` in pyproject.toml).
pytestmark = pytest.mark.serial

CAPTURE_S = 3
FAULTY_PATHS = ("/health", "/api/v1/tasks?limit=20", "/api/v1/tasks/{task_id}")  # every path a fault sits on


@pytest.fixture(scope="module")
def service(sandbox_root: tuple[Sandbox, str]) -> Iterator[Sandbox]:
    box, source = sandbox_root
    if source != _sources()[0]:
        pytest.skip("profiling does not depend on the server build: first source only")
    box.start_service()
    yield box
    box.load("healthy")
    box.stop_service()


@pytest.fixture
def lab(service: Sandbox, sandbox: Sandbox) -> Iterator[Any]:
    with bl.connect("sandbox") as lab:
        yield lab


def planted(box: Sandbox, name: str) -> dict[str, Any]:
    """Load the scenario and wait (bounded) until the service runs with its fault and the load arrives."""
    facts = box.load(name)
    url = box._state()["service"]["url"]
    deadline = time.monotonic() + 20
    while httpx.get(f"{url}/lab/fault", timeout=5).json()["fault"] != name:
        assert time.monotonic() < deadline, "the service never picked up the fault"
        time.sleep(0.2)
    time.sleep(1.0)
    return facts


def test_profile_settings_come_from_the_sandbox(lab: Any, service: Sandbox) -> None:
    state = service._state()["service"]
    assert lab.target.service_url == state["url"]
    assert lab.profile.pid() == state["pid"]
    assert [str(p) for p in lab.target.log_files] == state["log_files"]
    processes = lab.profile.processes()
    row = processes.set_index("pid").loc[state["pid"]]
    assert row["python"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert state["port"] in row["listening"] and row["threads"] >= 1 and row["rss_mb"] > 10
    by_port = lab.profile.processes(ProcessMatch(port=state["port"]))
    assert list(by_port["pid"]) == [state["pid"]]


def test_busy_healthy_service_raises_nothing_above_info(lab: Any, service: Sandbox) -> None:
    service.load("healthy")
    with Background(lab.target.service_url, paths=FAULTY_PATHS, per_s=20, duration=120):
        time.sleep(1.0)
        frames = {
            "profile.cpu": lab.profile.cpu(seconds=CAPTURE_S),
            "profile.waits": lab.profile.cpu(seconds=CAPTURE_S, idle=True),
            "profile.memory": lab.profile.memory(seconds=CAPTURE_S).leaks,
        }
    findings = lab.check(frames)
    assert {f.check for f in findings} >= {"profile.cpu_hotspot", "profile.loop_stall", "profile.memory_leak"}
    assert all(f.severity in (Severity.OK, Severity.INFO) for f in findings), [f.title for f in findings]


def test_cpu_hotspot_is_the_top_cpu_finding(lab: Any, service: Sandbox) -> None:
    facts = planted(service, "cpu-hotspot")
    cpu = lab.profile.cpu(seconds=CAPTURE_S)
    assert Path(cpu.attrs["svg"]).read_text().startswith("<svg") and Path(cpu.attrs["raw"]).exists()
    top = lab.profile.top(cpu, 5)
    assert top.iloc[0]["function"] == facts["function"] == "rank_by_similarity"
    findings = lab.profile.check(cpu=cpu)
    first = findings[0]
    assert (first.check, first.kind, first.evidence["function"]) == (
        "profile.cpu_hotspot",
        Kind.CAUSE,
        facts["function"],
    )
    assert first.evidence["file"] == facts["file"]
    assert first.severity == (Severity.CRITICAL if first.evidence["cores"] >= 0.9 else Severity.WARNING)


def test_blocking_call_is_an_event_loop_stall_with_its_function(lab: Any, service: Sandbox) -> None:
    facts = planted(service, "blocking-call")
    waits = lab.profile.cpu(seconds=CAPTURE_S, idle=True)
    cpu = lab.profile.cpu(seconds=CAPTURE_S)
    latency = lab.service.latency("/health", n=20, concurrency=4)
    findings = lab.check({"profile.waits": waits, "profile.cpu": cpu, "service.latency": latency})
    stall = next(f for f in findings if f.check == "profile.loop_stall")
    assert stall is findings[0] and stall.severity == Severity.WARNING
    assert "blocking call" in stall.title
    assert stall.evidence["function"] == facts["function"] == "load_prompt_template"
    assert stall.evidence["file"] == facts["file"]


def test_slow_dependency_shows_up_with_idle_samples(lab: Any, service: Sandbox) -> None:
    facts = planted(service, "slow-dependency")
    waiting = lab.profile.top(lab.profile.cpu(seconds=CAPTURE_S, idle=True), 1000).set_index("function")
    on_cpu = lab.profile.top(lab.profile.cpu(seconds=CAPTURE_S), 1000).set_index("function")
    assert facts["function"] == "fetch_task_statistics"
    # 10 requests a second each wait 0.3 s: about three threads wait at any moment, nearly never on a CPU.
    assert waiting.loc["fetch_task_statistics", "total"] >= 100
    on_cpu_samples = on_cpu["total"].get("fetch_task_statistics", 0)
    assert on_cpu_samples < waiting.loc["fetch_task_statistics", "total"] / 5


def test_memory_leak_is_the_top_memory_finding_and_the_target_keeps_running(lab: Any, service: Sandbox) -> None:
    facts = planted(service, "memory-leak")
    pid = lab.profile.pid()
    capture = lab.profile.memory(seconds=CAPTURE_S)
    assert capture.leaks.iloc[0]["function"] == facts["function"] == "remember_task_view"
    assert Path(capture.artefacts["flamegraph"]).exists() and len(capture.timeline) > 1
    findings = lab.profile.check(memory=capture.leaks)
    assert (findings[0].check, findings[0].severity) == ("profile.memory_leak", Severity.WARNING)
    assert findings[0].evidence["file"] == facts["file"]
    status = Path(f"/proc/{pid}/status").read_text()
    assert "TracerPid:\t0" in status  # detached
    assert httpx.get(f"{lab.target.service_url}/health", timeout=5).status_code == 200


def test_tracemalloc_names_the_leak_in_the_real_asyncio_service(lab: Any, service: Sandbox) -> None:
    """The route a service without memray gets, on uvicorn + FastAPI: the framework's frames are passed over."""
    facts = planted(service, "memory-leak")
    capture = lab.profile.memory(seconds=CAPTURE_S, route="tracemalloc")
    assert capture.route == "tracemalloc" and len(capture.timeline) > 1
    (finding,) = [f for f in lab.profile.check(memory=capture.leaks) if f.check == "profile.memory_leak"]
    assert (finding.severity, finding.evidence["function"]) == (Severity.WARNING, facts["function"])
    assert finding.evidence["file"] == facts["file"] and "tracemalloc" in finding.remedy
    assert httpx.get(f"{lab.target.service_url}/health", timeout=5).status_code == 200


def test_bad_pids_get_clear_messages(lab: Any, service: Sandbox) -> None:
    with pytest.raises(NotFound, match="no process with pid"):
        lab.profile.dump(2**22 + 4321)
    redis_pid = service._state()["redis"]["pid"]
    with pytest.raises(LabError, match="not a Python process"):
        lab.profile.dump(redis_pid)
    short = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(2)"])
    try:
        started = time.monotonic()
        cpu = lab.profile.cpu(short.pid, seconds=8, idle=True)  # what it did before it exited is kept, and said
        assert time.monotonic() - started < 8 + 10
        assert cpu.attrs["exited"] and cpu.attrs["samples"] > 0
        (finding,) = [f for f in lab.check({"profile.cpu": cpu}) if f.check == "profile.process_exited"]
        assert finding.severity is Severity.CRITICAL and f"(pid {short.pid}) exited" in finding.title
    finally:
        short.kill()
        short.wait()


def test_dump_reads_every_thread(lab: Any, service: Sandbox) -> None:
    service.load("healthy")
    dump = lab.profile.dump(locals=True)
    assert "MainThread" in set(dump["thread"])
    assert dump.attrs["text"].startswith("Thread ")
    assert (dump["depth"] == 0).sum() == dump["thread_id"].nunique()


@pytest.mark.parametrize(
    ("runbook", "scenario", "check"),
    [("cpu_profile", "blocking-call", "profile.loop_stall"), ("memory_growth", "memory-leak", "profile.memory_leak")],
)
def test_runbook_finds_the_planted_fault(
    service: Sandbox, sandbox: Sandbox, tmp_path: Path, runbook: str, scenario: str, check: str
) -> None:
    from bsnexus_lab import runner

    facts = planted(service, scenario)
    result = runner.run(runbook, target="sandbox", params={"duration_s": CAPTURE_S}, output_root=tmp_path)
    assert result.error is None, result.error
    found = next(f for f in result.findings if f.check == check)
    assert found.severity == Severity.WARNING and found.evidence["function"] == facts["function"]
