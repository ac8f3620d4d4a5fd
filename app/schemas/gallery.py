"""Collections, subjects and their stored faces (metadata only, never embeddings or pixels)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from app.schemas.common import Box, Landmarks, SubjectName, no_nul_in_json


class CollectionRead(BaseModel):
    name: str
    subject_count: int
    face_count: int
    created_at: datetime
    retention_days: int | None = Field(description="Faces older than this are deleted; null keeps them.")
    match_threshold: float | None = Field(
        description="The cosine similarity a match needs in this collection; null: the service's "
        "FACEREC_MATCH_THRESHOLD."
    )


class CollectionUpdate(BaseModel):
    """Fields to change; omitted fields stay as they are, and null clears one."""

    model_config = ConfigDict(extra="forbid")

    retention_days: int | None = Field(
        default=None, ge=1, le=36500, description="Retention period in days; null for none."
    )
    match_threshold: float | None = Field(
        default=None,
        ge=-1.0,
        le=1.0,
        description="This collection's match threshold (e.g. from `facerec calibrate`); null: the service default.",
    )

    @model_validator(mode="after")
    def _changes_something(self) -> CollectionUpdate:
        if not self.model_fields_set:
            raise ValueError("send retention_days, match_threshold or both")
        return self


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
