"""The ASGI application: `create_app(settings)` and its lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TypedDict

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.formparsers import MultiPartParser
from starlette.middleware.cors import CORSMiddleware

from app import __version__
from app.api.errors import install_error_handlers
from app.api.metrics_port import metrics_port
from app.api.middleware import BodySizeLimitMiddleware, CredentialsRequiredMiddleware
from app.api.observability import ObservabilityMiddleware
from app.api.routes import access, console, faces, gallery, health, metrics
from app.composition import build_services, database_server, make_database, open_engine
from app.config import Settings
from app.engine.faces import Embedder
from app.jobs import start_server_jobs
from app.services.container import Services
from app.services.metrics import Metrics

DESCRIPTION = """
Face recognition over HTTP: enrol people's faces under a name, then identify who is in a photo
(or learn that the face is unknown), verify two photos, or just detect faces.

Embeddings come from facenet-pytorch (MTCNN + InceptionResnetV1, VGGFace2) and are searched with
pgvector's HNSW index. Only embeddings and metadata are stored, never the photos.
Every error has the shape `{"error": {"code", "message", "details"}}`; the codes are stable.
"""


class State(TypedDict):
    services: Services
    metrics: Metrics


def create_app(settings: Settings | None = None, *, embedder: Embedder | None = None) -> FastAPI:
    """The service; `embedder` replaces the configured embedder (the tests' controlled one)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        async with AsyncExitStack() as stack:
            # The model first: without weights there is no point starting a database.
            engine = await asyncio.to_thread(open_engine, settings, embedder=embedder)
            server = await stack.enter_async_context(database_server(settings))
            app_metrics = Metrics(gallery_refresh_s=settings.metrics_gallery_refresh_s)  # this app's own registry
            database = make_database(settings, url=server.url, metrics=app_metrics)
            stack.push_async_callback(database.engine.dispose)
            services = build_services(
                settings, database=database, engine=engine, stack=stack, metrics=app_metrics, embedded=server.embedded
            )
            if settings.metrics_port is not None:
                stack.enter_context(metrics_port(app_metrics, host=settings.host, port=settings.metrics_port))
            start_server_jobs(services, stack=stack)
            yield {"services": services, "metrics": app_metrics}

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
    for module in (faces, gallery, access, health, metrics, console):
        app.include_router(module.router)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )
    # Outermost (added last): every answer, the other middlewares' included, gets its request id and is counted.
    app.add_middleware(ObservabilityMiddleware)
    return app


app = create_app()
