"""Plain records that the repository reads and writes: no database state leaks past it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class CollectionRecord:
    name: str
    subject_count: int
    face_count: int
    created_at: datetime
    retention_days: int | None
    match_threshold: float | None


@dataclass(frozen=True)
class CollectionSize:
    """How many subjects and faces a collection holds (the metrics' gauges)."""

    name: str
    subjects: int
    faces: int


@dataclass(frozen=True)
class CollectionSettings:
    """What a use case needs of a collection: its id, and its own threshold (None: the service's)."""

    id: int
    match_threshold: float | None


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
class NewFace:
    """A face to store: its embedding and where it was found."""

    subject_id: uuid.UUID
    collection_id: int
    embedding: Any  # float32 [512], unit length
    box: tuple[float, ...]
    landmarks: tuple[float, ...]
    detection_probability: float
    model_id: str
    image_sha256: str


@dataclass(frozen=True)
class SubjectMatch:
    """A subject's best cosine similarity to a probe embedding."""

    subject_id: uuid.UUID
    name: str
    similarity: float


@dataclass(frozen=True)
class Nearest:
    """The nearest subjects of each probe, and the collection's own threshold."""

    per_face: list[list[SubjectMatch]]
    match_threshold: float | None


@dataclass(frozen=True)
class DeletionCounts:
    subjects: int
    faces: int


@dataclass(frozen=True)
class ExpiredFace:
    collection: str
    subject_id: uuid.UUID
    face_id: uuid.UUID


@dataclass(frozen=True)
class KeyRecord:
    id: uuid.UUID
    name: str
    prefix: str
    secret_sha256: str
    scopes: tuple[str, ...]
    collections: tuple[str, ...] | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log, as it is written."""

    action: str
    key_id: uuid.UUID | None
    outcome: str = "success"
    collection: str | None = None
    subject_ids: tuple[uuid.UUID, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditRecord:
    """One line of the audit log, as it is read back."""

    id: int
    at: datetime
    key_id: uuid.UUID | None
    action: str
    collection: str | None
    subject_ids: tuple[uuid.UUID, ...]
    outcome: str
    details: dict[str, Any]


@dataclass(frozen=True)
class AuditQuery:
    since: datetime | None = None
    until: datetime | None = None
    action: str | None = None
    subject_id: uuid.UUID | None = None
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True)
class RateDecision:
    """One request against a rate limit: admitted, or how long until one would be."""

    admitted: bool
    wait_s: float
