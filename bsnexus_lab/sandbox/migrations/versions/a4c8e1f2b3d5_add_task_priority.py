"""add task priority

Revision ID: a4c8e1f2b3d5
Revises: 7e2b4d6f8a21
Create Date: 2026-01-20 11:03:19
"""

from collections.abc import Sequence

from alembic import op

revision: str = "a4c8e1f2b3d5"
down_revision: str | tuple[str, ...] | None = "7e2b4d6f8a21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE tasks ADD COLUMN IF NOT EXISTS priority taskpriority NOT NULL DEFAULT 'medium'")


def downgrade() -> None:
    op.execute("ALTER TABLE tasks DROP COLUMN priority")
