"""Keyspace checks on hand-built frames: which prefixes earn a missing-TTL finding, and what counts as big."""

from __future__ import annotations

import pandas as pd
import pytest

from bsnexus_lab import checks
from bsnexus_lab.areas import default_thresholds
from bsnexus_lab.areas.keys.checks import big_reason
from bsnexus_lab.areas.keys.tally import BIGGEST_COLUMNS, PREFIX_COLUMNS
from bsnexus_lab.areas.keys.thresholds import KeysThresholds
from bsnexus_lab.findings import Severity


def _prefix(name: str, keys: int, without: int) -> dict[str, object]:
    return {
        "prefix": name,
        "keys": keys,
        "memory_bytes": keys * 100,
        "without_ttl": without,
        "memory_without_ttl": without * 100,
        "ttl_none": without,
        "ttl_under_1h": keys - without,
        "ttl_1h_24h": 0,
        "ttl_1d_7d": 0,
        "ttl_over_7d": 0,
        "types": "string",
        "largest_bytes": 100,
        "examples_without_ttl": [f"{name}-example"] if without else [],
        "memory_share": 0.1,
        "estimated": False,
    }


def test_missing_ttl_needs_expiry_to_be_the_rule_or_a_bsnexus_pattern() -> None:
    frame = pd.DataFrame(
        [
            _prefix("cache:user:*", 10, 4),  # 60 % expire: the 4 others are the bug
            _prefix("config:*", 10, 10),  # nothing expires: a design, not a bug
            _prefix("mixed:*", 10, 6),  # 40 % expire: not the rule
            _prefix("worker:db_heartbeat:{id}", 3, 1),  # must expire: warning
            _prefix("worker:token:{token}", 3, 1),  # must expire, a credential: critical
        ],
        columns=PREFIX_COLUMNS,
    )
    findings = checks.run({"keys.by_prefix": frame}, thresholds=default_thresholds(), area="keys")
    found = {f.subject[0]: f.severity for f in findings if f.check == "keys.missing_ttl"}
    assert found == {
        "cache:user:*": Severity.WARNING,
        "worker:db_heartbeat:{id}": Severity.WARNING,
        "worker:token:{token}": Severity.CRITICAL,
    }


@pytest.mark.parametrize(
    ("kind", "memory", "elements", "big"),
    [
        ("string", 1_000_000, 1_000_000, True),
        ("string", 999_999, 999_999, False),
        ("hash", 500_000, 5_000, True),
        ("zset", 500_000, 4_999, False),
        ("stream", 9_000_000, 10_000, True),
        ("stream", 9_000_000, 9_999, False),
        ("list", 10, None, False),
    ],
)
def test_big_key_thresholds(kind: str, memory: int, elements: int | None, big: bool) -> None:
    row = pd.Series(dict(zip(BIGGEST_COLUMNS, ["k", kind, memory, elements, None, "k", "n"], strict=True)))
    assert bool(big_reason(row, KeysThresholds())) is big
