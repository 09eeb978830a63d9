"""``lab.profile``: the service's processes, py-spy stacks and CPU profiles, memray captures, RSS over time,
and in-process cProfile / tracemalloc, as plain calls."""

from __future__ import annotations

import dataclasses
import tracemalloc
from collections.abc import Callable
from typing import Any

import pandas as pd

from bsnexus_lab.areas.profile import inprocess, memray_capture, processes, pyspy, stacks
from bsnexus_lab.areas.profile.rss import COLUMNS as RSS_COLUMNS
from bsnexus_lab.areas.profile.rss import RssTick
from bsnexus_lab.config import ProcessMatch
from bsnexus_lab.context import Facade
from bsnexus_lab.findings import Unavailable
from bsnexus_lab.sampler import Sampler


class Profile(Facade):
    """``lab.profile``: look inside the running service without restarting it."""

    def pid(self, pid: int | None = None) -> int:
        """The pid to profile: ``pid`` itself, or the main process found by the target's ``process`` setting."""
        return pid if pid is not None else processes.main_pid(self._ctx.target.process)

    def processes(self, process: ProcessMatch | int | str | None = None) -> pd.DataFrame:
        """The service's processes (master and workers): pid, parent, command, RSS, CPU %, threads, connections."""
        return self._run(processes.processes(self._ctx, process))

    def dump(self, pid: int | None = None, *, locals: bool = False) -> pd.DataFrame:
        """Every thread's stack right now (py-spy dump); ``.attrs['text']`` reads like py-spy's own output."""
        return self._run(pyspy.dump(self.pid(pid), with_locals=locals))

    def cpu(
        self,
        pid: int | None = None,
        seconds: float = 10.0,
        rate: int = pyspy.RATE_HZ,
        *,
        idle: bool = False,
        subprocesses: bool = True,
        native: bool = False,
    ) -> pd.DataFrame:
        """Sampled stacks (py-spy record); ``idle=True`` also samples waiting threads, which finds stalls and waits."""
        return self._run(
            pyspy.record(self.pid(pid), seconds, rate=rate, idle=idle, subprocesses=subprocesses, native=native)
        )

    def top(self, cpu: pd.DataFrame, n: int = 20) -> pd.DataFrame:
        """Functions of a CPU profile by self samples, with total (inclusive) samples."""
        return stacks.functions(cpu).head(n)

    def loop(self, waits: pd.DataFrame) -> pd.DataFrame:
        """What held each event loop (profile recorded with ``idle=True``): innermost application frames."""
        return stacks.loop_activity(waits)

    def flamegraph(self, cpu: pd.DataFrame) -> Any:
        """The profile's flame graph, inline in the notebook (the SVG file is in ``cpu.attrs['svg']``)."""
        from IPython.display import SVG

        return SVG(filename=cpu.attrs["svg"])

    def memory(
        self, pid: int | None = None, seconds: float = 10.0, *, native: bool = False, route: str | None = None
    ) -> Any:
        """Allocations over ``seconds``: stacks at the peak, allocations still alive at the end, memory over time.

        memray where the service has it, the lab's memray lent for the import, or tracemalloc (see
        ``memray_capture``), or only ``route``; where none can look, ``.leaks`` says why ("not checked") and RSS
        over time stays.
        """
        target = self.pid(pid)
        rss = self.rss(target, every=0.5, duration=seconds)
        capture = self._run(memray_capture.capture(target, seconds, native=native, route=route))
        sampled = rss.wait(seconds + 30)
        if len(capture.timeline):
            return capture
        timeline = sampled[sampled["pid"] == target][["rss_mb"]]
        if not isinstance(capture.leaks, Unavailable):
            capture.leaks.attrs["rss_growth_mb"] = memray_capture.growth(timeline)
        return dataclasses.replace(capture, timeline=timeline)

    def rss(self, pid: int | None = None, every: float = 1.0, duration: float | None = 60.0) -> Sampler:
        """Start sampling RSS and CPU % of the process and its children; ``.frame()`` any time, ``.stop()``."""
        target = self.pid(pid)
        return Sampler(
            self._loop,
            RssTick(target),
            every=every,
            duration=duration,
            columns=RSS_COLUMNS,
            counts=("pid", "threads"),
            scrub=self._ctx.target.scrub,
            label=f"pid {target}",
        ).start()

    def call(self, target: Callable[..., Any] | Any, *args: Any, top: int = 30, **kwargs: Any) -> pd.DataFrame:
        """Run a function or coroutine here under cProfile: the top functions by cumulative time."""
        return inprocess.call(target, *args, top=top, **kwargs)

    def snapshot(self, frames: int = 10) -> tracemalloc.Snapshot:
        """A tracemalloc snapshot of this (notebook) process, starting tracemalloc if needed."""
        return inprocess.snapshot(frames)

    def tracemalloc_diff(
        self, before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, top: int = 20
    ) -> pd.DataFrame:
        """The source lines whose allocations grew most between two snapshots."""
        return inprocess.tracemalloc_diff(before, after, top)
