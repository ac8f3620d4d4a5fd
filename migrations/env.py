"""Alembic environment: runs on the connection facerec hands it, or on sqlalchemy.url."""

from __future__ import annotations

import pgvector.sqlalchemy  # noqa: F401 - lets autogenerate render Vector columns
from alembic import context
from sqlalchemy import Connection, create_engine

from app.db.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as own_connection:
        _run(own_connection)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("facerec migrations run online only: use `facerec db upgrade`.")
run_migrations_online()
