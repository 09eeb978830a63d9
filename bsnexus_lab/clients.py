"""Read-only, bounded, named clients for a target's Redis and PostgreSQL.

The read-only guarantee for Redis sits in the connection itself: every command, direct or pipelined, is
packed by :meth:`pack_command`, so one check there covers all paths. The same place counts round trips,
which the benchmarks report.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from bsnexus_lab.config import Target
from bsnexus_lab.errors import ConfigError, LabError, PermissionDenied, postgres_error, redis_errors_translated

APPLICATION_NAME = "bsnexus-lab"
CONNECT_TIMEOUT_S = 3.0
COMMAND_TIMEOUT_S = 10.0

# What every connection sends to set itself up. Each area adds the read commands it sends (``Area.commands``);
# the guard's allow-list is the union, computed once per Lab.
CONNECTION_COMMANDS = frozenset(
    [
        *("AUTH", "HELLO", "SELECT", "PING", "ECHO", "CLIENT.SETNAME", "CLIENT.SETINFO"),
        *("CLIENT.MAINT_NOTIFICATIONS", "CLIENT.GETNAME", "CLIENT.ID"),
    ]
)
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


class _Guard:
    """Mixed into a redis-py connection class: refuses writes, counts round trips."""

    allow_writes: bool = False
    commands: frozenset[str] = CONNECTION_COMMANDS
    scripts: frozenset[str] = frozenset()
    counters: Counters
    shown_url: str = ""

    def _read_only_script(self, args: tuple[Any, ...]) -> bool:
        words = sent_words(args)
        return words[0].upper() in {"EVAL", "EVAL_RO"} and len(words) > 1 and words[1] in self.scripts

    def pack_command(self, *args: Any) -> list[bytes]:
        if not self.allow_writes and command_name(args) not in self.commands and not self._read_only_script(args):
            raise PermissionDenied(
                f"{command_name(args).replace('.', ' ')} writes, and this Lab is read-only",
                target=self.shown_url,
                hint="open it with connect(..., allow_writes=True) to change the deployment",
            )
        self.counters.commands += 1
        return super().pack_command(*args)  # type: ignore[misc]

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
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.1), 1),
        client_name=APPLICATION_NAME,
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
        "lock_timeout": "1000",
        "idle_in_transaction_session_timeout": "30000",
    }
    if not allow_writes:
        settings["default_transaction_read_only"] = "on"
    return create_async_engine(
        target.sqlalchemy_url,
        pool_size=2,
        max_overflow=0,
        pool_timeout=CONNECT_TIMEOUT_S,
        connect_args={"timeout": CONNECT_TIMEOUT_S, "server_settings": settings},
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
        """The server's (major, minor), asked once per Lab: it decides EVAL_RO (7.0+) over EVAL."""
        if self._redis_version is None:
            with self.redis_errors():
                info = await self.redis().info("server")
            numbers = str(info.get("redis_version", "0.0")).split(".")[:2]
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
        """One read-only statement into a DataFrame; every failure becomes a :class:`LabError`."""
        from sqlalchemy import text

        try:
            async with self.engine().connect() as conn:
                result = await conn.execute(text(sql), dict(params or {}))
                return pd.DataFrame(result.fetchall(), columns=list(result.keys()))
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
