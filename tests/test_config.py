"""Target resolution and redaction: pure, no servers."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

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
    url, tls = target.sqlalchemy()
    assert url.render_as_string(hide_password=False) == f"postgresql+asyncpg://bsnexus:{SECRET}@db:5432/bsnexus"
    assert tls == {}
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
    assert target.sources["redis_url"] == "environment (BSNEXUS_LAB_REDIS_URL)"
    assert target.database == "postgresql://bsnexus:***@postgres:5432/bsnexus"
    assert target.sources["database_url"] == "environment (DATABASE_URL)"
    assert target.name == "env"


def test_bsnexus_dotenv_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"REDIS_URL=redis://:{SECRET}@localhost:6379\nOTHER=1\n")
    target = resolve()
    assert target.redis == "redis://:***@localhost:6379"
    assert target.sources["redis_url"] == f"{tmp_path / '.env'} (REDIS_URL)"


def test_named_profile_from_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bsnexus-lab.toml").write_text(
        '[profiles.staging]\nredis_url = "redis://staging:6380/1"\nstreams = ["tasks:queue"]\n'
    )
    monkeypatch.setenv("REDIS_URL", "redis://ignored:6379")
    target = resolve("staging")
    assert (target.name, target.redis, target.streams) == ("staging", "redis://staging:6380/1", ("tasks:queue",))
    assert target.sources["redis_url"].startswith("profile staging")


def test_a_profile_renames_bsnexus_s_conventions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What is set replaces BSNexus's name; the rest keeps its default, and ``target show`` says which is which."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bsnexus-lab.toml").write_text(
        '[profiles.renamed]\nredis_url = "redis://r:6379"\n[profiles.renamed.conventions]\nqa_stream = "jobs:review"\n'
        'worker_consumers = "runner-[0-9]+"\norchestrator_consumers = ["boss-1"]\ntrim_limits = {"jobs:feed" = 50}\n'
        "pool_size = 20\n"
    )
    names = resolve("renamed").conventions
    assert (names.qa_stream, names.queue_stream, names.reviewer_field) == ("jobs:review", "tasks:queue", "reviewer_id")
    assert names.is_worker("runner-12") and not names.is_worker("runner-12 ") and not names.is_worker(str(uuid4()))
    assert names.is_orchestrator("boss-1") and not names.is_orchestrator("pm-0")
    assert names.trim_limit("jobs:feed", 1000) == 50 and names.trim_limit("events:board", 1000) == 1000
    assert (names.pool_size, names.max_overflow) == (20, 10)
    shown = {key: (value, source) for key, value, source in resolve("renamed").describe()}
    assert shown["conventions.qa_stream"][0] == "jobs:review"
    assert shown["conventions.qa_stream"][1].startswith("profile renamed")
    assert shown["conventions.reviewer_field"] == ("reviewer_id", "default")
    (tmp_path / "bsnexus-lab.toml").write_text(
        '[profiles.bad]\nredis_url = "redis://r:6379"\n[profiles.bad.conventions]\nworker_consumers = "runner-("\n'
    )
    with pytest.raises(ConfigError, match=r"conventions\.worker_consumers is not a regular expression"):
        resolve("bad")


def test_bsnexus_s_own_conventions_by_default() -> None:
    names = Target(name="t", redis_url="redis://r:6379").conventions
    worker = str(uuid4())
    assert names.is_worker(worker) and not names.is_worker(worker.upper()) and not names.is_worker("pm-0")
    assert names.orchestrator_consumers == ("pm-0", "architect-0")
    assert names.worker_groups == {"workers", "reviewers"} and names.trim_limit("events:board", 1000) == 5000
    assert (names.queue_stream, names.qa_stream, names.pool_size, names.max_overflow) == (
        "tasks:queue",
        "tasks:qa",
        5,
        10,
    )


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
        (f"redis://:{SECRET}/0", "malformed"),  # the @ forgotten: the password reads as a port
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
    with pytest.raises(ConfigError, match=r"database URL is malformed \(postgresql://u:\*\*\*/db\)") as caught:
        resolve(redis_url="redis://x:6379", database_url=f"postgresql://u:{SECRET}/db")


def test_password_in_the_query_string_is_masked_and_scrubbed() -> None:
    target = Target(name="q", redis_url=f"unix:///run/redis.sock?password={SECRET}&db=0")
    assert target.redis == "unix:///run/redis.sock?password=***&db=0"
    assert target.scrub(f"saw {SECRET}") == "saw ***"


@pytest.mark.parametrize("url", ["redis://h:6379", "rediss://h:6380", "unix:///run/redis.sock"])
def test_every_scheme_gets_the_read_only_guard(url: str) -> None:
    from bsnexus_lab.clients import Counters, _Guard, redis_client

    client = redis_client(Target(name="g", redis_url=url), Counters(), allow_writes=False)
    assert issubclass(client.connection_pool.connection_class, _Guard)


def test_each_setting_names_its_own_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("DATABASE_URL=postgresql://u:longpassword@db/bsnexus\n")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379")
    sources = {key: source for key, _, source in resolve().describe()}
    assert sources["redis_url"] == "environment (REDIS_URL)"
    assert sources["database_url"] == f"{tmp_path / '.env'} (DATABASE_URL)"


def test_dotenv_in_the_directory_the_user_started_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """nbconvert --execute runs the kernel in the notebook's folder; $PWD still names where the user was."""
    started, notebooks = tmp_path / "project", tmp_path / "project" / "notebooks"
    notebooks.mkdir(parents=True)
    (started / ".env").write_text("REDIS_URL=redis://from-start:6379\n")
    monkeypatch.chdir(notebooks)
    monkeypatch.setenv("PWD", str(started))
    assert resolve().redis == "redis://from-start:6379"


def test_only_database_url_names_both_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BSNEXUS_LAB_STATE_DIR", str(tmp_path / "no-sandbox"))
    monkeypatch.setenv("DATABASE_URL", f"postgresql://u:{SECRET}@db/bsnexus")
    with pytest.raises(ConfigError) as caught:
        resolve()
    message = str(caught.value)
    assert "REDIS_URL" in message and "DATABASE_URL" in message and "looked in the environment" in message
    assert SECRET not in message


@pytest.mark.parametrize("password", ["Leak?Pfx#tail", "Leak#Pfx", "Leak@Pfx", "Leak/Pfx?x", "a@b?c#d"])
def test_unencoded_reserved_characters_never_echo_the_password(password: str) -> None:
    redis_url = f"redis://:{password}@cache:6379/0"
    database_url = f"postgresql://bsnexus:{password}@db:5432/bsnexus"
    for kwargs in ({"redis_url": redis_url}, {"redis_url": "redis://cache:6379", "database_url": database_url}):
        try:
            target = resolve(**kwargs)
        except ConfigError as exc:
            assert "percent-encode" in str(exc)
            shown = str(exc)
        else:  # parsed the one way the driver parses it: then nothing shows the password
            shown = " ".join([repr(target), target.redis, str(target.database), str(target.describe())])
        assert "Leak" not in shown and "Pfx" not in shown, shown


def test_database_url_is_parsed_the_drivers_way() -> None:
    """SQLAlchemy reads `p@ss@host` as password `p`, host `ss@host`: refused, not guessed."""
    with pytest.raises(ConfigError, match=r"ambiguous.*percent-encode"):
        resolve(redis_url="redis://cache:6379", database_url="postgresql://u:p@ss@db/bsnexus")
    target = resolve(redis_url="redis://cache:6379", database_url="postgresql://u:p%40ss-long@db/bsnexus")
    url, _ = target.sqlalchemy()
    assert (url.password, url.host) == ("p@ss-long", "db")
    assert target.database == "postgresql://u:***@db/bsnexus"
    assert target.scrub("auth p@ss-long failed; p%40ss-long") == "auth *** failed; ***"


def test_sslmode_becomes_the_drivers_ssl_argument() -> None:
    target = Target(name="t", redis_url="redis://c:6379", database_url="postgresql://u:pw@db/b?sslmode=require")
    url, tls = target.sqlalchemy()
    assert tls == {"ssl": "require"} and "sslmode" not in url.query
    assert target.database == "postgresql://u:***@db/b?sslmode=require"
    with pytest.raises(ConfigError, match="unknown sslmode"):
        Target(name="t", redis_url="redis://c:6379", database_url="postgresql://u@db/b?sslmode=maybe").sqlalchemy()
    for query, message in (
        ("sslrootcert=/nonexistent/ca.pem", "sslrootcert is not a readable file: /nonexistent/ca.pem"),
        (f"sslrootcert={__file__}", "the database URL's certificates cannot be used: .*no certificate"),
    ):  # a certificate problem is a configuration error, not an unreachable server
        url = f"postgresql://u:pw@db/b?sslmode=verify-full&{query}"
        with pytest.raises(ConfigError, match=message):
            Target(name="t", redis_url="redis://c:6379", database_url=url).sqlalchemy()


def test_scrubbing_replaces_whole_values_only() -> None:
    short = Target(name="s", redis_url="redis://:e@cache:6379")
    assert short.scrub('{"cells": [], "metadata": {}}') == '{"cells": [], "metadata": {}}'
    same = Target(name="p", redis_url="redis://c:6379", database_url="postgresql://postgres:postgres@db/postgres")
    assert same.database == "postgresql://postgres:***@db/postgres"
    assert same.scrub("postgresql://x@db said: password postgres refused") == (
        "postgresql://x@db said: password *** refused"
    )
