"""POST /identify: nearest subjects per face through pgvector's HNSW index, and 'unknown'."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from app.db.embedded import EmbeddedPostgres
from tests.api.helpers import enrol, error_code, identify, post_photo


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def test_identify_enrolled_image_returns_that_subject(client: TestClient, faces_dir: Path) -> None:
    enrolled = enrol(client, faces_dir, "lfw_al_gore/1.jpg", "Al Gore")
    enrol(client, faces_dir, "anthony_hopkins/1.jpg", "Anthony Hopkins")

    body = identify(client, faces_dir, "lfw_al_gore/1.jpg")

    face = body["faces"][0]
    assert face["match"]["subject_id"] == enrolled["subject_id"]
    assert face["match"]["subject"] == "Al Gore"
    assert face["match"]["similarity"] >= 0.99
    assert face["candidates"][0] == face["match"]


def test_identify_on_empty_gallery_is_200_with_unknown_faces(client: TestClient, faces_dir: Path) -> None:
    body = identify(client, faces_dir, "lfw_al_gore/1.jpg")

    assert body["faces_detected"] == 1
    assert body["faces"][0]["candidates"] == []
    assert body["faces"][0]["match"] is None


def test_identify_image_without_faces_is_200_with_no_faces(client: TestClient, faces_dir: Path) -> None:
    enrol(client, faces_dir, "lfw_al_gore/1.jpg", "Al Gore")

    body = identify(client, faces_dir, "_noface/1_pilatus800.jpg")

    assert body["faces"] == []
    assert body["faces_detected"] == 0


def test_identify_returns_unknown_below_threshold(client: TestClient, faces_dir: Path) -> None:
    enrol(client, faces_dir, "lfw_al_gore/1.jpg", "Al Gore")

    body = identify(client, faces_dir, "lfw_al_gore/2.jpg", threshold=1.0)

    face = body["faces"][0]
    assert body["threshold"] == 1.0
    assert face["match"] is None
    assert face["candidates"][0]["subject"] == "Al Gore"
    assert face["candidates"][0]["similarity"] < 1.0


def test_identify_uses_configured_threshold_by_default(client: TestClient, faces_dir: Path) -> None:
    body = identify(client, faces_dir, "lfw_al_gore/1.jpg")

    assert body["threshold"] == 0.5


def test_identify_groups_candidates_by_subject_and_limits_to_top_k(client: TestClient, faces_dir: Path) -> None:
    for number in (1, 2, 3):
        enrol(client, faces_dir, f"lfw_al_gore/{number}.jpg", "Al Gore", on_multiple_faces="largest")
    for subject, photo in [
        ("Hopkins", "anthony_hopkins/1.jpg"),
        ("Lennon", "john_lennon/1.jpg"),
        ("Clapton", "eric_clapton/1.jpg"),
        ("Adams", "amy_adams/1.jpg"),
    ]:
        enrol(client, faces_dir, photo, subject)

    body = identify(client, faces_dir, "lfw_al_gore/1.jpg", top_k=3)

    candidates = body["faces"][0]["candidates"]
    assert len(candidates) == 3
    assert len({c["subject_id"] for c in candidates}) == 3
    similarities = [c["similarity"] for c in candidates]
    assert similarities == sorted(similarities, reverse=True)


def test_identify_reports_every_face_largest_first_up_to_max_faces(client: TestClient, faces_dir: Path) -> None:
    everything = identify(client, faces_dir, "_groups/1_multiface.jpg")

    limited = identify(client, faces_dir, "_groups/1_multiface.jpg", max_faces=2)

    areas = [(f["box"]["x2"] - f["box"]["x1"]) * (f["box"]["y2"] - f["box"]["y1"]) for f in everything["faces"]]
    assert len(everything["faces"]) == 6
    assert areas == sorted(areas, reverse=True)
    assert limited["faces_detected"] == everything["faces_detected"] == 6
    assert [f["box"] for f in limited["faces"]] == [f["box"] for f in everything["faces"][:2]]


def test_identify_searches_only_the_requested_collection(client: TestClient, faces_dir: Path) -> None:
    enrol(client, faces_dir, "lfw_al_gore/1.jpg", "Al Gore", collection="staff")
    enrol(client, faces_dir, "anthony_hopkins/1.jpg", "Anthony Hopkins", collection="visitors")

    body = identify(client, faces_dir, "lfw_al_gore/1.jpg", collection="visitors")

    assert [c["subject"] for c in body["faces"][0]["candidates"]] == ["Anthony Hopkins"]


def test_identify_unknown_collection_is_404(client: TestClient, faces_dir: Path) -> None:
    response = post_photo(client, "/identify", faces_dir, "lfw_al_gore/1.jpg", collection="nope")

    assert response.status_code == 404
    assert error_code(response) == "COLLECTION_NOT_FOUND"


def test_identify_ignores_faces_of_other_models(
    client: TestClient, faces_dir: Path, postgres: EmbeddedPostgres
) -> None:
    enrol(client, faces_dir, "lfw_al_gore/1.jpg", "Al Gore")
    with psycopg.connect(_plain(postgres.url)) as connection:
        connection.execute("UPDATE faces SET model_id = 'some-other-model'")

    body = identify(client, faces_dir, "lfw_al_gore/1.jpg")

    assert body["faces"][0]["candidates"] == []


def test_identify_never_returns_a_deleted_subject(client: TestClient, faces_dir: Path) -> None:
    gore = enrol(client, faces_dir, "lfw_al_gore/1.jpg", "Al Gore")
    enrol(client, faces_dir, "lfw_al_gore/2.jpg", "Al Gore")
    enrol(client, faces_dir, "anthony_hopkins/1.jpg", "Anthony Hopkins")

    assert client.delete(f"/subjects/{gore['subject_id']}").status_code == 200
    body = identify(client, faces_dir, "lfw_al_gore/1.jpg", top_k=100)

    assert [c["subject"] for c in body["faces"][0]["candidates"]] == ["Anthony Hopkins"]


@pytest.mark.parametrize(("field", "value"), [("top_k", 0), ("top_k", 101), ("max_faces", 0), ("threshold", 1.5)])
def test_identify_rejects_out_of_range_parameters(
    client: TestClient, faces_dir: Path, field: str, value: float
) -> None:
    form: dict[str, Any] = {field: value}

    response = post_photo(client, "/identify", faces_dir, "lfw_al_gore/1.jpg", **form)

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
