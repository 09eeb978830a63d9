"""Target resolution and redaction: pure, no servers."""

from __future__ import annotations

from pathlib import Path

import pytest

from bsnexus_lab import ConfigError, Target
from bsnexus_lab.config import redact_url, resolve

SECRET = "s3cr3t-pw"


def test_redact_url_masks_only_the_password() -> None:
    assert redact_url(f"redis://:{SECRET}@cache:6379/0") == "redis://:***@cache:6379/0"
    assert redact_url(f"postgresql://bsnexus:{SECRET}@db/bsnexus") == "postgresql://bsnexus:***@db/bsnexus"
    assert redact_url("redis://localhost:6379") == "redis://localhost:6379"


def test_target_never_shows_its_password() -> None:
    target = Target(
        name="prod",
        redis_url=f"redis://:{SECRET}@cache:6379/0",
        database_url=f"postgresql+asyncpg://bsnexus:{SECRET}@db:5432/bsnexus",
    )
    shown = [repr(target), str(target), str(target.describe()), target.redis, str(target.database)]
    assert all(SECRET not in text for text in shown)
    assert target.database == "postgresql://bsnexus:***@db:5432/bsnexus"
    assert target.sqlalchemy_url == f"postgresql+asyncpg://bsnexus:{SECRET}@db:5432/bsnexus"
    assert target.scrub(f"error at redis://:{SECRET}@cache") == "error at redis://:***@cache"


def test_explicit_argument_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BSNEXUS_LAB_REDIS_URL", "redis://from-lab-env:6379")
    target = resolve(redis_url="redis://from-argument:6379")
    assert target.redis == "redis://from-argument:6379"
    assert target.sources["redis_url"] == "argument"


def test_lab_variables_beat_bsnexus_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BSNEXUS_LAB_REDIS_URL", "redis://lab:6379")
    monkeypatch.setenv("REDIS_URL", "redis://service:6379")
    monkeypatch.setenv("DATABASE_URL", f"postgresql+asyncpg://bsnexus:{SECRET}@postgres:5432/bsnexus")
    target = resolve()
    assert target.redis == "redis://lab:6379"
    assert target.sources["redis_url"].startswith("environment (BSNEXUS_LAB_")
    assert target.database == "postgresql://bsnexus:***@postgres:5432/bsnexus"
    assert "BSNexus" in target.sources["database_url"]
    assert target.name == "env"


def test_bsnexus_dotenv_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"REDIS_URL=redis://:{SECRET}@localhost:6379\nOTHER=1\n")
    target = resolve()
    assert target.redis == "redis://:***@localhost:6379"
    assert target.sources["redis_url"] == ".env (BSNexus *)"


def test_named_profile_from_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bsnexus-lab.toml").write_text(
        '[profiles.staging]\nredis_url = "redis://staging:6380/1"\nstreams = ["tasks:queue"]\n'
    )
    monkeypatch.setenv("REDIS_URL", "redis://ignored:6379")
    target = resolve("staging")
    assert (target.name, target.redis, target.streams) == ("staging", "redis://staging:6380/1", ("tasks:queue",))
    assert target.sources["redis_url"].startswith("profile staging")


def test_profile_named_by_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "xdg"
    (config / "bsnexus-lab").mkdir(parents=True)
    (config / "bsnexus-lab" / "profiles.toml").write_text('[profiles.prod]\nredis_url = "redis://prod:6379"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.setenv("BSNEXUS_LAB_TARGET", "prod")
    assert resolve().name == "prod"


def test_unknown_profile_lists_known_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bsnexus-lab.toml").write_text('[profiles.prod]\nredis_url = "redis://prod:6379"\n')
    with pytest.raises(ConfigError, match=r"no profile named 'nope'.*known profiles: prod"):
        resolve("nope")


def test_nothing_configured_points_at_the_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BSNEXUS_LAB_STATE_DIR", str(tmp_path / "no-sandbox"))
    with pytest.raises(ConfigError, match="sandbox up"):
        resolve()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"http://:{SECRET}@host:6379", "must start with one of"),
        (f"redis://:{SECRET}@host:notaport/0", "malformed"),
        (f"default:{SECRET}@redis:6379", "must start with"),
        (f"redis://:pa#{SECRET}@host:6379/0", "malformed"),
        ("redis://", "no host"),
    ],
)
def test_malformed_redis_url_is_refused_without_echoing_it(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        resolve(redis_url=url)
    assert SECRET not in str(caught.value)


def test_malformed_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="database URL must start with") as caught:
        resolve(redis_url="redis://x:6379", database_url=f"mysql://u:{SECRET}@h/db")
    assert SECRET not in str(caught.value)


def test_password_in_the_query_string_is_masked_and_scrubbed() -> None:
    target = Target(name="q", redis_url=f"unix:///run/redis.sock?password={SECRET}&db=0")
    assert target.redis == "unix:///run/redis.sock?password=***&db=0"
    assert target.scrub(f"saw {SECRET}") == "saw ***"


@pytest.mark.parametrize("url", ["redis://h:6379", "rediss://h:6380", "unix:///run/redis.sock"])
def test_every_scheme_gets_the_read_only_guard(url: str) -> None:
    from bsnexus_lab.clients import Counters, _Guard, redis_client

    client = redis_client(Target(name="g", redis_url=url), Counters(), allow_writes=False)
    assert issubclass(client.connection_pool.connection_class, _Guard)
