"""initial schema: projects, phases, tasks

Revision ID: 3c1a9f0b2d10
Revises:
Create Date: 2026-01-05 09:12:44
"""

from collections.abc import Sequence

from alembic import op

revision: str = "3c1a9f0b2d10"
down_revision: str | tuple[str, ...] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE TABLE IF NOT EXISTS projects (id uuid PRIMARY KEY, name varchar(255) NOT NULL)")


def downgrade() -> None:
    op.execute("DROP TABLE projects")
