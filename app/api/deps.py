"""Typed dependencies, each defined once."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.runtime import Runtime
from app.services.gallery import GalleryService
from app.services.recognition import RecognitionService


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.state.runtime
    return runtime


async def get_recognition(request: Request) -> RecognitionService:
    return (await get_runtime(request)).recognition


async def get_gallery(request: Request) -> GalleryService:
    return (await get_runtime(request)).gallery


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
RecognitionDep = Annotated[RecognitionService, Depends(get_recognition)]
GalleryDep = Annotated[GalleryService, Depends(get_gallery)]
