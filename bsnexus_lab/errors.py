"""The lab's exceptions: one root, a small tree, driver errors translated once at the edge.

    LabError                  anything the lab raises on purpose; ``str()`` is one readable line
    ├── ConfigError           a target, profile or URL that cannot be used as given
    ├── TargetUnreachable     a server that did not answer (down, wrong host/port, wrong password)
    ├── QueryTimedOut         a server that answered too slowly
    ├── PermissionDenied      a write refused because the Lab is read-only, or a command the server's ACL refuses
    ├── NotFound              a stream, group or table that does not exist
    │   └── NoSuchTask        no task, entry or worker by the id a trace was asked to follow
    ├── WrongType             a key that exists but holds another type
    ├── SandboxError          the embedded servers could not be started or stopped
    └── RunbookError          a runbook that is unknown, mis-parameterized or failed
        └── RunbookBusy       the same runbook already runs on the same target

Every message names the redacted target and what to check, never a password. Each error carries the exit
status the CLI returns for it (:data:`EXIT_FAILED` unless said otherwise); the statuses of a run live here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator

import redis.exceptions as redis_errors

# Exit statuses: ok (no finding counted), findings (one did), failed (the tool could not do its job), busy
# (the runbook already runs on the target); an interrupted run exits 128 + the signal (:func:`exit_interrupted`).
EXIT_OK, EXIT_FINDINGS, EXIT_FAILED, EXIT_BUSY = 0, 1, 2, 3
EXIT_NO_SUCH_TASK = 4  # trace: nothing by that id to follow (neither the tool's failure nor a finding)
STATUS = {EXIT_OK: "ok", EXIT_FINDINGS: "findings", EXIT_FAILED: "failed", EXIT_BUSY: "busy"}


def exit_interrupted(signum: int) -> int:
    """The shell's convention: 128 + the signal (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + signum


_LINE_BREAK = re.compile("[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")  # what str.splitlines() splits on


class LabError(Exception):
    """Root of the lab's errors. ``exit_code`` is what the CLI returns for it."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, target: str | None = None, hint: str | None = None) -> None:
        self.target = target
        self.hint = hint
        parts = [message]
        if target:
            parts.append(f"({target})")
        text = " ".join(parts)
        if hint:
            text = f"{text}: {hint}"
        super().__init__(_LINE_BREAK.sub(lambda brk: repr(brk[0])[1:-1], text))  # "\n" in a URL or name: one line


class ConfigError(LabError):
    pass


class TargetUnreachable(LabError):
    pass


class QueryTimedOut(LabError):
    pass


class PermissionDenied(LabError):
    pass


class NotFound(LabError):
    pass


class NoSuchTask(NotFound):
    exit_code = EXIT_NO_SUCH_TASK


class WrongType(LabError):
    pass


class SandboxError(LabError):
    pass


class RunbookError(LabError):
    pass


class RunbookBusy(RunbookError):
    """The same runbook is already running on the same target."""

    exit_code = EXIT_BUSY


@contextlib.contextmanager
def redis_errors_translated(url: str) -> Iterator[None]:
    """Map redis-py's exceptions to the lab's, naming the redacted ``url``."""
    try:
        yield
    except LabError:
        raise
    except redis_errors.AuthenticationError as exc:
        raise TargetUnreachable(
            "Redis refused the credentials", target=url, hint="check the password in the URL"
        ) from exc
    except redis_errors.NoPermissionError as exc:
        raise PermissionDenied(
            "the Redis user may not run a command the lab sends",
            target=url,
            hint=f"{first_line(exc)}; `bsnexus-lab target role-sql` prints the ACL the lab needs",
        ) from exc
    except redis_errors.ResponseError as exc:
        raise _redis_response_error(exc, url) from exc
    except (redis_errors.TimeoutError, TimeoutError) as exc:
        raise QueryTimedOut(
            "Redis did not answer in time", target=url, hint="is the server overloaded or the host wrong?"
        ) from exc
    except (redis_errors.ConnectionError, OSError) as exc:
        raise TargetUnreachable(
            "cannot reach Redis",
            target=url,
            hint=f"is it running and is the host/port right? ({first_line(exc)})",
        ) from exc


def _redis_response_error(exc: Exception, url: str) -> LabError:
    text = first_line(exc)
    if "WRONGTYPE" in text:
        return WrongType("a key holds another type than expected", target=url, hint=text)
    if "NOAUTH" in text or "WRONGPASS" in text:
        return TargetUnreachable("Redis refused the credentials", target=url, hint="check the password in the URL")
    if "no such key" in text or "NOGROUP" in text:
        return NotFound("no such stream or consumer group", target=url, hint=text)
    return LabError("Redis refused a command", target=url, hint=text)


def postgres_error(exc: BaseException, url: str) -> LabError:
    """Translate an asyncpg/SQLAlchemy/OS error into the lab's family."""
    import asyncpg

    cause = getattr(exc, "orig", None) or exc
    if not isinstance(cause, asyncio.TimeoutError | TimeoutError):  # a timeout's own cause is a CancelledError
        cause = getattr(cause, "__cause__", None) or cause
    if isinstance(cause, LabError):
        return cause
    if isinstance(cause, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
        return TargetUnreachable(
            "PostgreSQL refused the credentials", target=url, hint="check the user and password in the URL"
        )
    if isinstance(cause, asyncpg.InvalidCatalogNameError):
        return TargetUnreachable("PostgreSQL has no such database", target=url, hint=first_line(cause))
    if isinstance(cause, asyncpg.UndefinedTableError):
        return NotFound("a table the lab expects is missing", target=url, hint=first_line(cause))
    if isinstance(cause, asyncpg.QueryCanceledError):
        return QueryTimedOut("PostgreSQL did not answer in time", target=url, hint="statement_timeout reached")
    if isinstance(cause, asyncio.TimeoutError | TimeoutError):  # the driver's only own timeout is the connect's
        return TargetUnreachable(
            "PostgreSQL did not answer the connection in time",
            target=url,
            hint="something listens on that port but does not answer: is it PostgreSQL, and is it overloaded?",
        )
    if isinstance(cause, asyncpg.TooManyConnectionsError):
        return TargetUnreachable(
            "PostgreSQL refused the connection: too many clients already",
            target=url,
            hint="max_connections is full: see which applications hold the sessions (pg_stat_activity)",
        )
    if isinstance(cause, asyncpg.ReadOnlySQLTransactionError):
        return PermissionDenied("the lab's PostgreSQL session is read-only", target=url)
    # A pooled connection the server dropped (it stopped or restarted) says "connection is closed".
    dropped = isinstance(cause, asyncpg.InterfaceError) and "connection is closed" in str(cause)
    if dropped or isinstance(
        cause,
        OSError
        | asyncpg.CannotConnectNowError
        | asyncpg.AdminShutdownError
        | asyncpg.PostgresConnectionError
        | ConnectionError,
    ):
        return TargetUnreachable(
            "cannot reach PostgreSQL",
            target=url,
            hint=f"is it running and is the host/port right? ({first_line(cause)})",
        )
    return LabError("PostgreSQL query failed", target=url, hint=first_line(cause))


def first_line(exc: BaseException) -> str:
    """An exception as one line: its message's first line, or its type's name when it has no message."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
