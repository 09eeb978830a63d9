"""The keyspace audit against the sandbox's real Redis: planted numbers, secrets masked, bad input said."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis as sync_redis
import redis.asyncio as aioredis

import bsnexus_lab as bl
from bsnexus_lab.areas.keys.audit import next_batch
from bsnexus_lab.findings import Severity
from bsnexus_lab.sandbox import Sandbox


def _lab(sandbox: Sandbox, user: str | None = None, password: str | None = None, db: int = 0) -> bl.Lab:
    if user is None and db == 0:
        return bl.connect("sandbox")
    url = sandbox.urls()["redis_url"]
    scheme, rest = url.split("://", 1)
    credentials, address = rest.split("@", 1)
    if user is not None:
        credentials = f"{user}:{password}"
    return bl.connect(redis_url=f"{scheme}://{credentials}@{address.split('/')[0]}/{db}")


def _findings(lab: bl.Lab, frames: dict[str, Any]) -> list[bl.Finding]:
    return lab.check(frames, area="keys")


def _flat(findings: list[bl.Finding]) -> list[bl.Finding]:
    return [g for f in findings for g in (f, *_flat(list(f.explains)))]


def test_missing_ttl_counts_the_planted_keys(sandbox: Sandbox) -> None:
    facts = sandbox.load("missing-ttl")
    with _lab(sandbox) as lab:
        audit = lab.keys.audit(progress=False)
        findings = _flat(_findings(lab, audit.frames()))
    row = audit.by_prefix.set_index("prefix").loc[facts["prefix"]]
    assert (row["keys"], row["without_ttl"], row["ttl_under_1h"]) == (facts["keys"], facts["without_ttl"], 40)
    assert set(row["examples_without_ttl"]) <= set(facts["stale_keys"])
    assert row["memory_without_ttl"] > 0
    missing = {f.subject[0]: f for f in findings if f.check == "keys.missing_ttl"}
    assert missing[facts["prefix"]].severity == Severity.WARNING
    assert missing[facts["prefix"]].evidence["without_ttl"] == facts["without_ttl"]
    assert missing["worker:{id}"].severity == Severity.CRITICAL
    assert missing["worker:{id}"].evidence["examples"] == [facts["registry_key"]]
    assert not audit.totals["estimated"].iloc[0]
    assert audit.totals["modes"].iloc[0] == "script"


def test_healthy_world_raises_nothing_above_info(sandbox: Sandbox) -> None:
    sandbox.load("healthy")
    with _lab(sandbox) as lab:
        findings = _flat(_findings(lab, lab.keys.audit(progress=False).frames()))
    assert [f.title for f in findings if f.severity.rank > Severity.INFO.rank] == []


def test_big_keys_are_found_with_their_sizes(sandbox: Sandbox) -> None:
    facts = sandbox.load("big-keys")
    with _lab(sandbox) as lab:
        audit = lab.keys.audit(progress=False)
        findings = [f for f in _flat(_findings(lab, audit.frames())) if f.check == "keys.big_keys"]
    biggest = audit.biggest.drop_duplicates("key").set_index("key")
    assert biggest.loc[facts["hash"], "elements"] == facts["hash_fields"]
    assert biggest.loc[facts["set"], "elements"] == facts["set_members"]
    assert biggest.loc[facts["stream"], "elements"] == facts["stream_entries"]
    assert biggest.loc[facts["string"], "memory_bytes"] >= facts["string_bytes"]
    assert {f.subject[0] for f in findings} == {facts["string"], facts["hash"], facts["set"], facts["stream"]}
    assert all(f.severity == Severity.WARNING for f in findings)
    types = audit.by_type.set_index("type")
    assert types.loc["stream", "keys"] == 6  # the five BSNexus streams and the audit stream


def test_secret_key_names_are_masked_everywhere(sandbox: Sandbox, writer: sync_redis.Redis) -> None:
    sandbox.load("healthy")
    tokens = [k.decode() for k in writer.scan_iter("worker:token:*")]
    writer.set("worker:token:deadbeefdeadbeefdeadbeef", "w", ex=None)  # a token without TTL: it gets reported
    with _lab(sandbox) as lab:
        audit = lab.keys.audit(progress=False)
        findings = _findings(lab, audit.frames())
    text = json.dumps([f.to_dict() for f in findings]) + "".join(f.to_csv() for f in audit.frames().values())
    text += repr(audit) + str(audit.notes)
    assert tokens and not any(t.split(":")[-1] in text for t in tokens)
    assert "deadbeefdeadbeefdeadbeef" not in text
    assert "worker:token:{token}" in text


def test_binary_names_and_an_empty_database(sandbox: Sandbox) -> None:
    """Database 5 of the sandbox: untouched by the world's traffic."""
    spare = sync_redis.Redis.from_url(sandbox.urls()["redis_url"].rsplit("/", 1)[0] + "/5")
    spare.flushdb()
    with _lab(sandbox, db=5) as lab:
        empty = lab.keys.audit(progress=False)
        spare.set(b"bin:\xff\xfe", "v")
        spare.set(b"\x00\x01", "v")
        binary = lab.keys.audit(progress=False)
    spare.flushdb()
    spare.close()
    assert empty.totals["keys"].iloc[0] == 0 and empty.by_prefix.empty
    assert "no keys" in empty.totals["notes"].iloc[0]
    assert set(binary.by_prefix["prefix"]) == {"bin:\\xff\\xfe", "\x00\x01"}


def test_keys_vanishing_mid_scan_are_counted_not_fatal(
    sandbox: Sandbox, writer: sync_redis.Redis, acl_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key deleted between SCAN and its look-up (the pipeline walk's two round trips) is counted as vanished,
    not as a key: the test deletes, on the real server, the first key SCAN returned, before the look-up."""
    sandbox.load("healthy")
    writer.mset({f"flash:{n}": "v" for n in range(300)})
    deleted: list[bytes] = []
    scan = aioredis.Redis.scan

    async def scan_then_delete(self: aioredis.Redis, *args: Any, **kwargs: Any) -> Any:
        cursor, names = await scan(self, *args, **kwargs)
        if names and not deleted:
            deleted.append(names[0])
            writer.delete(names[0])
        return cursor, names

    monkeypatch.setattr(aioredis.Redis, "scan", scan_then_delete)
    try:
        with _lab(sandbox, *acl_user("lab-vanish", "-@scripting")) as lab:
            audit = lab.keys.audit(match="flash:*", progress=False)
    finally:
        writer.delete(*(f"flash:{n}" for n in range(300)))
    total = audit.totals.iloc[0]
    assert audit.totals["modes"].iloc[0] == "pipeline" and deleted
    assert (total["scanned"], total["keys"], total["vanished"]) == (300, 299, 1)
    assert audit.by_prefix.set_index("prefix").loc["flash:{id}", "keys"] == 299


@pytest.fixture
def acl_user(writer: sync_redis.Redis) -> Iterator[Any]:
    made = []

    def make(name: str, *rules: str) -> tuple[str, str]:
        writer.execute_command("ACL", "SETUSER", name, "reset", "on", ">labpw", "~*", "+@all", *rules)
        made.append(name)
        return name, "labpw"

    yield make
    for name in made:
        writer.execute_command("ACL", "DELUSER", name)


def test_scripting_refused_falls_back_to_a_pipeline(sandbox: Sandbox, acl_user: Any) -> None:
    facts = sandbox.load("missing-ttl")
    with _lab(sandbox, *acl_user("lab-noscript", "-@scripting")) as lab:
        audit = lab.keys.audit(progress=False)
        findings = _findings(lab, audit.frames())
    assert audit.totals["modes"].iloc[0] == "pipeline"
    assert "scripting refused" in audit.totals["notes"].iloc[0]
    row = audit.by_prefix.set_index("prefix").loc[facts["prefix"]]
    assert (row["keys"], row["without_ttl"]) == (facts["keys"], facts["without_ttl"])
    assert any(f.check == "keys.coverage" and "scripting refused" in f.title.lower() for f in findings)


@pytest.mark.parametrize("rules", [("-memory",), ("-memory", "-@scripting")], ids=["script", "pipeline"])
def test_memory_usage_refused_is_said(sandbox: Sandbox, acl_user: Any, rules: tuple[str, ...]) -> None:
    facts = sandbox.load("missing-ttl")
    with _lab(sandbox, *acl_user("lab-nomemory", *rules)) as lab:
        audit = lab.keys.audit(progress=False)
        findings = _flat(_findings(lab, audit.frames()))
    assert not audit.totals["memory_measured"].iloc[0] and audit.totals["memory_bytes"].iloc[0] == 0
    assert audit.by_prefix.set_index("prefix").loc[facts["prefix"], "without_ttl"] == facts["without_ttl"]
    refused = [f for f in findings if f.check == "keys.coverage" and "MEMORY USAGE" in f.title]
    assert refused and refused[0].severity == Severity.WARNING


def test_sampling_labels_its_estimates(sandbox: Sandbox, writer: sync_redis.Redis) -> None:
    sandbox.load("healthy")
    pipe = writer.pipeline(transaction=False)
    for n in range(20_000):
        pipe.set(f"bulk:{n}", "v", ex=3600 * 48)
    pipe.execute()
    with _lab(sandbox) as lab:
        sampled = lab.keys.audit(sample=2_000, progress=False)
        capped = lab.keys.audit(match="bulk:1*", keys_per_s=1_000_000, progress=False)
    total = sampled.totals.iloc[0]
    assert total["estimated"] and total["scanned"] < 20_000 and total["scale"] > 1
    assert 15_000 <= total["keys"] <= 25_000  # extrapolated from the sample
    assert sampled.by_prefix["estimated"].all() and "estimates" in total["notes"]
    assert capped.totals["keys"].iloc[0] == 11_111  # bulk:1, bulk:1x ... bulk:1xxxx
    with pytest.raises(bl.LabError, match="sample"):
        lab.keys.audit(sample=0)


def test_the_next_batch_fits_the_hold_within_bounds() -> None:
    """Sized from the last batch's time per key (the script's own TIME), halfway there, 10 to 1,000 keys."""
    assert next_batch(100, 217.0, 100) == 158  # 0.5 ms at 2.3 us a key: 217 keys; halfway from 100
    assert next_batch(158, 217.0, 100) == 188
    assert next_batch(100, 55.0, 100) == 78  # costlier keys (9 us each): smaller
    assert next_batch(900, 5_000.0, 100) == 1_000 and next_batch(12, 1.0, 100) == 10
