"""Request and response models of the HTTP API. No response carries an embedding."""

from __future__ import annotations

import json
import unicodedata
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.scopes import Scope

COLLECTION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"


def _printable_name(value: str) -> str:
    """Names are stripped and may not be blank or hold control characters (Postgres text cannot hold NUL)."""
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    if any(unicodedata.category(character) == "Cc" for character in value):
        raise ValueError("must not contain control characters")
    return value


def no_nul_in_json(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Postgres jsonb cannot hold U+0000 anywhere, in keys or values."""
    if value is not None and "\\u0000" in json.dumps(value):
        raise ValueError("must not contain the character U+0000")
    return value


SubjectName = Annotated[str, StringConstraints(max_length=200), AfterValidator(_printable_name)]
KeyName = Annotated[str, StringConstraints(max_length=100), AfterValidator(_printable_name)]
CollectionName = Annotated[str, StringConstraints(pattern=COLLECTION_PATTERN)]


class Point(BaseModel):
    x: float
    y: float


class Box(BaseModel):
    """A face's bounding box in pixels of the uploaded image (after EXIF rotation)."""

    x1: float
    y1: float
    x2: float
    y2: float


class Landmarks(BaseModel):
    """MTCNN's five facial landmarks, from the viewer's point of view."""

    left_eye: Point
    right_eye: Point
    nose: Point
    mouth_left: Point
    mouth_right: Point


class DetectedFaceRead(BaseModel):
    box: Box
    landmarks: Landmarks
    detection_probability: float = Field(description="MTCNN's confidence that this is a face, 0..1.")


class DetectResponse(BaseModel):
    width: int = Field(description="Image width in pixels after EXIF rotation.")
    height: int
    faces: list[DetectedFaceRead] = Field(description="Every face found, largest first.")


class EnrollResponse(BaseModel):
    subject_id: uuid.UUID
    subject: str
    collection: str
    face_id: uuid.UUID
    face: DetectedFaceRead
    model_id: str = Field(description="The embedding model the stored face belongs to.")
    created: bool = Field(description="False when this image was already enrolled for the subject.")
    subject_created: bool = Field(description="True when this enrolment created the subject.")


class Candidate(BaseModel):
    subject_id: uuid.UUID
    subject: str
    similarity: float = Field(description="Cosine similarity of the best face of the subject, -1..1.")


class IdentifiedFaceRead(DetectedFaceRead):
    candidates: list[Candidate] = Field(description="Nearest subjects, best first, one entry per subject.")
    match: Candidate | None = Field(
        description="The best candidate if its similarity reaches the threshold; null means unknown."
    )


class IdentifyResponse(BaseModel):
    collection: str
    model_id: str
    threshold: float
    faces_detected: int = Field(description="Faces found in the image; `faces` holds at most max_faces of them.")
    faces: list[IdentifiedFaceRead] = Field(description="Identified faces, largest first.")


class VerifyResponse(BaseModel):
    similarity: float = Field(description="Cosine similarity, -1..1.")
    threshold: float
    same_person: bool = Field(description="similarity >= threshold.")
    face: DetectedFaceRead = Field(description="The face compared in `image` (its largest).")
    face_b: DetectedFaceRead | None = Field(default=None, description="The face compared in `image_b`.")
    subject_id: uuid.UUID | None = Field(default=None, description="The subject compared against.")


class CollectionRead(BaseModel):
    name: str
    subject_count: int
    face_count: int
    created_at: datetime
    retention_days: int | None = Field(description="Faces older than this are deleted; null keeps them.")


class CollectionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retention_days: int | None = Field(ge=1, le=36500, description="Retention period in days; null for none.")


class CollectionList(BaseModel):
    items: list[CollectionRead]


class CollectionDeleted(BaseModel):
    collection: str
    deleted_subjects: int
    deleted_faces: int


class SubjectRead(BaseModel):
    id: uuid.UUID
    name: str
    collection: str
    metadata: dict[str, Any] | None
    face_count: int
    created_at: datetime
    updated_at: datetime


class SubjectPage(BaseModel):
    items: list[SubjectRead]
    total: int
    limit: int
    offset: int


class SubjectUpdate(BaseModel):
    """Fields to change; omitted fields stay as they are, and metadata null clears it."""

    model_config = ConfigDict(extra="forbid")

    name: SubjectName | None = None
    metadata: Annotated[dict[str, Any] | None, AfterValidator(no_nul_in_json)] = None


class SubjectDeleted(BaseModel):
    """The deletion receipt, also written to the audit log."""

    id: uuid.UUID
    name: str
    collection: str
    deleted_faces: int
    deleted_at: datetime


class StoredFaceRead(BaseModel):
    id: uuid.UUID
    subject_id: uuid.UUID
    box: Box
    landmarks: Landmarks
    detection_probability: float
    model_id: str
    image_sha256: str = Field(description="SHA-256 of the uploaded bytes; the image itself is not kept.")
    created_at: datetime


class FaceList(BaseModel):
    items: list[StoredFaceRead]


class HealthResponse(BaseModel):
    status: str


class ReadinessResponse(BaseModel):
    status: str = Field(description="ready, or not_ready")
    checks: dict[str, str] = Field(description="model, database and schema: ok or what is wrong.")
    engine: dict[str, str] = Field(
        default_factory=dict,
        description="What runs: device, detector and embedder backends, and a fallback's reason if one is in use.",
    )


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code; see the README's error table.")
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    error: ErrorBody


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: KeyName
    scopes: list[Scope] = Field(min_length=1, description="detect, verify, identify, enroll, manage, admin.")
    collections: list[CollectionName] | None = Field(
        default=None, max_length=100, description="Limit the key to these collections; null for all."
    )


class KeyRead(BaseModel):
    """A key without its secret, which is never stored."""

    id: uuid.UUID
    name: str
    prefix: str = Field(description="The public start of the key, to tell keys apart.")
    scopes: list[str]
    collections: list[str] | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyList(BaseModel):
    items: list[KeyRead]


class KeyIssued(KeyRead):
    key: str = Field(description="The secret key. Shown this once: store it now.")


class AuditEntryRead(BaseModel):
    id: int
    at: datetime
    key_id: uuid.UUID | None
    action: str
    collection: str | None
    subject_ids: list[uuid.UUID]
    outcome: str = Field(description="success, or the error code the request got.")
    details: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEntryRead]
    total: int
    limit: int
    offset: int
