"""Prometheus metrics: GET /metrics on the main port, for keys with the metrics scope (or admin)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.api.auth import MetricsKey
from app.api.deps import MetricsDep

router = APIRouter(tags=["metrics"])


# Not in the OpenAPI document: its answer is Prometheus' text format, not JSON (see the README's Metrics).
@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(principal: MetricsKey, request: Request, metrics: MetricsDep) -> Response:
    """The service's metrics in the Prometheus text format (OpenMetrics when the scraper asks for it)."""
    body, content_type = await metrics.exposition(accept=request.headers.get("accept", ""))
    return Response(body, headers={"Content-Type": content_type})
