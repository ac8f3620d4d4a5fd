"""Typed dependencies, each defined once."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings
from app.services.container import Services
from app.services.enrollment import EnrollmentService
from app.services.gallery import GalleryService
from app.services.metrics import Metrics
from app.services.recognition import RecognitionService


async def get_services(request: Request) -> Services:
    services: Services = request.state.services
    return services


async def get_settings(request: Request) -> Settings:
    return (await get_services(request)).settings


async def get_recognition(request: Request) -> RecognitionService:
    recognition = (await get_services(request)).recognition
    assert recognition is not None  # the server always holds an engine
    return recognition


async def get_enrollment(request: Request) -> EnrollmentService:
    enrollment = (await get_services(request)).enrollment
    assert enrollment is not None
    return enrollment


async def get_gallery(request: Request) -> GalleryService:
    return (await get_services(request)).gallery


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.state.metrics  # the lifespan's, with the app's own registry
    return metrics


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
RecognitionDep = Annotated[RecognitionService, Depends(get_recognition)]
EnrollmentDep = Annotated[EnrollmentService, Depends(get_enrollment)]
GalleryDep = Annotated[GalleryService, Depends(get_gallery)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
