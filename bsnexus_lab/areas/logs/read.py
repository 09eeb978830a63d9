"""BSNexus's log files (and ``docker compose logs`` output) into a frame of records, in UTC.

BSNexus logs with ``%(asctime)s %(levelname)s %(name)s: %(message)s`` into ``bsnexus.log`` and
``orchestrator.log``, rotated at 10 MB into ``.1`` ... ``.5`` (``.5`` oldest). A line that does not start a
record (a traceback, a multi-line message) belongs to the record before it; lines before a file's first record
belong to none and are counted (``frame.attrs["unmatched_lines"]``, by file). Timestamps carry no zone: the
target's ``log_timezone`` names it (default: this machine's), and every time here is converted to UTC so it
sits beside run times.

Files are streamed line by line, never read whole; with ``since`` the reader bisects a file by byte offset to
the first record of the window, and it stops a file at the first record past ``until``.
"""

from __future__ import annotations

import glob
import io
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from bsnexus_lab.errors import ConfigError

COLUMNS = ["time", "level", "logger", "message", "exception", "service", "file", "line"]
ROTATIONS = 5
# `docker compose logs` puts "<service>-<n>  | " before each line (with --no-log-prefix it does not).
_COMPOSE = re.compile(r"^(?P<service>[\w.-]+?(?:[-_]\d+)?)\s+\|\s?(?P<rest>.*)$")
_RECORD = re.compile(
    r"^(?P<time>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[,.]\d{1,6})?) (?P<level>[A-Z]+) (?P<logger>[^\s:]+): "
    r"(?P<message>.*)$"
)
# The last line of a Python traceback: "ValueError: Invalid transition: done -> review".
_EXCEPTION = re.compile(r"^(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Fault)): (?P<text>.*)$")
_TRACEBACK = "Traceback (most recent call last):"


@dataclass
class _Record:
    time: datetime
    level: str
    logger: str
    lines: list[str]
    service: str | None
    file: str
    line: int | None

    def row(self, zone: tzinfo) -> dict[str, Any]:
        message = "\n".join(self.lines)
        return {
            "time": self.time.replace(tzinfo=zone).astimezone(UTC),
            "level": self.level,
            "logger": self.logger,
            "message": message,
            "exception": exception_type(self.lines),
            "service": self.service,
            "file": self.file,
            "line": self.line,
        }


def exception_type(lines: list[str]) -> str | None:
    """The exception a record's traceback ended with, if it carries one."""
    if not any(line.startswith(_TRACEBACK) for line in lines):
        return None
    for line in reversed(lines):
        match = _EXCEPTION.match(line.strip())
        if match:
            return match["type"]
    return None


def zone(name: str | None = None) -> tzinfo:
    """The log time zone: ``name`` (an IANA name such as ``Europe/Berlin``) or this machine's."""
    name = name or os.environ.get("TZ", "").lstrip(":") or _machine_zone_name()
    if not name:
        return datetime.now().astimezone().tzinfo or UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown log time zone {name!r}", hint="use an IANA name such as UTC or Europe/Berlin"
        ) from None


def _machine_zone_name() -> str | None:
    localtime = Path("/etc/localtime")
    if localtime.is_symlink() and "zoneinfo/" in str(localtime.resolve()):
        return str(localtime.resolve()).split("zoneinfo/", 1)[1]
    return None


def files(patterns: str | Path | Iterable[str | Path]) -> list[Path]:
    """Every file the patterns name, each followed by nothing older: rotations first (``.5`` ... ``.1``)."""
    if isinstance(patterns, str | Path):
        patterns = [patterns]
    found: list[Path] = []
    for pattern in patterns:
        text = os.path.expanduser(str(pattern))
        matches = sorted(glob.glob(text)) if glob.has_magic(text) else [text]
        for match in matches:
            path = Path(match)
            if re.search(r"\.\d+$", path.name):  # a rotation named directly, or matched by a glob
                candidates = [path]
            else:
                older = [path.with_name(f"{path.name}.{n}") for n in range(ROTATIONS, 0, -1)]
                candidates = [*older, path]
            found.extend(p for p in candidates if p.is_file() and p not in found)
    if not found:
        shown = ", ".join(str(p) for p in patterns)
        raise ConfigError(f"no log files match {shown}", hint="set the target's log_files to BSNexus's LOG_DIR files")
    return sorted(found, key=_age_order)


def _age_order(path: Path) -> tuple[str, int]:
    """Group a base file with its rotations, oldest rotation first, the live file last."""
    match = re.match(r"^(?P<base>.*)\.(?P<n>\d+)$", path.name)
    if match:
        return (str(path.with_name(match["base"])), -int(match["n"]))
    return (str(path), 0)


def read(
    patterns: str | Path | Iterable[str | Path],
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    timezone: str | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Records of the named files (globs, rotations read in order) within ``[since, until]`` (UTC or aware).

    ``limit`` keeps the newest records only, so a huge window cannot exhaust memory.
    """
    log_zone = zone(timezone)
    start = _local(since, log_zone)
    end = _local(until, log_zone)
    rows: list[dict[str, Any]] = []
    unmatched: Counter[str] = Counter()
    for path in files(patterns):
        if start is not None and datetime.fromtimestamp(path.stat().st_mtime, log_zone).replace(tzinfo=None) < start:
            continue  # last written before the window opened: nothing in it is recent enough
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            for record in records(handle, str(path), start=start, unmatched=unmatched):
                if end is not None and record.time > end:
                    break
                rows.append(record.row(log_zone))
                if limit is not None and len(rows) > 2 * limit:
                    del rows[:-limit]
    if limit is not None:
        rows = rows[-limit:]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    frame = frame.sort_values("time", kind="stable", ignore_index=True)
    frame.attrs["unmatched_lines"] = dict(unmatched)
    return frame


def _local(moment: datetime | None, log_zone: tzinfo) -> datetime | None:
    """A window bound as the naive local time the log writes (naive input is taken as UTC)."""
    if moment is None:
        return None
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(log_zone).replace(tzinfo=None)


def records(
    handle: IO[str], name: str, *, start: datetime | None = None, unmatched: Counter[str] | None = None
) -> Iterator[_Record]:
    """Records of one open file, continuation lines joined to their record; from ``start`` when given.

    Lines before the file's first record belong to no record: ``unmatched[name]`` counts them.
    """
    line_number: int | None = 0
    if start is not None and handle.seekable() and _seek(handle, start):
        line_number = None  # unknown once the reader skipped ahead: what precedes the first record is a tail
    current: _Record | None = None
    seen = line_number is None  # a record started (or was skipped to) in this file
    for raw in handle:
        if line_number is not None:
            line_number += 1
        line = raw.rstrip("\n")
        service, line = _compose_split(line)
        head = _RECORD.match(line)
        moment = _parse_time(head["time"]) if head else None
        if head is None or moment is None:
            if current is not None:
                current.lines.append(line)
            elif not seen and unmatched is not None:
                unmatched[name] += 1
            continue
        seen = True
        if current is not None:
            yield current
        if start is not None and moment < start:
            current = None
            continue
        current = _Record(moment, head["level"], head["logger"], [head["message"]], service, name, line_number)
    if current is not None:
        yield current


def _compose_split(line: str) -> tuple[str | None, str]:
    if _RECORD.match(line):
        return None, line
    match = _COMPOSE.match(line)
    return (match["service"], match["rest"]) if match else (None, line)


def _parse_time(text: str) -> datetime | None:
    """The record's local time; None for a date no log writes (2026-13-45, or a year at datetime's edge, which
    no zone could convert to UTC): that line starts no record."""
    try:
        moment = datetime.fromisoformat(text.replace(",", ".").replace("T", " "))
    except ValueError:
        return None
    return moment if datetime.min.year < moment.year < datetime.max.year else None


def _seek(handle: IO[str], start: datetime) -> bool:
    """Bisect the file by byte offset to a little before the first record at or after ``start``."""
    buffer = getattr(handle, "buffer", None)
    if not isinstance(buffer, io.BufferedReader):
        return False
    low, high = 0, os.fstat(buffer.fileno()).st_size
    while high - low > 64 * 1024:
        middle = (low + high) // 2
        moment = _first_time_after(buffer, middle)
        if moment is None or moment >= start:
            high = middle
        else:
            low = middle
    handle.seek(_line_start(buffer, low))
    return low > 0


def _first_time_after(buffer: io.BufferedReader, offset: int) -> datetime | None:
    buffer.seek(offset)
    buffer.readline()  # the rest of a line cut in the middle
    for _ in range(1000):
        raw = buffer.readline()
        if not raw:
            return None
        _, line = _compose_split(raw.decode("utf-8", "replace").rstrip("\n"))
        head = _RECORD.match(line)
        if head and (moment := _parse_time(head["time"])):
            return moment
    return None


def _line_start(buffer: io.BufferedReader, offset: int) -> int:
    if offset == 0:
        return 0
    buffer.seek(offset)
    buffer.readline()
    return buffer.tell()
