"""The outermost guard: no request body past the byte cap, whether it says its length or not.

FastAPI/Starlette put no cap on a request body (a 30 MB file part or a chunked upload of any
length is read and spooled). This middleware answers 413 PAYLOAD_TOO_LARGE before the body is
parsed: at once when Content-Length is over the cap, and as soon as the streamed bytes pass it
otherwise, without reading the rest.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _BodyTooLarge(BaseException):
    """Raised from receive(); a BaseException so that body parsers' `except Exception` cannot swallow it."""


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._reject(send)
            return
        received = 0
        response_started = False
        rejected = False

        async def limited_receive() -> Message:
            nonlocal received, rejected
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if not response_started and not rejected:
                        rejected = True
                        await self._reject(send)
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if rejected:  # the 413 has been sent: whatever the app answers now goes nowhere
                return
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            pass
        except BaseExceptionGroup as group:  # raised inside a task group (e.g. while parsing a form)
            _, others = group.split(_BodyTooLarge)
            if others is not None:
                raise

    async def _reject(self, send: Send) -> None:
        await send_error(
            send,
            status=413,
            code="PAYLOAD_TOO_LARGE",
            message=f"The request body is over {self.max_bytes} bytes.",
            details={"max_request_bytes": self.max_bytes},
            headers=[(b"connection", b"close")],
        )


async def send_error(
    send: Send,
    *,
    status: int,
    code: str,
    message: str,
    details: dict[str, Any],
    headers: list[tuple[bytes, bytes]],
) -> None:
    """Our error shape, sent straight from ASGI middleware (outside FastAPI's handlers)."""
    body = json.dumps({"error": {"code": code, "message": message, "details": details}}).encode()
    start_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/"})
# The web console's files and the docs' offline scripts: a browser loads them before it has a key.
PUBLIC_PREFIXES = ("/console/", "/static-offline-docs/")


class CredentialsRequiredMiddleware:
    """Answer 401 before reading the body when a request carries no key at all.

    Without this, FastAPI parses a whole (up to 17 MiB) multipart upload before the key check
    runs. Keys that are present are still checked by the route's dependency, against the
    database; this guard only refuses requests that cannot possibly be authorised.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] == "OPTIONS"
            or scope["path"] in PUBLIC_PATHS
            or scope["path"].startswith(PUBLIC_PREFIXES)
            or _has_credentials(scope)
        ):
            await self.app(scope, receive, send)
            return
        await send_error(
            send,
            status=401,
            code="UNAUTHENTICATED",
            message="An API key is required: send `Authorization: Bearer <key>` or `X-API-Key`.",
            details={},
            headers=[(b"www-authenticate", b"Bearer")],
        )


def _has_credentials(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"x-api-key" and value.strip():
            return True
        if name == b"authorization" and value.strip().lower().startswith(b"bearer ") and value.strip()[7:].strip():
            return True
    return False
