"""Read-only, bounded, named clients for a target's Redis and PostgreSQL.

The read-only guarantee for Redis sits in the connection itself: every command, direct or pipelined, is
packed by :meth:`pack_command`, so one check there covers all paths. The same place counts round trips,
which the benchmarks report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from bsnexus_lab.config import Target
from bsnexus_lab.errors import PermissionDenied

APPLICATION_NAME = "bsnexus-lab"
CONNECT_TIMEOUT_S = 3.0
COMMAND_TIMEOUT_S = 10.0

# Commands that only read. Anything else needs a Lab opened with allow_writes=True.
READ_COMMANDS = frozenset(
    [
        # connection set-up
        *("AUTH", "HELLO", "SELECT", "PING", "ECHO", "CLIENT.SETNAME", "CLIENT.SETINFO"),
        *("CLIENT.MAINT_NOTIFICATIONS", "CLIENT.GETNAME", "CLIENT.ID", "CLIENT.INFO", "CLIENT.LIST"),
        # server
        *("INFO", "TIME", "DBSIZE", "CLUSTER.NODES", "COMMAND", "LASTSAVE", "ROLE", "CONFIG.GET", "SLOWLOG.GET", "SLOWLOG.LEN"),
        *("MEMORY.USAGE", "MEMORY.STATS", "MEMORY.DOCTOR", "LATENCY.LATEST", "LATENCY.HISTORY"),
        # keys
        *("TYPE", "EXISTS", "TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME", "SCAN", "OBJECT.ENCODING", "OBJECT.IDLETIME"),
        *("OBJECT.FREQ", "STRLEN", "GET", "MGET", "GETRANGE", "HGET", "HMGET", "HGETALL", "HLEN", "HKEYS", "HVALS"),
        *("HEXISTS", "HSCAN", "LLEN", "LRANGE", "LINDEX", "SCARD", "SMEMBERS", "SISMEMBER", "SSCAN"),
        *("ZCARD", "ZRANGE", "ZSCORE", "ZSCAN", "ZCOUNT"),
        # streams
        *("XLEN", "XRANGE", "XREVRANGE", "XPENDING", "XINFO.STREAM", "XINFO.GROUPS", "XINFO.CONSUMERS"),
    ]
)
# Lua scripts that only read, which the guard lets through as EVAL (modules add theirs at import).
READ_ONLY_SCRIPTS: set[str] = set()
# The stream probes parse these replies themselves, identically for RESP2 and RESP3 and Redis 6.2 and 7.x.
RAW_REPLIES = ("XINFO STREAM", "XINFO GROUPS", "XINFO CONSUMERS", "XPENDING", "XRANGE", "XREVRANGE", "EVAL")
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


def _read_only_script(args: tuple[Any, ...]) -> bool:
    words = sent_words(args)
    return words[0].upper() in ("EVAL", "EVAL_RO") and len(words) > 1 and words[1] in READ_ONLY_SCRIPTS


class _Guard:
    """Mixed into a redis-py connection class: refuses writes, counts round trips."""

    allow_writes: bool = False
    counters: Counters
    shown_url: str = ""

    def pack_command(self, *args: Any) -> list[bytes]:
        if not self.allow_writes and command_name(args) not in READ_COMMANDS and not _read_only_script(args):
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


def redis_client(target: Target, counters: Counters, *, allow_writes: bool) -> aioredis.Redis:
    """A client for the target's Redis: raw bytes (decoding is the probes' job), short timeouts, one retry."""
    url = target.redis_url.get_secret_value()
    base = {"rediss": SSLConnection, "unix": UnixDomainSocketConnection}.get(url.split("://")[0], Connection)
    guarded = type(
        f"Guarded{base.__name__}",
        (_Guard, base),
        {"allow_writes": allow_writes, "counters": counters, "shown_url": target.redis},
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
