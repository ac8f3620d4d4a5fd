"""POST /enroll: one face per image, subjects created on first use, no duplicates, quality gates."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.db.embedded import EmbeddedPostgres
from tests.api.helpers import enrol, error_code, post_photo
from tests.conftest import make_settings, reset_database, running_app


def test_enroll_creates_subject_and_face(client: TestClient, faces_dir: Path) -> None:
    response = post_photo(client, "/enroll", faces_dir, "lfw_al_gore/1.jpg", subject="Al Gore")

    assert response.status_code == 201
    body = response.json()
    assert body["subject"] == "Al Gore"
    assert body["collection"] == "default"
    assert body["created"] is True
    assert body["subject_created"] is True
    assert body["model_id"] == "facenet-vggface2-20180402"
    assert body["face"]["detection_probability"] > 0.9
    assert set(body["face"]["landmarks"]) == {"left_eye", "right_eye", "nose", "mouth_left", "mouth_right"}
    assert "embedding" not in response.text


def test_enroll_same_image_again_returns_existing_face_with_200(client: TestClient, faces_dir: Path) -> None:
    first = enrol(client, faces_dir, "lfw_al_gore/1.jpg", "Al Gore")

    again = post_photo(client, "/enroll", faces_dir, "lfw_al_gore/1.jpg", subject="Al Gore")

    assert again.status_code == 200
    assert again.json()["face_id"] == first["face_id"]
    assert again.json()["created"] is False
    faces = client.get(f"/subjects/{first['subject_id']}/faces").json()["items"]
    assert len(faces) == 1


def test_enroll_second_image_adds_face_to_existing_subject(client: TestClient, faces_dir: Path) -> None:
    first = enrol(client, faces_dir, "lfw_al_gore/1.jpg", "Al Gore")

    second = enrol(client, faces_dir, "lfw_al_gore/2.jpg", "Al Gore")

    assert second["subject_id"] == first["subject_id"]
    assert second["subject_created"] is False
    assert second["face_id"] != first["face_id"]
    assert client.get(f"/subjects/{first['subject_id']}").json()["face_count"] == 2


def test_enroll_same_name_in_two_collections_makes_two_subjects(client: TestClient, faces_dir: Path) -> None:
    in_default = enrol(client, faces_dir, "lfw_al_gore/1.jpg", "Al Gore")

    in_staff = enrol(client, faces_dir, "lfw_al_gore/1.jpg", "Al Gore", collection="staff")

    assert in_staff["subject_id"] != in_default["subject_id"]
    assert in_staff["collection"] == "staff"


def test_enroll_stores_metadata_on_new_subject(client: TestClient, faces_dir: Path) -> None:
    body = enrol(client, faces_dir, "lfw_al_gore/1.jpg", "Al Gore", metadata='{"employee_id": 42}')

    subject = client.get(f"/subjects/{body['subject_id']}").json()

    assert subject["metadata"] == {"employee_id": 42}


@pytest.mark.parametrize("metadata", ["[1, 2]", "not json", '"text"'])
def test_enroll_rejects_metadata_that_is_not_a_json_object(client: TestClient, faces_dir: Path, metadata: str) -> None:
    response = post_photo(client, "/enroll", faces_dir, "lfw_al_gore/1.jpg", subject="Al Gore", metadata=metadata)

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"


def test_enroll_without_face_is_422_no_face_detected(client: TestClient, faces_dir: Path) -> None:
    response = post_photo(client, "/enroll", faces_dir, "_noface/3_coffee.png", subject="Nobody")

    assert response.status_code == 422
    assert error_code(response) == "NO_FACE_DETECTED"
    assert client.get("/subjects").json()["total"] == 0


def test_enroll_with_several_faces_is_422_listing_their_boxes(client: TestClient, faces_dir: Path) -> None:
    response = post_photo(client, "/enroll", faces_dir, "_groups/2_two_people.jpg", subject="Someone")

    assert response.status_code == 422
    assert error_code(response) == "MULTIPLE_FACES"
    boxes = [face["box"] for face in response.json()["error"]["details"]["faces"]]
    assert len(boxes) == 2
    assert all(set(box) == {"x1", "y1", "x2", "y2"} for box in boxes)


def test_enroll_largest_face_when_asked(client: TestClient, faces_dir: Path) -> None:
    detected = post_photo(client, "/detect", faces_dir, "_groups/1_multiface.jpg").json()["faces"]

    response = post_photo(
        client, "/enroll", faces_dir, "_groups/1_multiface.jpg", subject="Largest", on_multiple_faces="largest"
    )

    assert response.status_code == 201
    assert response.json()["face"]["box"] == detected[0]["box"]


def test_enroll_without_subject_is_422_validation_error(client: TestClient, faces_dir: Path) -> None:
    response = post_photo(client, "/enroll", faces_dir, "lfw_al_gore/1.jpg")

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    fields = [problem["field"] for problem in response.json()["error"]["details"]["errors"]]
    assert "body.subject" in fields


@pytest.mark.parametrize("collection", ["has space", "-leading-dash", "x" * 101, "a/b"])
def test_enroll_rejects_invalid_collection_names(client: TestClient, faces_dir: Path, collection: str) -> None:
    response = post_photo(client, "/enroll", faces_dir, "lfw_al_gore/1.jpg", subject="Al Gore", collection=collection)

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"


@pytest.mark.parametrize("name", ["Zoë Ångström 李小龙", "Robert'); DROP TABLE subjects;--"])
def test_enroll_keeps_unicode_and_sql_looking_names_verbatim(client: TestClient, faces_dir: Path, name: str) -> None:
    body = enrol(client, faces_dir, "lfw_al_gore/1.jpg", name)

    subject = client.get(f"/subjects/{body['subject_id']}").json()

    assert subject["name"] == name


@pytest.fixture(scope="module")
def strict_client(
    postgres: EmbeddedPostgres, weights_file: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """An app whose enrolment gate wants faces >= 120 px and detection probability >= 0.99999."""
    settings: Settings = make_settings(
        postgres=postgres,
        weights_file=weights_file,
        data_dir=tmp_path_factory.mktemp("strict"),
        min_face_px=120,
        min_detection_probability=0.99999,
    )
    with running_app(settings) as client:
        yield client


def test_enroll_rejects_small_face_naming_the_min_face_px_rule(
    strict_client: TestClient, postgres: EmbeddedPostgres, faces_dir: Path
) -> None:
    reset_database(postgres.url)

    response = post_photo(strict_client, "/enroll", faces_dir, "lfw_al_gore/1.jpg", subject="Al Gore")

    assert response.status_code == 422
    assert error_code(response) == "FACE_QUALITY_TOO_LOW"
    details = response.json()["error"]["details"]
    assert details["rule"] == "min_face_px"
    assert details["limit"] == 120
    assert details["value"] < 120


def test_enroll_rejects_uncertain_face_naming_the_probability_rule(
    strict_client: TestClient, postgres: EmbeddedPostgres, faces_dir: Path
) -> None:
    reset_database(postgres.url)

    response = post_photo(strict_client, "/enroll", faces_dir, "kate_siegel/1.jpg", subject="Kate Siegel")

    assert response.status_code == 422
    assert error_code(response) == "FACE_QUALITY_TOO_LOW"
    details = response.json()["error"]["details"]
    assert details["rule"] == "min_detection_probability"
    assert details["value"] < 0.99999


def test_enroll_retry_with_same_idempotency_key_returns_original_and_stores_nothing_new(
    client: TestClient, faces_dir: Path
) -> None:
    headers = {"Idempotency-Key": "enrol-gore-1"}
    first = post_photo_with_headers(client, faces_dir, "lfw_al_gore/1.jpg", headers, subject="Al Gore")

    retry = post_photo_with_headers(client, faces_dir, "lfw_al_gore/1.jpg", headers, subject="Al Gore")

    assert first.status_code == 201
    assert retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert client.get(f"/subjects/{first.json()['subject_id']}").json()["face_count"] == 1


def test_enroll_same_idempotency_key_with_different_payload_is_409(client: TestClient, faces_dir: Path) -> None:
    headers = {"Idempotency-Key": "enrol-1"}
    post_photo_with_headers(client, faces_dir, "lfw_al_gore/1.jpg", headers, subject="Al Gore")

    other_image = post_photo_with_headers(client, faces_dir, "lfw_al_gore/2.jpg", headers, subject="Al Gore")
    other_subject = post_photo_with_headers(client, faces_dir, "lfw_al_gore/1.jpg", headers, subject="Someone")

    assert other_image.status_code == 409
    assert error_code(other_image) == "IDEMPOTENCY_CONFLICT"
    assert other_subject.status_code == 409
    assert client.get("/subjects").json()["total"] == 1


def test_enroll_rejected_request_does_not_consume_its_idempotency_key(client: TestClient, faces_dir: Path) -> None:
    headers = {"Idempotency-Key": "enrol-2"}
    rejected = post_photo_with_headers(client, faces_dir, "_noface/3_coffee.png", headers, subject="Al Gore")

    accepted = post_photo_with_headers(client, faces_dir, "lfw_al_gore/1.jpg", headers, subject="Al Gore")

    assert rejected.status_code == 422
    assert accepted.status_code == 201


def test_concurrent_retries_with_one_idempotency_key_store_one_face(client: TestClient, faces_dir: Path) -> None:
    headers = {"Idempotency-Key": "enrol-concurrent"}
    with ThreadPoolExecutor(max_workers=6) as workers:
        responses = list(
            workers.map(
                lambda _: post_photo_with_headers(client, faces_dir, "lfw_al_gore/1.jpg", headers, subject="Al Gore"),
                range(6),
            )
        )

    assert {response.status_code for response in responses} == {201}
    assert len({response.json()["face_id"] for response in responses}) == 1
    assert client.get("/subjects").json()["items"][0]["face_count"] == 1


def test_concurrent_first_enrolments_of_one_new_subject_create_exactly_one_subject(
    client: TestClient, faces_dir: Path
) -> None:
    photos = ["lfw_al_gore/1.jpg", "lfw_al_gore/2.jpg", "lfw_al_gore/4.jpg", "lfw_al_gore/5.jpg"]
    with ThreadPoolExecutor(max_workers=len(photos)) as workers:
        responses = list(
            workers.map(lambda photo: post_photo(client, "/enroll", faces_dir, photo, subject="New Person"), photos)
        )

    assert all(response.status_code == 201 for response in responses), [r.text for r in responses]
    assert len({response.json()["subject_id"] for response in responses}) == 1
    assert sum(response.json()["subject_created"] for response in responses) == 1
    listing = client.get("/subjects").json()
    assert listing["total"] == 1
    assert listing["items"][0]["face_count"] == len(photos)


def post_photo_with_headers(
    client: TestClient, faces_dir: Path, relative: str, headers: dict[str, str], **form: str
) -> Any:
    return client.post(
        "/enroll",
        files={"image": (Path(relative).name, (faces_dir / relative).read_bytes())},
        data=form,
        headers=headers,
    )
