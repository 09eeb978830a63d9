"""add api keys

Revision ID: e8a0c2e4f6b9
Revises: d2f4b6c8e0a1
Create Date: 2026-02-10 17:45:08
"""

from collections.abc import Sequence

from alembic import op

revision: str = "e8a0c2e4f6b9"
down_revision: str | tuple[str, ...] | None = "d2f4b6c8e0a1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE TABLE IF NOT EXISTS api_keys (id uuid PRIMARY KEY, name varchar(255), key_hash varchar(255))")


def downgrade() -> None:
    op.execute("DROP TABLE api_keys")
