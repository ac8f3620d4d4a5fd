"""Plain read models that the repository returns: no ORM state leaks past it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class CollectionRecord:
    name: str
    subject_count: int
    face_count: int
    created_at: datetime
    retention_days: int | None


@dataclass(frozen=True)
class SubjectRecord:
    id: uuid.UUID
    name: str
    collection: str
    metadata: dict[str, Any] | None
    face_count: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class FaceRecord:
    id: uuid.UUID
    subject_id: uuid.UUID
    box: tuple[float, ...]
    landmarks: tuple[float, ...]
    detection_probability: float
    model_id: str
    image_sha256: str
    created_at: datetime


@dataclass(frozen=True)
class SubjectMatch:
    """A subject's best cosine similarity to a probe embedding."""

    subject_id: uuid.UUID
    name: str
    similarity: float


@dataclass(frozen=True)
class DeletionCounts:
    subjects: int
    faces: int
