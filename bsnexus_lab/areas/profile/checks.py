"""The profile area's checks: pure functions of the captured frames.

Causes (a CPU hotspot, an event-loop stall, a leaking stack) are scoped ``process:<pid>``, the same scope as
the symptoms they explain (RSS growth here, slow responses in the service area), so a report shows the
hotspot with the latency it causes nested under it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from bsnexus_lab.areas.profile.stacks import functions, is_runtime, loop_activity
from bsnexus_lab.areas.profile.thresholds import ProfileThresholds
from bsnexus_lab.checks import check
from bsnexus_lab.findings import Finding, Kind, Severity, not_checked


def _where(row: Any) -> str:
    return f"{row['function']} ({row['file']}:{row['line']})"


def _scope(pid: Any) -> frozenset[str]:
    return frozenset({f"process:{pid}"})


def _not_judged(check_id: str, title: str, remedy: str) -> Finding:
    """The capture given cannot answer this check (the wrong kind of profile, none written): "not checked",
    in that tier of its own, never "none found"."""
    reason = title.split(": ", 1)[1]
    return not_checked(check_id, title, area="profile", reason=reason, remedy=remedy, checks=[check_id])


@check("profile.cpu_hotspot", "A function holding most of the CPU", kind=Kind.CAUSE)
def cpu_hotspot(cpu: pd.DataFrame, thresholds: ProfileThresholds) -> list[Finding]:
    pid, samples = cpu.attrs.get("pid"), int(cpu["count"].sum()) if len(cpu) else 0
    if cpu.attrs.get("idle"):
        return [
            _not_judged(
                "profile.cpu_hotspot",
                "CPU hotspot not judged: the profile includes idle samples",
                "record with lab.profile.cpu(pid, seconds, idle=False)",
            )
        ]
    if samples < thresholds.min_samples:
        return []
    top = functions(cpu)
    top = _application(top)
    if top.empty:
        return []
    row = top.iloc[0]
    possible = float(cpu.attrs.get("seconds", 0)) * float(cpu.attrs.get("rate", 0)) or samples
    cores = row["self"] / possible
    if row["self_share"] < thresholds.hotspot_share or cores < thresholds.hotspot_min_cores:
        return []
    severity = Severity.CRITICAL if cores >= thresholds.hotspot_critical_cores else Severity.WARNING
    return [
        Finding(
            "profile.cpu_hotspot",
            severity,
            f"{row['function']} holds {row['self_share']:.0%} of the CPU samples of pid {pid} ({cores:.2f} of a core)",
            evidence={
                "function": row["function"],
                "file": row["file"],
                "line": int(row["line"]),
                "self_samples": int(row["self"]),
                "samples": samples,
                "cores": round(cores, 2),
                "artefact": cpu.attrs.get("svg", ""),
            },
            remedy=f"optimise or cache {_where(row)}, or move it off the request path "
            "(a worker process or `await asyncio.to_thread(...)` for code that releases the GIL)",
            subject=(str(pid), row["function"]),
            scope=_scope(pid),
        )
    ]


def _application(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows (function, file, line) of the application's own code, not of the runtime it runs on."""
    if frame.empty:
        return frame
    return frame[~frame.apply(lambda r: is_runtime((r["function"], r["file"], r["line"])), axis=1)]


def _on_cpu(cpu: pd.DataFrame | None, pid: Any, function: str, file: str) -> float | None:
    """The share of a core ``function`` used in an on-CPU profile of the same process (None without one)."""
    if cpu is None or cpu.attrs.get("idle") or cpu.attrs.get("pid") != pid:
        return None
    possible = float(cpu.attrs.get("seconds", 0)) * float(cpu.attrs.get("rate", 0))
    table = functions(cpu)
    row = table[(table["function"] == function) & (table["file"] == file)]
    return float(row["self"].sum()) / possible if possible else None


@check("profile.process_exited", "A profiled process that exited during its capture", kind=Kind.CAUSE)
def process_exited(
    thresholds: ProfileThresholds,
    cpu: pd.DataFrame | None = None,
    waits: pd.DataFrame | None = None,
    memory: pd.DataFrame | None = None,
) -> list[Finding]:
    """The service ended while it was being profiled (a crash, an OOM kill, a restart): that is the finding, and
    the stacks sampled before it are its evidence (a memory capture has none: memray writes it at the end)."""
    findings = []
    captures = ((cpu, "CPU profile"), (waits, "idle-inclusive profile"), (memory, "memory capture"))
    for frame, what in captures:
        if frame is None or not frame.attrs.get("exited"):
            continue
        pid, samples = frame.attrs.get("pid"), int(frame.attrs.get("samples", 0))
        kept = f"{samples} samples before it ended" if frame is not memory else "memray had written nothing yet"
        findings.append(
            Finding(
                "profile.process_exited",
                Severity.CRITICAL,
                f"The profiled process (pid {pid}) exited during the {what}: {kept}",
                evidence={
                    "pid": pid,
                    "samples": samples,
                    "seconds_asked": frame.attrs.get("seconds"),
                    "artefact": frame.attrs.get("svg", ""),
                },
                remedy="Find why it ended: its own log, the kernel's OOM killer (`dmesg`, `journalctl -k`) and its "
                "supervisor's restarts; a CPU profile's flame graph shows what it was doing before. Then profile "
                "the process that replaced it.",
                subject=(str(pid),),
                scope=_scope(pid),
            )
        )
    return findings


@check("profile.loop_stall", "An event loop blocked inside one call", kind=Kind.CAUSE)
def loop_stall(waits: pd.DataFrame, thresholds: ProfileThresholds, cpu: pd.DataFrame | None = None) -> list[Finding]:
    """Judged from stacks alone on a profile that includes idle samples: the loop thread caught inside a
    coroutine step (not waiting in ``select``) at the same innermost application frame in many samples.
    With an on-CPU profile of the same process (``cpu``), it also tells a blocking call from CPU-bound work."""
    if not waits.attrs.get("idle", False):
        return [
            _not_judged(
                "profile.loop_stall",
                "Event-loop stalls not judged: the profile has no idle samples",
                "record with lab.profile.cpu(pid, seconds, idle=True)",
            )
        ]
    findings = []
    activity = loop_activity(waits)
    for (pid, thread), group in activity.groupby(["pid", "thread"], sort=False):
        row = group.iloc[0]
        if row["loop_samples"] < thresholds.min_samples or row["share"] < thresholds.stall_share:
            continue
        on_cpu = _on_cpu(cpu, pid, row["function"], row["file"])
        how, remedy = (
            "",
            "await an async equivalent, or run it with `await asyncio.to_thread(...)` / `run_in_threadpool`",
        )
        if on_cpu is not None and on_cpu < row["share"] / 2:
            how = " (a blocking call: off the CPU while it holds the loop)"
        elif on_cpu is not None:
            how = " (CPU-bound work on the loop)"
            remedy = "make it cheaper, or move it to a worker process (`loop.run_in_executor` with a process pool)"
        findings.append(
            Finding(
                "profile.loop_stall",
                Severity.CRITICAL if row["share"] >= thresholds.stall_critical_share else Severity.WARNING,
                f"Event loop of pid {pid} stalled in {row['function']} for {row['share']:.0%} of the time{how}: "
                "every other request waits meanwhile",
                evidence={
                    "function": row["function"],
                    "file": row["file"],
                    "line": int(row["line"]),
                    "thread": thread,
                    "stalled_samples": int(row["samples"]),
                    "loop_samples": int(row["loop_samples"]),
                    "on_cpu_cores": None if on_cpu is None else round(on_cpu, 2),
                },
                remedy=f"{_where(row)} holds the loop inside a coroutine: {remedy}",
                subject=(str(pid), row["function"]),
                scope=_scope(pid),
            )
        )
    return findings


@check("profile.memory_leak", "A stack whose allocations stay alive", kind=Kind.CAUSE)
def memory_leak(memory: pd.DataFrame, thresholds: ProfileThresholds) -> list[Finding]:
    """``memory`` is a capture's ``leaks`` frame: allocations made during it and alive at its end."""
    if memory.attrs.get("exited"):  # not "none found": nothing was captured (profile.process_exited says why)
        pid = memory.attrs.get("pid")
        finding = _not_judged(
            "profile.memory_leak", f"Memory leaks not judged: pid {pid} exited before memray wrote its capture", ""
        )
        return [dataclasses.replace(finding, subject=(str(pid),), scope=_scope(pid))]
    owned = _application(memory)
    if owned.empty:
        return []
    row = owned.iloc[0]
    retained = row["bytes"] / 2**20
    if retained < thresholds.leak_min_mb or row["allocations"] < thresholds.leak_min_allocations:
        return []
    pid, seconds = memory.attrs.get("pid"), float(memory.attrs.get("seconds", 0))
    return [
        Finding(
            "profile.memory_leak",
            Severity.CRITICAL if retained >= thresholds.leak_critical_mb else Severity.WARNING,
            f"{row['function']} kept {retained:.1f} MiB alive over a {seconds:g} s capture of pid {pid} "
            f"({int(row['allocations'])} allocations)",
            evidence={
                "function": row["function"],
                "file": row["file"],
                "line": int(row["line"]),
                "retained_mb": round(retained, 2),
                "allocations": int(row["allocations"]),
                "stack": row["stack"],
                "rss_growth_mb": memory.attrs.get("rss_growth_mb"),
            },
            remedy=f"bound or expire what {_where(row)} keeps (an LRU/TTL cache, or drop the reference); "
            + _full_stacks(memory),
            subject=(str(pid), row["function"]),
            scope=_scope(pid),
        )
    ]


def _full_stacks(memory: pd.DataFrame) -> str:
    if memory.attrs.get("route") == "tracemalloc":
        return "the evidence's stack is tracemalloc's, innermost first"
    return "memray's leaks flame graph shows the full stacks"


@check("profile.rss_growth", "Resident memory growing over a window")
def rss_growth(rss: pd.DataFrame, thresholds: ProfileThresholds) -> list[Finding]:
    """``rss`` is the RSS sampler's frame (time-indexed; pid, rss_mb, cpu_percent, error)."""
    findings = []
    valid = rss.dropna(subset=["rss_mb"]) if "rss_mb" in rss else rss.iloc[0:0]
    for pid, group in valid.groupby("pid"):
        first, last = float(group["rss_mb"].iloc[0]), float(group["rss_mb"].iloc[-1])
        grown = last - first
        if grown < thresholds.rss_growth_mb or grown < thresholds.rss_growth_ratio * first:
            continue
        seconds = (group.index[-1] - group.index[0]).total_seconds()
        findings.append(
            Finding(
                "profile.rss_growth",
                Severity.WARNING,
                f"RSS of pid {pid} grew {grown:.0f} MiB ({first:.0f} -> {last:.0f}) in {seconds:.0f} s",
                evidence={
                    "pid": int(pid),
                    "start_mb": round(first, 1),
                    "end_mb": round(last, 1),
                    "seconds": round(seconds, 1),
                },
                remedy="profile.memory_leak names the stack that keeps it from a capture of the same window "
                "(lab.profile.memory); where that capture was not checked, its own remedy says what to enable",
                subject=(str(pid),),
                scope=_scope(pid),
            )
        )
    return findings
