"""Faces and subjects per collection for /metrics: one grouped query at most every `max_age_s`.

Prometheus may scrape every few seconds, from several servers; counting a large gallery that
often would load the database for nothing. So a scrape reuses the last counts while they are
younger than `max_age_s`, and concurrent scrapes of stale counts share one query. When the query
fails (database down) the last counts stay, and the next try waits out `max_age_s` as well.

Collectors are called from whichever thread renders the registry (a worker thread for the main
port, the metrics server's thread for FACEREC_METRICS_PORT), never from the event loop: the
query runs on the loop, and the rendering thread waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.db.records import CollectionSize

logger = logging.getLogger(__name__)

# A scrape waits this long for the counts, then answers with the last ones.
REFRESH_TIMEOUT_S = 5.0


class CollectionSizes(Collector):
    def __init__(self, *, max_age_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age_s = max_age_s
        self._clock = clock
        self._fetch: Callable[[], Awaitable[list[CollectionSize]]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()
        self._sizes: list[CollectionSize] = []
        self._tried_at: float | None = None

    def watch(self, fetch: Callable[[], Awaitable[list[CollectionSize]]], *, loop: asyncio.AbstractEventLoop) -> None:
        self._fetch = fetch
        self._loop = loop

    async def refresh(self) -> None:
        """Run the query if the counts are older than max_age_s (or were never read)."""
        async with self._lock:
            now = self._clock()
            if self._fetch is None or (self._tried_at is not None and now - self._tried_at < self.max_age_s):
                return
            self._tried_at = now
            try:
                async with asyncio.timeout(REFRESH_TIMEOUT_S):
                    self._sizes = await self._fetch()
            except Exception as error:  # noqa: BLE001 - the last counts stay; the database's own gauge says why
                logger.info("collection sizes not refreshed: %s: %s", type(error).__name__, error)

    def collect(self) -> Iterable[Metric]:
        self._refresh_from_this_thread()
        faces = GaugeMetricFamily(
            "facerec_collection_faces",
            "Faces stored per collection (counted at most every FACEREC_METRICS_GALLERY_REFRESH_S).",
            labels=["collection"],
        )
        subjects = GaugeMetricFamily(
            "facerec_collection_subjects",
            "Subjects per collection (counted like facerec_collection_faces).",
            labels=["collection"],
        )
        for size in self._sizes:
            faces.add_metric([size.name], size.faces)
            subjects.add_metric([size.name], size.subjects)
        return [faces, subjects]

    def _refresh_from_this_thread(self) -> None:
        if self._loop is None or self._loop.is_closed():
            return
        try:
            asyncio.get_running_loop()
            return  # on an event loop, waiting would block it: the last counts will do
        except RuntimeError:
            pass
        future = asyncio.run_coroutine_threadsafe(self.refresh(), self._loop)
        try:
            future.result(timeout=REFRESH_TIMEOUT_S + 1)
        except TimeoutError:
            future.cancel()
