"""Everything a facerec process holds: settings, database, face engine, inference pool, services.

Built once per process, by the HTTP lifespan or by a CLI command, and torn down in reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import text

from app.config import Settings
from app.db import session as db
from app.db.embedded import EmbeddedPostgres
from app.db.hnsw import HnswOptions
from app.db.session import Database
from app.services.access import AuditService, KeyService, Scope
from app.services.batching import EmbeddingBatcher
from app.services.face_engine import EngineConfig, FaceEngine
from app.services.gallery import GalleryService
from app.services.images import ImageLimits
from app.services.inference import InferencePool
from app.services.onnx_cache import default_threads
from app.services.ratelimit import RateLimiter
from app.services.recognition import RecognitionPolicy, RecognitionService
from app.services.weights import resolve_weights, weights_source

logger = logging.getLogger(__name__)


def image_limits(settings: Settings) -> ImageLimits:
    return ImageLimits(
        max_bytes=settings.max_image_bytes,
        max_pixels=settings.max_image_pixels,
        min_side=settings.min_image_side,
    )


@dataclass(frozen=True)
class ProcessModel:
    """How many model calls run at once, and on how many threads each.

    By default, one call per core on one thread each, except embedding, which uses every core:
    the batcher makes it one call at a time, holding every waiting face. Measured on two cores:
    one call per core gave 24-25 identify/s at concurrency 4-16 against 17 for one call on two
    threads, with the same single-stream latency (MTCNN's small convolutions hardly gain from a
    second thread), while a batch-1 embedding takes 15 ms on two threads against 25 on one.
    """

    workers: int
    threads_per_call: int
    embed_threads: int

    @staticmethod
    def of(settings: Settings, *, cores: int | None = None) -> ProcessModel:
        cores = cores or default_threads()
        workers = settings.inference_workers or cores
        return ProcessModel(
            workers=workers,
            threads_per_call=settings.torch_threads or max(1, cores // workers),
            embed_threads=settings.torch_threads or cores,
        )


def build_face_engine(settings: Settings) -> FaceEngine:
    """Resolve and verify the weights, then load the models; raises WeightsUnavailableError."""
    path = resolve_weights(weights_source(settings), allow_download=settings.allow_download)
    process = ProcessModel.of(settings)
    return FaceEngine(
        EngineConfig(
            weights_path=path,
            model_id=settings.model_id,
            device=settings.device,
            torch_threads=process.threads_per_call,
            embed_threads=process.embed_threads,
            detector_min_face_px=settings.detector_min_face_px,
            detect_max_side=settings.detect_max_side,
            embedding_backend=settings.embedding_backend,
            detector_backend=settings.detector_backend,
            embedding_precision=settings.embedding_precision,
            onnx_cache_dir=settings.model_dir / "onnx",
            weights_sha256=settings.weights_sha256,  # resolve_weights has just verified the file against it
        )
    )


@dataclass
class Runtime:
    settings: Settings
    database: Database
    face_engine: FaceEngine
    pool: InferencePool
    recognition: RecognitionService
    gallery: GalleryService
    keys: KeyService
    audit: AuditService
    rate_limiter: RateLimiter

    async def readiness(self) -> dict[str, str]:
        """model, database and schema: "ok" or what is wrong."""
        checks = {"model": "ok", "database": "ok", "schema": "ok"}
        if not self.database.ready:
            checks["database"] = f"waiting for {self.database.waiting_for}"
            checks["schema"] = "unknown"
            return checks
        try:
            async with self.database.engine.connect() as connection:
                current = await connection.scalar(text("SELECT version_num FROM alembic_version"))
            if current != db.head_revision():
                checks["schema"] = f"at {current}, expected {db.head_revision()}: run `facerec db upgrade`"
        except Exception as error:  # noqa: BLE001 - any failure here means "not ready", reported as text
            checks["database"] = f"unreachable: {type(error).__name__}"
            checks["schema"] = "unknown"
        return checks


async def start_database(settings: Settings, stack: AsyncExitStack) -> str:
    """The database URL to use: the configured one, or an embedded Postgres started now."""
    if settings.database_url is not None:
        return settings.database_url
    server = EmbeddedPostgres(settings.embedded_pgdata, port=settings.embedded_db_port)
    await asyncio.to_thread(server.start)
    stack.callback(server.stop)
    return server.url


@asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """Everything the service needs. The database may still be on its way: it is prepared in the
    background (waiting with backoff, then migrating) while /readyz says what it waits for."""
    async with AsyncExitStack() as stack:
        # The model first: without weights there is no point starting a database.
        face_engine = await asyncio.to_thread(build_face_engine, settings)
        url = await start_database(settings, stack)
        db_engine = db.make_engine(
            url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            connect_timeout_s=settings.db_connect_timeout_s,
            statement_timeout_s=settings.db_statement_timeout_s,
        )
        stack.push_async_callback(db_engine.dispose)
        database = db.Database(db_engine, url=url, hnsw=HnswOptions.of(settings))
        preparation = asyncio.create_task(database.prepare(migrate=settings.migrate_on_start))
        stack.push_async_callback(_cancel, preparation)
        pool = InferencePool(
            workers=ProcessModel.of(settings).workers,
            max_pending=settings.max_pending_inferences,
            deadline_s=settings.request_deadline_s,
        )
        stack.callback(pool.shutdown)
        recognition = RecognitionService(
            engine=face_engine,
            pool=pool,
            database=database,
            policy=RecognitionPolicy(
                match_threshold=settings.match_threshold,
                min_face_px=settings.min_face_px,
                min_detection_probability=settings.min_detection_probability,
                hnsw_ef_search=settings.hnsw_ef_search,
            ),
            limits=image_limits(settings),
            batcher=EmbeddingBatcher(
                embed=face_engine.embed_crops,
                pool=pool,
                max_faces=settings.embed_max_batch,
                window_s=settings.embed_batch_window_ms / 1000,
            ),
        )
        gallery = GalleryService(database=database)
        keys = KeyService(database=database)
        if settings.auth_enabled:
            first_key = asyncio.create_task(_first_run_admin_key(settings, database, keys))
            stack.push_async_callback(_cancel, first_key)
        else:
            logger.warning(
                "!!! AUTHENTICATION IS OFF (FACEREC_AUTH_ENABLED=false): anyone who can reach this port can "
                "enrol, identify and delete faces. Use this for local development only. !!!"
            )
        retention = asyncio.create_task(_purge_periodically(database, gallery, settings.retention_check_interval_s))
        stack.push_async_callback(_cancel, retention)
        yield Runtime(
            settings,
            database,
            face_engine,
            pool,
            recognition,
            gallery,
            keys,
            AuditService(database=database),
            RateLimiter(per_minute=rate_limits(settings)),
        )


def rate_limits(settings: Settings) -> dict[str, int]:
    return {
        Scope.DETECT.value: settings.rate_limit_detect_per_minute,
        Scope.VERIFY.value: settings.rate_limit_verify_per_minute,
        Scope.IDENTIFY.value: settings.rate_limit_identify_per_minute,
        Scope.ENROLL.value: settings.rate_limit_enroll_per_minute,
        Scope.MANAGE.value: settings.rate_limit_manage_per_minute,
        Scope.ADMIN.value: settings.rate_limit_admin_per_minute,
    }


async def _first_run_admin_key(settings: Settings, database: Database, keys: KeyService) -> None:
    """On the embedded database's first start, make one admin key and print it once (like a notebook token)."""
    if settings.database_url is not None:
        return
    await database.wait_ready(timeout_s=3600)
    if await keys.count() > 0:
        return
    issued = await keys.create(name="first-run admin", scopes=[Scope.ADMIN], collections=None)
    banner = "=" * 78
    print(
        f"\n{banner}\nfacerec created its first API key (scope: admin). It is shown only this once:\n\n"
        f"    {issued.token}\n\nSend it as `Authorization: Bearer <key>`. Create narrower keys with "
        f"POST /keys or `facerec keys create`.\n{banner}\n",
        file=sys.stderr,
        flush=True,
    )


async def _purge_periodically(database: Database, gallery: GalleryService, interval_s: float) -> None:
    await database.wait_ready(timeout_s=365 * 24 * 3600)
    while True:
        try:
            report = await gallery.purge_expired()
            if report.faces_deleted:
                logger.info(
                    "retention: deleted %s expired faces of %s subjects", report.faces_deleted, report.subjects_affected
                )
        except Exception:
            logger.exception("retention purge failed")
        await asyncio.sleep(interval_s)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
