"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import ServicesDep
from app.schemas import HealthResponse, ReadinessResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse)
async def healthz() -> HealthResponse:
    """The process is up."""
    return HealthResponse(status="ok")


@router.get("/readyz", response_model=ReadinessResponse, responses={503: {"model": ReadinessResponse}})
async def readyz(services: ServicesDep) -> JSONResponse:
    """The models answer a probe, the database is reachable and its schema current."""
    assert services.health is not None  # the server always holds an engine
    readiness = await services.health.readiness()
    status = "ready" if readiness.ready else "not_ready"
    body = ReadinessResponse(status=status, checks=readiness.checks, engine=readiness.engine)
    return JSONResponse(body.model_dump(), status_code=200 if readiness.ready else 503)
