"""The keys area's thresholds, each with the reason for its default."""

from __future__ import annotations

from dataclasses import dataclass

from bsnexus_lab.thresholds import threshold


@dataclass(frozen=True)
class KeysThresholds:
    scan_batch: int = threshold(
        100,
        "SCAN COUNT of the audit's first batch; later ones are sized by batch_hold_ms, between a tenth and ten "
        "times this. Each batch is one script that looks up and groups every key it returned (TYPE, PTTL, MEMORY "
        "USAGE), and other clients wait behind it: at 6-9 us of Redis CPU a key (Redis 7.0 on a loaded 2-core "
        "machine) 100 keys hold the thread 0.6-0.9 ms, so the first batch stays under 1 ms there too.",
    )
    batch_hold_ms: float = threshold(
        0.5,
        "How long one audit batch may hold Redis's thread, as the script times itself: the next batch takes as "
        "many keys as fit at the last one's time per key. Half the 1 ms other clients should ever wait behind "
        "the lab, so a batch of costlier keys than the last stays under it (2.3 us a key on an idle machine: "
        "about 200 keys). 0: every batch is scan_batch keys.",
    )
    prefix_depth: int = threshold(2, "Split key names on ':' this deep (ids collapsed) to group them.")
    top: int = threshold(10, "Biggest keys kept per type (and overall), as redis-cli --bigkeys and RedisInsight.")
    triage_sample: int = threshold(
        20_000,
        "Keys a triage snapshot looks at (then extrapolates, labelled as estimates): a few seconds at worst on a "
        "big keyspace; the runbook's audit is a full scan.",
    )
    missing_ttl_share: float = threshold(
        0.5,
        "A prefix where at least this share of keys expire treats expiry as the rule: its keys without a TTL are "
        "the stale-cache bug of the BSNexus debug guide.",
    )
    missing_ttl_min_keys: int = threshold(1, "Report a prefix once at least this many of its keys lack a TTL.")
    big_string_bytes: int = threshold(
        1_000_000,
        "RedisInsight flags strings over 1 MB as big: every GET moves the whole value and blocks the event loop "
        "proportionally.",
    )
    big_elements: int = threshold(
        5_000,
        "RedisInsight's 'combine small / split big' advice: hashes, lists, sets and sorted sets over 5,000 "
        "elements make O(N) commands (HGETALL, SMEMBERS, DEL) block Redis.",
    )
    big_stream_entries: int = threshold(
        10_000,
        "A BSNexus task stream trimmed as designed stays near 1,000 entries (events:board 5,000): ten times that "
        "is growth nobody trims.",
    )
