"""Property-based tests of every operation against the app's own OpenAPI document (schemathesis).

The app runs in process through schemathesis' ASGI integration, over the session's real Postgres and
real MTCNN, and must never answer with a server error or with a status, content type, header or body
that its OpenAPI document does not declare. Generation is derandomised and small: a few examples per
operation, repeatable from run to run.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.config import Settings
from app.main import create_app
from app.services.access import Scope
from tests.conftest import issue_key

# Zero server errors and zero schema violations; not the checks that judge business rules (such as
# "a schema-valid body must be accepted", which a photo of random bytes rightly is not).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def api_app(settings: Settings, app_client: TestClient) -> FastAPI:
    """A second app over the session's database (migrated by app_client); schemathesis runs its lifespan."""
    return create_app(settings)


# The document is read at collection time from an app that is never started (settings only shape
# defaults in it); test_the_document_tested_is_the_one_the_app_serves checks it is the one served.
# (schemathesis.pytest.from_fixture would defer this, but fails on pytest 9: `Function` has no `_nodeid`.)
DOCUMENT = create_app().openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT)


def _asgi_client(app: FastAPI) -> asgi.ASGIClient:
    # FastAPI types its ASGI scope as MutableMapping, schemathesis as dict: the same protocol.
    return asgi.get_client(app)  # type: ignore[arg-type]


@pytest.fixture
def ready_app(api_app: FastAPI) -> None:
    """The app's lifespan started (schemathesis ends it after each test) and its database ready."""
    with _asgi_client(api_app) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the app did not become ready within 60 s"
            time.sleep(0.05)


@pytest.fixture
def auth_headers(app_client: TestClient) -> dict[str, str]:
    """A fresh admin key per operation, so that no operation runs into another's rate limit."""
    return {"Authorization": f"Bearer {issue_key(app_client, [Scope.ADMIN])}"}


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_operation_never_errors_and_conforms_to_its_openapi_document(
    case: schemathesis.Case[Any], api_app: FastAPI, ready_app: None, auth_headers: dict[str, str]
) -> None:
    case.call_and_validate(app=api_app, headers=auth_headers, checks=CHECKS)


def test_the_document_tested_is_the_one_the_app_serves(api_app: FastAPI, ready_app: None) -> None:
    with _asgi_client(api_app) as client:
        served = client.get("/openapi.json").json()

    assert served == DOCUMENT
