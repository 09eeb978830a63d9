"""``lab.logs``: the target's log files (its ``log_files`` setting) as frames, and their errors grouped."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from bsnexus_lab.areas.logs.errors import grouped
from bsnexus_lab.areas.logs.read import read
from bsnexus_lab.context import Facade
from bsnexus_lab.errors import ConfigError


class Logs(Facade):
    """``lab.logs``: BSNexus's bsnexus.log and orchestrator.log (rotations in order), times in UTC."""

    def read(
        self,
        since: datetime | timedelta | None = None,
        until: datetime | None = None,
        paths: str | Path | Iterable[str | Path] | None = None,
    ) -> pd.DataFrame:
        """Records within the window (``since`` may be a timedelta back from now) of ``paths`` or the target's
        log_files, in the target's log_timezone, newest ``max_records`` at most."""
        files = paths if paths is not None else self._ctx.target.log_files
        if not files:
            raise ConfigError(
                "this target has no log_files",
                target=self._ctx.target.name,
                hint="set log_files to BSNexus's LOG_DIR files",
            )
        start = datetime.now(UTC) - since if isinstance(since, timedelta) else since
        return read(files, start, until, timezone=self._ctx.target.log_timezone, limit=self.thresholds.max_records)

    def errors(self, records: pd.DataFrame) -> pd.DataFrame:
        """Errors grouped by exception type, message shape and logger, most frequent first."""
        return grouped(records)
