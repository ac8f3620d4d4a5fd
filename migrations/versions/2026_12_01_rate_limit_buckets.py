"""Rate limits shared by every replica: one row per (API key, scope), GCRA state.

UNLOGGED: a take happens on every request, and a crash that forgets who was near their limit
costs nothing worth a WAL write (and the fsync of every commit that would come with it).

Revision ID: 20261201_rate_limit_buckets
Revises: 20261201_collection_thresholds
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261201_rate_limit_buckets"
down_revision: str | None = "20261201_collection_thresholds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_buckets",
        sa.Column(
            "key_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("api_keys.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("scope", sa.String(20), primary_key=True),
        sa.Column("tat", sa.DateTime(timezone=True), nullable=False),
        sa.Column("admitted", sa.Boolean(), nullable=False),
        prefixes=["UNLOGGED"],
    )


def downgrade() -> None:
    op.drop_table("rate_limit_buckets")
