"""Request ids on every answer and in every log line of the request; FACEREC_LOG_FORMAT=json."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.errors import install_error_handlers
from app.api.observability import ObservabilityMiddleware
from app.cli import main
from app.config import Settings
from app.logs import JsonFormatter, log_config

GENERATED_ID = re.compile(r"[0-9a-f]{32}")
NO_KEY = {"Authorization": ""}


def handler_as_configured(config: dict[str, Any], *, stream: io.StringIO) -> logging.Handler:
    """The root's handler as `config` makes it, writing to `stream` instead of stderr.

    dictConfig itself cannot run inside pytest: it closes every handler there is, pytest's own included.
    """
    configurator = logging.config.BaseConfigurator(config)
    spec = config["handlers"][config["root"]["handlers"][0]]
    handler = logging.StreamHandler(stream)
    handler.setFormatter(configurator.resolve(config["formatters"][spec["formatter"]]["()"])())
    for name in spec["filters"]:
        handler.addFilter(configurator.resolve(config["filters"][name]["()"])())
    return handler


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of the output, each of which must be one JSON object."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Logging as `facerec serve` sets it up with FACEREC_LOG_FORMAT=json, into a buffer."""
    settings = Settings(_env_file=None, log_format="json", log_level="info")
    config = log_config(log_format=settings.log_format, level=settings.log_level)
    buffer = io.StringIO()
    handler = handler_as_configured(config, stream=buffer)
    root = logging.getLogger()
    level = root.level
    root.setLevel(config["root"]["level"])
    root.addHandler(handler)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_json_log_lines_carry_the_request_id_that_the_answer_carries(
    client: TestClient, json_logs: io.StringIO
) -> None:
    response = client.get("/collections")

    lines = json_lines(json_logs.getvalue())
    (access,) = [line for line in lines if line["logger"] == "facerec.access"]
    assert response.status_code == 200
    assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"])
    assert access["request_id"] == response.headers["X-Request-ID"]
    assert {"time", "level", "logger", "message"} <= set(access)
    assert (access["level"], access["route"], access["status"]) == ("INFO", "/collections", 200)


def test_a_sane_incoming_request_id_is_echoed_and_others_are_replaced(client: TestClient) -> None:
    echoed = client.get("/collections", headers={"X-Request-ID": "edge-7f3c9e1a.42"})
    spaced = client.get("/collections", headers={"X-Request-ID": "two words"})
    long = client.get("/collections", headers={"X-Request-ID": "a" * 129})

    assert echoed.headers["X-Request-ID"] == "edge-7f3c9e1a.42"
    assert GENERATED_ID.fullmatch(spaced.headers["X-Request-ID"])
    assert GENERATED_ID.fullmatch(long.headers["X-Request-ID"])
    assert spaced.headers["X-Request-ID"] != long.headers["X-Request-ID"]


def test_answers_of_the_asgi_middlewares_carry_the_request_id_too(client: TestClient, json_logs: io.StringIO) -> None:
    keyless = client.post("/identify", headers={**NO_KEY, "X-Request-ID": "no-key-1"})
    too_large = client.post("/identify", content=b"x" * (18 * 2**20), headers={"X-Request-ID": "too-large-1"})

    lines = json_lines(json_logs.getvalue())
    statuses = {line["request_id"]: line["status"] for line in lines if line["logger"] == "facerec.access"}
    assert (keyless.status_code, keyless.headers["X-Request-ID"]) == (401, "no-key-1")
    assert (too_large.status_code, too_large.headers["X-Request-ID"]) == (413, "too-large-1")
    assert statuses == {"no-key-1": 401, "too-large-1": 413}


async def _fails(request: Request) -> Response:
    logging.getLogger("app.test").warning("about to fail")
    raise RuntimeError("boom")


def test_an_unexpected_error_is_500_in_our_shape_with_the_id_in_its_answer_and_logs(
    json_logs: io.StringIO,
) -> None:
    app = Starlette(routes=[Route("/fails", _fails)])
    install_error_handlers(app)  # type: ignore[arg-type]
    app.add_middleware(ObservabilityMiddleware)

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/fails", headers={"X-Request-ID": "fails-1"})

    lines = json_lines(json_logs.getvalue())
    ours = [line for line in lines if line.get("request_id") == "fails-1"]
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "fails-1"
    assert response.json()["error"]["code"] == "INTERNAL_ERROR"
    assert {line["logger"] for line in ours} >= {"app.test", "facerec.access", "app.api.errors"}
    assert "RuntimeError: boom" in next(line["exception"] for line in ours if line["logger"] == "app.api.errors")


def test_json_formatter_keeps_extras_and_omits_a_missing_request_id() -> None:
    record = logging.makeLogRecord({"name": "x", "levelname": "INFO", "msg": "%s faces", "args": (3,), "route": "/a"})

    entry = json.loads(JsonFormatter().format(record))

    assert entry["message"] == "3 faces"
    assert entry["route"] == "/a"
    assert "request_id" not in entry


def test_serve_gives_uvicorn_the_same_json_log_config(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    import app.engine.weights

    calls: list[dict[str, Any]] = []
    applied: list[dict[str, Any]] = []
    monkeypatch.setenv("FACEREC_LOG_FORMAT", "json")
    monkeypatch.setattr(app.engine.weights, "resolve_weights", lambda *args, **kwargs: None)
    monkeypatch.setattr(uvicorn, "run", lambda application, **options: calls.append(options))
    monkeypatch.setattr(logging.config, "dictConfig", applied.append)  # the real one would close pytest's handlers

    exit_code = main(["serve", "--port", "8123"])

    (options,) = calls
    config = options["log_config"]
    assert exit_code == 0
    assert applied == [config]  # our own lines before uvicorn starts are in the same format
    assert config["formatters"]["default"]["()"] == "app.logs.JsonFormatter"
    assert config["handlers"]["default"]["filters"] == ["request_id"]
    assert config["root"]["handlers"] == ["default"]
    assert all(config["loggers"][name]["propagate"] for name in ("uvicorn", "uvicorn.error", "uvicorn.access"))
    assert options["access_log"] is False  # the app's own access line replaces uvicorn's
    assert options["port"] == 8123
