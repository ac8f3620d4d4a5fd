"""POST /detect: every face with landmarks; stores nothing."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.api.helpers import post_photo


def test_detect_reports_every_face_with_landmarks_largest_first(client: TestClient, faces_dir: Path) -> None:
    response = post_photo(client, "/detect", faces_dir, "_groups/2_two_people.jpg")

    assert response.status_code == 200
    body = response.json()
    assert len(body["faces"]) == 2
    for face in body["faces"]:
        box = face["box"]
        assert 0 <= box["x1"] < box["x2"] <= body["width"]
        assert 0 <= box["y1"] < box["y2"] <= body["height"]
        assert box["x1"] <= face["landmarks"]["nose"]["x"] <= box["x2"]
        assert 0 < face["detection_probability"] <= 1


def test_detect_on_image_without_faces_returns_empty_list(client: TestClient, faces_dir: Path) -> None:
    response = post_photo(client, "/detect", faces_dir, "_noface/4_rocket.jpg")

    assert response.status_code == 200
    assert response.json()["faces"] == []


def test_detect_stores_nothing(client: TestClient, faces_dir: Path) -> None:
    post_photo(client, "/detect", faces_dir, "lfw_al_gore/1.jpg")

    collections = client.get("/collections").json()["items"]

    assert [(c["name"], c["subject_count"], c["face_count"]) for c in collections] == [("default", 0, 0)]


def test_detect_reports_size_after_exif_rotation(client: TestClient, faces_dir: Path) -> None:
    from io import BytesIO

    from PIL import Image

    photo = Image.open(faces_dir / "lfw_al_gore/1.jpg").resize((300, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    buffer = BytesIO()
    photo.save(buffer, format="JPEG", exif=exif.tobytes())

    response = client.post("/detect", files={"image": ("rotated.jpg", buffer.getvalue())})

    assert response.status_code == 200
    assert (response.json()["width"], response.json()["height"]) == (200, 300)
