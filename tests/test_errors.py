"""Bad input: a clear, redacted error (or a finding), never a traceback from the CLI, never a password."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

import bsnexus_lab as bl
from bsnexus_lab.cli import main
from bsnexus_lab.sandbox import Sandbox, servers

SECRET = "hunter2-not-this"


def dead_redis_url() -> str:
    return f"redis://:{SECRET}@127.0.0.1:{servers.free_port()}/0"


def test_unreachable_redis_is_a_row_then_a_clear_error() -> None:
    with bl.connect(redis_url=dead_redis_url()) as lab:
        health = lab.health()
        assert not health.loc[0, "reachable"]
        assert "cannot reach Redis" in health.loc[0, "error"] and SECRET not in health.loc[0, "error"]
        with pytest.raises(bl.TargetUnreachable, match=r"cannot reach Redis \(redis://:\*\*\*@127\.0\.0\.1") as caught:
            lab.streams.summary()
    assert SECRET not in str(caught.value)


def test_wrong_redis_password(sandbox: Sandbox) -> None:
    url = urlsplit(sandbox.urls()["redis_url"])
    wrong = url._replace(netloc=f":{SECRET}@{url.hostname}:{url.port}").geturl()
    with bl.connect(redis_url=wrong) as lab, pytest.raises(bl.TargetUnreachable, match="refused the credentials") as e:
        lab.streams.summary()
    assert SECRET not in str(e.value)


def test_wrong_postgres_password_and_unreachable_postgres(sandbox: Sandbox) -> None:
    urls = sandbox.urls()
    url = urlsplit(urls["database_url"])
    wrong = url._replace(netloc=f"bsnexus:{SECRET}@{url.hostname}:{url.port}").geturl()
    with bl.connect(redis_url=urls["redis_url"], database_url=wrong) as lab:
        with pytest.raises(bl.TargetUnreachable, match="PostgreSQL refused the credentials") as caught:
            lab.query("SELECT 1")
        health = lab.health().set_index("dependency")
    assert SECRET not in str(caught.value)
    assert bool(health.loc["redis", "reachable"]) and not bool(health.loc["postgresql", "reachable"])
    dead = f"postgresql://bsnexus:{SECRET}@127.0.0.1:{servers.free_port()}/bsnexus"
    with (
        bl.connect(redis_url=urls["redis_url"], database_url=dead) as lab,
        pytest.raises(bl.TargetUnreachable, match="cannot reach PostgreSQL"),
    ):
        lab.query("SELECT 1")


def test_missing_table_is_named(sandbox: Sandbox) -> None:
    with bl.connect("sandbox") as lab, pytest.raises(bl.NotFound, match="missing"):
        lab.query("SELECT * FROM no_such_table")


def test_cli_prints_one_redacted_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BSNEXUS_LAB_REDIS_URL", f"redis://:{SECRET}@127.0.0.1:notaport/0")
    assert main(["target", "show"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "malformed" in err and SECRET not in err and "Traceback" not in err


def test_cli_unknown_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "stream_backlog", "--target", "nowhere"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bsnexus-lab: no profile named 'nowhere'") and err.count("\n") == 1


def test_dead_redis_in_a_runbook_is_a_critical_finding(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BSNEXUS_LAB_REDIS_URL", dead_redis_url())
    assert main(["run", "stream_backlog", "--output-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "CRITICAL redis is unreachable [deps.unreachable]" in out
    for artefact in tmp_path.rglob("*"):
        if artefact.is_file():
            assert SECRET not in artefact.read_text(errors="replace"), artefact
