"""The profile area's pure parts on hand-built input: py-spy's collapsed stacks, function counts, what held
the event loop, the checks and their severities, the flame graph, and in-process cProfile / tracemalloc."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bsnexus_lab.areas.profile import access, flamegraph, inprocess, memray_capture, memray_lent
from bsnexus_lab.areas.profile.checks import cpu_hotspot, loop_stall, memory_leak, rss_growth
from bsnexus_lab.areas.profile.stacks import functions, loop_activity, parse_collapsed
from bsnexus_lab.areas.profile.thresholds import ProfileThresholds
from bsnexus_lab.errors import NotFound, PermissionDenied
from bsnexus_lab.findings import Kind, Severity

T = ProfileThresholds()
LOOP = "run (asyncio/runners.py:1);BaseEventLoop._run_once (/usr/lib/python3.11/asyncio/base_events.py:1)"
STEP = LOOP + ";Handle._run (/usr/lib/python3.11/asyncio/events.py:78);get_task (/srv/app.py:10)"
RAW = "\n".join(
    [
        f'process 42:"python -m uvicorn app:app";thread (0x1): MainThread;{LOOP};EpollSelector.select '
        f"(/usr/lib/python3.11/selectors.py:451) 50",
        f'process 42:"python -m uvicorn app:app";thread (0x1): MainThread;{STEP};load_template (/srv/app.py:30) 40',
        f'process 42:"python -m uvicorn app:app";thread (0x1): MainThread;{STEP};render (/srv/app.py:50) 10',
        'process 42:"python -m uvicorn app:app";thread (0x2): worker;fib (/srv/m.py:1);fib (/srv/m.py:1) 5',
    ]
)


def stacks(idle: bool = True, seconds: float = 1.0, rate: int = 100) -> pd.DataFrame:
    frame = parse_collapsed(RAW, default_pid=1)
    frame.attrs.update(pid=42, seconds=seconds, rate=rate, idle=idle, svg="/tmp/x.svg")
    return frame


def test_collapsed_stacks_keep_process_thread_and_frames() -> None:
    frame = stacks()
    assert set(frame["pid"]) == {42}
    assert set(frame["thread"]) == {"MainThread (0x1)", "worker (0x2)"}
    assert frame["count"].sum() == 105
    assert frame.iloc[1]["stack"][-1] == ("load_template", "/srv/app.py", 30)


def test_recursive_function_counts_once_per_stack() -> None:
    table = functions(stacks()).set_index("function")
    assert table.loc["fib", "total"] == 5 and table.loc["fib", "self"] == 5
    assert table.loc["get_task", "total"] == 50 and table.loc["get_task", "self"] == 0
    assert table.loc["load_template", "self_share"] == pytest.approx(40 / 105)


def test_loop_activity_names_the_frame_holding_the_loop() -> None:
    held = loop_activity(stacks())
    top = held.iloc[0]
    assert (top["function"], top["file"], top["line"], top["samples"], top["loop_samples"]) == (
        "load_template",
        "/srv/app.py",
        30,
        40,
        100,
    )
    assert "fib" not in set(held["function"])  # not an event-loop thread


def test_stall_is_a_warning_cause_with_its_frame_and_critical_past_the_bound() -> None:
    [finding] = loop_stall(stacks(), T)
    assert finding.severity == Severity.WARNING
    assert finding.evidence["function"] == "load_template" and finding.evidence["line"] == 30
    assert finding.scope == frozenset({"process:42"})
    [critical] = loop_stall(stacks(), ProfileThresholds(stall_critical_share=0.4))
    assert critical.severity == Severity.CRITICAL
    [not_judged] = loop_stall(stacks(idle=False), T)  # the wrong kind of profile: "not checked", never "none found"
    assert (not_judged.severity, not_judged.kind) == (Severity.INFO, Kind.NOT_CHECKED)
    assert "idle=True" in not_judged.remedy


def test_stall_tells_a_blocking_call_from_cpu_bound_work_given_an_on_cpu_profile() -> None:
    on_cpu = stacks(idle=False)  # load_template: 40 samples in 1 s at 100 Hz, 0.4 of a core, as often as it stalls
    [cpu_bound] = loop_stall(stacks(), T, cpu=on_cpu)
    assert "CPU-bound" in cpu_bound.title and cpu_bound.evidence["on_cpu_cores"] == 0.4
    idle_only = on_cpu[on_cpu["stack"].map(lambda s: s[-1][0] != "load_template")]
    [blocking] = loop_stall(stacks(), T, cpu=idle_only)
    assert "blocking call" in blocking.title and blocking.evidence["on_cpu_cores"] == 0.0


def test_hotspot_needs_share_and_a_real_fraction_of_a_core() -> None:
    [finding] = cpu_hotspot(stacks(idle=False), T)  # load_template: 40 of 105 samples, 0.4 of a core
    assert finding.severity == Severity.WARNING
    assert (finding.evidence["function"], finding.evidence["file"], finding.evidence["line"]) == (
        "load_template",
        "/srv/app.py",
        30,
    )
    assert cpu_hotspot(stacks(idle=False, seconds=10), T) == []  # 0.04 of a core: a quiet process
    assert cpu_hotspot(stacks(idle=False), ProfileThresholds(hotspot_critical_cores=0.3))[0].severity == (
        Severity.CRITICAL
    )


def leaks(retained_mb: float) -> pd.DataFrame:
    frame = pd.DataFrame(
        [
            {
                "function": "remember",
                "file": "/srv/app.py",
                "line": 7,
                "bytes": int(retained_mb * 2**20),
                "allocations": 70,
                "stack": "remember (app.py:7) <- get_task (app.py:3)",
            },
            {"function": "other", "file": "/srv/x.py", "line": 1, "bytes": 100, "allocations": 1, "stack": ""},
        ]
    )
    frame.attrs.update(pid=42, seconds=5, rss_growth_mb=3.0)
    return frame


def test_leak_names_the_top_stack_and_critical_past_its_bound() -> None:
    [finding] = memory_leak(leaks(3), T)
    assert finding.severity == Severity.WARNING and finding.evidence["function"] == "remember"
    assert memory_leak(leaks(0.5), T) == []
    assert memory_leak(leaks(3).assign(allocations=1), T) == []  # one big buffer is not growth
    assert memory_leak(leaks(200), T)[0].severity == Severity.CRITICAL


def test_memory_held_only_by_the_server_machinery_is_no_leak() -> None:
    """A busy healthy uvicorn keeps connection buffers alive, attributed to its bootstrap (``asyncio_run``)."""
    uvicorn = "/venv/lib/python3.11/site-packages/uvicorn/_compat.py"
    machinery = {"function": "asyncio_run", "file": uvicorn, "line": 60, "bytes": 2**20, "allocations": 14}

    def behind(app: pd.DataFrame) -> pd.DataFrame:
        frame = pd.concat([pd.DataFrame([machinery | {"stack": ""}]), app], ignore_index=True)
        frame.attrs.update(app.attrs)
        return frame

    assert memory_leak(behind(leaks(0.5)), T) == []
    [finding] = memory_leak(behind(leaks(3)), T)
    assert finding.evidence["function"] == "remember"  # the application's stack, under the machinery's


def test_rss_growth_is_a_symptom_that_nests_under_the_leak() -> None:
    from bsnexus_lab.checks import run
    from bsnexus_lab.thresholds import Thresholds

    times = pd.date_range("2026-01-01", periods=3, freq="10s", tz="UTC", name="time")
    rss = pd.DataFrame({"pid": [42] * 3, "rss_mb": [100.0, 130.0, 180.0], "cpu_percent": 1.0}, index=times)
    assert rss_growth(rss, T)[0].severity == Severity.WARNING
    assert rss_growth(rss.assign(rss_mb=[100.0, 101.0, 102.0]), T) == []
    findings = run(
        {"profile.memory": leaks(3), "profile.rss": rss}, thresholds=Thresholds({"profile": T}), area="profile"
    )
    top = next(f for f in findings if f.check == "profile.memory_leak")
    assert top.kind == Kind.CAUSE
    assert [f.check for f in top.explains] == ["profile.rss_growth"]


def test_flamegraph_draws_every_frame_with_its_samples() -> None:
    svg = flamegraph.svg(stacks(), "title")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "load_template (app.py:30): 40 samples" in svg


def test_refusals_say_which_obstacle_and_the_fix() -> None:
    with pytest.raises(NotFound, match="no process with pid"):
        access.require_process(2**22 + 12345)
    if os.geteuid() != 0:
        pytest.skip("py-spy's refusal is produced by running it as `nobody`, which only root may do")
    # py-spy's own words when ptrace is refused, here from a real run as `nobody` against this root process.
    refused = subprocess.run(
        [access.tool("py-spy", "py-spy"), "dump", "--pid", str(os.getpid())],
        user="nobody",
        capture_output=True,
        text=True,
        cwd="/tmp",
        check=False,
    )
    assert refused.returncode != 0
    error = access.refusal(os.getpid(), refused.stdout + refused.stderr, "stack dump")
    assert isinstance(error, PermissionDenied)
    assert "SYS_PTRACE" in str(error) and "ptrace_scope" in str(error) and "elevated" not in str(error)


def test_capture_is_killed_after_its_bound() -> None:
    started = time.monotonic()
    with pytest.raises(Exception, match="did not finish within 1 s"):
        asyncio.run(access.run(["sleep", "30"], timeout=1))
    assert time.monotonic() - started < 10


def busy(n: int) -> int:
    return sum(i * i for i in range(n))


async def waits(n: int) -> int:
    await asyncio.sleep(0.01)
    return busy(n)


def test_call_profiles_functions_and_coroutines() -> None:
    table = inprocess.call(busy, 20_000)
    assert "busy" in set(table["function"])
    assert list(table["cumulative_s"]) == sorted(table["cumulative_s"], reverse=True)
    assert "busy" in set(inprocess.call(waits, 20_000)["function"])
    assert "busy" in set(inprocess.call(waits(20_000))["function"])


def test_tracemalloc_diff_names_the_growing_line() -> None:
    before = inprocess.snapshot()
    kept = [bytearray(1024) for _ in range(2000)]  # this line grows by ~2 MB
    diff = inprocess.tracemalloc_diff(before, inprocess.snapshot())
    assert diff.iloc[0]["file"].endswith("test_profile_units.py")
    assert diff.iloc[0]["size_diff_kb"] > 1500
    assert len(kept) == 2000


def test_tracemalloc_lines_are_named_by_their_function_and_grouped_by_the_application_frame(tmp_path: Path) -> None:
    """tracemalloc records files and lines only: the function is read from the source."""
    app = tmp_path / "app.py"
    app.write_text("import json\n\n\nclass Cache:\n    async def remember(self, n):\n        return [n] * 100\n")
    assert [memray_capture.function_at(str(app), n) for n in (1, 5, 6)] == ["<module>", "remember", "remember"]
    assert memray_capture.function_at(str(tmp_path / "gone.py"), 3) == "<module>"
    framework = ("run", "/venv/lib/python3.11/site-packages/starlette/routing.py", 9)
    stacks = [([("remember", str(app), 6), framework], 3000, 3), ([("remember", str(app), 6)], 1000, 1)]
    frame = memray_capture.by_stack([*stacks, ([framework], 99999, 9)])
    assert list(frame[["function", "bytes", "allocations"]].itertuples(index=False, name=None)) == [
        ("run", 99999, 9),
        ("remember", 4000, 4),
    ]
    [finding] = memory_leak(leaks(3).assign(function="remember"), T)
    tracemalloc = leaks(3)
    tracemalloc.attrs["route"] = "tracemalloc"
    assert "memray" in finding.remedy and "memray" not in memory_leak(tracemalloc, T)[0].remedy


def test_the_lent_finder_comes_after_the_targets_own_and_only_for_its_names(tmp_path: Path) -> None:
    lab_site, own = tmp_path / "lab", tmp_path / "own"
    for folder, names in ((lab_site, ("rich", "memray", "stranger")), (own, ("rich",))):
        for name in names:
            (folder / name).mkdir(parents=True)
            (folder / name / "__init__.py").write_text(f"WHERE = {folder.name!r}\n")
    code = (
        f"import sys; sys.path.insert(0, {str(own)!r})\n"
        + Path(memray_lent.__file__).read_text()
        + f"with lent({str(lab_site)!r}):\n    import memray, rich\n"
        "try:\n    import stranger\nexcept ImportError:\n    stranger = None\n"
        "print(memray.WHERE, rich.WHERE, stranger, any(isinstance(f, _Lender) for f in sys.meta_path))\n"
    )
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["lab", "own", "None", "False"]


def test_a_memory_capture_never_written_is_not_checked_under_the_exit_that_explains_it() -> None:
    ended = leaks(3).iloc[0:0]
    ended.attrs.update(pid=42, seconds=5, exited=True)
    [finding] = memory_leak(ended, T)
    assert (finding.kind, finding.scope) == (Kind.NOT_CHECKED, frozenset({"process:42"}))
    assert "none found" not in finding.title and finding.evidence["reason"] == (
        "pid 42 exited before memray wrote its capture"
    )
