"""BSNexus's names that the stream checks rely on (``shared/BSNEXUS.md``), in one place.

Workers read ``tasks:queue``/``workers`` and ``tasks:qa``/``reviewers`` under their worker ids (UUIDs) and
have a registry key; the backend's orchestrator reads ``tasks:results``/``pm`` as ``pm-0`` and
``tasks:escalation``/``architect`` as ``architect-0``, has no registry key, and never re-reads its own
pending entries.
"""

from __future__ import annotations

import uuid

WORKER_GROUPS = frozenset({"workers", "reviewers"})
QA_STREAM = "tasks:qa"
REVIEWER_FIELD = "reviewer_id"


def is_worker(consumer: str) -> bool:
    """BSNexus names worker consumers by worker id (a UUID as ``str(uuid4())`` writes it); other consumers have no
    registry key. Only that canonical form counts: ``uuid.UUID`` also takes braces, ``urn:uuid:``, upper case,
    a space or a non-ASCII digit in place of a hex digit, none of which names a worker's registry key."""
    try:
        return str(uuid.UUID(str(consumer))) == consumer
    except ValueError:
        return False


def is_worker_group(group: str) -> bool:
    return group in WORKER_GROUPS
