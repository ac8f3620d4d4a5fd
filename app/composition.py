"""The composition root: settings in, engine, database and services out.

`facerec serve` (app.main's lifespan) and the CLI commands build what they need from here, and
only that: a command that manages keys opens the database and no model; one that enrols opens
both. Background jobs (retention, the first-run key) are the server's alone (app.jobs).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from app.config import VGGFACE2_WEIGHTS_FILENAME, Settings
from app.db.embedded import EmbeddedPostgres
from app.db.hnsw import HnswOptions
from app.db.session import Database, make_engine
from app.db.supervisor import EmbeddedSupervisor
from app.engine.batching import EmbeddingBatcher
from app.engine.build import EngineConfig, build_engine
from app.engine.decode import ImageLimits
from app.engine.engine import FaceEngine
from app.engine.faces import Embedder
from app.engine.inference import InferencePool
from app.engine.onnx_runtime import default_threads
from app.engine.weights import WeightsSource, resolve_weights
from app.errors import DatabaseUnavailableError
from app.services.access import KeyService, Scope
from app.services.analysis import FaceAnalyser
from app.services.audit import AuditTrail
from app.services.container import Services
from app.services.enrollment import EnrollmentService
from app.services.gallery import GalleryService
from app.services.health import HealthService
from app.services.metrics import Metrics
from app.services.policy import RecognitionPolicy
from app.services.quality import QualityLimits
from app.services.ratelimit import RateLimiter
from app.services.recognition import RecognitionService


def image_limits(settings: Settings) -> ImageLimits:
    return ImageLimits(
        max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels, min_side=settings.min_image_side
    )


def weights_source(settings: Settings) -> WeightsSource:
    return WeightsSource(
        explicit_path=settings.weights_path,
        model_dir=settings.model_dir,
        filename=VGGFACE2_WEIGHTS_FILENAME,
        url=settings.weights_url,
        sha256=settings.weights_sha256,
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


def open_engine(settings: Settings, *, embedder: Embedder | None = None) -> FaceEngine:
    """Resolve and verify the weights, then build the engine; raises WeightsUnavailableError. Blocking."""
    path = resolve_weights(weights_source(settings), allow_download=settings.allow_download)
    process = ProcessModel.of(settings)
    config = EngineConfig(
        weights_path=path,
        weights_sha256=settings.weights_sha256,  # resolve_weights has just verified the file against it
        model_id=settings.model_id,
        cache_dir=settings.model_dir / "onnx",
        device=settings.device,
        detector_backend=settings.detector_backend,
        embedding_backend=settings.embedding_backend,
        embedding_precision=settings.embedding_precision,
        detector_min_face_px=settings.detector_min_face_px,
        detect_max_side=settings.detect_max_side,
        detect_threads=process.threads_per_call,
        embed_threads=process.embed_threads,
    )
    return build_engine(config, embedder=embedder)


@dataclass(frozen=True)
class DatabaseServer:
    """Where the database is, and the embedded server behind it when there is one."""

    url: str
    embedded: EmbeddedPostgres | None = None


@asynccontextmanager
async def database_server(settings: Settings) -> AsyncIterator[DatabaseServer]:
    """FACEREC_DATABASE_URL, or an embedded Postgres started for as long as the block runs."""
    if settings.database_url is not None:
        yield DatabaseServer(url=settings.database_url)
        return
    server = EmbeddedPostgres(settings.embedded_pgdata, port=settings.embedded_db_port)
    await asyncio.to_thread(server.start)
    try:
        yield DatabaseServer(url=server.url, embedded=server)
    finally:
        await asyncio.to_thread(server.stop)


@asynccontextmanager
async def database_url(settings: Settings) -> AsyncIterator[str]:
    async with database_server(settings) as server:
        yield server.url


def make_database(
    settings: Settings, *, url: str, pool_size: int | None = None, metrics: Metrics | None = None
) -> Database:
    engine = make_engine(
        url,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_max_overflow if pool_size is None else 1,
        connect_timeout_s=settings.db_connect_timeout_s,
        statement_timeout_s=settings.db_statement_timeout_s,
    )
    on_outcome = None if metrics is None else metrics.database_outcome
    return Database(engine, url=url, hnsw=HnswOptions.of(settings), on_outcome=on_outcome)


def rate_limits(settings: Settings) -> dict[str, int]:
    return {
        Scope.DETECT.value: settings.rate_limit_detect_per_minute,
        Scope.VERIFY.value: settings.rate_limit_verify_per_minute,
        Scope.IDENTIFY.value: settings.rate_limit_identify_per_minute,
        Scope.ENROLL.value: settings.rate_limit_enroll_per_minute,
        Scope.MANAGE.value: settings.rate_limit_manage_per_minute,
        Scope.ADMIN.value: settings.rate_limit_admin_per_minute,
    }


def quality_limits(settings: Settings) -> QualityLimits:
    return QualityLimits(
        min_face_px=settings.min_face_px,
        min_detection_probability=settings.min_detection_probability,
        min_sharpness=settings.quality_min_sharpness,
        max_roll_degrees=settings.quality_max_roll_degrees,
        max_yaw_offset=settings.quality_max_yaw_offset,
        min_brightness=settings.quality_min_brightness,
        max_brightness=settings.quality_max_brightness,
        max_clipped_fraction=settings.quality_max_clipped_fraction,
    )


def policy_of(settings: Settings) -> RecognitionPolicy:
    return RecognitionPolicy(
        match_threshold=settings.match_threshold,
        quality=quality_limits(settings),
        bystander_max_width_ratio=settings.bystander_max_width_ratio,
        enroll_conflict_check=settings.enroll_conflict_check,
        hnsw_ef_search=settings.hnsw_ef_search,
    )


def build_services(
    settings: Settings,
    *,
    database: Database,
    engine: FaceEngine | None,
    stack: AsyncExitStack,
    metrics: Metrics | None = None,
    embedded: EmbeddedPostgres | None = None,
) -> Services:
    """The services; with an engine, its inference pool too (shut down when the stack closes).

    With `metrics` (the server's), the pool, the embedding calls, the analyser and the database feed them.
    With `embedded`, the server's supervisor too (for the server's jobs, which run it).
    """
    if metrics is not None:
        metrics.watch_database(database)
    audit = AuditTrail(database=database)
    gallery = GalleryService(database=database, audit=audit)
    limiter = RateLimiter(database=database, per_minute=rate_limits(settings))
    keys = KeyService(database=database, rate_limiter=limiter)
    if engine is None:
        return Services(
            settings=settings, database=database, gallery=gallery, keys=keys, audit=audit, rate_limiter=limiter
        )
    analyser = build_analyser(settings, engine=engine, stack=stack, metrics=metrics)
    policy = policy_of(settings)
    supervisor = None if embedded is None else EmbeddedSupervisor(embedded)
    return Services(
        settings=settings,
        database=database,
        gallery=gallery,
        keys=keys,
        audit=audit,
        rate_limiter=limiter,
        analyser=analyser,
        recognition=RecognitionService(analyser=analyser, database=database, policy=policy, audit=audit),
        enrollment=EnrollmentService(analyser=analyser, database=database, policy=policy, audit=audit),
        health=HealthService(database=database, analyser=analyser, supervisor=supervisor),
        supervisor=supervisor,
    )


def build_analyser(
    settings: Settings, *, engine: FaceEngine, stack: AsyncExitStack, metrics: Metrics | None = None
) -> FaceAnalyser:
    """The engine behind its inference pool (shut down when the stack closes) and batcher."""
    pool = InferencePool(
        workers=ProcessModel.of(settings).workers,
        max_pending=settings.max_pending_inferences,
        deadline_s=settings.request_deadline_s,
        on_refused=None if metrics is None else metrics.inference_refused,
    )
    stack.callback(pool.shutdown)
    if metrics is not None:
        metrics.watch_pool(pool)
    batcher = EmbeddingBatcher(
        embed=engine.embed if metrics is None else metrics.timed_embedding(engine.embed),
        pool=pool,
        max_faces=settings.embed_max_batch,
        window_s=settings.embed_batch_window_ms / 1000,
    )
    return FaceAnalyser(engine=engine, pool=pool, batcher=batcher, limits=image_limits(settings), metrics=metrics)


@asynccontextmanager
async def open_services(
    settings: Settings, *, with_engine: bool, ready_timeout_s: float = 120.0
) -> AsyncIterator[Services]:
    """For CLI commands: a migrated database (embedded or external), and the engine if asked; no jobs.

    DatabaseUnavailableError when the database is not ready (reachable and migrated) within ready_timeout_s.
    """
    async with AsyncExitStack() as stack:
        engine = await asyncio.to_thread(open_engine, settings) if with_engine else None
        url = await stack.enter_async_context(database_url(settings))
        database = make_database(settings, url=url, pool_size=2)
        stack.push_async_callback(database.engine.dispose)
        try:
            await asyncio.wait_for(database.prepare(migrate=settings.migrate_on_start), timeout=ready_timeout_s)
        except TimeoutError:
            raise DatabaseUnavailableError(
                f"The database was not ready within {ready_timeout_s:g} s: waiting for {database.waiting_for}."
            ) from None
        yield build_services(settings, database=database, engine=engine, stack=stack)
