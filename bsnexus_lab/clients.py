"""Read-only, bounded, named clients for a target's Redis and PostgreSQL.

The read-only guarantee for Redis sits in the connection itself: every command, direct or pipelined, is
packed by :meth:`pack_command`, so one check there covers all paths. The same place counts round trips,
which the benchmarks report.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions as redis_errors
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from bsnexus_lab.config import Target
from bsnexus_lab.errors import PermissionDenied

APPLICATION_NAME = "bsnexus-lab"
CONNECT_TIMEOUT_S = 3.0
COMMAND_TIMEOUT_S = 10.0

# What redis-py sends to set a connection up (the URL's password and database, the client's name) and the
# one question the guard asks a new connection (does this server have EVAL_RO?).
CONNECTION_COMMANDS = frozenset(
    [
        "AUTH",
        "HELLO",
        "PING",
        "SELECT",
        "CLIENT.SETNAME",
        "CLIENT.SETINFO",
        "CLIENT.MAINT_NOTIFICATIONS",
        "COMMAND.INFO",
    ]
)
# Commands that only read. Anything else needs a Lab opened with allow_writes=True.
READ_COMMANDS = frozenset(
    [
        *("ECHO", "CLIENT.GETNAME", "CLIENT.ID", "CLIENT.INFO", "CLIENT.LIST"),
        # server
        *("INFO", "TIME", "DBSIZE", "LASTSAVE", "ROLE", "CONFIG.GET", "SLOWLOG.GET", "SLOWLOG.LEN"),
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
# Lua scripts run as EVAL_RO (Redis 7+: the server itself refuses a write inside) or EVAL (6.2); their
# EVALSHA forms are accepted for the same texts.
SCRIPT_COMMANDS = frozenset(["EVAL", "EVAL_RO", "EVALSHA", "EVALSHA_RO"])
# CONFIG GET replies carry these in clear text; the guard masks them before any caller sees them.
SECRET_CONFIG = frozenset([b"requirepass", b"masterauth", b"tls-key-file-pass", b"tls-client-key-file-pass"])
# The stream probes parse these replies themselves, identically for RESP2 and RESP3 and Redis 6.2 and 7.x.
RAW_REPLIES = ("XINFO STREAM", "XINFO GROUPS", "XINFO CONSUMERS", "XPENDING", "XRANGE", "XREVRANGE", "EVAL")
_SUBCOMMANDED = {"CLIENT", "CONFIG", "MEMORY", "OBJECT", "SLOWLOG", "LATENCY", "XINFO", "COMMAND"}


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
    if isinstance(reply, list) and len(reply) % 2 == 0:
        names = reply[::2]
        if any(_config_name(n) in SECRET_CONFIG for n in names):
            masked = list(reply)
            for i, name in enumerate(names):
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
    commands: frozenset[str] = READ_COMMANDS | CONNECTION_COMMANDS
    scripts: frozenset[str] = frozenset()
    counters: Counters
    shown_url: str = ""
    has_eval_ro: bool = False  # learnt per connection when it is set up

    def pack_command(self, *args: Any) -> list[bytes]:
        name = command_name(args)
        if name in SCRIPT_COMMANDS:
            args = self._script_command(args)
        elif not self.allow_writes and (name not in self.commands or not self._same_database(name, args)):
            what = (
                "SELECT changes the database the URL names" if name == "SELECT" else f"{name.replace('.', ' ')} writes"
            )
            raise PermissionDenied(
                f"{what}, and this Lab is read-only",
                target=self.shown_url,
                hint="open it with connect(..., allow_writes=True) to change the deployment",
            )
        self.counters.commands += 1
        return super().pack_command(*args)  # type: ignore[misc]

    def _same_database(self, name: str, args: tuple[Any, ...]) -> bool:
        """redis-py selects the URL's database when it connects; any other SELECT is the caller's."""
        words = sent_words(args)
        return name != "SELECT" or (len(words) == 2 and words[1] == str(getattr(self, "db", 0)))

    def _script_command(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """An allow-listed script goes out as EVAL_RO/EVALSHA_RO where the server has them."""
        words = sent_words(args)
        base = words[0].upper().removesuffix("_RO")
        known = self.scripts if base == "EVAL" else {script_sha(s) for s in self.scripts}
        if len(words) < 2 or words[1] not in known:
            if self.allow_writes:
                return args
            raise PermissionDenied(
                "this script is not one of the lab's read-only scripts",
                target=self.shown_url,
                hint="open the Lab with connect(..., allow_writes=True) to run other scripts",
            )
        command = f"{base}_RO" if self.has_eval_ro else base
        return (command, *args[1:])

    async def on_connect_check_health(self, check_health: bool = True) -> None:
        """After redis-py's set-up: name the connection and ask whether EVAL_RO exists (one round trip).

        Both are optional: an account that may not run them (an ACL user with ``+@read`` only) still reads.
        """
        await super().on_connect_check_health(check_health)  # type: ignore[misc]
        await self.send_command("CLIENT", "SETNAME", APPLICATION_NAME, check_health=False)  # type: ignore[attr-defined]
        if self.scripts:
            await self.send_command("COMMAND", "INFO", "EVAL_RO", check_health=False)  # type: ignore[attr-defined]
        await self._optional_reply()
        if self.scripts:
            reply = await self._optional_reply()
            self.has_eval_ro = bool(reply and reply[0])

    async def _optional_reply(self) -> Any:
        try:
            return await self.read_response()
        except redis_errors.ResponseError:  # refused by the server's ACL: do without
            return None

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
    commands: frozenset[str] = READ_COMMANDS,
    scripts: frozenset[str] = frozenset(),
) -> aioredis.Redis:
    """A client for the target's Redis: raw bytes (decoding is the probes' job), short timeouts, one retry.

    ``commands`` and ``scripts`` are what a read-only client may send (besides connection set-up).
    """
    url = target.redis_url.get_secret_value()
    base = {"rediss": SSLConnection, "unix": UnixDomainSocketConnection}.get(url.split("://")[0], Connection)
    guarded = type(
        f"Guarded{base.__name__}",
        (_Guard, base),
        {
            "allow_writes": allow_writes,
            "commands": frozenset(commands) | CONNECTION_COMMANDS,
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
    url, tls = target.sqlalchemy()
    return create_async_engine(
        url,
        pool_size=2,
        max_overflow=0,
        pool_timeout=CONNECT_TIMEOUT_S,
        connect_args={"timeout": CONNECT_TIMEOUT_S, "server_settings": settings, **tls},
    )


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
