"""What a probe receives (:class:`Context`), and the base of every ``lab.<area>`` facade (:class:`Facade`).

A probe needs the target, the clients, an error translator and its area's thresholds; not the whole Lab.
Keeping it to that makes the import graph run one way: areas import this module, never ``lab.py``.
"""

from __future__ import annotations

import json
from collections.abc import Coroutine
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import pandas as pd

from bsnexus_lab.clients import Clients
from bsnexus_lab.config import Target, run_dir
from bsnexus_lab.loop import Loop
from bsnexus_lab.thresholds import Thresholds

T = TypeVar("T")


@dataclass(frozen=True)
class Context:
    area: str
    target: Target
    clients: Clients
    all_thresholds: Thresholds
    journal: list[dict[str, Any]]  # every write the Lab made (remediation only)

    @property
    def thresholds(self) -> Any:
        """This area's thresholds (a frozen dataclass)."""
        return getattr(self.all_thresholds, self.area)

    @property
    def allow_writes(self) -> bool:
        return self.clients.allow_writes

    @property
    def has_database(self) -> bool:
        return self.target.database_url is not None

    def redis(self) -> Any:
        """The guarded async Redis client; call from coroutines running on the Lab's loop."""
        return self.clients.redis()

    def redis_errors(self) -> AbstractContextManager[None]:
        """``with ctx.redis_errors():`` maps redis-py's exceptions to the lab's, naming the redacted URL."""
        return self.clients.redis_errors()

    def engine(self) -> Any:
        return self.clients.engine()

    async def query(self, sql: str, **params: Any) -> pd.DataFrame:
        """Run one read-only statement into a DataFrame; failures raise :class:`~bsnexus_lab.LabError`."""
        return await self.clients.query(sql, params)

    def record(self, action: str, **details: Any) -> None:
        """Journal a write: in ``lab.journal`` and, inside a runbook, in the run's ``writes.jsonl``."""
        entry = {"time": datetime.now(UTC).isoformat(), "target": self.target.name, "action": action, **details}
        self.journal.append(entry)
        if directory := run_dir():
            with (directory / "writes.jsonl").open("a") as handle:
                handle.write(json.dumps(entry, default=str) + "\n")


class Facade:
    """Base of ``lab.<area>``: plain calls that run the area's probes on the Lab's loop."""

    def __init__(self, ctx: Context, loop: Loop) -> None:
        self._ctx = ctx
        self._loop = loop
        self.area = ctx.area

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.run(coro)

    @property
    def thresholds(self) -> Any:
        """This area's thresholds."""
        return self._ctx.thresholds

    @property
    def target(self) -> Target:
        """The target this facade looks at: its settings say what an area's snapshot can gather."""
        return self._ctx.target

    def __repr__(self) -> str:
        calls = [name for name in dir(self) if not name.startswith("_")]
        return f"<lab.{self.area}: {', '.join(calls)}>"

    def follow(self, step: Any, subject: Any) -> Any:
        """Run one of this area's trace steps (:class:`~bsnexus_lab.timeline.TraceStep`) on its Context."""
        return self._run(step.follow(self._ctx, subject))

    def check(self, **frames: Any) -> list[Any]:
        """Run this area's checks on frames named as the probes are (``summary=..., consumers=...``)."""
        from bsnexus_lab import checks

        qualified = {f"{self.area}.{name}": frame for name, frame in frames.items()}
        return checks.run(qualified, area=self.area, thresholds=self._ctx.all_thresholds, target=self._ctx.target.name)
