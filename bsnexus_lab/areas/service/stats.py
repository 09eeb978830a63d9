"""Request statistics, pure: the probes' request rows summarised per path, for the facade and the checks alike
(a check imports no I/O)."""

from __future__ import annotations

import pandas as pd


def percentiles(requests: pd.DataFrame) -> pd.DataFrame:
    """One row per path: count, errors, status codes, p50/p90/p95/p99/max latency in ms."""
    rows = []
    for path, group in requests.groupby("path", sort=False):
        answered = group["latency_ms"]
        statuses = group["status"].fillna(0).astype(int).value_counts().sort_index()
        rows.append(
            {
                "path": path,
                "requests": len(group),
                "failed": int((group["status"].isna() | (group["status"] >= 500)).sum()),
                "statuses": {("no answer" if k == 0 else int(k)): int(v) for k, v in statuses.items()},
                **{f"p{q}_ms": round(float(answered.quantile(q / 100)), 1) for q in (50, 90, 95, 99)},
                "max_ms": round(float(answered.max()), 1),
            }
        )
    columns = ["path", "requests", "failed", "statuses", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms"]
    return pd.DataFrame(rows, columns=columns)
