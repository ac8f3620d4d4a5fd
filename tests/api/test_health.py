"""Liveness and readiness probes."""

from __future__ import annotations

import psycopg
from fastapi.testclient import TestClient

from app.db.embedded import EmbeddedPostgres


def test_healthz_says_ok(client: TestClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_with_model_database_and_schema(client: TestClient) -> None:
    response = client.get("/readyz")

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ready"
    assert body["checks"] == {"model": "ok", "database": "ok", "schema": "ok"}
    # The session app embeds with the tests' controlled embedder (tests/embedder.py); the detector is the real one.
    assert body["engine"] == {"device": "cpu", "detector": "onnx", "embedder": "test labelled"}


def test_readyz_is_503_when_schema_is_not_at_head(client: TestClient, postgres: EmbeddedPostgres) -> None:
    url = postgres.url.replace("+psycopg", "")
    with psycopg.connect(url) as connection:
        (head,) = connection.execute("SELECT version_num FROM alembic_version").fetchone() or ("",)
        connection.execute("UPDATE alembic_version SET version_num = 'older'")
    try:
        response = client.get("/readyz")
    finally:
        with psycopg.connect(url) as connection:
            connection.execute("UPDATE alembic_version SET version_num = %s", (head,))

    assert response.status_code == 503
    assert "facerec db upgrade" in response.json()["checks"]["schema"]
