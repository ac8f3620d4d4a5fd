"""What the engine hands the services: detected faces, standardised crops, embeddings (numpy),
and the two protocols every backend implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
from PIL import Image

EMBEDDING_DIM = 512
CROP_SIZE = 160

# [n, 3, 160, 160] float32, facenet-pytorch's fixed_image_standardization applied: (x - 127.5) / 128.
Crops = npt.NDArray[np.float32]
# [n, 512] float32, each row L2-normalised: the dot product of two rows is their cosine similarity.
Embeddings = npt.NDArray[np.float32]


@dataclass(frozen=True)
class DetectedFace:
    """One face in original-image pixels: box (x1, y1, x2, y2), five landmarks, MTCNN probability."""

    box: tuple[float, float, float, float]
    landmarks: tuple[tuple[float, float], ...]
    probability: float

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return self.width * self.height

    def scaled(self, *, x: float, y: float) -> DetectedFace:
        """The face in a frame whose pixels are 1/x and 1/y of this one's (x, y > 1 shrink it)."""
        x1, y1, x2, y2 = self.box
        return DetectedFace(
            box=(x1 * x, y1 * y, x2 * x, y2 * y),
            landmarks=tuple((px * x, py * y) for px, py in self.landmarks),
            probability=self.probability,
        )


class Detector(Protocol):
    """Finds faces in an RGB image, in the pixels of the image given.

    With shrink < 1 it looks for faces as it would in the image shrunk by that factor (its minimum
    face size is in pixels of the shrunk image), but still answers in this image's pixels.
    """

    @property
    def backend(self) -> str: ...

    def detect(self, image: Image.Image, *, shrink: float = 1.0) -> list[DetectedFace]: ...


class Embedder(Protocol):
    """Turns standardised crops into L2-normalised 512-d embeddings."""

    @property
    def backend(self) -> str: ...

    def embed(self, crops: Crops) -> Embeddings: ...


def no_crops() -> Crops:
    return np.zeros((0, 3, CROP_SIZE, CROP_SIZE), dtype=np.float32)


def no_embeddings() -> Embeddings:
    return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)


def l2_normalise(rows: npt.NDArray[np.float32]) -> Embeddings:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.ascontiguousarray(rows / np.maximum(norms, 1e-12), dtype=np.float32)


def check_crops(crops: Crops) -> Crops:
    """The crops as a contiguous float32 batch, or ValueError when they are not shaped [n, 3, 160, 160]."""
    batch = np.ascontiguousarray(crops, dtype=np.float32)
    if batch.ndim != 4 or batch.shape[1:] != (3, CROP_SIZE, CROP_SIZE):
        raise ValueError(f"crops must be shaped [n, 3, {CROP_SIZE}, {CROP_SIZE}], not {list(batch.shape)}")
    return batch
