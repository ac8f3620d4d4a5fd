"""Fixtures for the database tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from app.db.embedded import EmbeddedPostgres


@pytest.fixture
def scratch_url(postgres: EmbeddedPostgres) -> Iterator[str]:
    """A fresh, empty database on the test server."""
    name = f"scratch_{uuid.uuid4().hex[:12]}"
    admin = postgres.url.replace("+psycopg", "").rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield postgres.url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
