"""Key names: prefixes, BSNexus's patterns, masking; and the audit script groups exactly as names.prefix does."""

from __future__ import annotations

import pytest
import redis as sync_redis

from bsnexus_lab.areas.keys.audit import SCAN_SCRIPT
from bsnexus_lab.areas.keys.names import BSNEXUS_PATTERNS, decode, prefix
from bsnexus_lab.areas.keys.tally import ttl_bucket
from bsnexus_lab.masking import SECRET_SEGMENTS, mask_key

NAMES = [
    "worker:3f2a9c1e-1b2c-4d5e-8f90-1234567890ab",
    "worker:token:0123456789abcdef0123456789abcdef",
    "worker:db_heartbeat:3f2a9c1e-1b2c-4d5e-8f90-1234567890ab",
    "task:3f2a9c1e-1b2c-4d5e-8f90-1234567890ab:recovery_count",
    "task:3f2a9c1e-1b2c-4d5e-8f90-1234567890ab:needs_intervention",
    "tasks:queue",
    "events:board",
    "cache:project:3f2a9c1e-1b2c-4d5e-8f90-1234567890ab",
    "cache:user:42:profile",
    "cache:user:43:settings",  # the same stem: the script works the name out once and reuses it
    "key:123",
    "plain",
    "12345",
    "api:session:abc:data",
    "api:session:xyz:cart",
    "session:s3cr3t",
    "deep:a:b:c:d",
    ":leading",
    "trailing:",
    "caf\u00e9:1",
    "bin:\udcff",  # stands for a non-UTF-8 byte, see below
    "x:aB3dE5fG7hJ9kL1mN3pQ5",
    "x:deadbeefcafe",
]


def _bytes(name: str) -> bytes:
    return name.encode("utf-8", errors="surrogateescape")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("worker:3f2a9c1e-1b2c-4d5e-8f90-1234567890ab", "worker:{id}"),
        ("worker:token:abc", "worker:token:{token}"),
        ("worker:db_heartbeat:w1", "worker:db_heartbeat:{id}"),
        ("task:t1:recovery_count", "task:{id}:recovery_count"),
        ("task:t1:needs_intervention", "task:{id}:needs_intervention"),
        ("tasks:queue", "tasks:queue"),
        ("cache:user:42:profile", "cache:user:*"),
        ("key:123", "key:{id}"),
        ("12345", "{id}"),
        ("api:session:abc:data", "api:session:***"),
        ("x:deadbeefcafe", "x:{id}"),
    ],
)
def test_prefix(name: str, expected: str) -> None:
    assert prefix(name) == expected


def test_prefix_depth() -> None:
    assert prefix("cache:user:42:profile", depth=3) == "cache:user:{id}:*"
    assert prefix("cache:user:42:profile", depth=1) == "cache:*"


def test_mask_hides_what_follows_a_secret_segment() -> None:
    assert mask_key("worker:token:0123456789abcdef") == "worker:token:***"
    assert mask_key("app:Session:xyz:cart") == "app:Session:***"
    assert mask_key("worker:abc") == "worker:abc"
    assert mask_key(decode(b"bin:\xff")) == "bin:\\xff"
    assert mask_key(b"app:token:\xff") == b"app:token:***" and mask_key(b"bin:\xff") == b"bin:\xff"


def test_ttl_buckets() -> None:
    assert [ttl_bucket(ms) for ms in (-1, 1, 3_600_000, 86_400_000, 604_800_000)] == [
        "ttl_none",
        "ttl_under_1h",
        "ttl_1h_24h",
        "ttl_1d_7d",
        "ttl_over_7d",
    ]


def test_script_groups_as_python_does(writer: sync_redis.Redis) -> None:
    """The Lua side of the rule and the Python side give the same prefix for every name, at every depth."""
    writer.flushdb()
    for name in NAMES:
        writer.set(_bytes(name), "v")
    known = [part for pair in BSNEXUS_PATTERNS for part in pair]
    for depth in (1, 2, 3):
        cursor, groups = 0, set()
        while True:
            reply = writer.eval(SCAN_SCRIPT, 0, cursor, "*", 100, 1, depth, "", ",".join(SECRET_SEGMENTS), *known)
            groups |= {group[0] for group in reply[3]}
            cursor = int(reply[0])
            if not cursor:
                break
        expected = {prefix(_bytes(name), depth) for name in NAMES}
        assert {g.decode("utf-8", errors="backslashreplace") for g in groups} == expected, depth
    writer.flushdb()
