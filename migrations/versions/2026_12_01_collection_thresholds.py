"""Per-collection match thresholds: null means FACEREC_MATCH_THRESHOLD.

Revision ID: 20261201_collection_thresholds
Revises: 20261128_access_control
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261201_collection_thresholds"
down_revision: str | None = "20261128_access_control"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("collections", sa.Column("match_threshold", sa.REAL(), nullable=True))
    op.create_check_constraint(
        "ck_collections_match_threshold_range", "collections", "match_threshold BETWEEN -1 AND 1"
    )


def downgrade() -> None:
    op.drop_constraint("ck_collections_match_threshold_range", "collections", type_="check")
    op.drop_column("collections", "match_threshold")
