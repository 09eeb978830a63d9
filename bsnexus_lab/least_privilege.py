"""The accounts the lab should be given: what makes "read-only" true on the servers, not only in the lab.

The lab's guard refuses writes in its own process; an account that cannot write makes the promise hold
even for code that goes around the guard. ``bsnexus-lab target role-sql`` prints both:

- a PostgreSQL role with ``pg_monitor`` (pg_stat_activity, locks, settings) and SELECT on BSNexus's tables,
  read-only by default, with no grant on the tables that hold credentials (``registration_tokens``,
  ``api_keys``) and no right to end other sessions (``pg_terminate_backend`` needs ``pg_signal_backend``);
- a Redis ACL user allowed exactly the commands the lab sends, no write command, and its Lua scripts only as
  ``EVAL_RO`` (Redis 7+; 6.2 has no EVAL_RO and gets ``EVAL``, still unable to write: ACLs bind inside scripts).
"""

from __future__ import annotations

from collections.abc import Iterable

# BSNexus's tables the lab reads for evidence (BSNEXUS.md), minus the two that hold credentials.
BSNEXUS_TABLES = (
    *("projects", "phases", "tasks", "task_history", "task_dependencies", "workers"),
    *("design_sessions", "design_messages", "settings", "audit_logs", "alembic_version"),
)
# Commands newer than Redis 6.2: an ACL rule naming a command the server lacks is an error. redis-py's optional
# hand-shakes (CLIENT SETINFO, maintenance notifications) tolerate a refusal, so no rule is written for them.
SINCE = {"EXPIRETIME": (7, 0), "PEXPIRETIME": (7, 0), "EVAL_RO": (7, 0)}
OPTIONAL = frozenset(["CLIENT.SETINFO", "CLIENT.MAINT_NOTIFICATIONS"])
ROLE = "bsnexus_lab"
REDIS_USER = "bsnexus-lab"


def postgres_role_sql(database: str = "bsnexus", role: str = ROLE, tables: Iterable[str] = BSNEXUS_TABLES) -> str:
    """SQL to create the lab's PostgreSQL role (run it as a superuser; set the password yourself)."""
    listed = ", ".join(tables)
    return "\n".join(
        [
            f"CREATE ROLE {role} LOGIN PASSWORD 'change-me' NOSUPERUSER NOCREATEDB NOCREATEROLE;",
            f"GRANT pg_monitor TO {role};  -- activity, locks, settings; not pg_signal_backend",
            f"ALTER ROLE {role} SET default_transaction_read_only = on;",
            f"ALTER ROLE {role} SET statement_timeout = '10s';",
            f"GRANT CONNECT ON DATABASE {database} TO {role};",
            f"GRANT USAGE ON SCHEMA public TO {role};",
            f"GRANT SELECT ON {listed} TO {role};",
            "-- no grant on registration_tokens or api_keys: they hold credentials",
        ]
    )


def redis_acl_words(commands: Iterable[str], version: tuple[int, int] = (7, 0)) -> list[str]:
    """``ACL SETUSER`` rules for the lab on a Redis of ``version``: every command it sends, ``+cmd|sub`` form."""
    wanted = {*commands, "EVAL_RO" if version >= (7, 0) else "EVAL"} - OPTIONAL
    rules = {"+" + name.lower().replace(".", "|") for name in wanted if SINCE.get(name, (0, 0)) <= version}
    return ["on", ">change-me", "resetkeys", "~*", "resetchannels", "-@all", *sorted(rules)]


def redis_acl_line(commands: Iterable[str], version: tuple[int, int] = (7, 0)) -> str:
    return " ".join(["ACL SETUSER", REDIS_USER, *redis_acl_words(commands, version)])
