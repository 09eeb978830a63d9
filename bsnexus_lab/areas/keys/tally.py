"""The running tally of a keyspace walk: per prefix, per type, per node and the biggest keys, never a key list.

Memory stays bounded whatever the keyspace size: one row per prefix (capped, the rest fold into
``(other)``), a heap of the top N keys per type, a few examples per prefix.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from bsnexus_lab.areas.keys.names import decode, prefix
from bsnexus_lab.masking import mask_key

TTL_BUCKETS = ("ttl_none", "ttl_under_1h", "ttl_1h_24h", "ttl_1d_7d", "ttl_over_7d")
_BUCKET_LIMITS_MS = (3_600_000, 86_400_000, 604_800_000)
PREFIX_COLUMNS = [
    "prefix",
    "keys",
    "memory_bytes",
    "without_ttl",
    "memory_without_ttl",
    *TTL_BUCKETS,
    "types",
    "largest_bytes",
    "examples_without_ttl",
    "memory_share",
    "estimated",
]
BIGGEST_COLUMNS = ["key", "type", "memory_bytes", "elements", "ttl_s", "prefix", "node"]
TYPE_COLUMNS = ["type", "keys", "memory_bytes", "estimated"]
OTHER = "(other)"
EXAMPLES = 3


def ttl_bucket(pttl_ms: int) -> str:
    """The TTL bucket of a PTTL reply (-1: no TTL)."""
    if pttl_ms < 0:
        return "ttl_none"
    for limit, bucket in zip(_BUCKET_LIMITS_MS, TTL_BUCKETS[1:], strict=False):
        if pttl_ms < limit:
            return bucket
    return "ttl_over_7d"


@dataclass
class _Prefix:
    keys: int = 0
    memory: int = 0
    unexpiring: int = 0  # memory of the keys without TTL
    largest: int = 0
    buckets: Counter[str] = field(default_factory=Counter)
    types: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)


@dataclass
class Tally:
    """Aggregates what the walk reports, per (prefix, type) group and per key offered for the top N."""

    depth: int = 2
    top: int = 10
    max_prefixes: int = 5_000
    prefixes: dict[str, _Prefix] = field(default_factory=dict)
    types: dict[str, list[int]] = field(default_factory=dict)  # type -> [keys, memory]
    heaps: dict[str, list[tuple[int, bytes, str, int]]] = field(default_factory=dict)
    vanished: int = 0
    scanned: int = 0

    def add_group(
        self,
        group: str,
        kind: str,
        keys: int,
        memory: int,
        buckets: list[int],
        largest: int,
        unexpiring: int,
        examples: list[bytes],
    ) -> None:
        """``keys`` keys of one type under ``group``: their memory, TTL bucket counts and examples without TTL."""
        stats = self.prefixes.get(group)
        if stats is None:
            if len(self.prefixes) >= self.max_prefixes:
                group = OTHER
            stats = self.prefixes.setdefault(group, _Prefix())
        stats.keys += keys
        stats.memory += memory
        stats.unexpiring += unexpiring
        stats.largest = max(stats.largest, largest)
        for bucket, count in zip(TTL_BUCKETS, buckets, strict=True):
            stats.buckets[bucket] += count
        stats.types[kind] += keys
        stats.examples.extend(mask_key(decode(name)) for name in examples[: EXAMPLES - len(stats.examples)])
        totals = self.types.setdefault(kind, [0, 0])
        totals[0] += keys
        totals[1] += memory

    def add_key(self, node: str, name: bytes, kind: str, pttl: int, memory: int | None) -> None:
        """One key looked up on its own (the pipeline walk): counted and offered for the top N."""
        size = memory or 0
        buckets = [int(b == ttl_bucket(pttl)) for b in TTL_BUCKETS]
        unexpiring = [name] if pttl < 0 else []
        self.add_group(prefix(name, self.depth), kind, 1, size, buckets, size, size * bool(unexpiring), unexpiring)
        self.offer(node, name, kind, pttl, size)

    def floor(self, kind: str) -> int:
        """The memory a key of ``kind`` must exceed to enter the top N (-1 while it is not full)."""
        heap = self.heaps.get(kind, [])
        return heap[0][0] if len(heap) >= self.top else -1

    def offer(self, node: str, name: bytes, kind: str, pttl: int, size: int) -> None:
        heap = self.heaps.setdefault(kind, [])
        item = (size, name, node, pttl)
        if len(heap) < self.top:
            heapq.heappush(heap, item)
        elif item > heap[0]:
            heapq.heapreplace(heap, item)

    @property
    def keys(self) -> int:
        return sum(count for count, _ in self.types.values())

    @property
    def memory(self) -> int:
        return sum(size for _, size in self.types.values())

    @property
    def without_ttl(self) -> int:
        return sum(p.buckets["ttl_none"] for p in self.prefixes.values())

    def by_prefix(self, scale: float = 1.0) -> pd.DataFrame:
        """One row per prefix, biggest memory first; counts multiplied by ``scale`` when sampled."""
        total = self.memory or 1
        rows = [
            {
                "prefix": name,
                "keys": round(p.keys * scale),
                "memory_bytes": round(p.memory * scale),
                "without_ttl": round(p.buckets["ttl_none"] * scale),
                "memory_without_ttl": round(p.unexpiring * scale),
                **{b: round(p.buckets[b] * scale) for b in TTL_BUCKETS},
                "types": ",".join(t for t, _ in p.types.most_common()),
                "largest_bytes": p.largest,
                "examples_without_ttl": list(p.examples),
                "memory_share": p.memory / total,
                "estimated": scale != 1.0,
            }
            for name, p in self.prefixes.items()
        ]
        frame = pd.DataFrame(rows, columns=PREFIX_COLUMNS)
        return frame.sort_values(["memory_bytes", "keys"], ascending=False, ignore_index=True)

    def by_type(self, scale: float = 1.0) -> pd.DataFrame:
        rows = [
            {"type": t, "keys": round(n * scale), "memory_bytes": round(m * scale), "estimated": scale != 1.0}
            for t, (n, m) in sorted(self.types.items())
        ]
        return pd.DataFrame(rows, columns=TYPE_COLUMNS)

    def biggest_raw(self) -> list[tuple[int, bytes, str, int, str]]:
        """(memory, name, node, pttl, type) of the top N of every type, biggest first."""
        items = [(*item, kind) for kind, heap in self.heaps.items() for item in heap]
        return sorted(items, key=lambda item: (-item[0], item[1]))
