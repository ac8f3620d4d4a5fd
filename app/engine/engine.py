"""The face engine: one detector and one embedder, with the detection copy and the crops between them.

One engine per process, built by app.engine.build. Its methods are blocking and thread-safe:
callers run them in the inference pool.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

from app.engine.crops import downscale, face_crops
from app.engine.decode import ImageLimits, decode_image
from app.engine.faces import EMBEDDING_DIM, Crops, DetectedFace, Detector, Embedder, Embeddings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoundFaces:
    """One decoded photo's faces: the `consider` largest (largest first) and their crops, row for row."""

    width: int
    height: int
    faces: list[DetectedFace]
    crops: Crops
    found: int  # every face detected, of which `faces` holds the largest


@dataclass(frozen=True)
class EngineDescription:
    """What runs: for the start-up log and /readyz."""

    device: str
    detector: str
    embedder: str
    model_id: str
    fallback: str | None = None  # why `auto` runs torch where ONNX Runtime was meant to

    def as_dict(self) -> dict[str, str]:
        described = {"device": self.device, "detector": self.detector, "embedder": self.embedder}
        return described | ({"fallback": self.fallback} if self.fallback else {})


class FaceEngine:
    """Detection on a copy at most detect_max_side wide; boxes and crops in original pixels."""

    def __init__(
        self, *, detector: Detector, embedder: Embedder, description: EngineDescription, detect_max_side: int
    ) -> None:
        self._detector = detector
        self._embedder = embedder
        self.description = description
        self.detect_max_side = detect_max_side
        # One embedding call at a time: each call already spreads over every core, so concurrent
        # calls would only contend. Detection calls run side by side, one per inference worker.
        self._embed_lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self.description.model_id

    def detect(self, image: Image.Image) -> list[DetectedFace]:
        """Every face in the image, largest first, in original-image pixels."""
        small, scale = downscale(image, max_side=self.detect_max_side)
        faces = [
            _to_original(face, scale=scale, width=image.width, height=image.height)
            for face in self._detector.detect(small)
        ]
        return sorted(faces, key=lambda face: face.area, reverse=True)

    def crops(self, image: Image.Image, *, faces: list[DetectedFace]) -> Crops:
        return face_crops(image, faces=faces)

    def find_faces(self, data: bytes, *, limits: ImageLimits, consider: int) -> FoundFaces:
        """Decode untrusted upload bytes, detect, and crop the `consider` largest faces."""
        image = decode_image(data, limits=limits)
        found = self.detect(image)
        faces = found[:consider]
        return FoundFaces(
            width=image.width, height=image.height, faces=faces, crops=self.crops(image, faces=faces), found=len(found)
        )

    def embed(self, crops: Crops) -> Embeddings:
        """L2-normalised 512-d float32 embeddings, one row per crop."""
        with self._embed_lock:
            return self._embedder.embed(crops)

    def probe(self) -> None:
        """Run both models once on a fixed input; raise RuntimeError when either does not answer sanely."""
        blank = Image.new("RGB", (96, 96), (128, 128, 128))
        self.detect(blank)
        embeddings = self.embed(
            self.crops(blank, faces=[DetectedFace(box=(0, 0, 96, 96), landmarks=(), probability=1.0)])
        )
        norms = np.linalg.norm(embeddings, axis=1)
        if embeddings.shape != (1, EMBEDDING_DIM) or not np.allclose(norms, 1.0, atol=1e-3):
            raise RuntimeError(f"the embedder answered {embeddings.shape} with norms {norms.tolist()}")


def _to_original(face: DetectedFace, *, scale: float, width: int, height: int) -> DetectedFace:
    x1, y1, x2, y2 = (v / scale for v in face.box)
    return DetectedFace(
        box=(max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2)),
        landmarks=tuple((x / scale, y / scale) for x, y in face.landmarks),
        probability=face.probability,
    )
