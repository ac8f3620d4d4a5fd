"""Alembic migrations: up, down and up again; concurrent starters take turns."""

from __future__ import annotations

import threading

import psycopg

from app.db import migrate as db


def _tables(url: str) -> set[str]:
    with psycopg.connect(url.replace("+psycopg", "")) as connection:
        rows = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {row[0] for row in rows}


def test_upgrade_creates_schema_with_vector_extension_and_default_collection(scratch_url: str) -> None:
    db.upgrade(scratch_url)

    with psycopg.connect(scratch_url.replace("+psycopg", "")) as connection:
        extension = connection.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        collections = connection.execute("SELECT name FROM collections").fetchall()
        index = connection.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_faces_embedding_hnsw'"
        ).fetchone()
        storage = connection.execute(
            "SELECT attstorage FROM pg_attribute WHERE attrelid = 'faces'::regclass AND attname = 'embedding'"
        ).fetchone()
    assert {"collections", "subjects", "faces", "alembic_version"} <= _tables(scratch_url)
    assert extension is not None
    assert collections == [("default",)]
    assert index is not None
    assert "hnsw" in index[0]
    assert "vector_cosine_ops" in index[0]
    assert storage == ("p",)


def test_downgrade_removes_every_table_and_upgrade_works_again(scratch_url: str) -> None:
    db.upgrade(scratch_url)

    db.downgrade(scratch_url, revision="base")
    after_down = _tables(scratch_url)
    db.upgrade(scratch_url)

    assert after_down == {"alembic_version"}
    assert {"collections", "subjects", "faces"} <= _tables(scratch_url)


def test_concurrent_upgrades_both_succeed_under_the_advisory_lock(scratch_url: str) -> None:
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            db.upgrade(scratch_url)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=migrate) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    with psycopg.connect(scratch_url.replace("+psycopg", "")) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [(db.head_revision(),)]


def test_models_match_the_migrated_schema(scratch_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    from app.db.models import Base

    db.upgrade(scratch_url)
    engine = create_engine(db.normalise_url(scratch_url))
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()

    assert differences == []
