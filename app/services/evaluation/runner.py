"""Photos through the service's own pipeline, in process: the same decoding, detection settings,
quality gate and bystander rule, crops, embedding backend and precision as an enrolment."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.errors import FacerecError
from app.services.analysis import FaceAnalyser, FaceChoice
from app.services.evaluation.dataset import Photo

Vector = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Embedded:
    """A photo's enrolment embedding, or the error code that refused it."""

    photo: Photo
    embedding: Vector | None
    failure: str | None = None
    message: str | None = None


async def embed_photos(
    photos: Sequence[Photo],
    *,
    analyser: FaceAnalyser,
    choose: FaceChoice,
    concurrency: int,
    advance: Callable[[], None] = lambda: None,
) -> list[Embedded]:
    """Each photo's embedding, in the photos' order; `advance` is called as each one is done."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(photo: Photo) -> Embedded:
        async with semaphore:
            try:
                analysis = await analyser.analyse(await asyncio.to_thread(photo.path.read_bytes), choose=choose)
                return Embedded(photo=photo, embedding=analysis.embeddings[0])
            except FacerecError as error:
                return Embedded(photo=photo, embedding=None, failure=error.code, message=error.message)
            except OSError as error:
                return Embedded(photo=photo, embedding=None, failure="UNREADABLE_FILE", message=str(error))
            finally:
                advance()

    return list(await asyncio.gather(*(one(photo) for photo in photos)))
