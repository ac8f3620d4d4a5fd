"""The face engine: one detector and one embedder, with the detection copy and the crops between them.

One engine per process, built by app.engine.build. Its methods are blocking and thread-safe:
callers run them in the inference pool.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

from app.engine.crops import face_crops
from app.engine.decode import Decoded, ImageLimits, decode
from app.engine.faces import CROP_SIZE, EMBEDDING_DIM, Crops, DetectedFace, Detector, Embedder, Embeddings

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
        """Every face in the image, largest first, in its pixels; searched as if the image were at
        most detect_max_side pixels long (the minimum face size is in pixels of that size)."""
        shrink = min(1.0, self.detect_max_side / max(image.size))
        found = self._detector.detect(image, shrink=shrink)
        faces = [_clip(face, width=image.width, height=image.height) for face in found]
        return sorted(faces, key=lambda face: face.area, reverse=True)

    def crops(self, image: Image.Image, *, faces: list[DetectedFace]) -> Crops:
        return face_crops(image, faces=faces)

    def find_faces(self, data: bytes, *, limits: ImageLimits, consider: int) -> FoundFaces:
        """Decode untrusted upload bytes, detect, and crop the `consider` largest faces.

        A JPEG is decoded only as finely as detection needs (its longest side at least
        detect_max_side), and the crops are cut from that decode when every face is still at
        least 160 px wide in it; otherwise from a decode fine enough for the narrowest face
        (at worst the full one). Boxes come back in full-image pixels.
        """
        decoded = self.decode(data, limits=limits)
        found = self.locate(decoded)
        faces = found[:consider]
        return FoundFaces(
            width=decoded.width,
            height=decoded.height,
            faces=faces,
            crops=self.cut(data, decoded=decoded, faces=faces, limits=limits),
            found=len(found),
        )

    def decode(self, data: bytes, *, limits: ImageLimits) -> Decoded:
        """find_faces's first step: the upload decoded as finely as detection needs."""
        return decode(data, limits=limits, at_least=self.detect_max_side)

    def locate(self, decoded: Decoded) -> list[DetectedFace]:
        """find_faces's second step: every face, largest first, in full-image pixels."""
        to_full = {"x": 1 / decoded.scale_x, "y": 1 / decoded.scale_y}
        full = {"width": decoded.width, "height": decoded.height}
        return [_clip(face.scaled(**to_full), **full) for face in self.detect(decoded.image)]

    def cut(self, data: bytes, *, decoded: Decoded, faces: list[DetectedFace], limits: ImageLimits) -> Crops:
        """find_faces's last step: the faces' crops, from a decode in which each is >= 160 px wide if any."""
        source = decoded
        narrowest = min((face.width for face in faces), default=0.0)
        if decoded.reduced and narrowest * decoded.scale_x < CROP_SIZE:
            wanted = math.ceil(max(decoded.width, decoded.height) * CROP_SIZE / max(narrowest, 1.0))
            source = decode(data, limits=limits, at_least=wanted)
        in_source = [face.scaled(x=source.scale_x, y=source.scale_y) for face in faces]
        return self.crops(source.image, faces=in_source)

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


def _clip(face: DetectedFace, *, width: int, height: int) -> DetectedFace:
    x1, y1, x2, y2 = face.box
    box = (max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2))
    return DetectedFace(box=box, landmarks=face.landmarks, probability=face.probability)
