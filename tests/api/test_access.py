"""API keys, scopes, collection limits, rate limits, the audit log, retention and CORS."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from app.db.embedded import EmbeddedPostgres
from app.services.access import Scope
from tests.api.helpers import enrol, error_code
from tests.conftest import api_routes, issue_key, make_settings, running_app

PUBLIC = {"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/"}

# The scope each route needs; admin keys may do everything.
ROUTE_SCOPES: dict[tuple[str, str], Scope] = {
    ("POST", "/detect"): Scope.DETECT,
    ("POST", "/verify"): Scope.VERIFY,
    ("POST", "/identify"): Scope.IDENTIFY,
    ("POST", "/enroll"): Scope.ENROLL,
    ("GET", "/collections"): Scope.MANAGE,
    ("PATCH", "/collections/{name}"): Scope.MANAGE,
    ("DELETE", "/collections/{name}"): Scope.MANAGE,
    ("GET", "/subjects"): Scope.MANAGE,
    ("GET", "/subjects/{subject_id}"): Scope.MANAGE,
    ("PATCH", "/subjects/{subject_id}"): Scope.MANAGE,
    ("DELETE", "/subjects/{subject_id}"): Scope.MANAGE,
    ("GET", "/subjects/{subject_id}/faces"): Scope.MANAGE,
    ("DELETE", "/faces/{face_id}"): Scope.MANAGE,
    ("POST", "/keys"): Scope.ADMIN,
    ("GET", "/keys"): Scope.ADMIN,
    ("DELETE", "/keys/{key_id}"): Scope.ADMIN,
    ("POST", "/keys/{key_id}/rotate"): Scope.ADMIN,
    ("GET", "/audit"): Scope.ADMIN,
    ("GET", "/metrics"): Scope.METRICS,
}
NO_KEY = {"Authorization": ""}


def _operations(client: TestClient) -> list[tuple[str, str]]:
    return sorted(
        (method, route.path)
        for route in api_routes(client.app.routes)  # type: ignore[attr-defined]
        for method in route.methods or ()
    )


def _call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    concrete = re.sub(r"\{name\}", "default", path)
    concrete = re.sub(r"\{[a-z_]+\}", str(uuid.uuid4()), concrete)
    return client.request(method, concrete, headers=headers)


def test_every_route_but_probes_and_docs_needs_a_key(client: TestClient) -> None:
    operations = _operations(client)

    reachable = [
        (method, path)
        for method, path in operations
        if path not in PUBLIC and _call(client, method, path, NO_KEY).status_code != 401
    ]

    assert reachable == []
    assert {(m, p) for m, p in operations if p not in PUBLIC} == set(ROUTE_SCOPES)


def test_unknown_and_malformed_keys_are_401_with_www_authenticate(client: TestClient) -> None:
    for token in ("frk_0000000000_" + "x" * 43, "not-a-facerec-key", "frk_"):
        response = client.get("/subjects", headers={"Authorization": f"Bearer {token}"})

        assert response.status_code == 401
        assert error_code(response) == "UNAUTHENTICATED"
        assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("scope", list(Scope))
def test_each_scope_opens_exactly_its_routes(client: TestClient, scope: Scope) -> None:
    token = issue_key(client, [scope])

    outcomes = {
        operation: _call(client, *operation, headers={"X-API-Key": token, "Authorization": ""}).status_code
        for operation in ROUTE_SCOPES
    }

    for operation, needed in ROUTE_SCOPES.items():
        if scope in (needed, Scope.ADMIN):
            assert outcomes[operation] not in (401, 403), operation
        else:
            assert outcomes[operation] == 403, operation


def test_key_works_as_bearer_and_as_x_api_key(client: TestClient) -> None:
    token = issue_key(client, [Scope.MANAGE])

    bearer = client.get("/subjects", headers={"Authorization": f"Bearer {token}"})
    header = client.get("/subjects", headers={"Authorization": "", "X-API-Key": token})

    assert bearer.status_code == 200
    assert header.status_code == 200


def test_a_key_records_when_it_was_last_used(client: TestClient) -> None:
    created = client.post("/keys", json={"name": "camera-2", "scopes": ["manage"]}).json()
    unused = next(item for item in client.get("/keys").json()["items"] if item["id"] == created["id"])

    assert client.get("/subjects", headers={"Authorization": f"Bearer {created['key']}"}).status_code == 200

    used = next(item for item in client.get("/keys").json()["items"] if item["id"] == created["id"])
    assert unused["last_used_at"] is None
    assert used["last_used_at"] is not None


def test_created_key_is_shown_once_and_only_its_hash_is_stored(client: TestClient, postgres: EmbeddedPostgres) -> None:
    created = client.post("/keys", json={"name": "camera-1", "scopes": ["identify"]})

    assert created.status_code == 201
    token = created.json()["key"]
    assert token.startswith("frk_")
    listed = client.get("/keys").json()["items"]
    assert all("key" not in item for item in listed)
    assert token not in client.get("/keys").text
    with psycopg.connect(postgres.url.replace("+psycopg", "")) as connection:
        rows = connection.execute("SELECT row_to_json(k)::text FROM api_keys k").fetchall()
    stored = " ".join(row[0] for row in rows)
    secret = token.split("_", 2)[2]
    assert secret not in stored
    assert token not in stored


def test_revoked_key_stops_working_at_once(client: TestClient) -> None:
    created = client.post("/keys", json={"name": "temp", "scopes": ["manage"]}).json()
    headers = {"X-API-Key": created["key"], "Authorization": ""}
    assert client.get("/subjects", headers=headers).status_code == 200

    revoked = client.delete(f"/keys/{created['id']}")

    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert client.get("/subjects", headers=headers).status_code == 401


def test_rotated_key_replaces_the_old_one_with_the_same_scopes(client: TestClient) -> None:
    old = client.post("/keys", json={"name": "svc", "scopes": ["manage", "detect"], "collections": ["default"]}).json()

    rotated = client.post(f"/keys/{old['id']}/rotate")

    new = rotated.json()
    assert rotated.status_code == 201
    assert new["key"] != old["key"]
    assert (new["scopes"], new["collections"], new["name"]) == (old["scopes"], old["collections"], old["name"])
    assert client.get("/subjects", headers={"X-API-Key": old["key"], "Authorization": ""}).status_code == 401
    assert client.get("/subjects", headers={"X-API-Key": new["key"], "Authorization": ""}).status_code == 200


def test_unknown_key_id_is_404(client: TestClient) -> None:
    response = client.delete(f"/keys/{uuid.uuid4()}")

    assert response.status_code == 404
    assert error_code(response) == "API_KEY_NOT_FOUND"


def test_key_limited_to_a_collection_is_refused_elsewhere(client: TestClient, faces_dir: Path) -> None:
    enrol(client, faces_dir, "lfw_al_gore/1.jpg", "Al Gore", collection="staff")
    other = enrol(client, faces_dir, "amy_adams/1.jpg", "Amy Adams", collection="visitors")
    token = issue_key(client, [Scope.ENROLL, Scope.IDENTIFY, Scope.MANAGE], collections=["staff"])
    headers = {"X-API-Key": token, "Authorization": ""}
    photo = (faces_dir / "lfw_al_gore/1.jpg").read_bytes()

    own = client.post("/identify", files={"image": ("a.jpg", photo)}, data={"collection": "staff"}, headers=headers)
    foreign = client.post(
        "/identify", files={"image": ("a.jpg", photo)}, data={"collection": "visitors"}, headers=headers
    )
    enrol_foreign = client.post(
        "/enroll", files={"image": ("a.jpg", photo)}, data={"subject": "X", "collection": "visitors"}, headers=headers
    )
    collections = client.get("/collections", headers=headers).json()["items"]
    subjects = client.get("/subjects", headers=headers).json()
    foreign_subject = client.get(f"/subjects/{other['subject_id']}", headers=headers)

    assert own.status_code == 200
    assert foreign.status_code == 403
    assert error_code(foreign) == "INSUFFICIENT_SCOPE"
    assert enrol_foreign.status_code == 403
    assert [c["name"] for c in collections] == ["staff"]
    assert [s["name"] for s in subjects["items"]] == ["Al Gore"]
    assert subjects["total"] == 1
    assert foreign_subject.status_code == 404


def _audit(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/audit", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_enrolment_identify_and_failures_are_audited(client: TestClient, faces_dir: Path) -> None:
    enrolled = enrol(client, faces_dir, "lfw_al_gore/1.jpg", "Al Gore")
    client.post("/identify", files={"image": ("a.jpg", (faces_dir / "lfw_al_gore/1.jpg").read_bytes())})
    client.post(
        "/enroll",
        files={"image": ("n.png", (faces_dir / "_noface/3_coffee.png").read_bytes())},
        data={"subject": "Nobody"},
    )

    entries = _audit(client, subject_id=enrolled["subject_id"])
    enrol_entries = _audit(client, action="enroll", limit=2)

    assert {(e["action"], e["outcome"]) for e in entries} >= {("enroll", "success"), ("identify", "success")}
    assert enrol_entries[0]["outcome"] == "NO_FACE_DETECTED"
    assert enrol_entries[1]["subject_ids"] == [enrolled["subject_id"]]
    assert all("embedding" not in str(e["details"]) for e in entries)


def test_subject_deletion_receipt_matches_what_was_deleted_and_is_audited(client: TestClient, faces_dir: Path) -> None:
    first = enrol(client, faces_dir, "lfw_al_gore/1.jpg", "Al Gore")
    enrol(client, faces_dir, "lfw_al_gore/2.jpg", "Al Gore")

    receipt = client.delete(f"/subjects/{first['subject_id']}").json()

    (entry,) = _audit(client, action="subject.delete", subject_id=first["subject_id"])
    assert receipt["deleted_faces"] == 2
    assert entry["details"]["faces_deleted"] == receipt["deleted_faces"]
    assert entry["subject_ids"] == [receipt["id"]]
    assert entry["collection"] == receipt["collection"] == "default"
    assert client.get(f"/subjects/{first['subject_id']}").status_code == 404


def test_key_changes_are_audited_and_the_audit_log_is_append_only(
    client: TestClient, postgres: EmbeddedPostgres
) -> None:
    created = client.post("/keys", json={"name": "audited", "scopes": ["detect"]}).json()
    client.delete(f"/keys/{created['id']}")

    actions = [e["action"] for e in _audit(client, limit=2)]

    assert actions == ["key.revoke", "key.create"]
    with (
        psycopg.connect(postgres.url.replace("+psycopg", "")) as connection,
        pytest.raises(psycopg.errors.RaiseException),
    ):
        connection.execute("DELETE FROM audit_log")


def test_audit_log_filters_by_time_and_pages(client: TestClient) -> None:
    before = client.get("/audit").json()["total"]
    for number in range(3):
        client.post("/keys", json={"name": f"k{number}", "scopes": ["detect"]})

    page = client.get("/audit", params={"action": "key.create", "limit": 2, "offset": 1}).json()
    future = client.get("/audit", params={"since": "2999-01-01T00:00:00Z"}).json()

    assert client.get("/audit").json()["total"] == before + 3
    assert len(page["items"]) == 2
    assert page["total"] >= 3
    assert future["items"] == []


def test_retention_purge_deletes_exactly_the_expired_faces(
    client: TestClient, faces_dir: Path, postgres: EmbeddedPostgres
) -> None:
    old = enrol(client, faces_dir, "lfw_al_gore/1.jpg", "Al Gore", collection="short")
    fresh = enrol(client, faces_dir, "lfw_al_gore/2.jpg", "Al Gore", collection="short")
    elsewhere = enrol(client, faces_dir, "amy_adams/1.jpg", "Amy Adams", collection="forever")
    assert client.patch("/collections/short", json={"retention_days": 30}).json()["retention_days"] == 30
    with psycopg.connect(postgres.url.replace("+psycopg", "")) as connection:
        connection.execute(
            "UPDATE faces SET created_at = now() - interval '31 days' WHERE id IN (%s, %s)",
            (old["face_id"], elsewhere["face_id"]),
        )
    services = client.app_state["services"]
    assert client.portal is not None

    report = client.portal.call(services.gallery.purge_expired)

    remaining = {f["id"] for f in client.get(f"/subjects/{old['subject_id']}/faces").json()["items"]}
    assert report.faces_deleted == 1
    assert remaining == {fresh["face_id"]}
    assert client.get(f"/subjects/{elsewhere['subject_id']}").json()["face_count"] == 1
    (entry,) = _audit(client, action="retention.purge", subject_id=old["subject_id"])
    assert entry["details"]["face_ids"] == [old["face_id"]]


@pytest.fixture(scope="module")
def limited_client(
    postgres: EmbeddedPostgres, weights_file: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    settings = make_settings(
        postgres=postgres,
        weights_file=weights_file,
        data_dir=tmp_path_factory.mktemp("limited"),
        rate_limit_identify_per_minute=2,
        rate_limit_verify_per_minute=0,
    )
    with running_app(settings) as client:
        yield client


def test_identify_over_the_rate_limit_is_429_with_retry_after(limited_client: TestClient) -> None:
    token = issue_key(limited_client, [Scope.IDENTIFY])
    headers = {"X-API-Key": token, "Authorization": ""}

    statuses = [limited_client.post("/identify", headers=headers).status_code for _ in range(3)]
    refused = limited_client.post("/identify", headers=headers)

    assert statuses[:2] == [422, 422]  # admitted (no image sent), then validated
    assert statuses[2] == 429
    assert error_code(refused) == "RATE_LIMITED"
    assert 1 <= int(refused.headers["Retry-After"]) <= 30


def test_auth_can_be_turned_off_for_local_development_with_a_loud_warning(
    postgres: EmbeddedPostgres, weights_file: tuple[Path, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(postgres=postgres, weights_file=weights_file, data_dir=tmp_path, auth_enabled=False)

    with running_app(settings) as client:
        response = client.get("/subjects")

    assert response.status_code == 200
    assert "AUTHENTICATION IS OFF" in caplog.text


def test_cors_is_off_by_default_and_allows_configured_origins(
    client: TestClient, postgres: EmbeddedPostgres, weights_file: tuple[Path, str], tmp_path: Path
) -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    default = client.options("/identify", headers=preflight)
    settings = make_settings(
        postgres=postgres, weights_file=weights_file, data_dir=tmp_path, cors_origins=["https://app.example"]
    )

    with running_app(settings) as configured:
        allowed = configured.options("/identify", headers=preflight)

    assert "access-control-allow-origin" not in default.headers
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
