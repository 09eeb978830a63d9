"""merge task priority and design sessions

Revision ID: c5e7a9b1d3f6
Revises: a4c8e1f2b3d5, b9d3f5a7c1e4
Create Date: 2026-01-22 14:20:11
"""

from collections.abc import Sequence

revision: str = "c5e7a9b1d3f6"
down_revision: str | tuple[str, ...] | None = ("a4c8e1f2b3d5", "b9d3f5a7c1e4")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
