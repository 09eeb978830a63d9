"""What profiling costs the service: requests per second of the sandbox service under a fixed load, without
and with a capture running, interleaved in one run (several rounds, median). Prints figures; asserts nothing.

1. ``profile.cpu`` (py-spy record, 100 Hz, non-blocking): goal at most 5 % fewer requests per second;
2. ``memray attach`` for the same window (memray's docs: tracking slows allocation-heavy code noticeably;
   reported, no goal);
3. time from calling ``profile.memory`` to having its frames (debugger injection, window, read-back).

The load is a closed loop (``concurrency`` requests always in flight) on ``/health`` and the task list, so
requests per second is what the service can answer. It starts its own sandbox (state under /tmp).

    .venv/bin/python bench/profiling.py [--rounds 3] [--seconds 5] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from table import Row, markdown

from bsnexus_lab.areas.profile import access, inject, memray_capture, pyspy
from bsnexus_lab.sandbox import Sandbox
from bsnexus_lab.sandbox.service import load

PATHS = ("/health", "/api/v1/tasks?limit=20")


def measure(
    url: str, pid: int, seconds: float, concurrency: int, start: Callable[[], Callable[[], None]] | None
) -> tuple[float, float]:
    """Requests per second over ``seconds``, and the service's CPU milliseconds per request (steadier than
    requests per second on a shared machine); ``start`` begins a capture (returning once it is active) and
    hands back what waits for its end."""
    finish = start() if start else None
    service = psutil.Process(pid)
    before = sum(service.cpu_times()[:2])
    result = load.drive(url, PATHS, per_s=None, duration=seconds, max_requests=10**5, concurrency=concurrency)
    cpu_ms = (sum(service.cpu_times()[:2]) - before) * 1000 / max(result.sent, 1)
    if finish:
        finish()
    return result.per_s, cpu_ms


def py_spy(pid: int, seconds: float) -> Callable[[], None]:
    worker = threading.Thread(target=lambda: asyncio.run(pyspy.record(pid, seconds + 1, rate=100)))
    worker.start()
    time.sleep(0.5)  # py-spy is sampling well within this
    return worker.join


def memray(pid: int, seconds: float, out: Path) -> Callable[[], None]:
    """``memray attach`` returns once tracking is active (lldb here, see memray_capture); it stops by itself."""
    for method in inject.debuggers():
        args = [access.tool("memray", "memray"), "attach", str(pid), "-o", str(out), "-f", "--aggregate"]
        done = subprocess.run([*args, "--duration", str(round(seconds + 1)), "--method", method], capture_output=True)
        if done.returncode == 0:
            return lambda: asyncio.run(memray_capture._finished(out, seconds + access.GRACE_S, pid))
    raise SystemExit("memray attach failed with every debugger")


def rows(rounds: int = 3, seconds: float = 5.0, concurrency: int = 8) -> list[Row]:
    args = argparse.Namespace(rounds=rounds, seconds=seconds, concurrency=concurrency)
    root = Path(tempfile.mkdtemp(prefix="bsnexus-lab-bench-profile-", dir="/tmp"))
    root.chmod(0o755)
    box = Sandbox(root)
    try:
        box.up(service=True)
        state = box._state()["service"]
        url, pid = state["url"], state["pid"]

        measure(url, pid, 2, args.concurrency, None)  # warm up: connection pools, SQL caches
        starts: dict[str, Callable[[], Callable[[], None]] | None] = {
            "baseline": None,
            "profile.cpu 100 Hz": lambda: py_spy(pid, args.seconds),
            "memray attach": lambda: memray(pid, args.seconds, root / "bench.bin"),
        }
        figures: dict[str, list[float]] = {name: [] for name in starts}
        cpu_ms: dict[str, list[float]] = {name: [] for name in starts}
        for n in range(args.rounds):
            order = list(starts)[n % len(starts) :] + list(starts)[: n % len(starts)]  # no condition always first
            for name in order:
                time.sleep(1.0)  # the same pause before every window
                rate, cost = measure(url, pid, args.seconds, args.concurrency, starts[name])
                figures[name].append(rate)
                cpu_ms[name].append(cost)
            print(f"round {n + 1}: " + ", ".join(f"{k} {v[-1]:.0f} req/s" for k, v in figures.items()), flush=True)
        base = statistics.median(figures["baseline"])
        print(
            f"\nrequests/s, median of {args.rounds} interleaved rounds of {args.seconds:g} s, "
            f"concurrency {args.concurrency}:"
        )
        for name, values in figures.items():
            median = statistics.median(values)
            cost = statistics.median(cpu_ms[name])
            print(
                f"  {name:20} {median:8.1f} req/s   ratio {median / base:5.3f}   (change {median / base - 1:+.1%})"
                f"   service CPU {cost:.2f} ms/request"
            )
        started = time.perf_counter()
        capture = asyncio.run(memray_capture.capture(pid, 1))
        print(
            f"\nprofile.memory(seconds=1): first frames after {time.perf_counter() - started:.1f} s "
            f"({len(capture.leaks)} leak rows, {len(capture.timeline)} memory samples)"
        )
    finally:
        box.down()
        shutil.rmtree(root, ignore_errors=True)
    goals = {"profile.cpu 100 Hz": ("at most 5 % fewer requests/s", 0.95), "memray attach": ("", None)}
    found = []
    for name, (goal, floor) in goals.items():
        ratio = statistics.median(figures[name]) / base
        found.append(
            Row(
                f"{name} on the sandbox service, {args.seconds:g} s windows, concurrency {args.concurrency}",
                "the service without a profiler (interleaved rounds)",
                ratio,
                "requests/s with / without",
                goal,
                None if floor is None else ratio >= floor,
                f"{statistics.median(figures[name]):.0f} vs {base:.0f} req/s; service CPU "
                f"{statistics.median(cpu_ms[name]):.2f} vs {statistics.median(cpu_ms['baseline']):.2f} ms/request",
            )
        )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    print()
    print(markdown(rows(args.rounds, args.seconds, args.concurrency)))


if __name__ == "__main__":
    main()
