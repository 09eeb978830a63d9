"""Secrets and the read-only guard, on real servers: allow-lists, ACLs, side-effect SQL, TLS, odd passwords."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import nbformat
import pytest
import redis as sync_redis

import bsnexus_lab as bl
from bsnexus_lab import clients, runner
from bsnexus_lab.areas import areas, read_commands, read_scripts
from bsnexus_lab.areas.streams.commands import COUNT_SCRIPT
from bsnexus_lab.cli import main
from bsnexus_lab.clients import CONNECTION_COMMANDS
from bsnexus_lab.errors import EXIT_FINDINGS
from bsnexus_lab.findings import document
from bsnexus_lab.least_privilege import REDIS_USER, postgres_role_sql, redis_acl_words
from bsnexus_lab.masking import mask_data, mask_fields, mask_frame, mask_key
from bsnexus_lab.resp import text
from bsnexus_lab.sandbox import Sandbox
from bsnexus_lab.sandbox.lifecycle import DB_NAME, DB_USER


def redis_version(sandbox: Sandbox) -> tuple[int, int]:
    major, minor = sandbox.status()[0].version.split()[1].split(".")[:2]
    return int(major), int(minor)


def urls_for(sandbox: Sandbox, *, redis_user: str = "", redis_password: str = "", pg: str = "") -> dict[str, str]:
    """The sandbox's URLs with other credentials (user:password) swapped in."""
    urls = sandbox.urls()
    redis_port = urlsplit(urls["redis_url"]).port
    database = urlsplit(urls["database_url"])
    result = dict(urls)
    if redis_password:
        result["redis_url"] = f"redis://{redis_user}:{redis_password}@127.0.0.1:{redis_port}/0"
    if pg:
        result["database_url"] = f"postgresql://{pg}@127.0.0.1:{database.port}/{DB_NAME}"
    return result


async def superuser(sandbox: Sandbox, sql: str, *, script: bool = False) -> Any:
    """Run SQL as the sandbox's owner: one query's rows, or (``script``) several statements."""
    import asyncpg

    url = urlsplit(sandbox.urls()["database_url"])
    conn = await asyncpg.connect(host="127.0.0.1", port=url.port, user=DB_USER, password=url.password, database=DB_NAME)
    try:
        return await (conn.execute(sql) if script else conn.fetch(sql))
    finally:
        await conn.close()


# -- the Redis guard --------------------------------------------------------------------------------------------
def test_the_allow_lists_are_immutable(sandbox: Sandbox) -> None:
    with bl.connect("sandbox") as lab:
        guarded = lab._clients.redis().connection_pool.connection_class
    assert isinstance(guarded.commands, frozenset) and isinstance(guarded.scripts, frozenset)
    assert guarded.scripts == read_scripts() and COUNT_SCRIPT in guarded.scripts
    with pytest.raises(AttributeError):
        guarded.scripts.add("return redis.call('DEL', KEYS[1])")  # type: ignore[attr-defined]
    assert "SELECT" in CONNECTION_COMMANDS and "SELECT" not in read_commands()


def test_the_db_area_declares_every_redis_command_it_sends(sandbox: Sandbox) -> None:
    """The consistency probe reads streams through the streams area's face on the db's own Context: a guard that
    lets through only what the db area declares still lets it find every planted fault."""
    facts = sandbox.load("db-stream-drift")
    with bl.connect("sandbox") as lab:
        lab._clients.commands = CONNECTION_COMMANDS | areas()["db"].commands  # before the first Redis call
        frame = lab.db.consistency()
        assert "XINFO.STREAM" not in lab._clients.redis().connection_pool.connection_class.commands
    faults = dict(zip(frame["fault"], frame["task_id"], strict=True))
    assert faults["lost_publish"] == facts["lost_publish"]
    assert faults["misrouted_qa"] == facts["misrouted_qa"]["task_id"]
    assert faults["missed_ack"] == facts["missed_ack"]["task_id"]


def test_select_is_refused_the_database_comes_from_the_url(healthy: dict[str, Any], writer: sync_redis.Redis) -> None:
    writer.select(1)
    writer.set("lab:only-in-db1", "1")
    writer.select(0)
    with bl.connect("sandbox") as lab:
        with pytest.raises(bl.PermissionDenied, match="SELECT changes the database the URL names"):
            lab._loop.run(lab._clients.redis().execute_command("SELECT", 1))
        assert lab._loop.run(lab._clients.redis().type("lab:only-in-db1")) == b"none"  # still on the URL database 0
        assert len(lab.streams.summary()) > 0
    writer.execute_command("SELECT", 1)
    writer.delete("lab:only-in-db1")


def test_config_get_never_shows_the_password(sandbox: Sandbox) -> None:
    password = urlsplit(sandbox.urls()["redis_url"]).password or ""
    with bl.connect("sandbox", allow_writes=True) as lab:  # masking holds even where the allow-list is off
        pairs = lab._loop.run(lab._clients.redis().config_get("requirepass"))
        everything = lab._loop.run(lab._clients.redis().execute_command("CONFIG", "GET", "*"))
        maxmemory = lab._loop.run(lab._clients.redis().config_get("maxmemory-policy"))
    pairs, everything, maxmemory = (plain(reply) for reply in (pairs, everything, maxmemory))
    assert pairs == {"requirepass": "***"}
    assert password not in everything.values() and everything["requirepass"] == "***"
    assert maxmemory["maxmemory-policy"] in {"allkeys-lru", "noeviction"}  # other settings stay readable


def plain(reply: Any) -> dict[str, str]:
    """A CONFIG GET reply as text, whichever shape redis-py handed back (map or flat list, bytes or str)."""
    items = reply.items() if isinstance(reply, dict) else zip(reply[::2], reply[1::2], strict=True)
    return {text(k): text(v) for k, v in items}


def test_scripts_go_out_as_eval_ro_where_redis_has_it(
    stuck: dict[str, Any], sandbox: Sandbox, writer: sync_redis.Redis
) -> None:
    def calls(command: str) -> int:
        return int(writer.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))

    name = "eval_ro" if redis_version(sandbox) >= (7, 0) else "eval"
    before = {command: calls(command) for command in ("eval", "eval_ro")}
    with bl.connect("sandbox") as lab:
        lab.streams.summary()  # counts lag with the script where there is a backlog
        with pytest.raises(bl.PermissionDenied, match="not one of the lab's read-only scripts"):
            lab._loop.run(
                lab._clients.redis().execute_command("EVAL_RO", "return redis.call('DEL', KEYS[1])", 1, "tasks:queue")
            )
    assert calls(name) > before[name]
    if name == "eval_ro":
        assert calls("eval") == before["eval"]  # never the form that could write
    assert writer.exists("tasks:queue")


@pytest.fixture
def acl_user(sandbox: Sandbox, writer: sync_redis.Redis) -> Iterator[str]:
    yield REDIS_USER
    writer.execute_command("ACL", "DELUSER", REDIS_USER)


def test_the_printed_acl_is_enough_for_the_lab_and_refuses_writes(
    stuck: dict[str, Any], sandbox: Sandbox, writer: sync_redis.Redis, acl_user: str
) -> None:
    rules = redis_acl_words(read_commands() | CONNECTION_COMMANDS, redis_version(sandbox))
    writer.execute_command("ACL", "SETUSER", acl_user, *[r.replace("change-me", "acl-pass-1") for r in rules])
    urls = urls_for(sandbox, redis_user=acl_user, redis_password="acl-pass-1")
    with bl.connect(**urls) as lab:
        health = lab.health().set_index("dependency")
        summary = lab.streams.summary()
        consumers = lab.streams.consumers()
        pending = lab.streams.pending(limit=10)
        assert bool(health.loc["redis", "reachable"]), health.loc["redis", "error"]
        assert stuck["dead_consumer"] in set(consumers["consumer"]) and len(pending) >= 3
        assert summary.loc[summary["stream"] == "tasks:queue", "lag"].notna().all()
    with sync_redis.Redis.from_url(urls["redis_url"]) as as_lab:
        for write in (("SET", "lab:x", "1"), ("XACK", "tasks:queue", "workers", "0-1"), ("FLUSHALL",)):
            with pytest.raises(sync_redis.exceptions.NoPermissionError):
                as_lab.execute_command(*write)


def test_an_account_without_scripts_gets_a_clear_refusal(
    stuck: dict[str, Any], sandbox: Sandbox, writer: sync_redis.Redis, acl_user: str
) -> None:
    """``+@read`` only: the server refuses the lab's script; summary() estimates with a note, and a direct call
    says why and what to grant."""
    writer.execute_command("ACL", "SETUSER", acl_user, "on", ">acl-pass-2", "~*", "-@all", "+@read", "+auth", "+hello")
    urls = urls_for(sandbox, redis_user=acl_user, redis_password="acl-pass-2")
    with bl.connect(**urls) as lab:
        assert len(lab.streams.consumers()) > 0  # plain reads work
        summary = lab.streams.summary()  # lag estimated, with a note, instead of failing
        queue = summary[summary["stream"] == "tasks:queue"]
        assert queue["lag"].notna().all()
        assert any("tasks:queue is estimated" in note for note in summary.attrs["notes"])
        refused = pytest.raises(bl.PermissionDenied, match=r"may not run a command the lab sends.*'eval.*role-sql")
        with refused, lab._clients.redis_errors():
            lab._loop.run(lab._clients.redis().execute_command("EVAL", COUNT_SCRIPT, 1, "tasks:queue", 100))


# -- PostgreSQL -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity", "refuses pg_terminate_backend"),
        ("select pg_catalog.PG_CANCEL_BACKEND(1)", "refuses PG_CANCEL_BACKEND"),
        ("SELECT pg_advisory_lock(42)", "refuses pg_advisory_lock"),
        ("SELECT pg_try_advisory_xact_lock(42)", "refuses pg_try_advisory_xact_lock"),
        ("SELECT set_config('default_transaction_read_only', 'off', false)", "refuses set_config"),
        ('SELECT "pg_reload_conf"()', "refuses pg_reload_conf"),
        ("SET default_transaction_read_only = off", "reads only, not SET"),
        ("SELECT 1; DELETE FROM tasks", "one statement at a time"),
        ("UPDATE tasks SET status = 'done'", "reads only, not UPDATE"),
    ],
)
def test_lab_query_refuses_side_effects(healthy: dict[str, Any], sql: str, message: str) -> None:
    with bl.connect("sandbox") as lab:
        with pytest.raises(bl.PermissionDenied, match=message):
            lab.query(sql)
        assert lab.query("SELECT ';' AS semicolon, count(*) AS n FROM tasks")["semicolon"][0] == ";"
    assert not hasattr(lab, "engine")  # the engine stays private: lab.query is the way in


def test_query_results_mask_bsnexus_credentials(healthy: dict[str, Any]) -> None:
    sql = (
        "SELECT 'rt-0123456789' AS token, 'worker:token:abcdef123' AS key_name,"
        ' CAST(\'{"model": "claude", "api_key": "sk-live-123"}\' AS json) AS llm_config, 1 AS n'
    )
    with bl.connect("sandbox") as lab:
        row = lab.query(sql).iloc[0]
    assert (row["token"], row["key_name"], row["n"]) == ("***", "worker:token:***", 1)
    assert row["llm_config"] == {"model": "claude", "api_key": "***"}  # SQLAlchemy decodes json


def test_masking_functions_are_structural() -> None:
    assert (
        mask_key("worker:token:Zx9_-abc") == "worker:token:***" and mask_key(b"worker:token:x") == b"worker:token:***"
    )
    assert mask_key("worker:5f1c") == "worker:5f1c"
    worker = {b"id": b"5f1c", b"name": b"w1", b"token": b"tok-secret", b"status": b"busy"}
    assert mask_fields(worker) == {b"id": b"5f1c", b"name": b"w1", b"token": "***", b"status": b"busy"}
    body = {b"payload": {"context": {"api_key": "sk-1", "steps": [{"token": "t", "n": 1}]}}, b"task_id": b"t-1"}
    assert mask_fields(body) == {b"payload": {"context": {"api_key": "***", "steps": [{"token": "***", "n": 1}]}},
                                 b"task_id": b"t-1"}  # fmt: skip
    import pandas as pd

    frame = mask_frame(pd.DataFrame({"key": ["worker:token:abc", "worker:1"], "registration_token": ["r1", None]}))
    assert frame["key"].tolist() == ["worker:token:***", "worker:1"]
    assert frame["registration_token"].iloc[0] == "***" and pd.isna(frame["registration_token"].iloc[1])
    assert mask_data({"evidence": {"keys": ["worker:token:abc"], "api_key": "sk"}}) == {
        "evidence": {"keys": ["worker:token:***"], "api_key": "***"}
    }


@pytest.fixture
def tls_postgres(sandbox: Sandbox, tmp_path: Path) -> Iterator[None]:
    """The sandbox's PostgreSQL serving TLS with a self-signed certificate, for one test."""
    if not asyncio.run(superuser(sandbox, "SHOW ssl_library"))[0][0]:
        pytest.skip("this PostgreSQL build has no TLS")
    directory = sandbox.root / "tls"
    directory.mkdir(exist_ok=True)
    cert, key = self_signed(directory)
    data = sandbox.root / "postgres" / "data"
    for path in (directory, cert, key):
        shutil.chown(path, data.stat().st_uid, data.stat().st_gid)
    key.chmod(0o600)
    asyncio.run(superuser(sandbox, f"ALTER SYSTEM SET ssl_cert_file = '{cert}'"))
    asyncio.run(superuser(sandbox, f"ALTER SYSTEM SET ssl_key_file = '{key}'"))
    asyncio.run(superuser(sandbox, "ALTER SYSTEM SET ssl = on"))
    asyncio.run(superuser(sandbox, "SELECT pg_reload_conf()"))
    yield
    for setting in ("ssl", "ssl_cert_file", "ssl_key_file"):
        asyncio.run(superuser(sandbox, f"ALTER SYSTEM RESET {setting}"))
    asyncio.run(superuser(sandbox, "SELECT pg_reload_conf()"))


def test_sslmode_require_connects_with_tls(healthy: dict[str, Any], sandbox: Sandbox, tls_postgres: None) -> None:
    urls = sandbox.urls()
    plain = urls["database_url"].replace("postgresql+asyncpg://", "postgresql://")
    with bl.connect(redis_url=urls["redis_url"], database_url=plain + "?sslmode=require") as lab:
        row = lab.query("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").iloc[0]
        assert lab.target.database.endswith("?sslmode=require")
    assert bool(row["ssl"]) and row["version"].startswith("TLS")
    with bl.connect(redis_url=urls["redis_url"], database_url=plain + "?sslmode=disable") as lab:
        assert not bool(lab.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")["ssl"][0])


# -- odd passwords: leak nowhere, corrupt nothing ---------------------------------------------------------------
@pytest.mark.parametrize("password", ["Leak?Pfx", "Leak#Pfx", "Leak@Pfx"])
def test_reserved_characters_never_reach_stderr(
    password: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://:{password}@cache:6379/0")
    monkeypatch.setenv("DATABASE_URL", f"postgresql://bsnexus:{password}@db:5432/bsnexus")
    code = main(["target", "show"])
    out, err = capsys.readouterr()
    assert "Leak" not in out + err and "Pfx" not in out + err
    assert (code == 2 and "percent-encode" in err) or code == 0


@pytest.fixture
def short_credentials(sandbox: Sandbox, writer: sync_redis.Redis) -> Iterator[dict[str, str]]:
    """A Redis user `e` with password `e`; a PostgreSQL role `postgres` with password `postgres`."""
    writer.execute_command("ACL", "SETUSER", "e", "on", ">e", "~*", "+@all")
    exists = asyncio.run(superuser(sandbox, "SELECT 1 FROM pg_roles WHERE rolname = 'postgres'"))
    if not exists:
        asyncio.run(superuser(sandbox, "CREATE ROLE postgres LOGIN SUPERUSER PASSWORD 'postgres'"))
    else:
        asyncio.run(superuser(sandbox, "ALTER ROLE postgres PASSWORD 'postgres'"))
    yield urls_for(sandbox, redis_user="e", redis_password="e", pg="postgres:postgres")
    writer.execute_command("ACL", "DELUSER", "e")


def test_short_and_common_passwords_corrupt_no_artefact(
    stuck: dict[str, Any],
    short_credentials: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BSNEXUS_LAB_REDIS_URL", short_credentials["redis_url"])
    monkeypatch.setenv("BSNEXUS_LAB_DATABASE_URL", short_credentials["database_url"])
    result = runner.run("stream_backlog", params={"duration_s": "1", "every_s": "0.25"}, output_root=tmp_path)
    assert result.exit_code == EXIT_FINDINGS, result.error
    executed = nbformat.read(result.notebook, as_version=4)  # valid JSON, cells intact
    assert len(executed.cells) > 10 and "c***lls" not in result.notebook.read_text()
    manifest = json.loads((result.run_dir / "run.json").read_text())
    # the scheme survives; the user name equal to the password is masked as the password it also is
    assert manifest["target"]["database"].startswith("postgresql://***:***@127.0.0.1:")
    for artefact in result.run_dir.iterdir():
        text = artefact.read_text()
        assert "***ql://" not in text and ":postgres@" not in text and ":e@" not in text, artefact.name
    assert document.records(result.run_dir / "findings.json")[0]["check"] == "streams.dead_consumer"


def test_config_replies_are_masked_by_shape() -> None:
    assert clients.mask_config_reply([b"requirepass", b"pw", b"port", b"6379"]) == [
        b"requirepass",
        b"***",
        b"port",
        b"6379",
    ]


def self_signed(directory: Path) -> tuple[Path, Path]:
    if not shutil.which("openssl"):
        pytest.skip("no openssl to make a certificate")
    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_rediss_connects_with_tls(tmp_path: Path) -> None:
    """A Redis that listens on TLS only: the lab gets there through rediss://, as the URL asks."""
    from bsnexus_lab.sandbox import servers

    binary = next((b for b in servers.redis_binaries() if b.source == "system"), None)
    if binary is None:
        pytest.skip("no system redis-server")
    cert, key = self_signed(tmp_path)
    port = servers.free_port()
    started = subprocess.run(
        [
            *(str(binary.path), "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert)),
            *("--tls-key-file", str(key), "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"),
            *("--requirepass", "tls-pass-1", "--save", "", "--daemonize", "yes", "--dir", str(tmp_path)),
            *("--pidfile", str(tmp_path / "redis.pid"), "--logfile", str(tmp_path / "redis.log")),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if started.returncode != 0:
        pytest.skip("this redis-server was built without TLS")
    try:
        deadline = time.monotonic() + 60
        while not servers._port_open(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        url = f"rediss://:tls-pass-1@127.0.0.1:{port}/0?ssl_cert_reqs=none"
        with bl.connect(redis_url=url) as lab:
            health = lab.health().iloc[0]
            assert bool(health["reachable"]), health["error"]
            assert lab._clients.redis().connection_pool.connection_class.__mro__[2].__name__ == "SSLConnection"
        with bl.connect(redis_url=f"redis://:tls-pass-1@127.0.0.1:{port}/0") as plain:
            assert not bool(plain.health().iloc[0]["reachable"])  # no plain-text port: TLS was really used
    finally:
        servers.terminate(servers._pid_in(tmp_path / "redis.pid"), servers.REDIS)


@pytest.fixture
def lab_role(sandbox: Sandbox) -> Iterator[str]:
    """The role `bsnexus-lab target role-sql` prints, created in the sandbox's PostgreSQL."""
    sql = postgres_role_sql(DB_NAME).replace("'change-me'", "'role-pass-1'")
    asyncio.run(superuser(sandbox, "DROP ROLE IF EXISTS bsnexus_lab"))
    asyncio.run(superuser(sandbox, sql, script=True))
    yield urls_for(sandbox, pg="bsnexus_lab:role-pass-1")["database_url"]
    asyncio.run(superuser(sandbox, "DROP OWNED BY bsnexus_lab"))
    asyncio.run(superuser(sandbox, "DROP ROLE bsnexus_lab"))


def test_the_printed_role_reads_but_cannot_act_or_see_credentials(
    stuck: dict[str, Any], sandbox: Sandbox, lab_role: str
) -> None:
    import asyncpg

    with bl.connect(redis_url=sandbox.urls()["redis_url"], database_url=lab_role) as lab:
        assert lab.query("SELECT count(*) AS n FROM tasks")["n"][0] > 0
        assert len(lab.query("SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'")) >= 1
        held = lab.streams.held_tasks(lab.streams.consumers())
        assert set(held["task_status"].dropna()) == {"queued"}

    async def as_role() -> list[str]:
        url, owner = urlsplit(lab_role), urlsplit(sandbox.urls()["database_url"])
        other = await asyncpg.connect(host="127.0.0.1", port=url.port, user=DB_USER, password=owner.password,
                                      database=DB_NAME)  # fmt: skip
        conn = await asyncpg.connect(host="127.0.0.1", port=url.port, user="bsnexus_lab", password="role-pass-1",
                                     database=DB_NAME)  # fmt: skip
        refused = []
        try:
            for sql in (
                "SELECT key_hash FROM api_keys",
                "SELECT token FROM registration_tokens",
                "UPDATE tasks SET status = 'done'",
                f"SELECT pg_terminate_backend({await other.fetchval('SELECT pg_backend_pid()')})",
            ):
                try:
                    await conn.fetch(sql)
                except asyncpg.PostgresError as exc:
                    refused.append(type(exc).__name__)
            return refused
        finally:
            await conn.close()
            await other.close()

    assert asyncio.run(as_role()) == [
        "InsufficientPrivilegeError",
        "InsufficientPrivilegeError",
        "ReadOnlySQLTransactionError",
        "InsufficientPrivilegeError",
    ]
