"""The keys area: the keyspace by prefix, TTL and memory, and its biggest keys (``lab.keys``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bsnexus_lab.areas import Area, register
from bsnexus_lab.areas.keys import checks as checks  # importing registers the checks
from bsnexus_lab.areas.keys import trace
from bsnexus_lab.areas.keys.audit import COMMANDS, SCRIPTS
from bsnexus_lab.areas.keys.facade import Keys
from bsnexus_lab.areas.keys.thresholds import KeysThresholds
from bsnexus_lab.timeline import Stage, TraceStep


def collect(keys: Keys) -> dict[str, Any]:
    """A sampled audit (``triage_sample`` keys, extrapolated): seconds at most, even on a big keyspace."""
    return keys.audit(sample=keys.thresholds.triage_sample, progress=False).frames()


def figures() -> Sequence[Callable[..., Any]]:
    """Imported when first drawn, so the CLI never loads matplotlib."""
    from bsnexus_lab.areas.keys import plots

    return (
        plots.memory_by_prefix,
        plots.ttl_buckets,
        plots.by_type,
    )


AREA = register(
    Area(
        name="keys",
        facade=Keys,
        thresholds=KeysThresholds(),
        commands=COMMANDS | trace.COMMANDS,
        scripts=SCRIPTS,
        collect=collect,
        plots=figures,
        trace=(TraceStep(Stage.FIND, trace.find),),
    )
)
