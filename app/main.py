"""The ASGI application: `create_app(settings)` and its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.formparsers import MultiPartParser
from starlette.middleware.cors import CORSMiddleware

from app import __version__
from app.api.errors import install_error_handlers
from app.api.middleware import BodySizeLimitMiddleware, CredentialsRequiredMiddleware
from app.api.routes import access, console, faces, gallery, health
from app.config import Settings
from app.runtime import Runtime, open_runtime

DESCRIPTION = """
Face recognition over HTTP: enrol people's faces under a name, then identify who is in a photo
(or learn that the face is unknown), verify two photos, or just detect faces.

Embeddings come from facenet-pytorch (MTCNN + InceptionResnetV1, VGGFace2) and are searched with
pgvector's HNSW index. Only embeddings and metadata are stored, never the photos.
Every error has the shape `{"error": {"code", "message", "details"}}`; the codes are stable.
"""


class State(TypedDict):
    runtime: Runtime


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        async with open_runtime(settings) as runtime:
            yield {"runtime": runtime}

    # Uploads stay in memory up to the body cap instead of rolling over to temporary files.
    MultiPartParser.spool_max_size = settings.max_request_bytes
    # The docs pages load Swagger UI's and ReDoc's scripts from the service, not a CDN: they work offline.
    # /redoc is served by the console router, which adds an image policy to fastapi-offline's page.
    app = FastAPIOffline(
        redoc_url=None,
        static_url=console.DOCS_ASSETS_PREFIX,
        title="facerec",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        form_limits={
            "max_fields": settings.max_form_fields,
            "max_files": settings.max_form_files,
            "max_part_size": settings.max_form_field_bytes,
        },
    )
    install_error_handlers(app)
    if settings.auth_enabled:
        app.add_middleware(CredentialsRequiredMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.include_router(faces.router)
    app.include_router(gallery.router)
    app.include_router(access.router)
    app.include_router(health.router)
    app.include_router(console.router)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key"],
        )
    return app


app = create_app()
