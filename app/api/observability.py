"""The outermost middleware: a request id for every request, its metrics, and one access log line.

It wraps the other middlewares, so that their early answers (401 without a key, 413 past the
body cap) carry `X-Request-ID` and are counted too. The id is the client's `X-Request-ID` when
that is a sane token (so that a proxy's or caller's id follows the request through our logs),
else a new random one; it is in `app.logs.REQUEST_ID` while the request runs, where the log
filter finds it.

Requests are counted by route template (`/subjects/{subject_id}`), never by raw path, so that
the metrics' label values stay few. Paths are logged without their query string, which may hold
a subject's name.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable, Iterator

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.middleware import send_error
from app.logs import REQUEST_ID
from app.services.metrics import Metrics

access_logger = logging.getLogger("facerec.access")

REQUEST_ID_HEADER = b"x-request-id"
# Ids from UUIDs, W3C trace ids, AWS and most proxies fit; anything else is replaced, not echoed.
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:+=/-]{0,127}")
UNMATCHED_ROUTE = "unmatched"  # a path no route serves (404): one label value for all of them


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routes: list[BaseRoute] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        route = self._route_template(scope)  # before the app runs: routing adds to the scope
        started = time.perf_counter()
        status: int | None = None

        async def identified_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {
                    **message,
                    "headers": [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id.encode())],
                }
            await send(message)

        try:
            await self.app(scope, receive, identified_send)
        except Exception:
            if status is None:  # our error shape, with the id; ServerErrorMiddleware then logs the error
                await send_error(
                    identified_send,
                    status=500,
                    code="INTERNAL_ERROR",
                    message="An unexpected error occurred; it has been logged.",
                    details={},
                    headers=[],
                )
            raise  # REQUEST_ID stays set, so the error's log record carries the id
        finally:
            if status is not None:  # None: the client left before any answer
                self._observe(scope, route=route, status=status, seconds=time.perf_counter() - started)
        REQUEST_ID.reset(token)

    def _observe(self, scope: Scope, *, route: str, status: int, seconds: float) -> None:
        metrics: Metrics | None = scope.get("state", {}).get("metrics")
        if metrics is not None:
            metrics.observe_request(method=scope["method"], route=route, status=status, seconds=seconds)
        client = scope.get("client")
        access_logger.info(
            "%s %s %s %.1f ms",
            scope["method"],
            scope["path"],
            status,
            seconds * 1000,
            extra={
                "method": scope["method"],
                "path": scope["path"],
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 1),
                "client": None if client is None else f"{client[0]}:{client[1]}",
            },
        )

    def _route_template(self, scope: Scope) -> str:
        if self._routes is None:
            self._routes = list(_flatten(scope["app"].routes))
        partial = None
        for route in self._routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return _template(route)
            if match == Match.PARTIAL and partial is None:  # the path, with another method (405)
                partial = _template(route)
        return partial or UNMATCHED_ROUTE


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER and _SANE_REQUEST_ID.fullmatch(value):
            return bytes(value).decode()
    return None


def _flatten(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, including those of included routers (which FastAPI keeps as nodes of their own)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _flatten(included.routes)
        else:
            yield route


def _template(route: BaseRoute) -> str:
    """The path with its parameters named: `/subjects/{subject_id}`, or `/console/{path}` for a mount."""
    path: str = getattr(route, "path_format", None) or UNMATCHED_ROUTE
    return path
