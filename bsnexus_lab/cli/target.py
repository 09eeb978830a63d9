"""``bsnexus-lab target ...``: what the lab will look at."""

from __future__ import annotations

import argparse
from typing import Any

from bsnexus_lab.cli import add
from bsnexus_lab.config import resolve


def target_show(args: argparse.Namespace) -> int:
    """Show which deployment the lab would look at, and where each setting came from (passwords masked)."""
    target = resolve(args.target)
    width = max(len(key) for key, _, _ in target.describe())
    for key, value, source in target.describe():
        print(f"{key:{width}}  {value}    [{source}]")
    return 0


def target_role_sql(args: argparse.Namespace) -> int:
    """Print the least-privilege PostgreSQL role and Redis ACL user to give the lab in production."""
    from bsnexus_lab.areas import read_commands
    from bsnexus_lab.clients import CONNECTION_COMMANDS
    from bsnexus_lab.least_privilege import postgres_role_sql, redis_acl_line

    commands = read_commands() | CONNECTION_COMMANDS  # exactly what the guard lets a read-only Lab send
    print("-- PostgreSQL: run as a superuser, then put the role in DATABASE_URL (set its password first)")
    print(postgres_role_sql(args.database))
    print("\n# Redis 7.0 and later (scripts only as EVAL_RO, which cannot write):")
    print(redis_acl_line(commands, (7, 0)))
    print("# Redis 6.2 (no EVAL_RO; the ACL still refuses writes inside scripts):")
    print(redis_acl_line(commands, (6, 2)))
    return 0


def register(sub: Any) -> None:
    target = sub.add_parser("target", help="which deployment the lab looks at, and how to give it access")
    actions = target.add_subparsers(dest="action", required=True)
    add(actions, "show", target_show).add_argument("--target", help="profile name")
    role = add(actions, "role-sql", target_role_sql)
    role.add_argument("--database", default="bsnexus", help="database to grant CONNECT on (default: bsnexus)")
