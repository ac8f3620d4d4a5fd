"""One error shape everywhere: {"error": {"code", "message", "details"}}; no stack traces to clients."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import ERROR_CATALOGUE, FacerecError
from app.schemas import ErrorResponse

logger = logging.getLogger(__name__)

_STATUS_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE"}


def error_json(
    *,
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return JSONResponse(body, status_code=status, headers=headers)


# What every authenticated route of the gallery and access routers can answer besides its own codes.
COMMON_ERRORS = (
    "UNAUTHENTICATED",
    "INSUFFICIENT_SCOPE",
    "RATE_LIMITED",
    "DATABASE_UNAVAILABLE",
    "AUDIT_UNAVAILABLE",
    "VALIDATION_ERROR",
)


def error_responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the given error codes, grouped by status."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(ERROR_CATALOGUE[code].status, []).append(code)
    return {
        status: {
            "model": ErrorResponse,
            "description": "; ".join(f"`{code}`: {ERROR_CATALOGUE[code].meaning}" for code in group),
        }
        for status, group in sorted(by_status.items())
    }


async def _facerec_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, FacerecError)
    return error_json(
        status=error.status, code=error.code, message=error.message, details=error.details, headers=error.headers
    )


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = [
        {
            "field": ".".join(str(part) for part in problem.get("loc", ())),
            "message": problem.get("msg", ""),
            "type": problem.get("type", ""),
        }
        for problem in error.errors()
    ]
    return error_json(
        status=422,
        code="VALIDATION_ERROR",
        message="The request has invalid or missing fields.",
        details={"errors": problems},
    )


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = _STATUS_CODES.get(error.status_code, "BAD_REQUEST" if error.status_code < 500 else "INTERNAL_ERROR")
    return error_json(status=error.status_code, code=code, message=str(error.detail), headers=error.headers)


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_json(status=500, code="INTERNAL_ERROR", message="An unexpected error occurred; it has been logged.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FacerecError, _facerec_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
