"""Small request helpers shared by the API tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2 as httpx
from fastapi.testclient import TestClient


def post_photo(
    client: TestClient, path: str, faces_dir: Path, relative: str, *, field: str = "image", **form: Any
) -> httpx.Response:
    files = {field: (Path(relative).name, (faces_dir / relative).read_bytes())}
    return client.post(path, files=files, data={k: str(v) for k, v in form.items()})


def enrol(client: TestClient, faces_dir: Path, relative: str, subject: str, **form: Any) -> dict[str, Any]:
    response = post_photo(client, "/enroll", faces_dir, relative, subject=subject, **form)
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def identify(client: TestClient, faces_dir: Path, relative: str, **form: Any) -> dict[str, Any]:
    response = post_photo(client, "/identify", faces_dir, relative, **form)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    code: str = body["error"]["code"]
    return code
