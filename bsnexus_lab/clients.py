"""Read-only, bounded, named clients for a target's Redis and PostgreSQL.

The read-only guarantee for Redis sits in the connection itself: every command, direct or pipelined, is
packed by :meth:`pack_command`, so one check there covers all paths. The same place counts round trips,
which the benchmarks report.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import redis.asyncio as aioredis
import redis.exceptions as redis_errors
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from bsnexus_lab.config import Target
from bsnexus_lab.errors import ConfigError, LabError, PermissionDenied, postgres_error, redis_errors_translated
from bsnexus_lab.masking import mask_frame

APPLICATION_NAME = "bsnexus-lab"
CONNECT_TIMEOUT_S = 3.0
COMMAND_TIMEOUT_S = 10.0  # also PostgreSQL's statement_timeout
LOCK_TIMEOUT_S = 1.0  # a lab query never queues behind the application's locks for longer
IDLE_IN_TRANSACTION_S = 30.0
POOL_SIZE = 2  # PostgreSQL sessions per Lab: the probes run one statement at a time

# What every connection sends to set itself up (SELECT only to the URL's own database). Each area adds the read
# commands it sends (``Area.commands``); the guard's allow-list is the union, computed once per Lab.
CONNECTION_COMMANDS = frozenset(
    [
        *("AUTH", "HELLO", "SELECT", "PING", "ECHO", "CLIENT.SETNAME", "CLIENT.SETINFO"),
        *("CLIENT.MAINT_NOTIFICATIONS", "CLIENT.GETNAME", "CLIENT.ID"),
    ]
)
# Lua scripts go out as EVAL_RO (Redis 7+: the server itself refuses a write inside) or EVAL (6.2); the guard
# lets through only the exact texts the areas registered, and their SHA-1s for the EVALSHA forms.
SCRIPT_COMMANDS = frozenset(["EVAL", "EVAL_RO", "EVALSHA", "EVALSHA_RO"])
# CONFIG GET replies carry these in clear text; the guard masks them before any caller sees them.
SECRET_CONFIG = frozenset([b"requirepass", b"masterauth", b"tls-key-file-pass", b"tls-client-key-file-pass"])
# The stream probes parse these replies themselves, identically for RESP2 and RESP3 and Redis 6.2 and 7.x.
RAW_REPLIES = ("XINFO STREAM", "XINFO GROUPS", "XINFO CONSUMERS", "XPENDING", "XRANGE", "XREVRANGE", "EVAL", "EVAL_RO")
_SUBCOMMANDED = {"CLUSTER", "CLIENT", "CONFIG", "MEMORY", "OBJECT", "SLOWLOG", "LATENCY", "XINFO"}


@dataclass
class Counters:
    """What the lab has cost its target so far."""

    round_trips: int = 0
    commands: int = 0


def sent_words(args: tuple[Any, ...]) -> list[str]:
    """The command's words as redis-py sends them: it splits a first argument that contains spaces."""
    first = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
    rest = [a.decode(errors="replace") if isinstance(a, bytes) else str(a) for a in args[1:]]
    return [*first.split(), *rest]


def command_name(args: tuple[Any, ...]) -> str:
    words = sent_words(args)
    name = words[0].upper()
    if name in _SUBCOMMANDED:
        return f"{name}.{words[1].upper() if len(words) > 1 else ''}"
    return name


def script_sha(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()  # Redis names scripts by SHA-1


def mask_config_reply(reply: Any) -> Any:
    """A CONFIG GET reply (RESP2 flat list or RESP3 map) with secret parameters' values replaced."""
    if isinstance(reply, dict):
        return {k: b"***" if _config_name(k) in SECRET_CONFIG else v for k, v in reply.items()}
    if isinstance(reply, list) and len(reply) % 2 == 0 and any(_config_name(n) in SECRET_CONFIG for n in reply[::2]):
        masked = list(reply)
        for i, name in enumerate(reply[::2]):
            if _config_name(name) in SECRET_CONFIG:
                masked[2 * i + 1] = b"***"
        return masked
    return reply


def _config_name(value: Any) -> bytes | None:
    if isinstance(value, str):
        value = value.encode()
    return value.lower() if isinstance(value, bytes) else None


class _Guard:
    """Mixed into a redis-py connection class: refuses writes, counts round trips, masks secrets in replies.

    The allow-lists are frozensets fixed when the client is made; a Lab opened with ``allow_writes`` skips the
    refusals (not the masking).
    """

    allow_writes: bool = False
    commands: frozenset[str] = CONNECTION_COMMANDS
    scripts: frozenset[str] = frozenset()
    counters: Counters
    shown_url: str = ""

    def pack_command(self, *args: Any) -> list[bytes]:
        if not self.allow_writes:
            self._refuse_unless_allowed(args)
        self.counters.commands += 1
        return super().pack_command(*args)  # type: ignore[misc]

    def _refuse_unless_allowed(self, args: tuple[Any, ...]) -> None:
        name, words = command_name(args), sent_words(args)
        if name in SCRIPT_COMMANDS:
            known = self.scripts if name in {"EVAL", "EVAL_RO"} else {script_sha(s) for s in self.scripts}
            if len(words) > 1 and words[1] in known:
                return
            what = "this script is not one of the lab's read-only scripts"
        elif name == "SELECT":  # redis-py selects the URL's database when it connects; any other is the caller's
            if words[1:] == [str(getattr(self, "db", 0))]:
                return
            what = "SELECT changes the database the URL names"
        elif name in self.commands:
            return
        else:
            what = f"{name.replace('.', ' ')} writes"
        raise PermissionDenied(
            f"{what}, and this Lab is read-only",
            target=self.shown_url,
            hint="open it with connect(..., allow_writes=True) to change the deployment",
        )

    async def on_connect_check_health(self, check_health: bool = True) -> None:
        """After redis-py's set-up, name the connection; optional, so an account that may not (``+@read`` only)
        still reads."""
        await super().on_connect_check_health(check_health)  # type: ignore[misc]
        await self.send_command("CLIENT", "SETNAME", APPLICATION_NAME, check_health=False)  # type: ignore[attr-defined]
        with contextlib.suppress(redis_errors.ResponseError):
            await self.read_response()

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        return mask_config_reply(await super().read_response(*args, **kwargs))  # type: ignore[misc]

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        self.counters.round_trips += 1
        await super().send_packed_command(command, check_health)  # type: ignore[misc]


def redis_client(
    target: Target,
    counters: Counters,
    *,
    allow_writes: bool,
    commands: frozenset[str] = CONNECTION_COMMANDS,
    scripts: frozenset[str] = frozenset(),
) -> aioredis.Redis:
    """A client for the target's Redis: raw bytes (decoding is the probes' job), short timeouts, one retry.

    ``commands`` and ``scripts`` are what the guard lets through on a read-only Lab.
    """
    url = target.redis_url.get_secret_value()
    base = {"rediss": SSLConnection, "unix": UnixDomainSocketConnection}.get(url.split("://")[0], Connection)
    guarded = type(
        f"Guarded{base.__name__}",
        (_Guard, base),
        {
            "allow_writes": allow_writes,
            "commands": CONNECTION_COMMANDS | commands,
            "scripts": frozenset(scripts),
            "counters": counters,
            "shown_url": target.redis,
        },
    )
    client = aioredis.Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=COMMAND_TIMEOUT_S,
        # One retry reconnects after a restart dropped the connection; a server that took the connection and did
        # not answer in socket_timeout is not asked again (that doubled the wait on a hung Redis to 20 s).
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.1), 1, supported_errors=(redis_errors.ConnectionError,)),
        decode_responses=False,
        max_connections=4,
    )
    # from_url lets a unix:// or rediss:// URL pick its own connection class; the guard must win regardless.
    client.connection_pool.connection_class = guarded
    for command in RAW_REPLIES:
        client.set_response_callback(command, _raw)
    return client


def _raw(response: Any, **options: Any) -> Any:
    return response


def postgres_engine(target: Target, *, allow_writes: bool) -> Any:
    """An async SQLAlchemy engine whose sessions are read-only, time-limited and named in pg_stat_activity."""
    from sqlalchemy.ext.asyncio import create_async_engine

    settings = {
        "application_name": APPLICATION_NAME,
        "statement_timeout": str(int(COMMAND_TIMEOUT_S * 1000)),
        "lock_timeout": str(int(LOCK_TIMEOUT_S * 1000)),
        "idle_in_transaction_session_timeout": str(int(IDLE_IN_TRANSACTION_S * 1000)),
    }
    if not allow_writes:
        settings["default_transaction_read_only"] = "on"
    url, tls = target.sqlalchemy()
    return create_async_engine(
        url,
        pool_size=POOL_SIZE,
        max_overflow=0,
        pool_timeout=CONNECT_TIMEOUT_S,
        connect_args={"timeout": CONNECT_TIMEOUT_S, "server_settings": settings, **tls},
    )


class Clients:
    """One target's connections, opened lazily on the Lab's loop: the guarded Redis client and the engine.

    The engine stays private to the lab: probes reach PostgreSQL through :meth:`query`, one error policy.
    """

    def __init__(
        self, target: Target, *, allow_writes: bool, commands: frozenset[str], scripts: frozenset[str]
    ) -> None:
        self.target = target
        self.allow_writes = allow_writes
        self.commands = CONNECTION_COMMANDS | commands
        self.scripts = scripts
        self.counters = Counters()
        self._redis: aioredis.Redis | None = None
        self._engine: Any = None
        self._redis_version: tuple[int, ...] | None = None

    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            self._redis = redis_client(
                self.target, self.counters, allow_writes=self.allow_writes, commands=self.commands, scripts=self.scripts
            )
        return self._redis

    async def redis_version(self) -> tuple[int, ...]:
        """The server's (major, minor), asked once per Lab: it decides EVAL_RO (7.0+) over EVAL.

        HELLO (no arguments: the protocol stays) answers every account, even one without INFO.
        """
        if self._redis_version is None:
            with self.redis_errors():
                hello = await self.redis().execute_command("HELLO")
            if isinstance(hello, list):
                hello = dict(zip(hello[::2], hello[1::2], strict=False))
            version = hello.get(b"version", hello.get("version", b"0.0"))
            numbers = (version.decode() if isinstance(version, bytes) else str(version)).split(".")[:2]
            self._redis_version = tuple(int(n) for n in numbers if n.isdigit())
        return self._redis_version

    def engine(self) -> Any:
        if self.target.database_url is None:
            raise ConfigError("this target has no database_url", target=self.target.name)
        if self._engine is None:
            self._engine = postgres_engine(self.target, allow_writes=self.allow_writes)
        return self._engine

    @contextlib.contextmanager
    def redis_errors(self) -> Iterator[None]:
        with redis_errors_translated(self.target.redis):
            yield

    async def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """One read-only statement into a DataFrame, BSNexus's credential columns masked; every failure becomes a
        :class:`LabError`."""
        from sqlalchemy import text

        try:
            async with self.engine().connect() as conn:
                result = await conn.execute(text(sql), dict(params or {}))
                return mask_frame(pd.DataFrame(result.fetchall(), columns=list(result.keys())))
        except LabError:
            raise
        except Exception as exc:
            raise postgres_error(exc, self.target.database or "") from exc

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


# Functions that act although the session is read-only: end or signal other sessions, take locks, change
# settings, touch server files or the log, wait. ``lab.query`` refuses SQL that calls them; the
# least-privilege role (``bsnexus-lab target role-sql``) makes most of them impossible on the server too.
SIDE_EFFECT_FUNCTIONS = (
    r"pg_terminate_backend|pg_cancel_backend|pg_signal_backend|pg_(try_)?advisory(_xact)?_lock(_shared)?"
    r"|pg_advisory_unlock(_all|_shared)?|set_config|pg_reload_conf|pg_rotate_logfile|pg_switch_wal|pg_promote"
    r"|pg_notify|pg_sleep(_for|_until)?|pg_stat_reset\w*|pg_log_backend_memory_contexts|pg_create_\w+"
    r"|pg_drop_replication_slot|pg_replication_origin_\w+|lo_\w+|pg_read_(binary_)?file|pg_ls_\w+|dblink\w*"
    r"|pg_file_\w+|nextval|setval|txid_current|pg_current_xact_id"
)
_SIDE_EFFECT = re.compile(rf'(?<![\w$])"?({SIDE_EFFECT_FUNCTIONS})"?\s*\(', re.IGNORECASE)
_READ_STATEMENTS = ("select", "with", "show", "explain", "table", "values")


def check_sql(sql: str) -> None:
    """Refuse SQL that is not a single read, or that calls a function with side effects.

    A read-only transaction already refuses writes; these are what it lets through.
    """
    body = re.sub(r"--[^\n]*|/\*.*?\*/", " ", sql, flags=re.DOTALL).strip().rstrip(";").strip()
    first = body.split(None, 1)[0].lower() if body else ""
    if first not in _READ_STATEMENTS:
        raise PermissionDenied(
            f"lab.query runs reads only, not {first.upper() or 'an empty statement'}",
            hint="statements start with SELECT, WITH, SHOW, EXPLAIN, TABLE or VALUES",
        )
    if ";" in re.sub(r"'(?:[^']|'')*'", "''", body):
        raise PermissionDenied("lab.query runs one statement at a time")
    if called := _SIDE_EFFECT.search(body):
        raise PermissionDenied(
            f"lab.query refuses {called.group(1)}(), which acts on the server although the session is read-only",
            hint="run it yourself with an account meant for it, if you mean to",
        )
