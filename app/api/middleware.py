"""The outermost guard: no request body past the byte cap, whether it says its length or not.

FastAPI/Starlette put no cap on a request body (a 30 MB file part or a chunked upload of any
length is read and spooled). This middleware answers 413 PAYLOAD_TOO_LARGE before the body is
parsed: at once when Content-Length is over the cap, and as soon as the streamed bytes pass it
otherwise.

Then, as nginx does, it reads and discards what the client is still sending before it closes
the connection. A server that closes with unread bytes makes its kernel answer them with a
reset, which throws away the 413 before a client that is still sending (urllib, requests,
httpx: they read the answer only once the body is out) gets to read it. The drain is bounded,
so it cannot be abused: at most `drain_max_bytes` more bytes and `drain_timeout_s` seconds, then
the connection is closed whatever the client is doing (a client that trickles forever is cut
off). It is skipped when it cannot help: a declared length beyond the bound, or a client that
asked `Expect: 100-continue` and so will not send the body it was refused.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DRAIN_MAX_BYTES = 64 * 1024 * 1024
DRAIN_TIMEOUT_S = 5.0


class _BodyTooLarge(BaseException):
    """Raised from receive(); a BaseException so that body parsers' `except Exception` cannot swallow it."""


class BodySizeLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        drain_max_bytes: int = DRAIN_MAX_BYTES,
        drain_timeout_s: float = DRAIN_TIMEOUT_S,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.drain_max_bytes = drain_max_bytes
        self.drain_timeout_s = drain_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            # Nothing has been read: a client waiting for 100 Continue sends no body to drain.
            drain = declared <= self.drain_max_bytes and not _expects_continue(scope)
            await self._reject(send, then_drain=drain)
            if drain:
                await self._drain(receive)
                await _finish(send)
            return
        received = 0
        response_started = False
        rejected = False
        body_complete = False

        async def limited_receive() -> Message:
            nonlocal received, rejected, body_complete
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_complete = not message.get("more_body", False)
                if received > self.max_bytes:
                    if not response_started and not rejected:
                        rejected = True
                        await self._reject(send, then_drain=True)
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
        if rejected:
            if not body_complete:  # past the end, receive() would wait for the response, not for bytes
                await self._drain(receive)
            await _finish(send)

    async def _reject(self, send: Send, *, then_drain: bool) -> None:
        # With then_drain, the answer is sent whole but left open (more_body), so that the server
        # keeps reading the request until _finish; its Content-Length lets the client read it now.
        await send_error(
            send,
            status=413,
            code="PAYLOAD_TOO_LARGE",
            message=f"The request body is over {self.max_bytes} bytes.",
            details={"max_request_bytes": self.max_bytes},
            headers=[(b"connection", b"close")],
            more_body=then_drain,
        )

    async def _drain(self, receive: Receive) -> None:
        """Read and discard the rest of the request body, within the byte and time bounds."""
        drained = 0
        with anyio.move_on_after(self.drain_timeout_s):
            while drained <= self.drain_max_bytes:
                message = await receive()
                if message["type"] != "http.request":  # the client went away
                    return
                drained += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return


async def _finish(send: Send) -> None:
    """End the response left open for the drain: the server then closes the connection."""
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def _expects_continue(scope: Scope) -> bool:
    return any(name == b"expect" and value.lower() == b"100-continue" for name, value in scope["headers"])


async def send_error(
    send: Send,
    *,
    status: int,
    code: str,
    message: str,
    details: dict[str, Any],
    headers: list[tuple[bytes, bytes]],
    more_body: bool = False,
) -> None:
    """Our error shape, sent straight from ASGI middleware (outside FastAPI's handlers).

    With more_body, the response is left open: the caller ends it with an empty body message.
    """
    body = json.dumps({"error": {"code": code, "message": message, "details": details}}).encode()
    start_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": body, "more_body": more_body})


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
