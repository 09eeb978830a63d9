"""Keyspace plots: memory by prefix, TTL buckets per prefix, keys and memory by type."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from bsnexus_lab.areas.keys.tally import TTL_BUCKETS
from bsnexus_lab.plotting import figure

MIB = 1024 * 1024
_BUCKET_LABELS = ["no TTL", "< 1 h", "1-24 h", "1-7 d", "> 7 d"]


def _estimated(frame: pd.DataFrame) -> str:
    return " (estimated)" if len(frame) and bool(frame["estimated"].iloc[0]) else ""


def memory_by_prefix(by_prefix: pd.DataFrame, top: int = 15) -> Figure:
    """The prefixes holding the most memory."""
    rows = by_prefix.head(top).iloc[::-1]
    fig, [ax] = figure((9, max(2.5, 0.35 * len(rows) + 1)))
    ax.barh(rows["prefix"], rows["memory_bytes"] / MIB)
    ax.set_xlabel("MiB")
    ax.set_title("Memory by prefix" + _estimated(by_prefix))
    return fig


def ttl_buckets(by_prefix: pd.DataFrame, top: int = 15) -> Figure:
    """Keys per TTL bucket for the biggest prefixes: a red 'no TTL' slice beside expiring ones is the smell."""
    rows = by_prefix.sort_values("keys", ascending=False).head(top).iloc[::-1]
    fig, [ax] = figure((9, max(2.5, 0.35 * len(rows) + 1)))
    left = pd.Series(0, index=rows.index, dtype=float)
    colours = ["#d62728", "#9ecae1", "#6baed6", "#3182bd", "#08519c"]
    for bucket, label, colour in zip(TTL_BUCKETS, _BUCKET_LABELS, colours, strict=True):
        ax.barh(rows["prefix"], rows[bucket], left=left, label=label, color=colour)
        left += rows[bucket]
    ax.set_xlabel("keys")
    ax.set_title("TTL buckets by prefix" + _estimated(by_prefix))
    ax.legend(loc="lower right")
    return fig


def by_type(types: pd.DataFrame) -> Figure:
    """Keys and memory per Redis type."""
    fig, [keys_ax, memory_ax] = figure((9, 3), cols=2)
    keys_ax.bar(types["type"], types["keys"])
    keys_ax.set_title("Keys by type" + _estimated(types))
    memory_ax.bar(types["type"], types["memory_bytes"] / MIB)
    memory_ax.set_title("Memory by type (MiB)")
    return fig
