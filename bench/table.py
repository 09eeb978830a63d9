"""One row per measured thing: the lab against an anchor measured in the same run, as a ratio.

Absolute times depend on the machine and on what else runs on it; a ratio against something measured
beside it (redis-cli, plain redis-py, raw SQL, the service without a profiler) mostly does not. So every bench
returns :class:`Row` objects and ``bench/all.py`` prints them as one table, absolute figures only as context.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    what: str
    anchor: str  # measured in the same run
    ratio: float
    means: str  # how to read the ratio, e.g. "redis-cli's time / the lab's"
    goal: str = ""
    met: bool | None = None  # None: no goal
    context: str = ""  # absolute figures

    def cells(self) -> list[str]:
        met = {True: "yes", False: "NO", None: ""}[self.met]
        return [self.what, self.anchor, f"{self.ratio:.3g}x", self.means, self.goal, met, self.context]


HEADER = ["measured", "anchor (same run)", "ratio", "ratio is", "goal", "met", "context"]


def markdown(rows: Iterable[Row]) -> str:
    """The rows as a Markdown table (the README's performance section is this output)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row.cells()) + " |" for row in rows]
    return "\n".join(lines)
