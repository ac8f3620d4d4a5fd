"""The OpenAPI document: every route summarised, typed and with its errors; no embeddings anywhere."""

from __future__ import annotations

from typing import Any

import pytest

from app.main import create_app
from tests.conftest import api_routes

APP = create_app()
SPEC: dict[str, Any] = APP.openapi()
OPERATIONS = [
    (path, method, operation) for path, methods in SPEC["paths"].items() for method, operation in methods.items()
]


def test_openapi_lists_every_route() -> None:
    expected = {
        ("/enroll", "post"),
        ("/identify", "post"),
        ("/verify", "post"),
        ("/detect", "post"),
        ("/collections", "get"),
        ("/collections/{name}", "delete"),
        ("/subjects", "get"),
        ("/subjects/{subject_id}", "get"),
        ("/subjects/{subject_id}", "patch"),
        ("/subjects/{subject_id}", "delete"),
        ("/subjects/{subject_id}/faces", "get"),
        ("/faces/{face_id}", "delete"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/collections/{name}", "patch"),
        ("/keys", "post"),
        ("/keys", "get"),
        ("/keys/{key_id}", "delete"),
        ("/keys/{key_id}/rotate", "post"),
        ("/audit", "get"),
    }

    assert {(path, method) for path, method, _ in OPERATIONS} == expected


@pytest.mark.parametrize(("path", "method", "operation"), OPERATIONS, ids=[f"{m} {p}" for p, m, _ in OPERATIONS])
def test_every_operation_has_a_summary_and_typed_success_response(
    path: str, method: str, operation: dict[str, Any]
) -> None:
    success = [code for code in operation["responses"] if code.startswith("2")]

    assert operation.get("summary")
    assert success
    for code in success:
        if code != "204":
            assert "$ref" in str(operation["responses"][code]["content"]["application/json"]["schema"])


@pytest.mark.parametrize(("path", "method", "operation"), OPERATIONS, ids=[f"{m} {p}" for p, m, _ in OPERATIONS])
def test_every_operation_with_input_documents_its_errors_in_the_error_shape(
    path: str, method: str, operation: dict[str, Any]
) -> None:
    if (path, method) in {("/healthz", "get"), ("/readyz", "get"), ("/collections", "get"), ("/keys", "get")}:
        pytest.skip("takes no input")
    errors = {code: body for code, body in operation["responses"].items() if code[0] in "45"}

    assert "422" in errors
    for body in errors.values():
        assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}


def _property_names(schema: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(schema, dict):
        names.update(schema.get("properties", {}).keys())
        for value in schema.values():
            names |= _property_names(value)
    elif isinstance(schema, list):
        for value in schema:
            names |= _property_names(value)
    return names


def test_no_response_schema_can_carry_an_embedding() -> None:
    names = _property_names(SPEC["components"]["schemas"])

    assert not {name for name in names if "embedding" in name or "vector" in name}


def test_every_route_handler_has_a_one_line_docstring() -> None:
    routes = [route for route in api_routes(APP.routes) if route.include_in_schema]  # not the docs and console pages

    assert len(routes) == len(OPERATIONS)
    for route in routes:
        assert route.endpoint.__doc__, route.path
        assert "\n" not in route.endpoint.__doc__.strip(), route.path
