"""The redis_health runbook on the sandbox, and --fail-on-config: a configuration risk fails a run only when asked."""

from __future__ import annotations

from pathlib import Path

import redis as sync_redis

from bsnexus_lab import runner
from bsnexus_lab.cli import main
from bsnexus_lab.findings import Kind, Severity, document
from bsnexus_lab.sandbox import Sandbox

QUICK = {"duration_s": 1.0, "every_s": 0.25}


def test_runbook_reports_the_planted_missing_ttl(sandbox: Sandbox, tmp_path: Path) -> None:
    facts = sandbox.load("missing-ttl")
    result = runner.run("redis_health", target="sandbox", params=QUICK, output_root=tmp_path)
    assert result.error is None and result.exit_code == 1
    flat = [g for f in result.findings for g in (f, *f.explains)]
    missing = {f.subject[0]: f for f in flat if f.check == "keys.missing_ttl"}
    assert missing[facts["prefix"]].evidence["without_ttl"] == facts["without_ttl"]
    assert missing["worker:{id}"].severity == Severity.CRITICAL
    notebook = (result.run_dir / "notebook.ipynb").read_text()
    assert "image/png" in notebook and "worker:token:{token}" in notebook
    tokens = [k.decode() for k in sync_redis.Redis.from_url(sandbox.urls()["redis_url"]).scan_iter("worker:token:*")]
    assert tokens and not any(t.split(":")[-1] in notebook for t in tokens)


def test_a_configuration_risk_fails_only_with_fail_on_config(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.load("healthy")  # BSNexus's compose settings (allkeys-lru), most of maxmemory free, nothing evicted
    calm = main(["run", "redis_health", "--target", "sandbox", "--output-dir", str(tmp_path / "a")]
                + [f"-p{k}={v}" for k, v in QUICK.items()])  # fmt: skip
    strict = main(["run", "redis_health", "--target", "sandbox", "--output-dir", str(tmp_path / "b"),
                   "--fail-on-config"] + [f"-p{k}={v}" for k, v in QUICK.items()])  # fmt: skip
    assert (calm, strict) == (0, 1)
    found = document.records(next((tmp_path / "a").rglob("findings.json")))
    risk = next(f for f in found if f["check"] == "server.eviction_risk")
    assert (risk["severity"], risk["kind"]) == (Severity.WARNING.value, Kind.CONFIG.value)
