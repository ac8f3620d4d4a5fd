"""The model work behind every use case: decode and detect in the inference pool, then embed the
chosen faces in a batch with other requests' faces."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.engine.batching import EmbeddingBatcher
from app.engine.decode import ImageLimits, decode_image
from app.engine.engine import EngineDescription, FaceEngine
from app.engine.faces import Crops, DetectedFace, Embeddings, no_crops
from app.engine.inference import InferencePool

# Picks the faces to embed (largest first in, a subset out), or raises the error the caller should see.
FaceChoice = Callable[[list[DetectedFace]], list[DetectedFace]]


@dataclass(frozen=True)
class Detection:
    """What the detector saw in one image: its size and every face, largest first."""

    width: int
    height: int
    faces: list[DetectedFace]


@dataclass(frozen=True)
class Analysis:
    """The faces chosen in one image (largest first) and their embeddings, row for row."""

    width: int
    height: int
    faces: list[DetectedFace]
    embeddings: Embeddings
    faces_detected: int


class FaceAnalyser:
    """One engine, its inference pool and its batcher, behind two calls."""

    def __init__(
        self, *, engine: FaceEngine, pool: InferencePool, batcher: EmbeddingBatcher, limits: ImageLimits
    ) -> None:
        self._engine = engine
        self._pool = pool
        self._batcher = batcher
        self._limits = limits

    @property
    def model_id(self) -> str:
        return self._engine.model_id

    @property
    def description(self) -> EngineDescription:
        return self._engine.description

    async def probe(self) -> None:
        """Both models run once, through the pool, on a fixed input."""
        await self._pool.run(self._engine.probe)

    async def detect(self, data: bytes) -> Detection:
        """Every face in the image; no embedding."""
        return await self._pool.run(self._detect_blocking, data)

    async def analyse(self, data: bytes, *, choose: FaceChoice) -> Analysis:
        """Detection in the pool, then the chosen faces' embeddings, batched with other requests' faces."""
        detection, chosen, crops = await self._pool.run(self._choose_and_crop_blocking, data, choose=choose)
        embeddings = await self._batcher.embed(crops)
        return Analysis(
            width=detection.width,
            height=detection.height,
            faces=chosen,
            embeddings=embeddings,
            faces_detected=len(detection.faces),
        )

    def _detect_blocking(self, data: bytes) -> Detection:
        image = decode_image(data, limits=self._limits)
        return Detection(width=image.width, height=image.height, faces=self._engine.detect(image))

    def _choose_and_crop_blocking(
        self, data: bytes, *, choose: FaceChoice
    ) -> tuple[Detection, list[DetectedFace], Crops]:
        image = decode_image(data, limits=self._limits)
        detection = Detection(width=image.width, height=image.height, faces=self._engine.detect(image))
        chosen = choose(detection.faces)
        return detection, chosen, self._engine.crops(image, faces=chosen) if chosen else no_crops()
