"""Every audited action writes its entry in the transaction of its effect: when the entry cannot be
written, the request fails with 503 AUDIT_UNAVAILABLE and nothing it would have changed is changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from app.db.embedded import EmbeddedPostgres
from tests.api.helpers import enrol, error_code, post_photo

FAILING_AUDIT = """
CREATE FUNCTION audit_log_refuses_inserts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log refuses inserts (test)';
END $$;
CREATE TRIGGER audit_log_refuses_inserts BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuses_inserts();
"""


def _sql(postgres: EmbeddedPostgres, statement: str) -> list[tuple[object, ...]]:
    with psycopg.connect(postgres.url.replace("+psycopg", "")) as connection:
        cursor = connection.execute(statement)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture
def failing_audit(client: TestClient, postgres: EmbeddedPostgres) -> Iterator[TestClient]:
    """The running app with audit_log INSERTs raising; the trigger is dropped afterwards."""
    _sql(postgres, FAILING_AUDIT)
    try:
        yield client
    finally:
        _sql(postgres, "DROP TRIGGER audit_log_refuses_inserts ON audit_log; DROP FUNCTION audit_log_refuses_inserts()")


def test_enrolment_fails_with_503_and_stores_nothing_when_its_audit_entry_cannot_be_written(
    failing_audit: TestClient, faces_dir: Path, postgres: EmbeddedPostgres
) -> None:
    response = post_photo(failing_audit, "/enroll", faces_dir, "lfw_al_gore/1.jpg", subject="Al Gore", collection="new")

    assert response.status_code == 503
    assert error_code(response) == "AUDIT_UNAVAILABLE"
    assert response.headers["Retry-After"] == "5"
    assert _sql(postgres, "SELECT count(*) FROM faces") == [(0,)]
    assert _sql(postgres, "SELECT count(*) FROM subjects") == [(0,)]
    assert _sql(postgres, "SELECT name FROM collections") == [("default",)]


def test_identify_fails_with_503_when_its_audit_entry_cannot_be_written(
    client: TestClient, faces_dir: Path, postgres: EmbeddedPostgres
) -> None:
    enrol(client, faces_dir, "lfw_al_gore/1.jpg", "Al Gore")
    _sql(postgres, FAILING_AUDIT)
    try:
        response = post_photo(client, "/identify", faces_dir, "lfw_al_gore/2.jpg")
    finally:
        _sql(postgres, "DROP TRIGGER audit_log_refuses_inserts ON audit_log; DROP FUNCTION audit_log_refuses_inserts()")

    assert response.status_code == 503
    assert error_code(response) == "AUDIT_UNAVAILABLE"


def test_verify_fails_with_503_when_its_audit_entry_cannot_be_written(
    failing_audit: TestClient, faces_dir: Path
) -> None:
    photo = (faces_dir / "lfw_al_gore/1.jpg").read_bytes()

    response = failing_audit.post("/verify", files={"image": ("a.jpg", photo), "image_b": ("b.jpg", photo)})

    assert response.status_code == 503
    assert error_code(response) == "AUDIT_UNAVAILABLE"


def test_key_creation_fails_with_503_and_makes_no_key_when_its_audit_entry_cannot_be_written(
    failing_audit: TestClient, postgres: EmbeddedPostgres
) -> None:
    keys_before = _sql(postgres, "SELECT count(*) FROM api_keys")

    response = failing_audit.post("/keys", json={"name": "never", "scopes": ["detect"]})

    assert response.status_code == 503
    assert error_code(response) == "AUDIT_UNAVAILABLE"
    assert "key" not in response.json()
    assert _sql(postgres, "SELECT count(*) FROM api_keys") == keys_before
    assert _sql(postgres, "SELECT count(*) FROM api_keys WHERE name = 'never'") == [(0,)]


def test_a_subject_deletion_is_rolled_back_when_its_receipt_cannot_be_written(
    client: TestClient, faces_dir: Path, postgres: EmbeddedPostgres
) -> None:
    enrolled = enrol(client, faces_dir, "lfw_al_gore/1.jpg", "Al Gore")
    _sql(postgres, FAILING_AUDIT)
    try:
        response = client.delete(f"/subjects/{enrolled['subject_id']}")
    finally:
        _sql(postgres, "DROP TRIGGER audit_log_refuses_inserts ON audit_log; DROP FUNCTION audit_log_refuses_inserts()")

    assert response.status_code == 503
    assert client.get(f"/subjects/{enrolled['subject_id']}").json()["face_count"] == 1


def test_a_rejected_enrolment_fails_with_503_when_even_its_failure_cannot_be_recorded(
    failing_audit: TestClient, faces_dir: Path
) -> None:
    response = post_photo(failing_audit, "/enroll", faces_dir, "_noface/3_coffee.png", subject="Nobody")

    assert response.status_code == 503
    assert error_code(response) == "AUDIT_UNAVAILABLE"
