"""A controlled embedder for tests of recognition policy, behind the same Embedder interface as the real one.

The untrained test weights make every face ~0.9999 similar to every other, so they cannot show a
threshold, a match or an "unknown". This embedder gives each labelled identity of
../shared/faces a fixed random direction, and each photo of it that direction plus noise of a
known size, so that similarities have known distributions:

- two photos of one identity: cosine about 1 / (1 + NOISE**2) = 0.64, within +-0.1;
- two identities, or a crop it does not know (a stranger): cosine about 0, within +-0.2.

It knows a crop by comparing it, pooled to 3 x 16 x 16, with the crops the service's own engine
cut from the labelled photos (the main face of each, as enrolment picks it): the same photo
through the same pipeline gives the same crop. Every other crop is a stranger with a direction
of its own, the same for the same crop.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from app.engine.decode import ImageLimits
from app.engine.engine import FaceEngine
from app.engine.faces import EMBEDDING_DIM, Crops, Embeddings, check_crops, l2_normalise, no_embeddings

NOISE = 0.75
# Pooled crops of the same photo differ by float rounding at most; of two photos by far more.
SAME_CROP_TOLERANCE = 1e-3
ANY_SIZE = ImageLimits(max_bytes=1 << 30, max_pixels=1 << 30, min_side=1)
# FACEREC_MIN_DETECTION_PROBABILITY's default: enrolment's main face is the widest face this confident.
MAIN_FACE_MIN_PROBABILITY = 0.95

Vector = npt.NDArray[np.float32]


def direction(seed_text: str) -> Vector:
    """A fixed random unit vector for this text."""
    seed = int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(EMBEDDING_DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


def photo_embedding(identity: str, *, photo: str, noise: float = NOISE) -> Vector:
    """The identity's direction plus noise of norm `noise` fixed by the photo."""
    row: Vector = l2_normalise((direction(f"identity:{identity}") + noise * direction(f"photo:{photo}"))[None])[0]
    return row


def fingerprint(crop: npt.NDArray[np.float32]) -> Vector:
    """The crop averaged over 10 x 10 blocks: [3 * 16 * 16]."""
    return np.asarray(crop.reshape(3, 16, 10, 16, 10).mean(axis=(2, 4)).ravel(), dtype=np.float32)


@dataclass(frozen=True)
class LabelledPhoto:
    identity: str
    photo: str  # path relative to the faces folder


class LabelledEmbedder:
    """Known identities for known crops, strangers for the rest."""

    backend = "test labelled"

    def __init__(self, references: list[tuple[Vector, LabelledPhoto]], *, noise: float = NOISE) -> None:
        self._fingerprints = np.stack([print_ for print_, _ in references]) if references else None
        self._labels = [label for _, label in references]
        self.noise = noise

    def label_of(self, crop: npt.NDArray[np.float32]) -> LabelledPhoto | None:
        if self._fingerprints is None:
            return None
        distances = np.max(np.abs(self._fingerprints - fingerprint(crop)), axis=1)
        best = int(np.argmin(distances))
        return self._labels[best] if distances[best] <= SAME_CROP_TOLERANCE else None

    def embed(self, crops: Crops) -> Embeddings:
        batch = check_crops(crops)
        if len(batch) == 0:
            return no_embeddings()
        rows = []
        for crop in batch:
            label = self.label_of(crop)
            if label is None:
                rows.append(
                    direction("stranger:" + hashlib.sha256(np.round(fingerprint(crop), 3).tobytes()).hexdigest())
                )
            else:
                rows.append(photo_embedding(label.identity, photo=label.photo, noise=self.noise))
        return np.ascontiguousarray(np.stack(rows), dtype=np.float32)


def labelled_photos(faces_dir: Path) -> list[LabelledPhoto]:
    """Every photo of a named identity (the _groups and _noface folders aside)."""
    if not (faces_dir / "manifest.csv").is_file():
        return []
    with (faces_dir / "manifest.csv").open(newline="") as stream:
        return [
            LabelledPhoto(identity=row["identity"], photo=row["path"])
            for row in csv.DictReader(stream)
            if row["identity"] and not row["path"].startswith("_")
        ]


def build_embedder(engine: FaceEngine, *, faces_dir: Path, noise: float = NOISE) -> LabelledEmbedder:
    """The references: each labelled photo's main face as enrolment picks it (the widest confident one),
    cut by the engine as the service cuts it."""
    references = []
    for label in labelled_photos(faces_dir):
        found = engine.find_faces((faces_dir / label.photo).read_bytes(), limits=ANY_SIZE, consider=100)
        rows = range(len(found.faces))
        confident = [row for row in rows if found.faces[row].probability >= MAIN_FACE_MIN_PROBABILITY]
        if found.faces:
            main = max(confident or rows, key=lambda row: found.faces[row].width)
            references.append((fingerprint(found.crops[main]), label))
    return LabelledEmbedder(references, noise=noise)
