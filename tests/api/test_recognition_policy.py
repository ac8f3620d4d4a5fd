"""Recognition policy, shown with the controlled embedder (tests/embedder.py): photos of one person
match at the default threshold, strangers are unknown, per-collection thresholds apply, and the
enrolment guards fire exactly when they should."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.db.embedded import EmbeddedPostgres
from tests.api.helpers import enrol, error_code, identify, post_photo
from tests.conftest import make_settings, reset_database, running_app
from tests.embedder import LabelledEmbedder

GORE = ["lfw_al_gore/1.jpg", "lfw_al_gore/2.jpg", "lfw_al_gore/4.jpg"]  # 3.jpg holds a second face
OTHER_PERSON = "lfw_bill_frist/1.jpg"


def best(answer: dict[str, Any]) -> dict[str, Any]:
    (face,) = answer["faces"][:1]
    candidates: list[dict[str, Any]] = face["candidates"]
    return candidates[0]


# --- matching and "unknown" ------------------------------------------------------------------


def test_another_photo_of_an_enrolled_person_is_named_at_the_default_threshold(
    client: TestClient, faces_dir: Path
) -> None:
    enrolled = enrol(client, faces_dir, GORE[0], "Al Gore")

    answer = identify(client, faces_dir, GORE[1])

    match = answer["faces"][0]["match"]
    assert match is not None
    assert match["subject_id"] == enrolled["subject_id"]
    assert 0.5 <= match["similarity"] < 0.9  # a different photo: similar, not identical
    assert (answer["threshold"], answer["threshold_source"]) == (0.5, "default")


def test_a_stranger_is_unknown_even_with_people_enrolled(client: TestClient, faces_dir: Path) -> None:
    enrol(client, faces_dir, GORE[0], "Al Gore")
    enrol(client, faces_dir, "amy_adams/1.jpg", "Amy Adams")

    answer = identify(client, faces_dir, OTHER_PERSON)

    assert answer["faces"][0]["match"] is None
    assert all(candidate["similarity"] < 0.3 for candidate in answer["faces"][0]["candidates"])


def test_verify_says_two_photos_of_one_person_match_and_of_two_people_do_not(
    client: TestClient, faces_dir: Path
) -> None:
    def verify(a: str, b: str) -> dict[str, Any]:
        files = {"image": ("a.jpg", (faces_dir / a).read_bytes()), "image_b": ("b.jpg", (faces_dir / b).read_bytes())}
        response = client.post("/verify", files=files)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    same, different = verify(GORE[0], GORE[2]), verify(GORE[0], OTHER_PERSON)

    assert same["same_person"] is True
    assert different["same_person"] is False
    assert same["threshold_source"] == different["threshold_source"] == "default"


# --- per-collection thresholds ---------------------------------------------------------------


def test_a_collection_threshold_applies_to_identify_and_verify_and_null_restores_the_default(
    client: TestClient, faces_dir: Path
) -> None:
    enrol(client, faces_dir, GORE[0], "Al Gore", collection="doors")

    strict = client.patch("/collections/doors", json={"match_threshold": 0.9})
    strict_answer = identify(client, faces_dir, GORE[1], collection="doors")
    per_request = identify(client, faces_dir, GORE[1], collection="doors", threshold=0.55)
    verified = post_photo(client, "/verify", faces_dir, GORE[1], subject="Al Gore", collection="doors").json()
    cleared = client.patch("/collections/doors", json={"match_threshold": None})
    default_answer = identify(client, faces_dir, GORE[1], collection="doors")

    assert strict.status_code == 200
    assert strict.json()["match_threshold"] == pytest.approx(0.9)
    assert strict_answer["faces"][0]["match"] is None
    assert (strict_answer["threshold"], strict_answer["threshold_source"]) == (pytest.approx(0.9), "collection")
    assert per_request["faces"][0]["match"] is not None
    assert (per_request["threshold"], per_request["threshold_source"]) == (0.55, "request")
    assert (verified["same_person"], verified["threshold_source"]) == (False, "collection")
    assert cleared.json()["match_threshold"] is None
    assert default_answer["faces"][0]["match"] is not None
    assert default_answer["threshold_source"] == "default"


def test_a_collection_threshold_outside_minus_one_to_one_or_an_empty_patch_is_refused(client: TestClient) -> None:
    too_high = client.patch("/collections/default", json={"match_threshold": 1.5})
    empty = client.patch("/collections/default", json={})

    assert (too_high.status_code, error_code(too_high)) == (422, "VALIDATION_ERROR")
    assert (empty.status_code, error_code(empty)) == (422, "VALIDATION_ERROR")


def test_patching_the_threshold_leaves_retention_as_it_was(client: TestClient) -> None:
    client.patch("/collections/default", json={"retention_days": 30})

    both = client.patch("/collections/default", json={"match_threshold": 0.7}).json()

    assert (both["retention_days"], both["match_threshold"]) == (30, pytest.approx(0.7))


# --- the duplicate-identity guard ------------------------------------------------------------


def test_a_second_name_for_an_enrolled_person_is_409_naming_the_first(client: TestClient, faces_dir: Path) -> None:
    first = enrol(client, faces_dir, GORE[0], "Al Gore")

    response = post_photo(client, "/enroll", faces_dir, GORE[1], subject="Albert Gore")

    assert response.status_code == 409
    assert error_code(response) == "FACE_MATCHES_OTHER_SUBJECT"
    details = response.json()["error"]["details"]
    assert (details["subject_id"], details["subject"]) == (first["subject_id"], "Al Gore")
    assert details["similarity"] >= details["threshold"] == 0.5
    assert client.get("/subjects", params={"q": "Albert"}).json()["total"] == 0


def test_the_duplicate_guard_lets_through_other_people_more_photos_of_one_and_on_conflict_allow(
    client: TestClient, faces_dir: Path
) -> None:
    enrol(client, faces_dir, GORE[0], "Al Gore")

    more_of_him = post_photo(client, "/enroll", faces_dir, GORE[1], subject="Al Gore")
    someone_else = post_photo(client, "/enroll", faces_dir, OTHER_PERSON, subject="Bill Frist")
    allowed = post_photo(client, "/enroll", faces_dir, GORE[2], subject="His Twin", on_conflict="allow")

    assert [more_of_him.status_code, someone_else.status_code, allowed.status_code] == [201, 201, 201]


def test_the_duplicate_guard_uses_the_collection_threshold(client: TestClient, faces_dir: Path) -> None:
    enrol(client, faces_dir, GORE[0], "Al Gore", collection="lenient")
    client.patch("/collections/lenient", json={"match_threshold": 0.95})

    response = post_photo(client, "/enroll", faces_dir, GORE[1], subject="Albert Gore", collection="lenient")

    assert response.status_code == 201, response.text
    assert (response.json()["threshold"], response.json()["threshold_source"]) == (pytest.approx(0.95), "collection")


def test_concurrent_enrolments_of_one_photo_under_two_names_let_exactly_one_succeed(
    client: TestClient, faces_dir: Path
) -> None:
    photo = (faces_dir / GORE[0]).read_bytes()

    def attempt(name: str) -> int:
        response = client.post("/enroll", files={"image": ("a.jpg", photo)}, data={"subject": name})
        return response.status_code

    for round_number in range(3):
        with ThreadPoolExecutor(max_workers=2) as pool:
            statuses = sorted(pool.map(attempt, [f"Gore A{round_number}", f"Gore B{round_number}"]))
        if round_number == 0:
            assert statuses == [201, 409]
        else:
            assert statuses == [409, 409]  # the first round's winner holds the face
    assert client.get("/subjects").json()["total"] == 1


@pytest.fixture(scope="module")
def unguarded_client(
    postgres: EmbeddedPostgres,
    weights_file: tuple[Path, str],
    tmp_path_factory: pytest.TempPathFactory,
    labelled_embedder: LabelledEmbedder,
) -> Iterator[TestClient]:
    settings = make_settings(
        postgres=postgres,
        weights_file=weights_file,
        data_dir=tmp_path_factory.mktemp("unguarded"),
        enroll_conflict_check=False,
    )
    with running_app(settings, embedder=labelled_embedder) as client:
        yield client


def test_the_duplicate_guard_can_be_turned_off_for_a_deployment(
    unguarded_client: TestClient, postgres: EmbeddedPostgres, faces_dir: Path
) -> None:
    reset_database(postgres.url)
    enrol(unguarded_client, faces_dir, GORE[0], "Al Gore")

    response = post_photo(unguarded_client, "/enroll", faces_dir, GORE[1], subject="Albert Gore")

    assert response.status_code == 201


# --- the consistency guard -------------------------------------------------------------------


def test_a_face_unlike_the_subjects_others_is_enrolled_with_a_warning(client: TestClient, faces_dir: Path) -> None:
    enrol(client, faces_dir, GORE[0], "Al Gore")

    mislabelled = post_photo(client, "/enroll", faces_dir, OTHER_PERSON, subject="Al Gore")
    consistent = post_photo(client, "/enroll", faces_dir, GORE[1], subject="Al Gore")

    assert mislabelled.status_code == 201
    (warning,) = mislabelled.json()["warnings"]
    assert warning["code"] == "LOW_SIMILARITY_TO_SUBJECT"
    assert warning["details"]["similarity"] < warning["details"]["threshold"] == 0.5
    assert consistent.json()["warnings"] == []


def test_on_low_similarity_reject_refuses_the_unlike_face_with_409(client: TestClient, faces_dir: Path) -> None:
    first = enrol(client, faces_dir, GORE[0], "Al Gore")

    response = post_photo(client, "/enroll", faces_dir, OTHER_PERSON, subject="Al Gore", on_low_similarity="reject")

    assert response.status_code == 409
    assert error_code(response) == "LOW_SIMILARITY_TO_SUBJECT"
    assert client.get(f"/subjects/{first['subject_id']}").json()["face_count"] == 1
