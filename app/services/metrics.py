"""The service's Prometheus metrics, in a registry of the app's own (never the library's global one).

The lifespan makes one `Metrics` and hands its recording methods to what it measures: the HTTP
middleware (requests by route template and status, latency), the inference pool (queue depth,
OVERLOADED and DEADLINE_EXCEEDED refusals), the embedding call (batch sizes, seconds), the face
analyser (detection seconds, faces per image) and the database (availability, errors). Gauges
that describe state (queue depth, database up, gallery sizes) are read when scraped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder

from app.db.records import CollectionSize
from app.db.session import Database, Outcome
from app.engine.faces import Crops, Embeddings
from app.engine.inference import InferencePool
from app.errors import DeadlineExceededError, OverloadedError
from app.services.gallery_sizes import CollectionSizes

# From a 5 ms probe to the 30 s request deadline.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0)
MODEL_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)  # FACEREC_EMBED_MAX_BATCH is at most 256
FACES_BUCKETS = (0, 1, 2, 3, 5, 10, 20, 50, 100)  # MAX_FACES_MEASURED is 100
# Anything else a client sends as a method is counted as "other": labels must not grow without bound.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REFUSAL_CODES = (OverloadedError.code, DeadlineExceededError.code)

DATABASE_ERROR_KINDS = ("unavailable", "audit")


class Metrics:
    """Every metric family of one app, its registry, and the calls that feed them."""

    def __init__(self, *, gallery_refresh_s: float) -> None:
        # The library's switch is process-wide; the *_created series would double every counter and
        # histogram in the output, and nothing an operator asks of these needs them.
        disable_created_metrics()  # type: ignore[no-untyped-call]  # (the library leaves it unannotated)
        self.registry = CollectorRegistry()
        for collector in (ProcessCollector, PlatformCollector, GCCollector):  # resident memory, CPU, fds, GC
            collector(registry=self.registry)
        registry = self.registry
        self.http_requests = Counter(
            "facerec_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "facerec_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.queue_depth = Gauge(
            "facerec_inference_queue_depth",
            "Model calls admitted to the inference pool, waiting or running.",
            registry=registry,
        )
        self.queue_capacity = Gauge(
            "facerec_inference_queue_capacity",
            "Model calls the inference pool admits (FACEREC_MAX_PENDING_INFERENCES); past it, 503 OVERLOADED.",
            registry=registry,
        )
        self.inference_refusals = Counter(
            "facerec_inference_refusals",
            "Model calls refused: OVERLOADED (queue full) or DEADLINE_EXCEEDED (FACEREC_REQUEST_DEADLINE_S).",
            ["code"],
            registry=registry,
        )
        self.batch_size = Histogram(
            "facerec_embedding_batch_size",
            "Faces embedded in one model call (the cross-request batcher's batches).",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.embedding_seconds = Histogram(
            "facerec_embedding_seconds",
            "Time of one embedding model call (one batch), in the inference pool.",
            buckets=MODEL_BUCKETS_S,
            registry=registry,
        )
        self.detection_seconds = Histogram(
            "facerec_detection_seconds",
            "Time to decode one image, find its faces and crop them, in the inference pool.",
            buckets=MODEL_BUCKETS_S,
            registry=registry,
        )
        self.faces_per_image = Histogram(
            "facerec_faces_per_image",
            "Faces the detector found in one image.",
            buckets=FACES_BUCKETS,
            registry=registry,
        )
        self.database_up = Gauge(
            "facerec_database_up",
            "1 while the database is ready and the last unit of work reached it, else 0.",
            registry=registry,
        )
        self.database_errors = Counter(
            "facerec_database_errors",
            "Units of work that failed: unavailable (503 DATABASE_UNAVAILABLE), audit (503 AUDIT_UNAVAILABLE).",
            ["kind"],
            registry=registry,
        )
        for code in REFUSAL_CODES:  # at 0 from the start, so that rate() sees the first one
            self.inference_refusals.labels(code=code)
        for kind in DATABASE_ERROR_KINDS:
            self.database_errors.labels(kind=kind)
        self.database_up.set(0)
        self.collection_sizes = CollectionSizes(max_age_s=gallery_refresh_s)
        registry.register(self.collection_sizes)
        self._database_reached = True

    # What the middleware and the use cases report.

    def observe_request(self, *, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in HTTP_METHODS else "other"
        self.http_requests.labels(method=method, route=route, status=str(status)).inc()
        self.http_duration.labels(method=method, route=route).observe(seconds)

    def observe_detection(self, *, seconds: float, faces: int) -> None:
        self.detection_seconds.observe(seconds)
        self.faces_per_image.observe(faces)

    def inference_refused(self, code: str) -> None:
        """The inference pool's hook: a call refused with this error code."""
        self.inference_refusals.labels(code=code).inc()

    def database_outcome(self, outcome: Outcome) -> None:
        """The database's hook: how a unit of work ended."""
        if outcome != "ok":
            self.database_errors.labels(kind=outcome).inc()
        if outcome != "audit":  # an audit write that failed still reached the database
            self._database_reached = outcome == "ok"

    def timed_embedding(self, embed: Callable[[Crops], Embeddings]) -> Callable[[Crops], Embeddings]:
        """`embed`, recording each call's batch size and seconds (it runs in the inference pool)."""

        def timed(crops: Crops) -> Embeddings:
            started = time.perf_counter()
            embeddings = embed(crops)
            self.embedding_seconds.observe(time.perf_counter() - started)
            self.batch_size.observe(len(crops))
            return embeddings

        return timed

    # What is read at scrape time.

    def watch_pool(self, pool: InferencePool) -> None:
        self.queue_depth.set_function(lambda: pool.pending)
        self.queue_capacity.set(pool.max_pending)

    def watch_database(self, database: Database) -> None:
        """Its availability, and faces and subjects per collection, read when scraped (on this loop)."""
        self.database_up.set_function(lambda: 1.0 if database.ready and self._database_reached else 0.0)

        async def sizes() -> list[CollectionSize]:
            async with database.transaction() as repository:
                return await repository.collection_sizes()

        self.collection_sizes.watch(sizes, loop=asyncio.get_running_loop())

    async def exposition(self, *, accept: str) -> tuple[bytes, str]:
        """The registry in the format the scraper accepts (Prometheus text unless it asks for OpenMetrics)."""
        encoder, content_type = choose_encoder(accept)
        # Off the event loop: the process collector reads /proc, and the gallery gauges wait for it.
        return await asyncio.to_thread(encoder, self.registry), content_type
