"""POST /verify: one photo against a second photo or an enrolled subject."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.api.helpers import enrol, error_code


def _files(faces_dir: Path, **fields: str) -> dict[str, tuple[str, bytes]]:
    return {name: (Path(relative).name, (faces_dir / relative).read_bytes()) for name, relative in fields.items()}


def test_verify_same_photo_twice_is_same_person(client: TestClient, faces_dir: Path) -> None:
    files = _files(faces_dir, image="lfw_al_gore/1.jpg", image_b="lfw_al_gore/1.jpg")

    response = client.post("/verify", files=files)

    assert response.status_code == 200
    body = response.json()
    assert body["similarity"] >= 0.99
    assert body["same_person"] is True
    assert body["threshold"] == 0.5
    assert body["face_b"] is not None


def test_verify_pair_below_threshold_is_not_same_person(client: TestClient, faces_dir: Path) -> None:
    files = _files(faces_dir, image="lfw_al_gore/1.jpg", image_b="amy_adams/1.jpg")

    response = client.post("/verify", files=files, data={"threshold": "1.0"})

    assert response.status_code == 200
    assert response.json()["similarity"] < 1.0
    assert response.json()["same_person"] is False


def test_verify_against_enrolled_subject_uses_its_best_face(client: TestClient, faces_dir: Path) -> None:
    enrolled = enrol(client, faces_dir, "lfw_al_gore/1.jpg", "Al Gore")
    enrol(client, faces_dir, "lfw_al_gore/2.jpg", "Al Gore")

    response = client.post("/verify", files=_files(faces_dir, image="lfw_al_gore/1.jpg"), data={"subject": "Al Gore"})

    assert response.status_code == 200
    body = response.json()
    assert body["subject_id"] == enrolled["subject_id"]
    assert body["similarity"] >= 0.99
    assert body["same_person"] is True


def test_verify_unknown_subject_is_404(client: TestClient, faces_dir: Path) -> None:
    response = client.post("/verify", files=_files(faces_dir, image="lfw_al_gore/1.jpg"), data={"subject": "Nobody"})

    assert response.status_code == 404
    assert error_code(response) == "SUBJECT_NOT_FOUND"


def test_verify_needs_exactly_one_of_image_b_and_subject(client: TestClient, faces_dir: Path) -> None:
    neither = client.post("/verify", files=_files(faces_dir, image="lfw_al_gore/1.jpg"))
    both = client.post(
        "/verify",
        files=_files(faces_dir, image="lfw_al_gore/1.jpg", image_b="lfw_al_gore/2.jpg"),
        data={"subject": "X"},
    )

    assert neither.status_code == 422
    assert error_code(neither) == "VALIDATION_ERROR"
    assert both.status_code == 422
    assert error_code(both) == "VALIDATION_ERROR"


def test_verify_second_image_without_face_is_422_naming_it(client: TestClient, faces_dir: Path) -> None:
    files = _files(faces_dir, image="lfw_al_gore/1.jpg", image_b="_noface/2_noise.jpg")

    response = client.post("/verify", files=files)

    assert response.status_code == 422
    assert error_code(response) == "NO_FACE_DETECTED"
    assert response.json()["error"]["details"]["image"] == "image_b"
