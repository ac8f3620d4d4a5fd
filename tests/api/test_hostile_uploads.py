"""Hostile uploads through HTTP: every case of tests/hostile_corpus.py on every image field of every image
route gets its documented answer, the service stays healthy afterwards, and bombs cost no pixel memory.

The decoder's own unit tests are in tests/services/test_images.py; these check what a client sees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from app.db.embedded import EmbeddedPostgres
from app.services.access import Scope
from tests.api.helpers import error_code
from tests.conftest import encode, issue_key, reset_database
from tests.hostile_corpus import CORPUS, Decodes, HostileUpload, Refused, gradient, real_png_bomb

pytestmark = pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")

FACE_PHOTO = "lfw_al_gore/1.jpg"


@dataclass(frozen=True)
class Target:
    """One image field of one image route."""

    name: str
    route: str
    field: str
    form: tuple[tuple[str, str], ...] = ()


TARGETS = (
    Target("detect", "/detect", "image"),
    Target("identify", "/identify", "image"),
    Target("enroll", "/enroll", "image", form=(("subject", "Hostile Corpus"),)),
    Target("verify-image", "/verify", "image"),
    Target("verify-image_b", "/verify", "image_b"),
)
CASES = [pytest.param(upload, target, id=f"{upload.name}-{target.name}") for upload in CORPUS for target in TARGETS]
# Every (upload, target) pair sent so far, so that the health check afterwards knows what still to send.
SENT: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class CorpusClient:
    """The session's running app, and an admin key of this module's own (its own rate-limit buckets)."""

    client: TestClient
    headers: dict[str, str]


@pytest.fixture(scope="module")
def corpus_client(app_client: TestClient, postgres: EmbeddedPostgres) -> CorpusClient:
    """Over a gallery emptied once for this module: nothing here may store a face."""
    reset_database(postgres.url)
    return CorpusClient(app_client, {"Authorization": f"Bearer {issue_key(app_client, [Scope.ADMIN])}"})


@pytest.fixture(scope="module")
def face_photo(faces_dir: Path) -> bytes:
    return (faces_dir / FACE_PHOTO).read_bytes()


def _send(client: CorpusClient, upload: HostileUpload, target: Target, *, other_image: bytes) -> httpx.Response:
    """The upload in the target's field; for /verify the other image field holds other_image."""
    files = {target.field: (upload.filename, upload.data, upload.content_type)}
    if target.route == "/verify":
        other_field = "image_b" if target.field == "image" else "image"
        files[other_field] = ("other.jpg", other_image, "image/jpeg")
    response = client.client.post(target.route, files=files, data=dict(target.form), headers=client.headers)
    SENT.add((upload.name, target.name))
    return response


def _other_image(target: Target, request: pytest.FixtureRequest) -> bytes:
    # image_b is only looked at once image has a face, so only that target needs a real face photo.
    if target.field == "image_b":
        photo: bytes = request.getfixturevalue("face_photo")
        return photo
    return encode(gradient(), "JPEG")


def _assert_valid_faceless_image_answer(response: httpx.Response, target: Target, expected: Decodes) -> None:
    body: dict[str, Any] = response.json()
    if target.route == "/detect":
        assert response.status_code == 200, response.text
        assert (body["width"], body["height"]) == (expected.width, expected.height)
        assert body["faces"] == []
    elif target.route == "/identify":
        assert response.status_code == 200, response.text
        assert body["faces_detected"] == 0
        assert body["faces"] == []
    else:
        assert response.status_code == 422, response.text
        assert error_code(response) == "NO_FACE_DETECTED"
        if target.route == "/verify":
            assert body["error"]["details"] == {"image": target.field}


@pytest.mark.parametrize(("upload", "target"), CASES)
def test_hostile_upload_gets_its_documented_answer(
    corpus_client: CorpusClient, upload: HostileUpload, target: Target, request: pytest.FixtureRequest
) -> None:
    other_image = _other_image(target, request)

    response = _send(corpus_client, upload, target, other_image=other_image)

    if isinstance(upload.expected, Refused):
        assert response.status_code == upload.expected.status, response.text
        assert error_code(response) == upload.expected.code
    else:
        _assert_valid_faceless_image_answer(response, target, upload.expected)


def test_corpus_has_at_least_thirty_cases_with_unique_names() -> None:
    names = [upload.name for upload in CORPUS]

    assert len(names) >= 30
    assert len(set(names)) == len(names)


def _peak_rss_bytes() -> int:
    match = re.search(r"^VmHWM:\s+(\d+) kB$", Path("/proc/self/status").read_text(), re.MULTILINE)
    assert match is not None
    return int(match.group(1)) * 1024


def _reset_peak_rss() -> None:
    """Set this process's peak RSS back to its current RSS (Linux >= 4.0)."""
    Path("/proc/self/clear_refs").write_text("5")


def test_real_12000_square_png_is_refused_without_allocating_its_pixels(corpus_client: CorpusClient) -> None:
    # The app runs in this process, so its peak RSS is ours. Decoding would need 12000 * 12000 * 4 bytes.
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux /proc/self/clear_refs to reset the peak RSS")
    data = real_png_bomb()
    decoded_bytes = 12_000 * 12_000 * 4
    _reset_peak_rss()
    baseline = _peak_rss_bytes()

    response = corpus_client.client.post(
        "/detect", files={"image": ("big.png", data, "image/png")}, headers=corpus_client.headers
    )

    growth = _peak_rss_bytes() - baseline
    assert response.status_code == 422
    assert error_code(response) == "IMAGE_TOO_LARGE"
    assert growth < decoded_bytes // 10, f"peak RSS grew by {growth / 2**20:.0f} MiB"


def test_service_stays_healthy_after_the_whole_corpus(
    corpus_client: CorpusClient, faces_dir: Path, request: pytest.FixtureRequest
) -> None:
    # Run alone (or with -k), this test first sends whatever part of the corpus has not been sent yet.
    for upload in CORPUS:
        for target in TARGETS:
            if (upload.name, target.name) not in SENT:
                _send(corpus_client, upload, target, other_image=_other_image(target, request))
    photo = (faces_dir / FACE_PHOTO).read_bytes()
    client, headers = corpus_client.client, corpus_client.headers

    healthz = client.get("/healthz")
    readyz = client.get("/readyz")
    identified = client.post("/identify", files={"image": ("gore.jpg", photo, "image/jpeg")}, headers=headers)
    collections = client.get("/collections", headers=headers)

    assert len(SENT) == len(CORPUS) * len(TARGETS)
    assert healthz.status_code == 200
    assert readyz.status_code == 200, readyz.text
    assert identified.status_code == 200, identified.text
    assert identified.json()["faces_detected"] == 1
    assert [(c["name"], c["subject_count"], c["face_count"]) for c in collections.json()["items"]] == [
        ("default", 0, 0)
    ]
