"""Gallery management: collections, subjects and faces; deletes are for good."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
from fastapi.testclient import TestClient

from app.db.embedded import EmbeddedPostgres
from tests.api.helpers import enrol, error_code


def test_list_collections_counts_subjects_and_faces(client: TestClient, faces_dir: Path) -> None:
    enrol(client, faces_dir, "lfw_al_gore/1.jpg", "Al Gore", collection="staff")
    enrol(client, faces_dir, "lfw_al_gore/2.jpg", "Al Gore", collection="staff")
    enrol(client, faces_dir, "amy_adams/1.jpg", "Amy Adams", collection="staff")

    items = client.get("/collections").json()["items"]

    assert [(c["name"], c["subject_count"], c["face_count"]) for c in items] == [("default", 0, 0), ("staff", 2, 3)]


def test_delete_collection_removes_it_with_its_subjects_and_faces(
    client: TestClient, faces_dir: Path, postgres: EmbeddedPostgres
) -> None:
    enrol(client, faces_dir, "lfw_al_gore/1.jpg", "Al Gore", collection="staff")
    enrol(client, faces_dir, "amy_adams/1.jpg", "Amy Adams")

    response = client.delete("/collections/staff")

    assert response.status_code == 200
    assert response.json() == {"collection": "staff", "deleted_subjects": 1, "deleted_faces": 1}
    assert [c["name"] for c in client.get("/collections").json()["items"]] == ["default"]
    with psycopg.connect(postgres.url.replace("+psycopg", "")) as connection:
        assert connection.execute("SELECT count(*) FROM faces").fetchone() == (1,)


def test_delete_default_collection_empties_but_keeps_it(client: TestClient, faces_dir: Path) -> None:
    enrol(client, faces_dir, "amy_adams/1.jpg", "Amy Adams")

    response = client.delete("/collections/default")

    assert response.json()["deleted_faces"] == 1
    assert client.get("/collections").json()["items"][0]["subject_count"] == 0


def test_delete_unknown_collection_is_404(client: TestClient) -> None:
    response = client.delete("/collections/nope")

    assert response.status_code == 404
    assert error_code(response) == "COLLECTION_NOT_FOUND"


# One photo each of different people, for tests that need several subjects.
PEOPLE = [
    "amy_adams/1.jpg",
    "kate_siegel/1.jpg",
    "paul_rudd/1.jpg",
    "steve_carell/1.jpg",
    "shea_whigham/1.jpg",
    "lin_manuel_miranda/1.png",
]


def test_list_subjects_pages_and_filters_by_collection(client: TestClient, faces_dir: Path) -> None:
    for name, photo in zip(("Carol", "Alice", "Bob"), PEOPLE, strict=False):
        enrol(client, faces_dir, photo, name)
    enrol(client, faces_dir, "amy_adams/1.jpg", "Dave", collection="other")

    first = client.get("/subjects", params={"collection": "default", "limit": 2}).json()
    second = client.get("/subjects", params={"collection": "default", "limit": 2, "offset": 2}).json()
    everyone = client.get("/subjects").json()

    assert [s["name"] for s in first["items"]] == ["Alice", "Bob"]
    assert first["total"] == 3
    assert [s["name"] for s in second["items"]] == ["Carol"]
    assert everyone["total"] == 4


def test_list_subjects_of_unknown_collection_is_404(client: TestClient) -> None:
    response = client.get("/subjects", params={"collection": "nope"})

    assert response.status_code == 404
    assert error_code(response) == "COLLECTION_NOT_FOUND"


def test_get_subject_reads_it_and_unknown_id_is_404(client: TestClient, faces_dir: Path) -> None:
    enrolled = enrol(client, faces_dir, "amy_adams/1.jpg", "Amy Adams")

    found = client.get(f"/subjects/{enrolled['subject_id']}")
    missing = client.get(f"/subjects/{uuid.uuid4()}")

    assert found.json()["name"] == "Amy Adams"
    assert found.json()["face_count"] == 1
    assert missing.status_code == 404
    assert error_code(missing) == "SUBJECT_NOT_FOUND"


def test_get_subject_with_malformed_id_is_422(client: TestClient) -> None:
    response = client.get("/subjects/not-a-uuid")

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"


def test_patch_subject_renames_and_replaces_metadata(client: TestClient, faces_dir: Path) -> None:
    enrolled = enrol(client, faces_dir, "amy_adams/1.jpg", "Amy Adams")

    response = client.patch(f"/subjects/{enrolled['subject_id']}", json={"name": "Amy Lou Adams", "metadata": {"a": 1}})

    assert response.status_code == 200
    assert response.json()["name"] == "Amy Lou Adams"
    assert response.json()["metadata"] == {"a": 1}
    assert client.get(f"/subjects/{enrolled['subject_id']}").json()["name"] == "Amy Lou Adams"


def test_patch_subject_onto_a_taken_name_is_409(client: TestClient, faces_dir: Path) -> None:
    amy = enrol(client, faces_dir, "amy_adams/1.jpg", "Amy Adams")
    enrol(client, faces_dir, "lfw_al_gore/1.jpg", "Al Gore")

    response = client.patch(f"/subjects/{amy['subject_id']}", json={"name": "Al Gore"})

    assert response.status_code == 409
    assert error_code(response) == "SUBJECT_NAME_CONFLICT"
    assert client.get(f"/subjects/{amy['subject_id']}").json()["name"] == "Amy Adams"


def test_patch_subject_rejects_unknown_fields_and_unknown_ids(client: TestClient, faces_dir: Path) -> None:
    amy = enrol(client, faces_dir, "amy_adams/1.jpg", "Amy Adams")

    unknown_field = client.patch(f"/subjects/{amy['subject_id']}", json={"embedding": [0.1]})
    unknown_id = client.patch(f"/subjects/{uuid.uuid4()}", json={"name": "X"})

    assert unknown_field.status_code == 422
    assert error_code(unknown_field) == "VALIDATION_ERROR"
    assert unknown_id.status_code == 404
    assert error_code(unknown_id) == "SUBJECT_NOT_FOUND"


def test_delete_subject_removes_its_embeddings_for_good(
    client: TestClient, faces_dir: Path, postgres: EmbeddedPostgres
) -> None:
    amy = enrol(client, faces_dir, "amy_adams/1.jpg", "Amy Adams")
    enrol(client, faces_dir, "amy_adams/1.jpg", "Amy Adams", collection="other")

    response = client.delete(f"/subjects/{amy['subject_id']}")

    assert response.status_code == 200
    receipt = response.json()
    assert (receipt["id"], receipt["name"], receipt["collection"]) == (amy["subject_id"], "Amy Adams", "default")
    assert receipt["deleted_faces"] == 1
    assert client.get(f"/subjects/{amy['subject_id']}").status_code == 404
    assert client.delete(f"/subjects/{amy['subject_id']}").status_code == 404
    with psycopg.connect(postgres.url.replace("+psycopg", "")) as connection:
        remaining = connection.execute("SELECT count(*) FROM faces WHERE subject_id = %s", (amy["subject_id"],))
        assert remaining.fetchone() == (0,)


def test_list_faces_shows_metadata_but_never_embeddings(client: TestClient, faces_dir: Path) -> None:
    amy = enrol(client, faces_dir, "amy_adams/1.jpg", "Amy Adams")

    response = client.get(f"/subjects/{amy['subject_id']}/faces")

    assert response.status_code == 200
    (face,) = response.json()["items"]
    assert face["id"] == amy["face_id"]
    assert face["box"] == amy["face"]["box"]
    assert len(face["image_sha256"]) == 64
    assert "embedding" not in face


def test_list_faces_of_unknown_subject_is_404(client: TestClient) -> None:
    response = client.get(f"/subjects/{uuid.uuid4()}/faces")

    assert response.status_code == 404
    assert error_code(response) == "SUBJECT_NOT_FOUND"


def test_delete_face_removes_it_then_404(client: TestClient, faces_dir: Path) -> None:
    amy = enrol(client, faces_dir, "amy_adams/1.jpg", "Amy Adams")

    first = client.delete(f"/faces/{amy['face_id']}")
    second = client.delete(f"/faces/{amy['face_id']}")

    assert first.status_code == 204
    assert second.status_code == 404
    assert error_code(second) == "FACE_NOT_FOUND"
    assert client.get(f"/subjects/{amy['subject_id']}").json()["face_count"] == 0


def test_list_subjects_q_matches_a_name_substring_in_any_case_with_wildcards_taken_literally(
    client: TestClient, faces_dir: Path
) -> None:
    for name, photo in zip(("Ann Lee", "JOANNA", "Bob", "100% Real", "a_b", "axb"), PEOPLE, strict=True):
        enrol(client, faces_dir, photo, name)

    found = {q: client.get("/subjects", params={"q": q}).json() for q in ("ann", "%", "_", "zzz")}

    assert [s["name"] for s in found["ann"]["items"]] == ["Ann Lee", "JOANNA"]
    assert found["ann"]["total"] == 2
    assert [s["name"] for s in found["%"]["items"]] == ["100% Real"]
    assert [s["name"] for s in found["_"]["items"]] == ["a_b"]
    assert found["zzz"] == {"items": [], "total": 0, "limit": 100, "offset": 0}


def test_list_subjects_q_with_a_nul_character_is_422_naming_q(client: TestClient) -> None:
    response = client.get("/subjects", params={"q": "ann\x00"})

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert [problem["field"] for problem in response.json()["error"]["details"]["errors"]] == ["query.q"]
