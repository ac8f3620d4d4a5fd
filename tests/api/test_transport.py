"""The request itself as the attack: bodies over the cap (declared or streamed), too many parts, huge
fields, missing fields, wrong content types, and subject names that look like SQL or are not ASCII.

The body-size cases run twice: in process, and against a real uvicorn on a loopback port, where raw
sockets make Content-Length, Expect: 100-continue and chunked transfer encoding real.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx as plain_httpx
import httpx2 as httpx
import pytest
import requests
import uvicorn
from fastapi.testclient import TestClient

from app.api.middleware import DRAIN_MAX_BYTES, DRAIN_TIMEOUT_S
from app.config import Settings
from app.main import create_app
from app.services.access import Scope
from tests.api.helpers import error_code
from tests.conftest import encode, issue_key
from tests.hostile_corpus import gradient

FACE_PHOTO = "lfw_al_gore/1.jpg"
BOUNDARY = "facerec-transport-test"
IO_TIMEOUT_S = 30.0  # a deadline for every socket operation: a server that hangs fails the test
CHUNK = 256 * 1024


# --- in process ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Api:
    """The session's running app over an empty gallery, with an admin key of this module's own."""

    client: TestClient
    headers: dict[str, str]
    settings: Settings

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.post(path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, headers=self.headers, **kwargs)


@pytest.fixture(scope="module")
def admin_key(app_client: TestClient) -> str:
    return issue_key(app_client, [Scope.ADMIN])


@pytest.fixture
def api(client: TestClient, admin_key: str, settings: Settings) -> Api:
    return Api(client, {"Authorization": f"Bearer {admin_key}"}, settings)


def _image_part_head(*, field: str = "image", filename: str = "big.jpg") -> bytes:
    return (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()


def _multipart_of_exact_size(size: int) -> bytes:
    """One image part of JPEG magic and zeros, the whole multipart body exactly `size` bytes."""
    head = _image_part_head() + b"\xff\xd8\xff"
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    return head + bytes(size - len(head) - len(tail)) + tail


class CountingBody:
    """A streamed request body of `chunks` chunks of `size` bytes, counting how many the server pulled."""

    def __init__(self, *, chunks: int, size: int = CHUNK) -> None:
        self.chunks = chunks
        self.size = size
        self.pulled = 0

    def __iter__(self) -> Iterator[bytes]:
        first = _image_part_head() + b"\xff\xd8\xff"
        for index in range(self.chunks):
            self.pulled += 1
            yield first + bytes(self.size - len(first)) if index == 0 else bytes(self.size)


MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def test_declared_body_too_large_to_drain_is_413_without_reading_any_of_it(api: Api) -> None:
    cap = api.settings.max_request_bytes
    body = CountingBody(chunks=DRAIN_MAX_BYTES // CHUNK + 8)

    response = api.post(
        "/identify", content=iter(body), headers={**MULTIPART, "Content-Length": str(body.chunks * body.size)}
    )

    assert response.status_code == 413
    assert error_code(response) == "PAYLOAD_TOO_LARGE"
    assert response.json()["error"]["details"] == {"max_request_bytes": cap}
    assert body.pulled == 0


def test_declared_body_over_the_cap_is_413_then_read_and_discarded(api: Api) -> None:
    # What a client that is still sending needs: the rest is drained, so that closing resets nothing.
    cap = api.settings.max_request_bytes
    body = CountingBody(chunks=cap // CHUNK + 8)

    response = api.post(
        "/identify", content=iter(body), headers={**MULTIPART, "Content-Length": str(body.chunks * body.size)}
    )

    assert response.status_code == 413
    assert response.json()["error"]["details"] == {"max_request_bytes": cap}
    assert body.pulled == body.chunks


def test_chunked_body_over_the_cap_is_413(api: Api) -> None:
    # The test client reads a streamed body whole before the app sees it; the live tests below show
    # that a real server stops reading right after the cap.
    cap = api.settings.max_request_bytes
    body = CountingBody(chunks=4 * cap // CHUNK)

    response = api.post("/identify", content=iter(body), headers=MULTIPART)

    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in response.request.headers
    assert response.status_code == 413
    assert error_code(response) == "PAYLOAD_TOO_LARGE"
    assert response.json()["error"]["details"] == {"max_request_bytes": cap}


def test_body_of_exactly_the_cap_passes_the_body_guard(api: Api) -> None:
    # Its one image is then over the 8 MiB image cap: a 413 about the image, not about the body.
    cap = api.settings.max_request_bytes

    response = api.post("/identify", content=_multipart_of_exact_size(cap), headers=MULTIPART)

    assert response.status_code == 413
    assert response.json()["error"]["details"] == {"max_bytes": api.settings.max_image_bytes}


def test_body_one_byte_over_the_cap_is_refused_by_the_body_guard(api: Api) -> None:
    cap = api.settings.max_request_bytes

    response = api.post("/identify", content=_multipart_of_exact_size(cap + 1), headers=MULTIPART)

    assert response.status_code == 413
    assert response.json()["error"]["details"] == {"max_request_bytes": cap}


def _small_jpeg() -> bytes:
    return encode(gradient(), "JPEG")


def test_thousands_of_text_fields_are_400_bad_request(api: Api) -> None:
    fields = [(f"field{index}", "x") for index in range(5000)]

    response = api.post("/identify", files={"image": ("a.jpg", _small_jpeg())}, data=dict(fields))

    assert response.status_code == 400
    assert error_code(response) == "BAD_REQUEST"


def test_thousands_of_file_parts_are_400_bad_request(api: Api) -> None:
    files = [("image", (f"{index}.jpg", b"\xff\xd8\xff")) for index in range(3000)]

    response = api.post("/identify", files=files)

    assert response.status_code == 400
    assert error_code(response) == "BAD_REQUEST"


def test_text_field_over_the_part_size_limit_is_400_bad_request(api: Api) -> None:
    huge = "A" * (api.settings.max_form_field_bytes + 1)

    response = api.post("/enroll", files={"image": ("a.jpg", _small_jpeg())}, data={"subject": huge})

    assert response.status_code == 400
    assert error_code(response) == "BAD_REQUEST"


def _problem_fields(response: httpx.Response) -> list[str]:
    return [problem["field"] for problem in response.json()["error"]["details"]["errors"]]


def test_subject_longer_than_200_characters_is_422_naming_subject(api: Api) -> None:
    response = api.post("/enroll", files={"image": ("a.jpg", _small_jpeg())}, data={"subject": "A" * 201})

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert _problem_fields(response) == ["body.subject"]


def test_metadata_over_16_kib_is_422_naming_metadata(api: Api) -> None:
    metadata = json.dumps({"note": "x" * 16_384})

    response = api.post(
        "/enroll", files={"image": ("a.jpg", _small_jpeg())}, data={"subject": "Someone", "metadata": metadata}
    )

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert _problem_fields(response) == ["body.metadata"]


@pytest.mark.parametrize("route", ["/detect", "/identify", "/enroll", "/verify"])
def test_request_without_image_is_422_naming_image(api: Api, route: str) -> None:
    response = api.post(route, data={"subject": "Someone"})

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert "body.image" in _problem_fields(response)


def test_enroll_without_subject_is_422_naming_subject(api: Api) -> None:
    response = api.post("/enroll", files={"image": ("a.jpg", _small_jpeg())})

    assert response.status_code == 422
    assert _problem_fields(response) == ["body.subject"]


@pytest.mark.parametrize(
    ("extra_files", "form"),
    [({}, {}), ({"image_b": ("b.jpg", b"\xff\xd8\xff")}, {"subject": "Someone"})],
    ids=["neither-image_b-nor-subject", "both-image_b-and-subject"],
)
def test_verify_needs_exactly_one_of_image_b_and_subject(
    api: Api, extra_files: dict[str, tuple[str, bytes]], form: dict[str, str]
) -> None:
    files = {"image": ("a.jpg", _small_jpeg()), **extra_files}

    response = api.post("/verify", files=files, data=form)

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert _problem_fields(response) == ["image_b"]


@pytest.mark.parametrize(
    ("headers", "content"),
    [
        ({"Content-Type": "application/json"}, json.dumps({"image": "aGVsbG8=", "subject": "Someone"}).encode()),
        ({"Content-Type": "text/plain"}, b"image=hello"),
        ({}, b"\xff\xd8\xff\xe0 raw JPEG bytes with no content type"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, b"image=%FF%D8%FF&subject=Someone"),
    ],
    ids=["json", "text-plain", "no-content-type", "urlencoded-image-as-text"],
)
def test_body_that_is_not_multipart_is_422_naming_the_missing_image(
    api: Api, headers: dict[str, str], content: bytes
) -> None:
    response = api.post("/identify", content=content, headers=headers)

    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert _problem_fields(response) == ["body.image"]


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("multipart/form-data", _image_part_head() + b"\xff\xd8\xff\r\n--" + BOUNDARY.encode() + b"--\r\n"),
        (f"multipart/form-data; boundary={BOUNDARY}", b"this is not a multipart body at all"),
        (f"multipart/form-data; boundary={BOUNDARY}", _image_part_head() + b"\xff\xd8\xff and no closing boundary"),
        (
            f"multipart/form-data; boundary={BOUNDARY}",
            f"--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nvalue\r\n--{BOUNDARY}--\r\n".encode(),
        ),
    ],
    ids=["no-boundary-parameter", "no-parts", "unterminated", "part-without-name"],
)
def test_malformed_multipart_is_a_4xx_in_the_error_shape(api: Api, content_type: str, content: bytes) -> None:
    response = api.post("/identify", content=content, headers={"Content-Type": content_type})

    assert response.status_code in (400, 422)
    assert error_code(response) in ("BAD_REQUEST", "VALIDATION_ERROR")


HOSTILE_NAMES = [
    "Robert'); DROP TABLE subjects;--",
    "' OR '1'='1",
    "admin'--",
    "1; SELECT pg_sleep(10)",
    "%s %n %x %%",
    "{{7*7}} ${7*7}",
    "<script>alert(1)</script>",
    "Zoë Saldaña-Nazario",
    "王小明",
    "فاطمة الزهراء",
    "👩🏽\u200d🔬 Ada",
    "e\u0301le\u0300ve",  # combining accents, not NFC
    "\U0001f600" * 200,  # 200 characters, 800 UTF-8 bytes
]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=[f"name{index}" for index in range(len(HOSTILE_NAMES))])
def test_subject_names_are_stored_and_found_exactly_as_sent(api: Api, faces_dir: Path, name: str) -> None:
    photo = (faces_dir / FACE_PHOTO).read_bytes()

    enrolled = api.post("/enroll", files={"image": ("a.jpg", photo)}, data={"subject": name})
    listed = api.get("/subjects")
    verified = api.post("/verify", files={"image": ("a.jpg", photo)}, data={"subject": name})

    assert enrolled.status_code == 201, enrolled.text
    assert enrolled.json()["subject"] == name
    assert [item["name"] for item in listed.json()["items"]] == [name]
    assert verified.status_code == 200, verified.text
    assert verified.json()["subject_id"] == enrolled.json()["subject_id"]


def test_subject_field_that_is_not_utf8_is_read_as_latin1(api: Api, faces_dir: Path) -> None:
    # Starlette decodes a form field that is not UTF-8 as latin-1 rather than refusing it: no 500, but mojibake.
    raw_name = b"\xff\xfe\xfa not utf-8"
    content = (
        _image_part_head()
        + (faces_dir / FACE_PHOTO).read_bytes()
        + f'\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="subject"\r\n\r\n'.encode()
        + raw_name
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )

    response = api.post("/enroll", content=content, headers=MULTIPART)

    assert response.status_code == 201, response.text
    assert response.json()["subject"] == raw_name.decode("latin-1")


# Postgres text and jsonb cannot hold U+0000: request validation must refuse it before the database.


def test_enroll_subject_with_nul_character_is_422_naming_subject(api: Api, faces_dir: Path) -> None:
    photo = (faces_dir / FACE_PHOTO).read_bytes()

    response = api.post("/enroll", files={"image": ("a.jpg", photo)}, data={"subject": "nul\x00byte"})

    assert response.status_code == 422, response.text
    assert _problem_fields(response) == ["body.subject"]


def test_verify_against_subject_with_nul_character_is_a_4xx(api: Api, faces_dir: Path) -> None:
    photo = (faces_dir / FACE_PHOTO).read_bytes()

    response = api.post("/verify", files={"image": ("a.jpg", photo)}, data={"subject": "nul\x00byte"})

    assert response.status_code in (404, 422), response.text
    assert error_code(response) in ("SUBJECT_NOT_FOUND", "VALIDATION_ERROR")


def test_enroll_metadata_with_nul_character_is_422_naming_metadata(api: Api, faces_dir: Path) -> None:
    photo = (faces_dir / FACE_PHOTO).read_bytes()
    form = {"subject": "Someone", "metadata": json.dumps({"note": "nul\x00byte"})}

    response = api.post("/enroll", files={"image": ("a.jpg", photo)}, data=form)

    assert response.status_code == 422, response.text
    assert _problem_fields(response) == ["metadata"]


def test_enroll_subject_of_only_whitespace_is_422_naming_subject(api: Api, faces_dir: Path) -> None:
    photo = (faces_dir / FACE_PHOTO).read_bytes()

    response = api.post("/enroll", files={"image": ("a.jpg", photo)}, data={"subject": "   "})

    assert response.status_code == 422, response.text
    assert error_code(response) == "VALIDATION_ERROR"


# --- a real HTTP server --------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveServer:
    port: int
    settings: Settings


@pytest.fixture(scope="module")
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """The app under uvicorn in a background thread, on a loopback socket bound before it starts."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = int(listener.getsockname()[1])
    config = uvicorn.Config(create_app(settings), log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, name="uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped during start-up"
            assert time.monotonic() < deadline, "uvicorn did not start within 120 s"
            time.sleep(0.02)
        while _raw_request(port, b"GET /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").status != 200:
            assert time.monotonic() < deadline, "the app did not become ready within 120 s"
            time.sleep(0.05)
        yield LiveServer(port, settings)
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        listener.close()
    assert not thread.is_alive(), "uvicorn did not shut down"


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def error_code(self) -> str:
        body = json.loads(self.body)
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"code", "message", "details"}, body
        code: str = body["error"]["code"]
        return code


def _read_response(connection: socket.socket) -> RawResponse:
    """The first response on the connection, read from the raw bytes (a 100 Continue would show as 100)."""
    received = b""
    while b"\r\n\r\n" not in received:
        data = connection.recv(65536)
        assert data, f"connection closed before a full response head: {received!r}"
        received += data
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, value in (line.split(":", 1) for line in header_lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        data = connection.recv(65536)
        assert data, "connection closed inside the response body"
        body += data
    return RawResponse(int(status_line.split()[1]), headers, body[:length])


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT_S)


def _raw_request(port: int, request: bytes) -> RawResponse:
    with _connect(port) as connection:
        connection.sendall(request)
        return _read_response(connection)


def _request_head(*, path: str, length_header: str, extra: str = "", authorization: str = "") -> bytes:
    auth = f"Authorization: Bearer {authorization}\r\n" if authorization else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n{length_header}\r\n{extra}\r\n"
    ).encode()


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _closed_by_server(connection: socket.socket) -> bool:
    try:
        return connection.recv(1) == b""
    except ConnectionResetError:
        return True


def test_live_declared_body_over_the_cap_is_413_before_the_body_is_sent(live_server: LiveServer) -> None:
    declared = 50 * 1024 * 1024
    first_bytes = _image_part_head() + b"\xff\xd8\xff" + bytes(64 * 1024)

    with _connect(live_server.port) as connection:
        connection.sendall(_request_head(path="/identify", length_header=f"Content-Length: {declared}"))
        connection.sendall(first_bytes)
        response = _read_response(connection)
        closed = _closed_by_server(connection)

    assert response.status == 413
    assert response.error_code() == "PAYLOAD_TOO_LARGE"
    assert json.loads(response.body)["error"]["details"] == {
        "max_request_bytes": live_server.settings.max_request_bytes
    }
    assert response.headers["connection"] == "close"
    assert closed  # this client stalled: the server stops waiting for the other 49.9 MB at the drain's time limit


def test_live_declared_body_over_the_cap_gets_413_instead_of_100_continue(live_server: LiveServer) -> None:
    head = _request_head(path="/enroll", length_header="Content-Length: 50000000", extra="Expect: 100-continue\r\n")

    with _connect(live_server.port) as connection:
        connection.sendall(head)
        response = _read_response(connection)

    assert response.status == 413
    assert response.error_code() == "PAYLOAD_TOO_LARGE"


def test_live_chunked_body_over_the_cap_is_413_once_the_stream_passes_it(
    live_server: LiveServer, admin_key: str
) -> None:
    cap = live_server.settings.max_request_bytes
    planned = 4 * cap
    sent = 0

    with _connect(live_server.port) as connection:
        head = _request_head(path="/identify", length_header="Transfer-Encoding: chunked", authorization=admin_key)
        connection.sendall(head)
        first = _image_part_head() + b"\xff\xd8\xff"
        connection.sendall(_chunk(first))
        sent += len(first)
        try:
            # Send until the server answers (or drops the connection), never more than planned.
            while sent < planned and not select.select([connection], [], [], 0)[0]:
                connection.sendall(_chunk(bytes(CHUNK)))
                sent += CHUNK
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = _read_response(connection)

    assert response.status == 413
    assert response.error_code() == "PAYLOAD_TOO_LARGE"
    assert json.loads(response.body)["error"]["details"] == {"max_request_bytes": cap}
    assert cap < sent < planned


def test_live_chunked_upload_under_the_cap_is_processed(
    live_server: LiveServer, faces_dir: Path, admin_key: str
) -> None:
    photo = (faces_dir / FACE_PHOTO).read_bytes()
    body = _image_part_head(filename="gore.jpg") + photo + f"\r\n--{BOUNDARY}--\r\n".encode()
    head = _request_head(path="/detect", length_header="Transfer-Encoding: chunked", authorization=admin_key)

    with _connect(live_server.port) as connection:
        connection.sendall(head)
        for start in range(0, len(body), 4096):
            connection.sendall(_chunk(body[start : start + 4096]))
        connection.sendall(b"0\r\n\r\n")
        response = _read_response(connection)

    assert response.status == 200, response.body
    assert len(json.loads(response.body)["faces"]) == 1


def test_live_server_keeps_serving_after_refusing_oversized_bodies(live_server: LiveServer) -> None:
    for _ in range(3):
        with _connect(live_server.port) as connection:
            connection.sendall(_request_head(path="/verify", length_header=f"Content-Length: {10**9}"))
            assert _read_response(connection).status == 413

    healthz = _raw_request(live_server.port, b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    readyz = _raw_request(live_server.port, b"GET /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")

    assert healthz.status == 200
    assert readyz.status == 200


def test_live_upload_without_any_key_is_401_before_its_body_is_sent(live_server: LiveServer) -> None:
    declared = 10 * 1024 * 1024  # under the body cap: only the missing key can refuse it early

    with _connect(live_server.port) as connection:
        connection.sendall(_request_head(path="/enroll", length_header=f"Content-Length: {declared}"))
        connection.sendall(_image_part_head() + b"\xff\xd8\xff" + bytes(16 * 1024))
        response = _read_response(connection)

    assert response.status == 401
    assert response.error_code() == "UNAUTHENTICATED"
    assert response.headers["www-authenticate"] == "Bearer"


def test_request_without_a_key_is_401_even_when_its_body_is_malformed(api: Api) -> None:
    response = api.client.post(
        "/enroll",
        content=b"--not-a-boundary\r\nbroken",
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Authorization": ""},
    )

    assert response.status_code == 401
    assert error_code(response) == "UNAUTHENTICATED"


# --- HTTP clients that send the whole body before they read the answer ----------------------------


def _over_cap_body(settings: Settings) -> bytes:
    return _multipart_of_exact_size(settings.max_request_bytes + 8 * 1024 * 1024)


def _chunks(body: bytes) -> Iterator[bytes]:
    for start in range(0, len(body), CHUNK):
        yield body[start : start + CHUNK]


def _urllib_post(url: str, *, body: bytes, chunked: bool, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    # Without a Content-Length, urllib sends an iterable body chunked.
    data: bytes | Iterator[bytes] = _chunks(body) if chunked else body
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=IO_TIMEOUT_S) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _requests_post(url: str, *, body: bytes, chunked: bool, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    answer = requests.post(url, data=_chunks(body) if chunked else body, headers=headers, timeout=IO_TIMEOUT_S)
    return answer.status_code, answer.json()


def _httpx_post(url: str, *, body: bytes, chunked: bool, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    answer = plain_httpx.post(url, content=_chunks(body) if chunked else body, headers=headers, timeout=IO_TIMEOUT_S)
    return answer.status_code, answer.json()


CLIENTS = {"urllib": _urllib_post, "requests": _requests_post, "httpx": _httpx_post}


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_live_http_clients_read_the_413_of_a_body_over_the_cap(
    live_server: LiveServer, admin_key: str, client: str, framing: str
) -> None:
    headers = {**MULTIPART, "Authorization": f"Bearer {admin_key}"}

    status, answer = CLIENTS[client](
        f"http://127.0.0.1:{live_server.port}/identify",
        body=_over_cap_body(live_server.settings),
        chunked=framing == "chunked",
        headers=headers,
    )

    assert status == 413
    assert answer["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert answer["error"]["details"] == {"max_request_bytes": live_server.settings.max_request_bytes}


def _send_until_closed(connection: socket.socket, *, data: Iterator[bytes], within_s: float) -> tuple[bool, int]:
    """Send while the server keeps the connection open; (whether it closed it, bytes sent)."""
    sent = 0
    deadline = time.monotonic() + within_s
    for piece in data:
        if time.monotonic() > deadline:
            return False, sent
        try:
            connection.sendall(piece)
            sent += len(piece)
            if select.select([connection], [], [], 0)[0] and connection.recv(65536) == b"":
                return True, sent
        except (BrokenPipeError, ConnectionResetError):
            return True, sent
    return False, sent


def _trickle() -> Iterator[bytes]:
    while True:
        time.sleep(0.1)
        yield b"\0"


def test_live_client_that_trickles_after_its_413_is_cut_off_at_the_drain_time_limit(live_server: LiveServer) -> None:
    declared = live_server.settings.max_request_bytes + 1024 * 1024  # small enough to be worth draining

    with _connect(live_server.port) as connection:
        connection.sendall(_request_head(path="/identify", length_header=f"Content-Length: {declared}"))
        response = _read_response(connection)  # at once, before the body
        started = time.monotonic()
        closed, _ = _send_until_closed(connection, data=_trickle(), within_s=DRAIN_TIMEOUT_S + 20)
        elapsed = time.monotonic() - started

    assert response.status == 413
    assert response.error_code() == "PAYLOAD_TOO_LARGE"
    assert closed
    assert DRAIN_TIMEOUT_S - 1 < elapsed < DRAIN_TIMEOUT_S + 10


def test_live_client_that_streams_on_after_its_413_is_cut_off_after_the_drain_byte_limit(
    live_server: LiveServer, admin_key: str
) -> None:
    cap = live_server.settings.max_request_bytes

    def endless_chunks() -> Iterator[bytes]:
        yield _chunk(_image_part_head() + b"\xff\xd8\xff")
        while True:
            yield _chunk(bytes(CHUNK))

    with _connect(live_server.port) as connection:
        head = _request_head(path="/identify", length_header="Transfer-Encoding: chunked", authorization=admin_key)
        connection.sendall(head)
        closed, sent = _send_until_closed(connection, data=endless_chunks(), within_s=60)

    assert closed
    assert cap + DRAIN_MAX_BYTES // 2 < sent < cap + 2 * DRAIN_MAX_BYTES
