"""Schema migrations (alembic), run under an advisory lock so that replicas starting together take turns."""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from app.db.hnsw import HnswOptions, apply_if_empty

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
# An arbitrary constant: every facerec process takes this Postgres advisory lock around
# `alembic upgrade`.
MIGRATION_LOCK_KEY = 0x66616365726563


def normalise_url(url: str) -> str:
    """Accept plain postgres:// and postgresql:// URLs and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def libpq_url(url: str) -> str:
    """The URL as psycopg itself takes it (no SQLAlchemy driver suffix)."""
    return normalise_url(url).replace("postgresql+psycopg://", "postgresql://", 1)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


@functools.cache  # the migration scripts do not change while a process runs (/readyz asks every probe)
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("postgresql+psycopg://unused")).get_current_head()
    if head is None:
        raise RuntimeError(f"no alembic revisions under {MIGRATIONS_DIR}")
    return head


def upgrade(url: str, *, revision: str = "head", hnsw: HnswOptions | None = None) -> None:
    """Migrate the schema, holding the advisory lock.

    At head, the HNSW index is rebuilt with `hnsw` if it differs and the gallery is empty.
    """
    engine = create_engine(normalise_url(url), poolclass=None)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            try:
                config = alembic_config(url)
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                if revision == "head":
                    apply_if_empty(connection, wanted=hnsw or HnswOptions())
                connection.commit()
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
                connection.commit()
    finally:
        engine.dispose()


def downgrade(url: str, *, revision: str) -> None:
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.downgrade(config, revision)
            connection.commit()
    finally:
        engine.dispose()
