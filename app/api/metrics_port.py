"""FACEREC_METRICS_PORT: the same registry, without a key, on a port of its own.

prometheus-client's own server (a thread of the process) serves it, so a scrape there never
waits behind the API's requests. Keep the port off the public network: it has no access control.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import start_http_server

from app.services.metrics import Metrics

logger = logging.getLogger(__name__)


@contextmanager
def metrics_port(metrics: Metrics, *, host: str, port: int) -> Iterator[None]:
    """Serve `metrics` on host:port for as long as the block runs."""
    server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    logger.info("metrics served without a key on http://%s:%s/metrics", host, port)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
