"""add design sessions

Revision ID: b9d3f5a7c1e4
Revises: 7e2b4d6f8a21
Create Date: 2026-01-21 08:55:30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "b9d3f5a7c1e4"
down_revision: str | tuple[str, ...] | None = "7e2b4d6f8a21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE TABLE IF NOT EXISTS design_sessions (id uuid PRIMARY KEY, status varchar(32))")


def downgrade() -> None:
    op.execute("DROP TABLE design_sessions")
