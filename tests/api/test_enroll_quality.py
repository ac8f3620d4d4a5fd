"""The enrolment quality gate and the bystander rule, on real photos and on copies degraded on purpose:
blurred, tilted, under- and over-exposed. Measured with pixels and landmarks, not with embeddings."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageEnhance, ImageFilter

from tests.api.helpers import error_code, post_photo


def degraded(faces_dir: Path, relative: str, *, how: str) -> bytes:
    image = Image.open(faces_dir / relative).convert("RGB")
    if how == "blurred":
        image = image.filter(ImageFilter.GaussianBlur(3))
    elif how == "tilted":
        image = image.rotate(60, expand=True, fillcolor=(128, 128, 128))
    elif how == "dark":
        image = ImageEnhance.Brightness(image).enhance(0.2)
    elif how == "overexposed":
        image = ImageEnhance.Brightness(image).enhance(3.0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def enrol_bytes(client: TestClient, data: bytes, *, subject: str) -> Any:
    return client.post("/enroll", files={"image": ("photo.png", data)}, data={"subject": subject})


@pytest.mark.parametrize(
    ("photo", "how", "rule"),
    [
        ("lfw_al_gore/1.jpg", "blurred", "min_sharpness"),
        ("amy_adams/1.jpg", "tilted", "max_roll_degrees"),
        ("lfw_al_gore/1.jpg", "dark", "min_brightness"),
        ("barack_obama/4.jpg", "overexposed", "max_brightness"),
    ],
)
def test_a_degraded_face_is_refused_naming_the_rule_the_value_and_the_limit(
    client: TestClient, faces_dir: Path, photo: str, how: str, rule: str
) -> None:
    response = enrol_bytes(client, degraded(faces_dir, photo, how=how), subject="Someone")

    assert response.status_code == 422
    assert error_code(response) == "FACE_QUALITY_TOO_LOW"
    error = response.json()["error"]
    assert error["details"]["rule"] == rule
    assert {"value", "limit", "failures"} <= set(error["details"])
    assert rule in [failure["rule"] for failure in error["details"]["failures"]]
    assert "quality gate" in error["message"]


def test_the_undegraded_photos_pass_the_gate(client: TestClient, faces_dir: Path) -> None:
    for photo, subject in (("lfw_al_gore/1.jpg", "Al Gore"), ("amy_adams/1.jpg", "Amy Adams")):
        response = post_photo(client, "/enroll", faces_dir, photo, subject=subject)

        assert response.status_code == 201, response.text
        assert response.json()["face"]["quality"]["passes"] is True


def test_a_small_background_face_is_a_bystander_not_a_second_face(client: TestClient, faces_dir: Path) -> None:
    # lfw_mohammad_khatami/5.jpg: a 92 px face, and a confident (probability 1.0) 37 px face behind it.
    response = post_photo(client, "/enroll", faces_dir, "lfw_mohammad_khatami/5.jpg", subject="Mohammad Khatami")

    assert response.status_code == 201, response.text
    body = response.json()
    main_width = body["face"]["box"]["x2"] - body["face"]["box"]["x1"]
    bystanders = [face for face in body["ignored_faces"] if face["reason"] == "bystander"]
    assert len(bystanders) == 1
    (bystander,) = bystanders
    assert bystander["detection_probability"] >= 0.95
    assert bystander["box"]["x2"] - bystander["box"]["x1"] < 0.5 * main_width
    assert "quality" in bystander


def test_two_faces_of_comparable_size_are_still_multiple_faces(client: TestClient, faces_dir: Path) -> None:
    response = post_photo(client, "/enroll", faces_dir, "_groups/2_two_people.jpg", subject="Someone")
    largest = post_photo(
        client, "/enroll", faces_dir, "_groups/2_two_people.jpg", subject="Someone", on_multiple_faces="largest"
    )

    assert error_code(response) == "MULTIPLE_FACES"
    assert len(response.json()["error"]["details"]["faces"]) == 2
    assert largest.status_code == 201
    assert [face["reason"] for face in largest.json()["ignored_faces"]] == ["not_largest"]


def test_detect_reports_each_faces_quality_against_the_gate(client: TestClient, faces_dir: Path) -> None:
    sharp = post_photo(client, "/detect", faces_dir, "lfw_al_gore/1.jpg").json()
    blurred = client.post(
        "/detect", files={"image": ("b.png", degraded(faces_dir, "lfw_al_gore/1.jpg", how="blurred"))}
    ).json()

    quality = sharp["faces"][0]["quality"]
    assert set(quality) == {
        "sharpness",
        "roll_degrees",
        "yaw_offset",
        "brightness",
        "clipped_fraction",
        "passes",
        "failures",
    }
    assert quality["passes"] is True
    assert quality["failures"] == []
    assert blurred["faces"][0]["quality"]["passes"] is False
    assert blurred["faces"][0]["quality"]["sharpness"] < quality["sharpness"]
    assert [failure["rule"] for failure in blurred["faces"][0]["quality"]["failures"]] == ["min_sharpness"]
