"""Stream consumer groups that stopped making progress."""

from __future__ import annotations

import pandas as pd

from bsnexus_lab.checks import register
from bsnexus_lab.findings import Finding, Severity
from bsnexus_lab.thresholds import Thresholds


@register("streams.dead_consumer", "Dead consumers holding pending entries")
def dead_consumer(consumers: pd.DataFrame, thresholds: Thresholds) -> list[Finding]:
    """A consumer whose pending entries idle past the threshold and whose worker registry key is gone.

    BSNexus re-reads a consumer's pending entries only when that same worker polls again, and nothing claims
    them otherwise, so these entries (and their tasks, stuck in ``queued``) wait forever.
    """
    idle_ms = thresholds.dead_consumer_idle_s * 1000
    dead = consumers[
        (consumers["pending"] > 0)
        & (consumers["oldest_pending_idle_ms"] >= idle_ms)
        & consumers["registered"].eq(False).fillna(False)
    ]
    return [
        Finding(
            check="streams.dead_consumer",
            severity=Severity.CRITICAL,
            title=f"Dead consumer {row.consumer} holds {row.pending} pending entries on {row.stream}/{row.group}",
            evidence={
                "stream": row.stream,
                "group": row.group,
                "consumer": row.consumer,
                "pending": int(row.pending),
                "oldest_pending_id": row.oldest_pending_id,
                "oldest_pending_idle_s": round(row.oldest_pending_idle_ms / 1000, 1),
                "worker_key": "expired",
            },
            remedy=(
                f"Move its entries to a live consumer: XAUTOCLAIM {row.stream} {row.group} <live-worker-id> "
                f"{int(idle_ms)} 0-0 (repeat until the cursor is 0-0). BSNexus workers only re-read their own "
                "pending entries, so they stay stuck until claimed or until this worker re-registers with "
                "the same id."
            ),
        )
        for row in dead.sort_values(["pending", "oldest_pending_idle_ms"], ascending=False).itertuples()
    ]
