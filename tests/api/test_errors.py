"""One error shape for every failure, with the documented status and code."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import exc

from app.db.embedded import EmbeddedPostgres
from app.db.session import NOT_REACHABLE, NOT_READY, describe_error
from app.main import create_app
from tests.api.helpers import error_code
from tests.conftest import make_settings, running_app

IMAGE_ROUTES = ["/detect", "/identify", "/enroll", "/verify"]


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (120, 90, 60)).save(buffer, format="PNG")
    return buffer.getvalue()


def _form(route: str) -> dict[str, str]:
    return {"subject": "Someone"} if route in ("/enroll", "/verify") else {}


CASES = [
    pytest.param(b"", 400, "EMPTY_FILE", id="empty"),
    pytest.param(b"GIF89a" + b"\x00" * 64, 415, "UNSUPPORTED_MEDIA_TYPE", id="gif"),
    pytest.param(b"%PDF-1.7\n" + b"x" * 64, 415, "UNSUPPORTED_MEDIA_TYPE", id="pdf"),
    pytest.param(b"\xff\xd8\xff\xe0" + b"\x00" * 20, 400, "INVALID_IMAGE", id="truncated-jpeg"),
    pytest.param(_png(8, 8), 422, "IMAGE_TOO_SMALL", id="tiny"),
]


@pytest.mark.parametrize("route", IMAGE_ROUTES)
@pytest.mark.parametrize(("payload", "status", "code"), CASES)
def test_bad_images_get_documented_error_on_every_image_route(
    client: TestClient, route: str, payload: bytes, status: int, code: str
) -> None:
    response = client.post(route, files={"image": ("upload.jpg", payload)}, data=_form(route))

    assert response.status_code == status
    assert error_code(response) == code


def test_image_over_the_byte_cap_is_413(
    postgres: EmbeddedPostgres, weights_file: tuple[Path, str], tmp_path: Path
) -> None:
    settings = make_settings(postgres=postgres, weights_file=weights_file, data_dir=tmp_path, max_image_bytes=2048)
    with running_app(settings) as client:
        response = client.post("/detect", files={"image": ("big.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 4096)})

    assert response.status_code == 413
    assert error_code(response) == "PAYLOAD_TOO_LARGE"


def test_image_over_the_pixel_cap_is_422(
    postgres: EmbeddedPostgres, weights_file: tuple[Path, str], tmp_path: Path
) -> None:
    settings = make_settings(postgres=postgres, weights_file=weights_file, data_dir=tmp_path, max_image_pixels=100_000)
    with running_app(settings) as client:
        response = client.post("/detect", files={"image": ("wide.png", _png(1000, 200))})

    assert response.status_code == 422
    assert error_code(response) == "IMAGE_TOO_LARGE"


def test_missing_image_field_is_422_validation_error(client: TestClient) -> None:
    response = client.post("/identify", data={"top_k": "3"})

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"


def test_unknown_route_is_404_not_found(client: TestClient) -> None:
    response = client.get("/no-such-route")

    assert response.status_code == 404
    assert error_code(response) == "NOT_FOUND"


def test_wrong_method_is_405(client: TestClient) -> None:
    response = client.get("/enroll")

    assert response.status_code == 405
    assert error_code(response) == "METHOD_NOT_ALLOWED"


def test_unexpected_exception_is_500_without_stack_trace(
    postgres: EmbeddedPostgres, weights_file: tuple[Path, str], tmp_path: Path
) -> None:
    app = create_app(make_settings(postgres=postgres, weights_file=weights_file, data_dir=tmp_path))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom", headers={"Authorization": "Bearer any-key-gets-past-the-early-check"})

    assert response.status_code == 500
    assert error_code(response) == "INTERNAL_ERROR"
    assert "secret" not in response.text
    assert "Traceback" not in response.text


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# A password in the test URL, which no answer may show.
DBLESS_PASSWORD = "dbless-secret-4f1c"


@pytest.fixture(scope="module")
def dbless_client(
    weights_file: tuple[Path, str], postgres: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """An app whose database URL points at a closed port (and does not migrate at start)."""
    settings = make_settings(
        postgres=postgres,
        weights_file=weights_file,
        data_dir=tmp_path_factory.mktemp("dbless"),
        database_url=f"postgresql://postgres:{DBLESS_PASSWORD}@127.0.0.1:{_closed_port()}/facerec",
        migrate_on_start=False,
        db_connect_timeout_s=1,
        auth_enabled=False,  # keys live in the database, which is the thing that is down here
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_database_outage_is_503_with_retry_after(dbless_client: TestClient, faces_dir: Path) -> None:
    response = dbless_client.post(
        "/identify", files={"image": ("a.jpg", (faces_dir / "lfw_al_gore/1.jpg").read_bytes())}
    )

    assert response.status_code == 503
    assert error_code(response) == "DATABASE_UNAVAILABLE"
    assert int(response.headers["Retry-After"]) > 0


def test_gallery_during_database_outage_is_503(dbless_client: TestClient) -> None:
    response = dbless_client.get("/subjects")

    assert response.status_code == 503
    assert error_code(response) == "DATABASE_UNAVAILABLE"


def test_detect_works_without_a_database(dbless_client: TestClient, faces_dir: Path) -> None:
    response = dbless_client.post("/detect", files={"image": ("a.jpg", (faces_dir / "lfw_al_gore/1.jpg").read_bytes())})

    assert response.status_code == 200
    assert len(response.json()["faces"]) == 1


def test_readyz_is_503_naming_the_database_when_it_is_down(dbless_client: TestClient) -> None:
    response = dbless_client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["status"] == "not_ready"
    assert response.json()["checks"]["database"].startswith("waiting for the database (OperationalError")
    assert response.json()["checks"]["model"] == "ok"


def test_database_outage_answer_says_nothing_of_the_driver_error(dbless_client: TestClient) -> None:
    response = dbless_client.get("/subjects")

    assert response.status_code == 503
    assert response.json()["error"]["message"] in (NOT_READY, NOT_REACHABLE)
    for leak in ("OperationalError", "psycopg", "127.0.0.1", "refused", DBLESS_PASSWORD):
        assert leak not in response.text


def test_readyz_names_the_driver_error_in_one_line_without_the_password(dbless_client: TestClient) -> None:
    check = dbless_client.get("/readyz").json()["checks"]["database"]

    assert check.startswith("waiting for the database (OperationalError: ")
    assert "(psycopg." not in check  # SQLAlchemy's prefix repeats the class
    assert "\n" not in check
    assert DBLESS_PASSWORD not in check


def test_describe_error_keeps_the_class_and_first_line_and_masks_passwords() -> None:
    driver = psycopg.OperationalError(
        'connection to "postgresql://facerec:hunter2@db:5432/facerec" failed: password=hunter2 sslmode=require'
        "\nDETAIL: the second line"
    )
    wrapped = exc.OperationalError("SELECT 1", None, driver)

    described = describe_error(wrapped, secret="hunter2")

    assert described == (
        'OperationalError: connection to "postgresql://facerec:***@db:5432/facerec" failed:'
        " password=*** sslmode=require"
    )
    assert describe_error(TimeoutError()) == "TimeoutError"
