"""add workers table

Revision ID: 7e2b4d6f8a21
Revises: 3c1a9f0b2d10
Create Date: 2026-01-12 16:40:02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "7e2b4d6f8a21"
down_revision: str | tuple[str, ...] | None = "3c1a9f0b2d10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE TABLE IF NOT EXISTS workers (id uuid PRIMARY KEY, name varchar(255) NOT NULL)")


def downgrade() -> None:
    op.execute("DROP TABLE workers")
