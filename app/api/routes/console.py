"""The web console: its page at `/` and its files under `/console/`, all public and under a strict CSP.

The page holds no key of its own: it asks for one and calls the public API with it, so the key's
scopes apply. The CSP is set here, on the console's responses only, because Swagger UI at /docs
needs an inline script.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import FileResponse, HTMLResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"
ASSETS_PREFIX = "/console"
DOCS_ASSETS_PREFIX = "/static-offline-docs"  # where fastapi-offline serves Swagger UI's and ReDoc's files

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate on every load (ETag): a new release's files are picked up at once.
    "Cache-Control": "no-cache",
}


# ReDoc's sidebar always shows its maker's logo from cdn.redoc.ly: images from elsewhere are refused,
# so reading the docs calls out to no one (and offline, fails nothing).
REDOC_HEADERS = {"Content-Security-Policy": "img-src 'self' data: blob:"}


class ConsoleFiles(StaticFiles):
    """The console's static files, each sent with the console's security headers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


router = APIRouter(include_in_schema=False)


@router.get("/")
async def console_page() -> FileResponse:
    """The web console."""
    return FileResponse(STATIC_DIR / "index.html", headers=SECURITY_HEADERS)


@router.get("/redoc")
async def redoc_page(request: Request) -> HTMLResponse:
    """ReDoc from the service's own copy of its script (fastapi-offline's), under an image policy."""
    root = request.scope.get("root_path", "")
    response = get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}{DOCS_ASSETS_PREFIX}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{DOCS_ASSETS_PREFIX}/favicon.png",
        with_google_fonts=False,
    )
    response.headers.update(REDOC_HEADERS)
    return response


router.mount(ASSETS_PREFIX, ConsoleFiles(directory=STATIC_DIR), name="console")
