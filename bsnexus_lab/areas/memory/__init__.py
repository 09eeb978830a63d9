"""The memory area: Redis memory and stream growth over time against maxmemory (``lab.memory``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bsnexus_lab.areas import Area, register
from bsnexus_lab.areas.memory import checks as checks  # importing registers the checks
from bsnexus_lab.areas.memory.facade import Memory
from bsnexus_lab.areas.memory.probes import COMMANDS
from bsnexus_lab.areas.memory.thresholds import MemoryThresholds


def figures() -> Sequence[Callable[..., Any]]:
    """Imported when first drawn, so the CLI never loads matplotlib."""
    from bsnexus_lab.areas.memory import plots

    return (plots.memory_over_time,)


AREA = register(Area(name="memory", facade=Memory, thresholds=MemoryThresholds(), commands=COMMANDS, plots=figures))
