"""``lab.streams``: the stream probes, sampler and remediation as plain calls."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from bsnexus_lab.areas.streams import held, probes, remediation
from bsnexus_lab.context import Facade
from bsnexus_lab.sampler import Sampler


class Streams(Facade):
    """``lab.streams``: the stream probes as plain calls that return DataFrames."""

    def summary(self, streams: str | Iterable[str] | None = None) -> pd.DataFrame:
        """One row per (stream, group): length, ids, lag (exact or estimated), pending, longest pending idle."""
        return self._run(probes.summary(self._ctx, streams))

    def consumers(self, streams: str | Iterable[str] | None = None, group: str | None = None) -> pd.DataFrame:
        """One row per consumer: pending, idle, oldest pending entry, and whether its worker key still exists."""
        return self._run(probes.consumers(self._ctx, streams, group))

    def pending(
        self,
        stream: str | Iterable[str] | None = None,
        group: str | None = None,
        consumer: str | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Every pending entry (id, consumer, idle, deliveries), read in pages; all groups when none is named."""
        return self._run(probes.pending(self._ctx, stream, group, consumer, limit))

    def peek(
        self, stream: str, ids: Iterable[str] | None = None, start: str = "-", end: str = "+", count: int = 10
    ) -> pd.DataFrame:
        """Message bodies by id (``exists=False`` when gone) or by range, decoded as BSNexus writes them."""
        return self._run(probes.peek(self._ctx, stream, ids, start, end, count))

    def bodies(self, entries: pd.DataFrame) -> pd.DataFrame:
        """The bodies of the entries listed in a frame with ``stream`` and ``id`` columns."""
        return self._run(probes.bodies(self._ctx, entries))

    def suspect_bodies(self, pending: pd.DataFrame) -> pd.DataFrame:
        """The bodies the checks look into: redelivered entries, QA messages (their reviewer), entries stuck on
        the orchestrator (their task), at most ``bodies_limit``."""
        return self._run(probes.bodies(self._ctx, probes.worth_reading(pending, self.thresholds)))

    def sample(
        self, every: float = 1.0, duration: float | None = 60.0, streams: str | Iterable[str] | None = None
    ) -> Sampler:
        """Start a background sampler (one round trip per tick); read ``.frame()`` any time, ``.stop()`` it."""
        names = probes.stream_names(self._ctx, streams)
        return Sampler(
            self._loop,
            probes.BacklogTick(self._ctx, names),
            every=every,
            duration=duration,
            columns=probes.TICK_COLUMNS,
            counts=("length", "lag", "pending", "consumers", "entries_read"),
            scrub=self._ctx.target.scrub,
            label=", ".join(names),
        ).start()

    def held_tasks(self, consumers: pd.DataFrame) -> pd.DataFrame:
        """Entries held by consumers whose worker key is gone, traced to their tasks, projects and worker rows."""
        return self._run(held.held_tasks(self._ctx, consumers))

    def claim_dead(
        self,
        stream: str,
        group: str,
        dead: str,
        to: str,
        *,
        ids: Iterable[str] | None = None,
        min_idle_ms: int | None = None,
        dry_run: bool = True,
    ) -> pd.DataFrame:
        """Move a consumer's pending entries (or only ``ids``) to a live one (XCLAIM by id); a dry run unless told
        otherwise. Every held entry is listed with what would happen to it and why."""
        chosen = None if ids is None else list(ids)
        return self._run(remediation.claim_dead(self._ctx, stream, group, dead, to, min_idle_ms, dry_run, chosen))

    def ack(self, stream: str, group: str, ids: Iterable[str], *, dry_run: bool = True) -> pd.DataFrame:
        """Acknowledge pending entries (XACK); a dry run unless told otherwise."""
        return self._run(remediation.ack(self._ctx, stream, group, list(ids), dry_run))
