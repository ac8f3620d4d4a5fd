"""The model work behind every use case: decode, detect, crop and measure in the inference pool,
then embed the chosen faces in a batch with other requests' faces."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from app.engine.batching import EmbeddingBatcher
from app.engine.decode import ImageLimits
from app.engine.engine import EngineDescription, FaceEngine
from app.engine.faces import Crops, Embeddings
from app.engine.inference import InferencePool
from app.engine.quality import measure_all
from app.services.metrics import Metrics
from app.services.quality import AnalysedFace, IgnoredFace

# Faces cropped and measured per photo at most; beyond the widest this many, faces are left out.
MAX_FACES_MEASURED = 100


@dataclass(frozen=True)
class Chosen:
    """The faces to embed (a subset of those detected, in order) and what was left out on purpose."""

    faces: list[AnalysedFace]
    ignored: list[IgnoredFace] = field(default_factory=list)


# Picks the faces to embed from every face detected (largest first), or raises the error the caller should see.
FaceChoice = Callable[[list[AnalysedFace]], Chosen]


@dataclass(frozen=True)
class Detection:
    """What the detector saw in one image: its size and every face, largest first, with its quality."""

    width: int
    height: int
    faces: list[AnalysedFace]
    found: int  # every face detected, of which `faces` holds the largest


@dataclass(frozen=True)
class Analysis:
    """The faces chosen in one image (largest first) and their embeddings, row for row."""

    width: int
    height: int
    chosen: Chosen
    embeddings: Embeddings
    faces_detected: int

    @property
    def faces(self) -> list[AnalysedFace]:
        return self.chosen.faces


class FaceAnalyser:
    """One engine, its inference pool and its batcher, behind two calls."""

    def __init__(
        self,
        *,
        engine: FaceEngine,
        pool: InferencePool,
        batcher: EmbeddingBatcher,
        limits: ImageLimits,
        metrics: Metrics | None = None,
    ) -> None:
        self._engine = engine
        self._pool = pool
        self._batcher = batcher
        self._limits = limits
        self._metrics = metrics

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
        """Every face in the image (the widest MAX_FACES_MEASURED), with its quality; no embedding."""
        detection, _ = await self._pool.run(self._detect_blocking, data, consider=MAX_FACES_MEASURED)
        return detection

    async def analyse(self, data: bytes, *, choose: FaceChoice, consider: int = MAX_FACES_MEASURED) -> Analysis:
        """Detection in the pool, then the chosen faces' embeddings, batched with other requests' faces.

        Only the `consider` largest faces are cropped, measured and offered to `choose`.
        """
        detection, chosen, crops = await self._pool.run(
            self._choose_and_crop_blocking, data, choose=choose, consider=consider
        )
        return Analysis(
            width=detection.width,
            height=detection.height,
            chosen=chosen,
            embeddings=await self._batcher.embed(crops),
            faces_detected=detection.found,
        )

    def _detect_blocking(self, data: bytes, *, consider: int) -> tuple[Detection, Crops]:
        started = time.perf_counter()
        found = self._engine.find_faces(data, limits=self._limits, consider=consider)
        if self._metrics is not None:
            self._metrics.observe_detection(seconds=time.perf_counter() - started, faces=found.found)
        qualities = measure_all(found.faces, crops=found.crops)
        analysed = [AnalysedFace(face, quality) for face, quality in zip(found.faces, qualities, strict=True)]
        return Detection(width=found.width, height=found.height, faces=analysed, found=found.found), found.crops

    def _choose_and_crop_blocking(
        self, data: bytes, *, choose: FaceChoice, consider: int
    ) -> tuple[Detection, Chosen, Crops]:
        detection, crops = self._detect_blocking(data, consider=consider)
        chosen = choose(detection.faces)
        rows = [next(i for i, item in enumerate(detection.faces) if item is face) for face in chosen.faces]
        return detection, chosen, crops[rows]
